"""Parquet files of one write, one per partition (hive layout), with bounded memory.

Rows arrive in batches, in any partition order; each batch is split by
partition, the parts wait in memory until a partition has a row group's worth,
and two threads encode row groups while the producer goes on. Nothing is
committed here: the files and their footers go to the caller.
"""

import itertools
import json
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Each partition's rows wait in memory until there are this many, then go to disk as
# one row group (as _CLUSTERS for a clustered table). A part is a slice of the batch it
# came from and keeps that batch in memory until it is written: past ``_ROWS_HELD`` rows
# of such batches, the partitions holding parts of the oldest go first (or, when its
# parts are all being encoded, the producer waits). Memory stays bounded whatever the
# number of partitions, and input in partition order (ingest of time-ordered files)
# gets full row groups.
_ROWS_PER_GROUP = 256 * 1024
# rows of the first batch whose distinct values decide the dictionary columns
_DICTIONARY_SAMPLE_ROWS = 16_384
_ROWS_HELD = 1024 * 1024
# The columns worth a dictionary, per table folder and file schema, as first decided (or read from a
# footer) in this process.
_DICTIONARY_COLUMNS: dict[tuple[str, pa.Schema], list[str]] = {}
# A file's footer names the columns its writer gave a dictionary (JSON: {"columns": the file's
# columns, "dictionary": those with one}), so that a later write of the table, in another process,
# takes them from a footer rather than from counting values in a sample of its rows (6-25 ms a
# table, ~70 ms of an increment).
_DICTIONARY_KEY = b"eventpipe.dictionary_columns"
# Encoding runs in threads of their own, overlapping the producer; each encodes
# the files of its share of the partitions.
_ENCODERS = 2
# A clustered table's row group's worth of rows is written as this many row groups, each of a range
# of its cluster column's values, so that a query for a range of the column skips most row groups
# by their statistics. Ordering rows costs ~0.25 µs a row: fewer rows than _MIN_CLUSTERED_ROWS (a
# small file's, an increment's, the last ones of a partition) are written as they came.
_CLUSTERS = 8
_MIN_CLUSTERED_ROWS = 128 * 1024


class PartitionedFiles:
    """One Parquet file per partition (hive layout), written a row group at a time."""

    def __init__(
        self,
        root: Path,
        schema: pa.Schema,
        partition_by: tuple[str, ...],
        rows_per_group: int = _ROWS_PER_GROUP,
        rows_held: int = _ROWS_HELD,
        written_before: Callable[[], Path | None] | None = None,
        cluster_by: str | None = None,
    ) -> None:
        """``written_before`` gives a file of the table written before, whose footer may say which
        columns get a dictionary (asked only when this process has not decided for the table).
        ``cluster_by``: the column each row group's worth of rows is ordered and split by."""
        self.root, self.partition_by, self.cluster_by = root, partition_by, cluster_by
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
        self.table_schema = (str(root), self.file_schema)  # what the dictionary columns are known by
        self.dictionary_columns = _DICTIONARY_COLUMNS.get(self.table_schema)
        if self.dictionary_columns is None and (earlier := written_before and written_before()):
            self.dictionary_columns = _dictionary_columns_in(earlier, self.file_schema)
            if self.dictionary_columns is not None:
                _DICTIONARY_COLUMNS[self.table_schema] = self.dictionary_columns
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
                    for group in _row_groups(rows, self.cluster_by):
                        writer.write_table(group, row_group_size=group.num_rows)
                except BaseException as error:  # raised in the producer by _flush or close
                    self.failure = error
            del item, rows  # the batches' memory goes now, not when the next row group comes
            self.pins.written(batches)

    def add(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:  # nothing to write, and nothing to tell the columns' character by
            return
        if self.dictionary_columns is None:
            # a table's columns keep their character from one write to the next: decided once per
            # table and process (sampling each file's first batch cost 18 ms a file in ingest), or
            # taken from a footer
            self.dictionary_columns = _repetitive_columns(batch, self.file_schema)
            _DICTIONARY_COLUMNS[self.table_schema] = self.dictionary_columns
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
            decided = {"columns": self.file_schema.names, "dictionary": self.dictionary_columns or []}
            writer = pq.ParquetWriter(
                path,
                self.file_schema.with_metadata({_DICTIONARY_KEY: json.dumps(decided)}),
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


def _row_groups(rows: pa.Table, cluster_by: str | None) -> list[pa.Table]:
    """``rows`` as the row groups to write: with ``cluster_by`` and rows enough, ordered by it (nulls
    first; rows of one value in the order they came) and cut into groups of as many rows each; else
    all the rows as one.

    Ordered whole rather than only cut into ranges: silver's sort by user takes less time on rows
    that come in user order (at 40M events one range's sort 2.45 s against 2.86).
    """
    if cluster_by is None or rows.num_rows < _MIN_CLUSTERED_ROWS:
        return [rows]
    rows = rows.take(pc.sort_indices(rows, [(cluster_by, "ascending", "at_start")]))
    size = -(-rows.num_rows // _CLUSTERS)
    return [rows.slice(start, size) for start in range(0, rows.num_rows, size)]


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


def _dictionary_columns_in(path: Path, schema: pa.Schema) -> list[str] | None:
    """The dictionary columns that ``path``'s footer names, if it names them for ``schema``'s columns."""
    try:
        decided = json.loads((pq.read_metadata(path).metadata or {})[_DICTIONARY_KEY])
    except (OSError, KeyError, ValueError):  # gone (vacuumed), or written without the key
        return None
    return decided["dictionary"] if decided.get("columns") == schema.names else None


def _repeats(values: pa.Array) -> bool:
    """Whether the values present repeat: at most half as many distinct ones as there are."""
    present = len(values) - values.null_count
    return pc.count_distinct(values).as_py() <= 0.5 * present


def _partition_text(value: object) -> str | None:
    return None if value is None else str(json_value(value))


def json_value(value: object) -> object:
    """A value as Delta's log writes it (partition values, statistics): times and dates as ISO text."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value
