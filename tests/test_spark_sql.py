"""The pipeline's DuckDB SQL as Spark SQL: what sqlglot leaves or changes, and what the engines agree on."""

from datetime import UTC, date, datetime

import duckdb
import pytest

from eventpipe.engine.duckdb import DuckDBEngine
from eventpipe.engine.spark_sql import to_spark
from eventpipe.errors import EventpipeError


def test_parameters_become_literals_of_the_type_duckdb_binds():
    sql = to_spark(
        "SELECT $n, $x, $s, $t, $d, $l, $none",
        {
            "n": 3,
            "x": 1.5,
            "s": "it's",
            "t": datetime(2020, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
            "d": date(2020, 1, 2),
            "l": ["a", "b"],
            "none": None,
        },
    )
    assert sql == (
        "SELECT 3, CAST('1.5' AS DOUBLE), 'it\\'s', CAST('2020-01-02 03:04:05.000006' AS TIMESTAMP), "
        "CAST('2020-01-02' AS DATE), ARRAY('a', 'b'), NULL"
    )


def test_a_missing_parameter_is_named():
    with pytest.raises(EventpipeError, match=r"\$absent"):
        to_spark("SELECT $absent", {})


def test_functions_sqlglot_leaves_as_they_are_are_spelled_for_spark():
    sql = to_spark("SELECT map_extract_value(map($k, $v), x), epoch_us(t), hash(x)", {"k": ["a"], "v": ["b"]})
    assert sql == (
        "SELECT TRY_ELEMENT_AT(MAP_FROM_ARRAYS(ARRAY('a'), ARRAY('b')), x), UNIX_MICROS(t), XXHASH64(x)"
    )


def test_list_positions_stay_one_based():
    assert to_spark("SELECT [10, 20][1], $l[i] FROM r", {"l": ["a"]}) == (
        "SELECT ELEMENT_AT(ARRAY(10, 20), CAST(1 AS INT)), ELEMENT_AT(ARRAY('a'), CAST(i AS INT)) FROM r"
    )


def test_json_keeps_nulls_and_a_whole_row_is_a_struct():
    assert to_spark("SELECT to_json(o) FROM (SELECT 1 AS a) AS o") == (
        "SELECT TO_JSON(STRUCT(o.*), MAP('ignoreNullFields', 'false')) FROM (SELECT 1 AS a) AS o"
    )


def test_materialized_ctes_are_plain_and_seconds_become_timestamps():
    sql = to_spark("WITH m AS MATERIALIZED (SELECT 60 AS s) SELECT to_timestamp(s) FROM m")
    assert sql == "WITH m AS (SELECT 60 AS s) SELECT TIMESTAMP_SECONDS(s) FROM m"


# Values whose text differs between the engines' own casts (Spark: 1.0E-7, 1.23456789012E11)
PRICES = [1e-07, 100.0, 1.5, 123456789012.0, 0.1 + 0.2, -0.0, 5e-324, 1e16, 19.99]


def test_duckdb_writes_a_price_as_python_does():
    with DuckDBEngine() as engine:
        texts = engine.table("SELECT canonical_double(p) AS t FROM unnest($p) AS u(p)", {"p": PRICES})
    assert texts.column("t").to_pylist() == [repr(p) for p in PRICES]


@pytest.mark.slow
def test_spark_gives_duckdbs_answers_where_the_engines_differ(with_spark):
    """Each expression the pipeline relies on, run on both engines."""
    from eventpipe.engine.spark import SparkEngine

    expressions = {
        "price_text": "canonical_double(p)",
        "micros": "epoch_us(TIMESTAMPTZ '1969-12-31 23:59:59.5+00')",
        "floor_date": "(DATE '1970-01-01' + CAST(((-1) - (((-1) % 86400000000) + 86400000000) % 86400000000) "
        "// 86400000000 AS INTEGER))",
        "money": "CAST(CAST(least(p, 1e11) AS DECIMAL(18, 6)) AS DOUBLE)",  # bronze keeps prices < 1e12
        "position": "[10, 20, 30][2]",
        "missing_key": "map_extract_value(map(['a'], ['b']), 'z')",
        "json": "to_json(struct_pack(a := 'x\"\\/' || chr(1) || 'é', b := NULL::VARCHAR))::VARCHAR",
    }
    select = ", ".join(f"{sql} AS {name}" for name, sql in expressions.items())
    query = f"SELECT {select} FROM unnest($p) AS u(p)"
    with DuckDBEngine() as duck:
        expected = duck.table(query, {"p": PRICES}).to_pylist()
    spark = SparkEngine("local[1]")
    spark.register("prices", duckdb.sql("SELECT unnest($p) AS p", params={"p": PRICES}).arrow())
    found = spark.table(query.replace("unnest($p) AS u(p)", "prices"), {}).to_pylist()
    spark.close()
    assert found == expected
