"""Typed record batches of one source file, split into bronze rows and quarantined rows."""

import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from eventpipe.engine import Engine
from eventpipe.fields import BRONZE_SCHEMA, UTC_MICROS
from eventpipe.ingest import parse
from eventpipe.ingest.lines import prefetched, read_lines
from eventpipe.ingest.parse import Layout
from eventpipe.ingest.sources import SourceFile, SourceFormat

#: Called with the bytes of the file read so far.
OnProgress = Callable[[int], None]

QUARANTINE_COLUMNS = ["_source_file", "_source_line", "raw_record", "reason"]


def typed_batches(
    engine: Engine,
    source: SourceFile,
    layout: Layout,
    ingested_at: datetime,
    chunk_bytes: int,
    on_progress: OnProgress,
) -> Iterator[pa.RecordBatch]:
    """Every record of ``source`` as typed bronze columns plus ``reason`` and ``raw_record``."""
    params = {"source_file": source.name, "ingested_at": ingested_at}
    if source.format is SourceFormat.parquet:
        sql = parse.typed(parse.parquet_cells(layout))
        yield from engine.stream(sql, {**params, "path": str(source.path)})
        on_progress(source.size)
        return
    if source.format is SourceFormat.csv:
        sql = parse.typed(parse.csv_cells(layout))
    else:
        sql = parse.typed(parse.jsonl_cells(layout))
        params |= parse.json_paths(layout)
    chunk_bytes = _chunk_for(source, chunk_bytes)
    for lines, position in prefetched(read_lines(str(source.path), source.compressed, chunk_bytes)):
        engine.register("raw_lines", lines)
        yield from engine.stream(sql, params)
        on_progress(position)


# Reading, parsing and encoding overlap only across chunks: a file gets at least
# this many, unless that would make them tiny.
_MIN_CHUNKS_PER_FILE = 4
_MIN_CHUNK_BYTES = 1024 * 1024
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
