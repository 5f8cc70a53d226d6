"""Writing to a Delta table with bounded memory and one atomic commit.

``deltalake.write_deltalake`` keeps each partition's Parquet file in memory
until it reaches the target size (a month of events across thirty daily
partitions held gigabytes), and pyarrow's dataset writer queues rows without
bound when encoding is slower than the producer. Here the files are written
with bounded memory (``parquet_files``), and one Delta transaction then adds
every file, with the caller's commit properties.
"""

import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake.transaction import AddAction

from eventpipe.engine.parquet_files import PartitionedFiles, json_value
from eventpipe.prefetch import prefetched


@dataclass(frozen=True)
class Written:
    rows: int
    files: int
    version: int


def write(
    table: DeltaTable,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    partition_by: tuple[str, ...],
    commit: CommitProperties | None = None,
    *,
    replace: list[tuple[str, str, str]] | None = None,
) -> Written:
    """Write ``batches`` as new files of ``table`` and commit them in one transaction.

    With ``replace`` (partition filters such as ``[("stage", "=", "silver")]``,
    or ``[]`` for the whole table) the same commit removes the files it
    replaces, so readers see the old rows or the new ones, never a mix.
    The commit happens even with no rows, so that ``commit`` (its app
    transactions) is recorded either way. Files of a run killed before the
    commit are not part of the table; ``vacuum`` removes them.
    """
    return stage(table, schema, batches, partition_by).commit(commit, replace=replace)


@dataclass(frozen=True)
class Staged:
    """Files written for a table but not committed yet: ``commit`` adds them, ``discard`` removes them."""

    table: DeltaTable
    schema: pa.Schema
    partition_by: tuple[str, ...]
    files: list[tuple[Path, dict[str, str | None], pq.FileMetaData]]

    @property
    def rows(self) -> int:
        return sum(metadata.num_rows for _, _, metadata in self.files)

    def commit(
        self, commit: CommitProperties | None = None, *, replace: list[tuple[str, str, str]] | None = None
    ) -> Written:
        root = table_root(self.table)
        self.table.create_write_transaction(
            [_add_action(root, path, values, metadata) for path, values, metadata in self.files],
            # overwrite removes the files of the partitions the filters select (all, without filters)
            mode="append" if replace is None else "overwrite",
            schema=self.schema,
            partition_by=list(self.partition_by) or None,
            partition_filters=replace or None,
            commit_properties=commit,
        )
        self.table.update_incremental()
        return Written(self.rows, len(self.files), self.table.version())

    def discard(self) -> None:
        for path, _, _ in self.files:
            path.unlink(missing_ok=True)

    def grouped_by(self, column: str) -> dict[object, "Staged"]:
        """The files grouped by the value of ``column`` in them, each holding one (read from the footers)."""
        groups: dict[object, list] = {}
        for path, values, metadata in self.files:
            index = metadata.schema.to_arrow_schema().get_field_index(column)
            found = {
                (stats.min, stats.max)
                for group in range(metadata.num_row_groups)
                if (stats := metadata.row_group(group).column(index).statistics) is not None
            }
            if len(found) != 1 or len({*next(iter(found))}) != 1:
                raise ValueError(f"{path} holds more than one {column}, or does not say which")
            groups.setdefault(next(iter(found))[0], []).append((path, values, metadata))
        return {value: replace(self, files=files) for value, files in groups.items()}


def stage(
    table: DeltaTable,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    partition_by: tuple[str, ...],
    cluster_by: str | None = None,
) -> Staged:
    """Write ``batches`` as Parquet files in ``table``'s folder, without committing them; with
    ``cluster_by``, each file's row groups hold narrow ranges of that column."""
    files = PartitionedFiles(
        table_root(table),
        schema,
        partition_by,
        written_before=lambda: _any_file(table),
        cluster_by=cluster_by,
    )
    try:
        # the next batches are computed (a query streaming past) while this thread splits the last
        for batch in prefetched(iter(batches), depth=2):
            files.add(batch)
    except BaseException:
        files.close(discard=True)  # nothing of a failed write is left behind
        raise
    return Staged(table, schema, partition_by, files.close())


def _any_file(table: DeltaTable) -> Path | None:
    """A file of the table's snapshot, if it has any."""
    files = table.file_uris()
    return local_path(files[0]) if files else None


def table_root(table: DeltaTable) -> Path:
    """The folder of a table on local disk."""
    return local_path(table.table_uri)


def local_path(uri: str) -> Path:
    """The path on local disk of a ``file://`` URI (as ``deltalake`` names tables and files)."""
    return Path(uri.removeprefix("file://"))


def _add_action(
    root: Path, path: Path, values: dict[str, str | None], metadata: pq.FileMetaData
) -> AddAction:
    return AddAction(
        path=str(path.relative_to(root)),
        size=path.stat().st_size,
        partition_values=values,
        modification_time=int(time.time() * 1000),
        data_change=True,
        stats=json.dumps(_stats(metadata)),
    )


