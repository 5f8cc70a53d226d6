"""Writing to a Delta table with bounded memory and one atomic commit.

``deltalake.write_deltalake`` keeps each partition's Parquet file in memory
until it reaches the target size (a month of events across thirty daily
partitions held gigabytes), and pyarrow's dataset writer queues rows without
bound when encoding is slower than the producer. Here each batch is split by
partition as it arrives, the parts wait in memory within a bound and go to two
encoding threads a row group at a time, and one Delta transaction then adds
every file, with the caller's commit properties.
"""

import itertools
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake.transaction import AddAction

from eventpipe.prefetch import prefetched

# Each partition's rows wait in memory until there are this many, then go to disk as
# one row group. A part is a slice of the batch it came from and keeps that batch in
# memory until it is written: past ``_ROWS_HELD`` rows of such batches, the partitions
# holding parts of the oldest go first (or, when its parts are all being encoded, the
# producer waits). Memory stays bounded whatever the number of partitions, and input
# in partition order (ingest of time-ordered files) gets full row groups.
_ROWS_PER_GROUP = 256 * 1024
# rows of the first batch whose distinct values decide the dictionary columns
_DICTIONARY_SAMPLE_ROWS = 16_384
_ROWS_HELD = 1024 * 1024
# The columns worth a dictionary, per table folder and file schema, as first decided in this process.
_DICTIONARY_COLUMNS: dict[tuple[str, pa.Schema], list[str]] = {}
# Encoding runs in threads of their own, overlapping the producer; each encodes
# the files of its share of the partitions.
_ENCODERS = 2


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
    table: DeltaTable, schema: pa.Schema, batches: Iterable[pa.RecordBatch], partition_by: tuple[str, ...]
) -> Staged:
    """Write ``batches`` as Parquet files in ``table``'s folder, without committing them."""
    files = _PartitionedFiles(table_root(table), schema, partition_by)
    try:
        # the next batches are computed (a query streaming past) while this thread splits the last
        for batch in prefetched(iter(batches), depth=2):
            files.add(batch)
    except BaseException:
        files.close(discard=True)  # nothing of a failed write is left behind
        raise
    return Staged(table, schema, partition_by, files.close())


def table_root(table: DeltaTable) -> Path:
    """The folder of a table on local disk."""
    return local_path(table.table_uri)


def local_path(uri: str) -> Path:
    """The path on local disk of a ``file://`` URI (as ``deltalake`` names tables and files)."""
    return Path(uri.removeprefix("file://"))


