"""Tables written by eventpipe read back whole, and filters on any column find every match."""

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.transaction import AddAction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventpipe.engine import DuckDBEngine, parquet_files
from eventpipe.engine.delta import file_statistics, row_count, write
from eventpipe.engine.parquet_files import PartitionedFiles
from eventpipe.fields import BRONZE_SCHEMA
from eventpipe.generate import generate_files
from eventpipe.runs import newest_event
from eventpipe.warehouse import BRONZE_EVENTS, TableSpec, Warehouse

from .steps import ingest

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


def _commit_without_statistics(table: DeltaTable, rows: pa.Table, partition: str) -> None:
    """Add ``rows`` (of one ``partition`` value) as a file whose log entry records no statistics,
    as the protocol allows other writers to do."""
    value = str(rows.column(partition)[0].as_py())
    folder = Path(table.table_uri.removeprefix("file://")) / f"{partition}={value}"
    folder.mkdir(exist_ok=True)
    pq.write_table(rows.drop_columns([partition]), folder / "bare.parquet")
    size = (folder / "bare.parquet").stat().st_size
    action = AddAction(f"{partition}={value}/bare.parquet", size, {partition: value}, 0, True, "{}")
    table.create_write_transaction([action], mode="append", schema=rows.schema, partition_by=[partition])


def test_row_counts_come_from_the_log_or_else_from_the_files(table):
    assert file_statistics(table) is not None
    assert row_count(table) == ROWS.num_rows
    _commit_without_statistics(table, ROWS.slice(0, 2), "day")
    table = DeltaTable(table.table_uri)
    assert file_statistics(table) is None
    assert row_count(table) == ROWS.num_rows + 2


def test_the_newest_event_comes_from_the_log_or_else_from_the_files(tmp_path):
    warehouse = Warehouse.open(tmp_path / "w", create=True)
    assert newest_event(warehouse) is None
    bronze = warehouse.table(BRONZE_EVENTS)

    def events(*days: int) -> pa.Table:
        times = [datetime(2020, 1, d, 12, tzinfo=UTC) for d in days]
        rows = [
            {"event_time": t, "event_type": "view", "user_id": 1, "event_date": t.date(), "_source_line": i}
            for i, t in enumerate(times)
        ]
        return pa.Table.from_pylist(rows, schema=BRONZE_SCHEMA)

    write(bronze, BRONZE_SCHEMA, events(3, 1).to_batches(), BRONZE_EVENTS.partition_by)
    assert newest_event(warehouse) == datetime(2020, 1, 3, 12, tzinfo=UTC)
    # a later event in a file the log says nothing about: its footer is read
    _commit_without_statistics(bronze, events(9), "event_date")
    assert newest_event(Warehouse.open(tmp_path / "w", create=False)) == datetime(2020, 1, 9, 12, tzinfo=UTC)


def test_a_dictionary_only_for_columns_whose_present_values_repeat(tmp_path):
    # mostly empty unique times (when a user first bought), repeated counts, unique ids
    rows = 4_000
    bought = [
        datetime(2020, 1, 1, tzinfo=UTC).replace(microsecond=i) if i % 20 == 0 else None for i in range(rows)
    ]
    data = pa.table(
        {
            "user_id": pa.array(range(rows), pa.int64()),
            "views": pa.array([i % 7 for i in range(rows)], pa.int64()),
            "bought_at": pa.array(bought, pa.timestamp("us", tz="UTC")),
            "never": pa.array([None] * rows, pa.string()),
        }
    )
    table = DeltaTable.create(str(tmp_path / "t"), schema=data.schema)
    write(table, data.schema, data.to_batches(), ())
    (path,) = (tmp_path / "t").glob("*.parquet")
    encodings = {
        column.path_in_schema: column.encodings
        for column in (pq.read_metadata(path).row_group(0).column(i) for i in range(4))
    }
    assert "RLE_DICTIONARY" in encodings["views"] and "RLE_DICTIONARY" in encodings["never"]
    assert "RLE_DICTIONARY" not in encodings["bought_at"] and "RLE_DICTIONARY" not in encodings["user_id"]
    assert pq.read_table(path).equals(data)


