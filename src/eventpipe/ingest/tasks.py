"""Ingest on a distributed engine: each new file is read by a task of its own, on an executor.

A task runs the same reader as a run on one machine (the record splitter and the
typing SQL, in an in-process DuckDB), so bronze and the quarantine hold the same
rows, lines and reasons whichever engine read a file. Spark's own CSV reader was
not used: it gives no line numbers, and reading lines with their numbers breaks
quoted fields that hold line breaks.

The rows stay on the executors. Only one summary row per file comes back to the
driver (its fingerprint, or why it could not be read); the driver then decides,
file by file, as a run on one machine does, what is new, and commits each new
file's bronze files, then its quarantine files with its record (``commit_file``).
"""

import json
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from eventpipe.engine.delta import Staged
from eventpipe.errors import SourceError
from eventpipe.fields import BRONZE_SCHEMA, QUARANTINE_SCHEMA, UTC_MICROS
from eventpipe.ingest.ledger import Ledger
from eventpipe.ingest.parse import Layout
from eventpipe.ingest.records import ReadLimits, typed_batches
from eventpipe.ingest.sources import SourceFile, SourceFormat, new_fingerprint
from eventpipe.warehouse import BRONZE_EVENTS, QUARANTINE

#: what the tasks give: bronze rows, quarantined records, and one summary per file
TASK_ROWS = pa.schema(
    [*BRONZE_SCHEMA, ("raw_record", pa.string()), ("reason", pa.string()), ("_kind", pa.string())]
)
_BRONZE, _QUARANTINED, _SUMMARY = "bronze", "quarantine", "file"
_VIEW = "file_rows"


def task_for(
    source: SourceFile, layout: Layout, limits: ReadLimits, memory_limit: str, fingerprint: str
) -> dict:
    """What a task needs to read ``source``, as plain values (sent to an executor); ``fingerprint``
    names the hash of its content."""
    return {
        "path": source.name,
        "format": source.format.value,
        "compressed": source.compressed,
        "size": source.size,
        "mtime_ns": source.mtime_ns,
        "layout": json.dumps(asdict(layout)),
        "chunk_bytes": limits.chunk_bytes,
        "max_record_bytes": limits.max_record_bytes,
        "memory_limit": memory_limit,
        "fingerprint": fingerprint,
        "ingested_at": datetime.now(UTC).isoformat(),
    }


def read_files(tasks: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Run on an executor: every record of each file of ``tasks`` (JSON texts, column ``task``),
    then the file's summary."""
    for batch in tasks:
        for task in batch.column("task").to_pylist():
            yield from _read_file(json.loads(task))


def _read_file(task: dict) -> Iterator[pa.RecordBatch]:
    from eventpipe.engine.duckdb import DuckDBEngine  # in the executor's Python

    began = time.perf_counter()
    source = SourceFile(
        Path(task["path"]), SourceFormat(task["format"]), task["compressed"], task["size"], task["mtime_ns"]
    )
    layout = json.loads(task["layout"])
    layout = Layout(**{**layout, "source_columns": tuple(layout["source_columns"])})
    ingested_at = datetime.fromisoformat(task["ingested_at"])
    limits = ReadLimits(task["chunk_bytes"], task["max_record_bytes"])
    text = source.format is not SourceFormat.parquet
    reading = new_fingerprint(task["fingerprint"]) if text else None
    summary: dict = {"note": None}
    try:
        fingerprint = None if text else source.fingerprint(task["fingerprint"])
        with DuckDBEngine(threads=1, memory_limit=task["memory_limit"]) as engine:
            for rows in typed_batches(engine, source, layout, ingested_at, limits, _ignore, reading):
                yield _task_rows(rows)
        summary["fingerprint"] = reading.hexdigest() if text else fingerprint
    except SourceError as error:
        summary["note"] = str(error)
    except (OSError, EOFError) as error:
        from eventpipe.ingest.bronze import unreadable

        summary["note"] = unreadable(source, error)
    summary["seconds"] = time.perf_counter() - began
    yield _summary_row(source.name, summary)


def _ignore(position: int) -> None:
    """Progress inside a task is not shown."""


def _task_rows(rows: pa.RecordBatch) -> pa.RecordBatch:
    good = pc.is_null(rows.column("reason"))
    columns = [rows.column(name) for name in BRONZE_SCHEMA.names]
    columns[0] = columns[0].cast(UTC_MICROS)  # labels UTC wall-clock time as UTC
    raw = pc.if_else(good, pa.scalar(None, pa.string()), rows.column("raw_record"))
    kind = pc.if_else(good, _BRONZE, _QUARANTINED)
    return pa.RecordBatch.from_arrays([*columns, raw, rows.column("reason"), kind], schema=TASK_ROWS)


def _summary_row(path: str, summary: dict) -> pa.RecordBatch:
    values = {name: [None] for name in TASK_ROWS.names}
    values |= {"_source_file": [path], "raw_record": [json.dumps(summary)], "_kind": [_SUMMARY]}
    return pa.RecordBatch.from_pydict(values, schema=TASK_ROWS)


def ingest_in_tasks(target, ledger: Ledger, work: list[tuple[SourceFile, Layout, dict]]) -> list:
    """Read the files of ``work`` (file, layout, task) in tasks and commit each new one, in order;
    returns their results."""
    from eventpipe.ingest.bronze import FileResult, FileStatus, _skipped, commit_file

    engine = target.engine
    engine.read_in_tasks(_VIEW, [task for _, _, task in work], read_files, TASK_ROWS)
    found = engine.table(f"SELECT _source_file, raw_record FROM {_VIEW} WHERE _kind = 'file'")
    summaries = {row["_source_file"]: json.loads(row["raw_record"]) for row in found.to_pylist()}
    # a task reads one file, so each file written holds one source file's rows
    bronze = (
        engine.query(f"SELECT {', '.join(BRONZE_SCHEMA.names)} FROM {_VIEW} WHERE _kind = 'bronze'")
        .stage(target.bronze, BRONZE_SCHEMA, BRONZE_EVENTS.partition_by)
        .grouped_by("_source_file")
    )
    quarantine = (
        engine.query(
            "SELECT _source_file, _source_line, raw_record, 'bronze' AS stage, reason, _ingested_at "
            f"FROM {_VIEW} WHERE _kind = 'quarantine'"
        )
        .stage(target.quarantine, QUARANTINE_SCHEMA, QUARANTINE.partition_by)
        .grouped_by("_source_file")
    )
    engine.unregister(_VIEW)
    results = []
    for source, layout, task in work:
        summary = summaries[source.name]
        own_bronze = bronze.pop(source.name, _none(target.bronze, BRONZE_SCHEMA, BRONZE_EVENTS.partition_by))
        own_quarantine = quarantine.pop(
            source.name, _none(target.quarantine, QUARANTINE_SCHEMA, QUARANTINE.partition_by)
        )
        if summary["note"] is not None:
            result = FileResult(source.name, FileStatus.failed, note=summary["note"])
        else:
            result = _skipped(source, ledger.by_path.get(source.name), ledger, summary["fingerprint"])
        if result is not None:  # nothing of this file goes in
            own_bronze.discard()
            own_quarantine.discard()
            results.append(result)
            continue
        staged = (own_bronze, own_quarantine)
        record = commit_file(ledger, source, layout, summary["fingerprint"], staged, task["ingested_at"])
        results.append(FileResult.ingested(record, summary["seconds"]))
    return results


def _none(table, schema: pa.Schema, partition_by: tuple[str, ...]) -> Staged:
    return Staged(table, schema, partition_by, [])
