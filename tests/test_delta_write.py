"""Tables written by eventpipe read back whole, and filters on any column find every match."""

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from deltalake import DeltaTable

from eventpipe.engine import DuckDBEngine
from eventpipe.engine.delta import write

ROWS = pa.table(
    {
        "day": pa.array(["a", "a", "b", "b"]),
        "name": pa.array(["x", None, "y", "zz"]),
        "n": pa.array([1, 2, None, 4], pa.int64()),
        "at": pa.array(
            [datetime(2020, 1, i + 1, tzinfo=UTC) for i in range(4)], pa.timestamp("us", tz="UTC")
        ),
        "none": pa.array([None, None, None, None], pa.string()),
    }
)


@pytest.fixture
def table(tmp_path):
    table = DeltaTable.create(str(tmp_path / "t"), schema=ROWS.schema, partition_by=["day"])
    write(table, ROWS.schema, ROWS.to_batches(), ("day",))
    return DeltaTable(str(tmp_path / "t"))


@pytest.mark.parametrize(
    "condition",
    [
        ds.field("name") == "x",
        ds.field("name") == "zz",
        ds.field("n") == 4,
        ds.field("at") >= datetime(2020, 1, 3, tzinfo=UTC),
        ds.field("none").is_null(),
        ds.field("day") == "b",
    ],
)
def test_filters_find_every_matching_row(table, condition):
    expected = ROWS.filter(condition).num_rows
    assert expected > 0
    assert table.to_pyarrow_dataset().to_table(filter=condition).num_rows == expected


def test_duckdb_reads_through_the_same_filters(table):
    with DuckDBEngine() as engine:
        engine.expose_table("t", DeltaTable(table.table_uri))
        assert engine.scalar("SELECT count(*) FROM t WHERE name = 'y'") == 1
        assert engine.scalar("SELECT count(*) FROM t") == 4


def test_replace_swaps_a_partition_in_one_commit(table):
    before = table.version()
    new = ROWS.filter(ds.field("day") == "a").slice(0, 1)
    write(table, ROWS.schema, new.to_batches(), ("day",), replace=[("day", "=", "a")])
    after = DeltaTable(table.table_uri)
    assert after.version() == before + 1
    assert sorted(after.to_pyarrow_table()["n"].to_pylist(), key=str) == sorted([1, None, 4], key=str)


def test_replace_everything(table):
    write(table, ROWS.schema, ROWS.slice(0, 1).to_batches(), ("day",), replace=[])
    assert DeltaTable(table.table_uri).to_pyarrow_table().num_rows == 1