class _PartitionedFiles:
    """One Parquet file per partition (hive layout), written a row group at a time."""

    def __init__(
        self,
        root: Path,
        schema: pa.Schema,
        partition_by: tuple[str, ...],
        rows_per_group: int = _ROWS_PER_GROUP,
        rows_held: int = _ROWS_HELD,
    ) -> None:
        self.root, self.partition_by = root, partition_by
        self.rows_per_group, self.rows_held = rows_per_group, rows_held
        self.file_schema = pa.schema([f for f in schema if f.name not in partition_by])
        # a file per (partition, part): a partition that fills several row groups spreads them over
        # one file per encoder, so that one large partition (or an unpartitioned table) is encoded
        # by every encoder, not one
        self.writers: dict[tuple[tuple, int], tuple[pq.ParquetWriter, Path, dict[str, str | None]]] = {}
        self.flushes: dict[tuple, int] = {}
        self.held: dict[tuple, list[tuple[int, pa.Table]]] = {}  # per partition: (batch number, part)
        self.held_rows: dict[tuple, int] = {}
        self.pins = _Pins()
        self.dictionary_columns: list[str] | None = None
        self.run = uuid.uuid4().hex
        self.failure: BaseException | None = None
        # a small queue per encoder: one row group waits while another is encoded, no more
        self.queues = [queue.Queue(maxsize=2) for _ in range(_ENCODERS)]
        self.encoders = [
            threading.Thread(target=self._encode, args=(q,), name="eventpipe-parquet", daemon=True)
            for q in self.queues
        ]
        for encoder in self.encoders:
            encoder.start()

    def _encode(self, jobs: queue.Queue) -> None:
        while (item := jobs.get()) is not None:
            writer, rows, batches = item
            if self.failure is None:
                try:
                    writer.write_table(rows, row_group_size=rows.num_rows)
                except BaseException as error:  # raised in the producer by _put or close
                    self.failure = error
            del item, rows  # the batches' memory goes now, not when the next row group comes
            self.pins.written(batches)

    def add(self, batch: pa.RecordBatch) -> None:
        if self.dictionary_columns is None:
            # a table's columns keep their character from one write to the next: decided once per
            # table and process (sampling each file's first batch cost 18 ms a file in ingest)
            known = (str(self.root), self.file_schema)
            if known in _DICTIONARY_COLUMNS:
                self.dictionary_columns = _DICTIONARY_COLUMNS[known]
            else:
                self.dictionary_columns = _repetitive_columns(batch, self.file_schema)
                if batch.num_rows:  # an empty batch tells nothing
                    _DICTIONARY_COLUMNS[known] = self.dictionary_columns
        if not batch.num_rows:
            return
        parts = _by_partition(pa.Table.from_batches([batch]), self.partition_by)
        number = self.pins.add(batch.num_rows, {key for key, _ in parts})
        for key, part in parts:
            self.held.setdefault(key, []).append((number, part))
            self.held_rows[key] = self.held_rows.get(key, 0) + part.num_rows
            if self.held_rows[key] >= self.rows_per_group:
                self._flush(key)
        while holders := self.pins.oldest_holders(above=self.rows_held):
            for key in holders:
                self._flush(key)

    def _flush(self, key: tuple) -> None:
        held = self.held.pop(key)
        del self.held_rows[key]
        batches = [number for number, _ in held]
        self.pins.encoding(key, batches)
        rows = pa.concat_tables([part for _, part in held]).drop_columns(list(self.partition_by))
        part = self.flushes.get(key, 0) % _ENCODERS
        self.flushes[key] = self.flushes.get(key, 0) + 1
        writer = self._writer(key, part)
        if self.failure is not None:
            raise self.failure
        # a file is only ever written by one encoder
        self.queues[(hash(key) + part) % _ENCODERS].put((writer, rows.cast(self.file_schema), batches))

    def _writer(self, key: tuple, part: int) -> pq.ParquetWriter:
        if (key, part) not in self.writers:
            values = {c: _partition_text(v) for c, v in zip(self.partition_by, key, strict=True)}
            folder = self.root.joinpath(*(f"{c}={v}" for c, v in values.items()))
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"part-{self.run}-{len(self.writers)}.parquet"
            unique = [c for c in self.file_schema.names if c not in (self.dictionary_columns or [])]
            # mostly unique numbers (ids, times, line numbers) as deltas from the one before:
            # smaller than plain values and cheaper to write than compressing them
            deltas = [c for c in unique if _is_whole_number(self.file_schema, c)]
            writer = pq.ParquetWriter(
                path,
                self.file_schema,
                use_dictionary=self.dictionary_columns,
                # mostly unique values (ids, hashes) do not compress: do not try
                compression={
                    c: "none" if c in unique and (_is_text(self.file_schema, c) or c in deltas) else "snappy"
                    for c in self.file_schema.names
                },
                column_encoding=dict.fromkeys(deltas, "DELTA_BINARY_PACKED") or None,
            )
            self.writers[key, part] = (writer, path, values)
        return self.writers[key, part][0]

    def close(self, discard: bool = False) -> list[tuple[Path, dict[str, str | None], pq.FileMetaData]]:
        """Finish every file; with ``discard`` (the producer failed), remove them instead."""
        try:
            if not discard:
                for key in list(self.held):
                    self._flush(key)
        finally:
            for jobs in self.queues:
                jobs.put(None)
            for encoder in self.encoders:
                encoder.join()
        written = []
        for writer, path, values in self.writers.values():
            writer.close()
            written.append((path, values, path))
        self.writers.clear()
        if discard or self.failure is not None:
            for _, _, path in written:
                path.unlink(missing_ok=True)
            if self.failure is not None and not discard:
                raise self.failure
            return []
        return [(path, values, pq.read_metadata(path)) for path, values, _ in written]


@dataclass
class _Pin:
    rows: int
    holders: set[tuple]  # the partitions with parts of the batch waiting
    encoding: int = 0  # the row groups with a part of it, queued or being encoded


class _Pins:
    """The batches that parts waiting or being encoded come from, in arrival order, and their rows
    in all: a batch stays in memory until its last part is written."""

    def __init__(self) -> None:
        self.batches: dict[int, _Pin] = {}
        self.rows = 0
        self.added = 0
        self.changed = threading.Condition()

    def add(self, rows: int, holders: set[tuple]) -> int:
        """A batch split among ``holders``; its number."""
        with self.changed:
            self.added += 1
            self.batches[self.added] = _Pin(rows, holders)
            self.rows += rows
            return self.added

    def encoding(self, holder: tuple, batches: list[int]) -> None:
        """``holder``'s parts of ``batches`` went to an encoder as one row group."""
        with self.changed:
            for number in batches:
                pin = self.batches[number]
                pin.holders.discard(holder)
                pin.encoding += 1

    def written(self, batches: list[int]) -> None:
        """A row group with parts of ``batches`` was written (or dropped after a failure)."""
        with self.changed:
            for number in batches:
                pin = self.batches[number]
                pin.encoding -= 1
                if not pin.holders and not pin.encoding:
                    del self.batches[number]
                    self.rows -= pin.rows
            self.changed.notify_all()

    def oldest_holders(self, above: int) -> list[tuple]:
        """With more than ``above`` rows pinned, the partitions holding parts of the oldest batch,
        once there are any: while its parts are all being encoded, this waits. Else none."""
        with self.changed:
            while self.rows > above:
                oldest = next(iter(self.batches.values()))
                if oldest.holders:
                    return list(oldest.holders)
                self.changed.wait()
            return []