def test_a_later_write_takes_the_dictionary_columns_from_a_footer(tmp_path, monkeypatch):
    """Another process writing to the table again gives the columns the dictionaries the first write
    chose, from a file's footer, without sampling; a footer that does not say, or says it for other
    columns, leaves the choice to the sample."""

    def views(repeating: bool, extra: bool = False) -> pa.Table:
        """Users' views, repeating or not, and (``extra``) a column of carts that always repeat."""
        columns = {"user_id": pa.array(range(1_000), pa.int64())}
        columns["views"] = pa.array([i % 3 if repeating else i for i in range(1_000)], pa.int64())
        if extra:
            columns["carts"] = pa.array([1] * 1_000, pa.int64())
        return pa.table(columns)

    def dictionary_on_views(folder: Path, before: set[Path]) -> bool:
        (path,) = set(folder.glob("*.parquet")) - before
        metadata = pq.read_metadata(path)
        index = metadata.schema.to_arrow_schema().get_field_index("views")
        return "RLE_DICTIONARY" in metadata.row_group(0).column(index).encodings

    def written(folder: Path, data: pa.Table) -> bool:
        """Whether ``data`` written in a process of its own got a dictionary on ``views``."""
        monkeypatch.setattr(parquet_files, "_DICTIONARY_COLUMNS", {})  # as in a new process
        before = set(folder.glob("*.parquet"))
        write(DeltaTable(str(folder)), data.schema, data.to_batches(), ())
        return dictionary_on_views(folder, before)

    folder = tmp_path / "t"
    DeltaTable.create(str(folder), schema=views(True).schema)
    assert written(folder, views(repeating=True))
    assert written(folder, views(repeating=False))  # the first write's choice, from its footer
    # a table whose files do not say (written by another writer): the sample decides
    other = tmp_path / "other"
    write_deltalake(str(other), views(repeating=True))
    assert not written(other, views(repeating=False))
    # a footer that says it for other columns (the table had another schema): the sample decides
    footer = sorted(folder.glob("*.parquet"))[0]
    wider = views(False, extra=True).schema
    files = PartitionedFiles(tmp_path / "wider", wider, (), written_before=lambda: footer)
    assert files.dictionary_columns is None
    files.add(views(repeating=False, extra=True).to_batches()[0])
    assert files.dictionary_columns == ["carts"]
    files.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    days=st.lists(st.sampled_from(["d1", "d2", "d3", None]), min_size=60, max_size=300),
    batch_rows=st.integers(min_value=1, max_value=40),
)
def test_rows_reach_their_partition_however_the_batches_interleave_them(tmp_path_factory, days, batch_rows):
    # a few rows per row group and per memory bound, so that every way out of memory is taken
    folder = tmp_path_factory.mktemp("w")
    data = pa.table({"day": pa.array(days, pa.string()), "n": pa.array(range(len(days)), pa.int64())})
    DeltaTable.create(str(folder / "t"), schema=data.schema, partition_by=["day"])
    files = PartitionedFiles(folder / "t", data.schema, ("day",), rows_per_group=16, rows_held=24)
    for batch in data.to_batches(max_chunksize=batch_rows):
        files.add(batch)
        # the batches that waiting or encoding parts keep in memory, within the bound
        assert files.pins.rows <= 24
    written = files.close()
    got = {}
    for path, values, _ in written:
        got.setdefault(values["day"], []).extend(pq.read_table(path).column("n").to_pylist())
    expected = {}
    for n, day in enumerate(days):
        expected.setdefault(day, []).append(n)
    assert {day: sorted(ns) for day, ns in got.items()} == expected


def test_a_partition_of_few_rows_does_not_keep_every_batch_in_memory(tmp_path):
    # each batch has most of its rows for one day and one row for another: the one row's part, a
    # slice of its batch, must not keep all the batches in memory until the end
    batches = [
        pa.record_batch({"day": ["big"] * 999 + ["small"], "n": list(range(i * 1000, (i + 1) * 1000))})
        for i in range(30)
    ]
    schema = batches[0].schema
    DeltaTable.create(str(tmp_path / "t"), schema=schema, partition_by=["day"])
    files = PartitionedFiles(tmp_path / "t", schema, ("day",), rows_held=5_000)
    most = 0
    for batch in batches:
        files.add(batch)
        most = max(most, files.pins.rows)
    written = files.close()
    assert most <= 5_000
    rows = pa.concat_tables([pq.read_table(path) for path, _, _ in written])
    assert sorted(rows.column("n").to_pylist()) == list(range(30_000))


