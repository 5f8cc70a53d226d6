"""Writing to a Delta table with bounded memory and one atomic commit.

``deltalake.write_deltalake`` keeps each partition's Parquet file in memory
until it reaches the target size (a month of events across thirty daily
partitions held gigabytes), and pyarrow's dataset writer queues rows without
bound when encoding is slower than the producer. Here the caller's thread
encodes each batch as it arrives, a few row groups per partition at most
wait in memory, and one Delta transaction then adds every file, with the
caller's commit properties.
"""

import itertools
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake.transaction import AddAction

# Rows wait in memory until there are this many, then each partition's share
# goes to disk as one row group: memory is bounded by this, whatever the number
# of partitions, and time-ordered input (one partition at a time) gets row
# groups of this size.
_ROWS_BUFFERED = 512 * 1024
# Input grouped by partition (ingest in time order; silver ordered by date per
# bucket) is written as it comes; beyond this many stretches it is sorted first.
_MAX_RUNS = 256


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
    root = Path(table.table_uri.removeprefix("file://"))
    files = _PartitionedFiles(root, schema, partition_by)
    try:
        for batch in batches:
            files.add(batch)
    finally:
        written = files.close()
    table.create_write_transaction(
        [_add_action(root, path, values, metadata) for path, values, metadata in written],
        # overwrite removes the files of the partitions the filters select (all, without filters)
        mode="append" if replace is None else "overwrite",
        schema=schema,
        partition_by=list(partition_by) or None,
        partition_filters=replace or None,
        commit_properties=commit,
    )
    table.update_incremental()
    return Written(sum(m.num_rows for _, _, m in written), len(written), table.version())


class _PartitionedFiles:
    """One Parquet file per partition (hive layout), written a row group at a time."""

    def __init__(self, root: Path, schema: pa.Schema, partition_by: tuple[str, ...]) -> None:
        self.root, self.partition_by = root, partition_by
        self.file_schema = pa.schema([f for f in schema if f.name not in partition_by])
        self.writers: dict[tuple, tuple[pq.ParquetWriter, Path, dict[str, str | None]]] = {}
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0
        self.dictionary_columns: list[str] | None = None
        self.run = uuid.uuid4().hex
        # Encoding runs in a thread of its own, overlapping the producer; the
        # queue lets one flush wait while another is encoded, no more.
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.failure: BaseException | None = None
        self.encoder = threading.Thread(target=self._encode, name="eventpipe-parquet", daemon=True)
        self.encoder.start()

    def _encode(self) -> None:
        while (item := self.queue.get()) is not None:
            writer, rows = item
            if self.failure is None:
                try:
                    writer.write_table(rows, row_group_size=rows.num_rows)
                except BaseException as error:  # raised in the producer by _put or close
                    self.failure = error

    def _put(self, writer: pq.ParquetWriter, rows: pa.Table) -> None:
        if self.failure is not None:
            raise self.failure
        self.queue.put((writer, rows))

    def add(self, batch: pa.RecordBatch) -> None:
        if self.dictionary_columns is None:
            self.dictionary_columns = _repetitive_columns(batch, self.file_schema)
        for start in range(0, batch.num_rows, _ROWS_BUFFERED):  # large batches in pieces
            piece = batch.slice(start, _ROWS_BUFFERED)
            self.pending.append(piece)
            self.pending_rows += piece.num_rows
            if self.pending_rows >= _ROWS_BUFFERED:
                self._flush()

    def _flush(self) -> None:
        if not self.pending_rows:
            return
        rows = pa.Table.from_batches(self.pending)
        self.pending, self.pending_rows = [], 0
        if not self.partition_by:
            self._put(self._writer(())[0], rows.cast(self.file_schema))
            return
        runs = _runs(rows, self.partition_by)
        if len(runs) > _MAX_RUNS:  # scattered partitions: sort, rather than write tiny row groups
            rows = rows.sort_by([(c, "ascending") for c in self.partition_by])
            runs = _runs(rows, self.partition_by)
        for lo, hi in runs:
            part = rows.slice(lo, hi - lo)
            key = tuple(part.column(c)[0].as_py() for c in self.partition_by)
            data = part.drop_columns(list(self.partition_by)).cast(self.file_schema)
            self._put(self._writer(key)[0], data)

    def _writer(self, key: tuple) -> tuple[pq.ParquetWriter, Path, dict[str, str | None]]:
        if key not in self.writers:
            values = {c: _partition_text(v) for c, v in zip(self.partition_by, key, strict=True)}
            folder = self.root.joinpath(*(f"{c}={v}" for c, v in values.items()))
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"part-{self.run}-{len(self.writers)}.parquet"
            writer = pq.ParquetWriter(path, self.file_schema, use_dictionary=self.dictionary_columns)
            self.writers[key] = (writer, path, values)
        return self.writers[key]

    def close(self) -> list[tuple[Path, dict[str, str | None], pq.FileMetaData]]:
        try:
            self._flush()
        finally:
            self.queue.put(None)
            self.encoder.join()
        if self.failure is not None:
            raise self.failure
        written = []
        for writer, path, values in self.writers.values():
            writer.close()
            written.append((path, values, pq.read_metadata(path)))
        self.writers.clear()
        return written


def _repetitive_columns(sample: pa.RecordBatch, schema: pa.Schema) -> list[str]:
    """Columns worth dictionary-encoding: those whose values repeat (types, brands, dates, counts).

    A dictionary on mostly unique values (ids, hashes, times, line numbers) costs encoding
    time and then falls back anyway; at 4.6M users it was half the time of writing user_funnel.
    """
    return [
        f.name
        for f in schema
        if not pa.types.is_nested(f.type)
        and (not sample.num_rows or pc.count_distinct(sample.column(f.name)).as_py() <= 0.5 * sample.num_rows)
    ]


def _runs(rows: pa.Table, columns: tuple[str, ...]) -> list[tuple[int, int]]:
    """(start, end) of each stretch of rows with the same partition values."""
    codes = [
        pc.dictionary_encode(rows.column(c)).combine_chunks().indices.to_numpy(zero_copy_only=False)
        for c in columns
    ]
    changes = np.flatnonzero(np.any([np.diff(c) != 0 for c in codes], axis=0)) + 1
    return list(itertools.pairwise([0, *changes.tolist(), rows.num_rows]))


def _partition_text(value: object) -> str | None:
    return None if value is None else str(_json_value(value))


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
            lows[column.name], highs[column.name] = _json_value(low), _json_value(high)
    return {"numRecords": metadata.num_rows, "nullCount": nulls, "minValues": lows, "maxValues": highs}


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


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
        folder = Path(uri).parent.name
        if not folder.startswith(f"{column}="):
            return None
        values.add(folder.split("=", 1)[1])
    return values
