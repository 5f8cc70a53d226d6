"""Comparing tables as multisets of rows, with a tolerance for floating-point averages."""

import math
from collections import Counter

import pyarrow as pa


def rounded(value):
    if isinstance(value, float) and not math.isnan(value):
        return round(value, 6)
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