def _user_ranges(path: Path) -> list[tuple[int | None, int | None, int]]:
    """(min, max, nulls) of user_id in each row group of ``path``, in file order."""
    metadata = pq.read_metadata(path)
    column = metadata.schema.to_arrow_schema().get_field_index("user_id")
    stats = [metadata.row_group(g).column(column).statistics for g in range(metadata.num_row_groups)]
    return [(s.min if s.has_min_max else None, s.max if s.has_min_max else None, s.null_count) for s in stats]


def test_a_clustered_write_gives_each_row_group_a_range_of_its_column(tmp_path):
    # one day's rows in no user order, users repeating and some missing, enough to be ordered:
    # row groups each of a range of users apart from the others' (nulls first), every row once,
    # and a user's rows in the order they came
    n = parquet_files._MIN_CLUSTERED_ROWS + 5
    users = [None if i % 97 == 0 else (i * 7919) % 5003 for i in range(n)]
    data = pa.table({"day": ["d"] * n, "user_id": pa.array(users, pa.int64()), "line": pa.array(range(n))})
    DeltaTable.create(str(tmp_path / "t"), schema=data.schema, partition_by=["day"])
    files = PartitionedFiles(tmp_path / "t", data.schema, ("day",), cluster_by="user_id")
    for batch in data.to_batches(max_chunksize=10_000):
        files.add(batch)
    [(path, _, _)] = files.close()
    ranges = _user_ranges(path)
    assert len(ranges) == parquet_files._CLUSTERS
    assert ranges[0][2] == users.count(None) and all(nulls == 0 for _, _, nulls in ranges[1:])
    assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(ranges))
    written = pq.read_table(path).to_pylist()
    assert sorted(row["line"] for row in written) == list(range(n))
    lines_of = {}
    for row in written:
        lines_of.setdefault(row["user_id"], []).append(row["line"])
    assert all(lines == sorted(lines) for lines in lines_of.values())


def test_few_rows_or_no_cluster_column_are_written_as_they_came(tmp_path):
    many = parquet_files._MIN_CLUSTERED_ROWS
    for rows, cluster_by in ((many - 1, "user_id"), (many, None)):
        data = pa.table({"user_id": pa.array(range(rows, 0, -1), pa.int64())})
        folder = tmp_path / f"t{rows}"
        DeltaTable.create(str(folder), schema=data.schema)
        files = PartitionedFiles(folder, data.schema, (), rows_per_group=many, cluster_by=cluster_by)
        files.add(data.to_batches()[0])
        [(path, _, _)] = files.close()
        assert pq.read_metadata(path).num_row_groups == 1
        assert pq.read_table(path).column("user_id").to_pylist() == list(range(rows, 0, -1))


def test_bronze_files_hold_users_in_ranges_row_group_by_row_group(settings, tmp_path):
    source = tmp_path / "events.csv"
    generate_files(source, parquet_files._MIN_CLUSTERED_ROWS + 10_000, seed=3, days=1, compress=False)
    ingest(settings, [str(source)])
    paths = DeltaTable(str(settings.warehouse / BRONZE_EVENTS.path)).file_uris()
    ranges = [_user_ranges(Path(path)) for path in paths]
    assert max(len(r) for r in ranges) >= 2
    assert all(earlier[1] <= later[0] for r in ranges for earlier, later in itertools.pairwise(r))


def test_a_table_spec_clusters_arrow_rows_the_warehouse_writes(tmp_path):
    spec = TableSpec("t/users", "users", "gold", cluster_by="user_id")
    n = parquet_files._MIN_CLUSTERED_ROWS + 5
    rows = pa.table({"user_id": pa.array([(i * 7919) % 100_003 for i in range(n)], pa.int64())})
    Warehouse.open(tmp_path / "w", create=True).append(spec, rows)
    [path] = DeltaTable(str(tmp_path / "w" / spec.path)).file_uris()
    ranges = _user_ranges(Path(path))
    assert len(ranges) == parquet_files._CLUSTERS
    assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(ranges))
