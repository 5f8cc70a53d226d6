"""Typed record batches of one source file, split into bronze rows and quarantined rows."""

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from eventpipe.engine import Engine
from eventpipe.fields import BRONZE_SCHEMA, UTC_MICROS
from eventpipe.ingest import parse
from eventpipe.ingest.fields import split_fields
from eventpipe.ingest.lines import Chunk, Oversized, oversized_table, read_chunks, record_table
from eventpipe.ingest.parse import Layout
from eventpipe.ingest.sources import SourceFile, SourceFormat
from eventpipe.prefetch import ReadAhead

#: Called with the bytes of the file read so far.
OnProgress = Callable[[int], None]

QUARANTINE_COLUMNS = ["_source_file", "_source_line", "raw_record", "reason"]


@dataclass(frozen=True)
class ReadLimits:
    """How much of a text file is read at a time, and the longest record accepted."""

    chunk_bytes: int
    max_record_bytes: int


def typed_batches(
    engine: Engine,
    source: SourceFile,
    layout: Layout,
    ingested_at: datetime,
    limits: ReadLimits,
    on_progress: OnProgress,
    fingerprint: "hashlib._Hash | None" = None,
    ahead: ReadAhead | None = None,
) -> Iterator[pa.RecordBatch]:
    """Every record of ``source`` as typed bronze columns plus ``reason`` and ``raw_record``.

    A text file's bytes are fed to ``fingerprint``, if given, as they are read;
    ``ahead`` is the file's reading, when :func:`read_ahead` started it already.
    """
    params = {
        "source_file": source.name,
        "ingested_at": ingested_at,
        "max_record_bytes": limits.max_record_bytes,
    }
    if source.format is SourceFormat.parquet:
        sql = parse.typed(parse.parquet_cells(layout))
        yield from engine.stream(sql, {**params, "path": str(source.path)})
        on_progress(source.size)
        return
    if source.format is SourceFormat.csv:
        exact = parse.typed(parse.csv_cells(layout))
        split = parse.typed(*parse.csv_field_cells(layout))
    else:
        exact = parse.typed(parse.jsonl_cells(layout))
        params |= parse.json_paths(layout)
    for relation, rows, position in ahead or read_ahead(source, layout, limits, fingerprint):
        engine.register(relation, rows)
        yield from engine.stream(split if relation == _FIELDS else exact, params)
        on_progress(position)


def read_ahead(
    source: SourceFile, layout: Layout, limits: ReadLimits, fingerprint: "hashlib._Hash | None" = None
) -> ReadAhead:
    """Start reading a text file: reading, decompressing and splitting (I/O, ISA-L, Arrow's CSV
    reader) run in a thread from now on, a few chunks ahead of where they are typed."""
    width = layout.width if source.format is SourceFormat.csv else None
    chunks = read_chunks(
        str(source.path),
        source.compressed,
        _chunk_for(source, limits.chunk_bytes),
        limits.max_record_bytes,
        width,
        fingerprint,
    )
    return ReadAhead(_prepared(chunk, width, limits) for chunk in chunks)


_FIELDS, _RECORDS = "csv_fields", "raw_records"


def _prepared(chunk: Chunk | Oversized, width: int | None, limits: ReadLimits) -> tuple[str, pa.Table, int]:
    """(relation, rows, position): a chunk split into CSV fields when it is plain enough
    to be split by Arrow's CSV reader, else into records for the SQL parser."""
    if isinstance(chunk, Oversized):
        return _RECORDS, oversized_table(chunk, limits.max_record_bytes), chunk.position
    fields = split_fields(chunk, width, limits.max_record_bytes) if width is not None else None
    if fields is not None:
        return _FIELDS, fields, chunk.position
    return _RECORDS, record_table(chunk), chunk.position


# Reading, parsing and encoding overlap across chunks (and across files: the next
# file is read ahead): a file gets at least this many, unless that would make them
# small. Each chunk costs a query's fixed cost, about 10 ms: a small file is one chunk.
_MIN_CHUNKS_PER_FILE = 4
_MIN_CHUNK_BYTES = 8 * 1024 * 1024
_GZIP_RATIO = 5  # text per compressed byte, about, for CSV and JSON events


def _chunk_for(source: SourceFile, chunk_bytes: int) -> int:
    text_bytes = source.size * (_GZIP_RATIO if source.compressed else 1)
    return max(min(chunk_bytes, text_bytes // _MIN_CHUNKS_PER_FILE), min(chunk_bytes, _MIN_CHUNK_BYTES))


class Split:
    """Feeds good rows on as bronze batches and keeps the bad ones for the quarantine.

    Bad rows stay in memory up to ``spill_bytes``, then go to a Parquet file in
    ``spill_dir``, so a file that is bad throughout still needs bounded memory.
    """

    def __init__(self, spill_dir: Path, spill_bytes: int = 64 * 1024 * 1024) -> None:
        self.bronze_rows = 0
        self.quarantined = 0
        self._held: list[pa.Table] = []
        self._held_bytes = 0
        self._spill_dir, self._spill_bytes = spill_dir, spill_bytes
        self._spill_path: Path | None = None
        self._spill: pq.ParquetWriter | None = None

    def _keep_bad(self, bad: pa.Table) -> None:
        self.quarantined += bad.num_rows
        self._held.append(bad)
        self._held_bytes += bad.nbytes
        if self._held_bytes > self._spill_bytes:
            if self._spill is None:
                self._spill_dir.mkdir(parents=True, exist_ok=True)
                handle, name = tempfile.mkstemp(suffix=".parquet", dir=self._spill_dir)
                os.close(handle)
                self._spill_path = Path(name)
                self._spill = pq.ParquetWriter(name, bad.schema)
            for table in self._held:
                self._spill.write_table(table)
            self._held, self._held_bytes = [], 0

    def discard(self) -> None:
        """Forget the quarantined rows (the file turned out not to be ingested)."""
        if self._spill is not None:
            self._spill.close()
            self._spill = None
            self._spill_path.unlink(missing_ok=True)
        self._held = []

    def bad_rows(self) -> Iterator[pa.RecordBatch]:
        """The quarantined rows, spilled ones first; removes the spill file when done."""
        if self._spill is not None:
            self._spill.close()
            self._spill = None
            try:
                yield from pq.ParquetFile(self._spill_path).iter_batches()
            finally:
                self._spill_path.unlink(missing_ok=True)
        for table in self._held:
            yield from table.to_batches()

    def bronze_batches(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            good = pc.is_null(batch.column("reason"))
            if pc.all(good).as_py():
                kept = batch
            else:
                bad = pa.Table.from_batches([batch.filter(pc.invert(good))])
                self._keep_bad(bad.select(QUARANTINE_COLUMNS))
                kept = batch.filter(good)
            self.bronze_rows += kept.num_rows
            if kept.num_rows:
                columns = [kept.column(name) for name in BRONZE_SCHEMA.names]
                columns[0] = columns[0].cast(UTC_MICROS)  # labels UTC wall-clock time as UTC
                yield pa.RecordBatch.from_arrays(columns, schema=BRONZE_SCHEMA)
