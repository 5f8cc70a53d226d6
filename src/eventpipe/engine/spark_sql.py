"""The pipeline's SQL, written for DuckDB, as Spark SQL with its parameters in place.

``sqlglot`` translates most of it; what it leaves as it is, or translates to a
different meaning, is rewritten here:

- ``$name`` parameters become literals (Spark SQL takes no lists as parameters);
- ``map_extract_value(m, k)`` is ``try_element_at(m, k)``: NULL for a missing key,
  as in DuckDB (``element_at`` fails under ANSI mode);
- ``epoch_us(t)`` is ``unix_micros(t)``;
- ``list[i]`` (1-based in DuckDB, 0-based in Spark) is ``element_at(list, i)`` (1-based);
- ``to_json(struct)`` keeps NULL fields (Spark drops them by default), and ``to_json(alias)``
  of a whole row is ``to_json(struct(alias.*))``;
- ``WITH name AS MATERIALIZED`` is a plain ``WITH``;
- ``to_timestamp(seconds)`` is ``timestamp_seconds(seconds)``;
- ``hash(x)`` is ``xxhash64(x)``: another 64-bit hash. The pipeline only groups by hashes to
  find candidates that are then compared whole, so the values need not agree across engines.

Where the engines differ in meaning rather than spelling, the SQL itself is written so both
give the same answer: ids hash a text both engines write byte for byte (``canonical_double``
for prices, microseconds for times), dates are worked out from microseconds, money is summed
as DECIMAL(18, 6) and JSON gets texts for times and prices.
"""

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlglot
from sqlglot import exp

from eventpipe.errors import EventpipeError


def to_spark(sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> str:
    """``sql`` (DuckDB) as one Spark SQL statement, with ``params`` written in as literals."""
    named = dict(params) if isinstance(params, Mapping) else {}
    statement = sqlglot.parse_one(sql, read="duckdb")
    aliases = {a.name for a in statement.find_all(exp.TableAlias)}
    # children first, so that a rewritten call keeps its rewritten arguments
    for node in reversed(list(statement.walk(bfs=False))):
        rewritten = _spark_form(node, named, aliases)
        if rewritten is not node:
            if node is statement:
                statement = rewritten
            else:
                node.replace(rewritten)
    return statement.sql(dialect="spark")


def _spark_form(node: exp.Expression, params: dict[str, Any], aliases: set[str]) -> exp.Expression:
    if isinstance(node, exp.Placeholder) and node.name:
        if node.name not in params:
            raise EventpipeError(f"SQL parameter ${node.name} has no value")
        return literal(params[node.name])
    if isinstance(node, exp.Bracket) and len(node.expressions) == 1:
        index = node.expressions[0]
        if isinstance(index, exp.Literal):  # sqlglot keeps a constant index 0-based, whatever the dialect
            index = exp.Literal.number(int(index.this) + 1)
        # Spark takes the position as an INT only
        position = exp.cast(index, exp.DataType.Type.INT)
        return exp.Anonymous(this="element_at", expressions=[node.this, position])
    to_json = isinstance(node, exp.Anonymous) and node.name.lower() == "to_json"
    if isinstance(node, exp.JSONFormat) or to_json:
        value = node.this if isinstance(node, exp.JSONFormat) else node.expressions[0]
        if isinstance(value, exp.Column) and not value.table and value.name in aliases:  # a whole row
            value = exp.Struct(expressions=[exp.Column(this=exp.Star(), table=exp.to_identifier(value.name))])
        keep_nulls = exp.Anonymous(
            this="map", expressions=[exp.Literal.string("ignoreNullFields"), exp.Literal.string("false")]
        )
        return exp.Anonymous(this="to_json", expressions=[value, keep_nulls])
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        if name == "map_extract_value":
            return exp.Anonymous(this="try_element_at", expressions=node.expressions)
        if name == "epoch_us":
            return exp.Anonymous(this="unix_micros", expressions=node.expressions)
        if name == "hash":  # 64 bits, as DuckDB's (Spark's hash() has 32)
            return exp.Anonymous(this="xxhash64", expressions=node.expressions)
    if isinstance(node, exp.CTE) and node.args.get("materialized"):  # Spark decides what it reuses
        node.set("materialized", None)
        return node
    if isinstance(node, exp.UnixToTime) and node.args.get("scale") is None:
        return exp.Anonymous(this="timestamp_seconds", expressions=[node.this])
    return node


def literal(value: Any) -> exp.Expression:
    """A Python value as a Spark SQL literal of the type DuckDB would bind it as."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EventpipeError(f"SQL parameter {value} is not a finite number")
        # a plain 1.5 is a DECIMAL literal in Spark
        return exp.cast(exp.Literal.string(repr(value)), exp.DataType.Type.DOUBLE)
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value
        return exp.cast(
            exp.Literal.string(moment.strftime("%Y-%m-%d %H:%M:%S.%f")), exp.DataType.Type.TIMESTAMP
        )
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    if isinstance(value, list | tuple):
        return exp.Array(expressions=[literal(v) for v in value])
    raise EventpipeError(f"cannot write {type(value).__name__} {value!r} as a Spark SQL literal")
