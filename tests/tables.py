"""Comparing tables as multisets of rows, with a tolerance for floating-point averages."""

import math
from collections import Counter

import pyarrow as pa


def rounded(value):
    if isinstance(value, float) and not math.isnan(value):
        return round(value, 6)
    if isinstance(value, list):  # list cells (funnel step times) compared element by element
        return tuple(rounded(v) for v in value)
    return value


def as_multiset(rows: list[dict], columns: list[str] | None = None) -> Counter:
    columns = columns or (sorted(rows[0]) if rows else [])
    return Counter(tuple(rounded(row[c]) for c in columns) for row in rows)


def assert_same_rows(actual: pa.Table | list[dict], expected: list[dict], columns: list[str] | None = None):
    actual_rows = actual.to_pylist() if isinstance(actual, pa.Table) else actual
    columns = columns or sorted(expected[0]) if expected else columns
    got, want = as_multiset(actual_rows, columns), as_multiset(expected, columns)
    missing, extra = want - got, got - want
    assert not missing and not extra, (
        f"{sum(missing.values())} rows missing, e.g. {list(missing)[:3]}; "
        f"{sum(extra.values())} unexpected, e.g. {list(extra)[:3]} (columns {columns})"
    )


def warehouse_rows(warehouse) -> dict[str, Counter]:
    """Every data table of ``warehouse`` as a multiset of rows, without the processing-time columns.

    The logs (runs, quality_results) are left out: they record each run, not the data.
    """
    from deltalake import DeltaTable

    from eventpipe.warehouse import LOGS, TABLES

    found = {}
    for table in TABLES:
        path = warehouse / table.path
        if table in LOGS or not DeltaTable.is_deltatable(str(path)):
            continue
        rows = _without(DeltaTable(str(path)).to_pyarrow_table(), "_ingested_at")
        found[table.view] = as_multiset(rows.to_pylist(), sorted(rows.column_names))
    return found


def _without(table: pa.Table, column: str) -> pa.Table:
    return table.drop_columns([column]) if column in table.column_names else table