def _stats(metadata: pq.FileMetaData) -> dict:
    """Delta file statistics (row count, null counts, min and max) from the Parquet footer.

    Readers prune files with these, and ``deltalake`` turns a column with no
    minimum into a filter that matches nothing, so a file gets bounds for
    every column or no column statistics at all.
    """
    schema = metadata.schema.to_arrow_schema()
    nulls: dict[str, int] = {}
    lows: dict[str, object] = {}
    highs: dict[str, object] = {}
    for index, column in enumerate(schema):
        column_nulls, low, high = 0, None, None
        for group in range(metadata.num_row_groups):
            stats = metadata.row_group(group).column(index).statistics
            if stats is None or not stats.has_null_count:
                return {"numRecords": metadata.num_rows}
            column_nulls += stats.null_count
            if stats.has_min_max:
                low = stats.min if low is None else min(low, stats.min)
                high = stats.max if high is None else max(high, stats.max)
            elif stats.null_count < metadata.row_group(group).num_rows:
                return {"numRecords": metadata.num_rows}
        nulls[column.name] = column_nulls
        if low is not None:
            lows[column.name], highs[column.name] = json_value(low), json_value(high)
    return {"numRecords": metadata.num_rows, "nullCount": nulls, "minValues": lows, "maxValues": highs}


def changed_partitions(table: DeltaTable, since_version: int, column: str) -> set[str] | None:
    """Values of partition ``column`` whose files were added or removed since ``since_version``.

    None when that version cannot be read or a file is outside any partition.
    """
    try:
        before = set(DeltaTable(table.table_uri, version=since_version).file_uris())
    except Exception:  # the log no longer reaches back that far
        return None
    values = set()
    for uri in before.symmetric_difference(table.file_uris()):
        value = partition_value(uri, column)
        if value is None:
            return None
        values.add(value)
    return values


def files_per_partition(table: DeltaTable, column: str) -> Counter:
    """How many files of the snapshot each value of partition ``column`` has."""
    return Counter(partition_value(uri, column) for uri in table.file_uris())


def partition_value(uri: str, column: str) -> str | None:
    """The value of partition ``column`` of the file at ``uri``, as its folder names it (hive
    layout); None when the file is not in such a folder."""
    folder = Path(uri).parent.name
    return folder.split("=", 1)[1] if folder.startswith(f"{column}=") else None


def file_statistics(table: DeltaTable) -> pa.Table | None:
    """A row per file of the snapshot with its statistics as the log records them (``num_records``,
    ``min.<column>``, ``max.<column>``, ``null_count.<column>``): no file is opened. None when a
    file has none, or the files alone do not give the rows (deletion vectors)."""
    # deltalake gives an arro3 table: read through the Arrow stream interface
    found = pa.RecordBatchReader.from_stream(table.get_add_actions(flatten=True)).read_all()
    if not plain_parquet(table) or "num_records" not in found.column_names:
        return None
    return None if found.column("num_records").null_count else found


def row_count(table: DeltaTable) -> int:
    """Rows of the snapshot: from the log's statistics, else counted in the files."""
    found = file_statistics(table)
    if found is None:
        return table.to_pyarrow_dataset().count_rows()
    return pc.sum(found.column("num_records")).as_py() or 0


def plain_parquet(table: DeltaTable) -> bool:
    """Whether the snapshot's files alone give its rows (no deletion vectors, no column mapping)."""
    protocol = table.protocol()
    features = set(protocol.reader_features or [])
    return protocol.min_reader_version < 2 and not features & {"deletionVectors", "columnMapping"}


# added_files's answers, per snapshot and earlier version: the latest few
_ADDED_FILES: dict[tuple, list[str]] = {}
_ADDED_FILES_KEPT = 32


def added_files(table: DeltaTable, since_version: int) -> list[str]:
    """The files of ``table``'s snapshot that were not in it at ``since_version``."""
    # Each stage of an incremental run asks for the files its run added to bronze (five times),
    # each time loading bronze's log as it was (7-9 ms). A version's files never change: kept.
    key = (*snapshot_key(table), since_version)
    if key not in _ADDED_FILES:
        before = set(DeltaTable(table.table_uri, version=since_version).file_uris())
        _ADDED_FILES[key] = [f for f in table.file_uris() if f not in before]
        if len(_ADDED_FILES) > _ADDED_FILES_KEPT:
            del _ADDED_FILES[next(iter(_ADDED_FILES))]  # the oldest
    return list(_ADDED_FILES[key])


def snapshot_key(table: DeltaTable) -> tuple:
    """What tells ``table``'s snapshot apart from any other in this process: its path, its id (a
    table made again at the same path has another) and its version."""
    return table.table_uri, table.metadata().id, table.version()


def readable_version(table: DeltaTable, version: int) -> DeltaTable | None:
    """``table`` as it was at ``version``, if its files alone give its rows and are all still
    there (not vacuumed); None otherwise."""
    old = DeltaTable(table.table_uri, version=version)
    if not plain_parquet(old) or not all(local_path(f).exists() for f in old.file_uris()):
        return None
    return old