def _by_partition(rows: pa.Table, columns: tuple[str, ...]) -> list[tuple[tuple, pa.Table]]:
    """``rows`` split by their partition values (no columns: one part with the empty key)."""
    if not columns:
        return [((), rows)]
    codes = _partition_codes(rows, columns)
    if not np.any(codes[1:] != codes[:-1]):  # one partition: no copy
        return [(_key(rows, columns, 0), rows)]
    changes = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    if len(changes) + 1 != len(np.unique(codes)):  # partitions interleaved: grouped by one copy
        # (a take per partition cost more in calls than in copying: 2.5-3.3 s against 1.5 s for
        # 10M user-ordered silver events, 30 dates in each batch)
        order = pc.sort_indices(pa.array(codes))  # stable: a partition's rows keep their order
        rows, codes = rows.take(order), codes[order.to_numpy()]
        changes = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    bounds = [0, *changes.tolist(), len(codes)]
    return [(_key(rows, columns, lo), rows.slice(lo, hi - lo)) for lo, hi in itertools.pairwise(bounds)]


def _partition_codes(rows: pa.Table, columns: tuple[str, ...]) -> np.ndarray:
    """One integer per row, equal for rows of the same partition."""
    if len(columns) == 1 and rows.column(columns[0]).null_count == 0:
        column = rows.column(columns[0])
        if pa.types.is_date32(column.type):  # days are small integers already
            return column.cast(pa.int32()).to_numpy()
    codes = np.zeros(rows.num_rows, np.int64)
    for column in columns:
        encoded = pc.dictionary_encode(rows.column(column)).combine_chunks()
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        indices = np.where(encoded.indices.is_null().to_numpy(zero_copy_only=False), -1, indices)
        codes = codes * (len(encoded.dictionary) + 1) + indices + 1
    return codes


def _key(rows: pa.Table, columns: tuple[str, ...], row: int) -> tuple:
    return tuple(rows.column(c)[row].as_py() for c in columns)


def _is_text(schema: pa.Schema, column: str) -> bool:
    kind = schema.field(column).type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)


def _is_whole_number(schema: pa.Schema, column: str) -> bool:
    kind = schema.field(column).type
    return pa.types.is_integer(kind) or pa.types.is_timestamp(kind)


def _repetitive_columns(sample: pa.RecordBatch, schema: pa.Schema) -> list[str]:
    """Columns worth dictionary-encoding: those whose values repeat (types, brands, dates, counts).

    A dictionary on mostly unique values (ids, hashes, times, line numbers) costs encoding
    time and then falls back anyway; at 4.6M users it was half the time of writing user_funnel.
    Values are counted among those present: a mostly empty column of unique times (when a user
    first bought) is written smaller and faster as deltas than as a dictionary.
    """
    sample = sample.slice(0, _DICTIONARY_SAMPLE_ROWS)  # counting a whole first batch took 0.4 s
    return [f.name for f in schema if not pa.types.is_nested(f.type) and _repeats(sample.column(f.name))]


def _repeats(values: pa.Array) -> bool:
    """Whether the values present repeat: at most half as many distinct ones as there are."""
    present = len(values) - values.null_count
    return pc.count_distinct(values).as_py() <= 0.5 * present


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


def added_files(table: DeltaTable, since_version: int) -> list[str]:
    """The files of ``table``'s snapshot that were not in it at ``since_version``."""
    before = set(DeltaTable(table.table_uri, version=since_version).file_uris())
    return [f for f in table.file_uris() if f not in before]


def readable_version(table: DeltaTable, version: int) -> DeltaTable | None:
    """``table`` as it was at ``version``, if its files alone give its rows and are all still
    there (not vacuumed); None otherwise."""
    old = DeltaTable(table.table_uri, version=version)
    if not plain_parquet(old) or not all(local_path(f).exists() for f in old.file_uris()):
        return None
    return old
