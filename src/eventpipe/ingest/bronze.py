"""The bronze stage: every record of every new source file, exactly once, typed or quarantined."""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import pyarrow as pa
from deltalake import DeltaTable

from eventpipe.engine import DuckDBEngine, Engine
from eventpipe.engine.delta import write
from eventpipe.fields import BRONZE_SCHEMA, QUARANTINE_SCHEMA
from eventpipe.ingest.layout import detect_layout
from eventpipe.ingest.ledger import FileRecord, Ledger, bronze_commit, quarantine_commit
from eventpipe.ingest.parse import Layout
from eventpipe.ingest.records import OnProgress, ReadLimits, Split, typed_batches
from eventpipe.ingest.sources import SourceFile, discover
from eventpipe.settings import Settings
from eventpipe.warehouse import BRONZE_EVENTS, QUARANTINE, Warehouse

STAGE = "bronze"


class FileStatus(StrEnum):
    ingested = "ingested"
    already_ingested = "already ingested"
    duplicate = "same content as an ingested file"
    changed = "changed since it was ingested"


@dataclass(frozen=True)
class FileResult:
    """What happened to one source file."""

    path: str
    status: FileStatus
    records: int = 0
    bronze_rows: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class IngestResult:
    """What an ingest run did, for the CLI summary, the report and orchestrators."""

    files: list[FileResult]
    seconds: float
    bronze_version: int
    quarantine_version: int
    warnings: list[str] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def bronze_rows(self) -> int:
        return sum(f.bronze_rows for f in self.files)

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files)

    @property
    def events_per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


class Progress:
    """Told how far ingestion is; the CLI shows it, library callers may ignore it."""

    def start_file(self, source: SourceFile) -> None: ...

    def advance(self, position: int) -> None: ...

    def end_file(self, result: FileResult) -> None: ...


def ingest(
    settings: Settings, sources: list[str] | None = None, progress: Progress | None = None
) -> IngestResult:
    """Ingest every new file of ``sources`` (default: ``settings.sources``) into bronze."""
    progress = progress or Progress()
    began = time.perf_counter()
    files = discover(sources if sources else settings.sources)
    layouts = {f.path: detect_layout(f, settings.columns) for f in files}  # fail before writing
    warehouse = Warehouse.open(settings.warehouse, create=True)
    # one engine for every file: a connection costs tens of milliseconds, files may be many and small
    with warehouse.lock(), DuckDBEngine() as engine:
        target = _Target(warehouse, engine, warehouse.table(BRONZE_EVENTS), warehouse.table(QUARANTINE))
        ledger = Ledger(target.bronze, target.quarantine)
        results = []
        for source in files:
            progress.start_file(source)
            result = _ingest_file(target, ledger, source, settings, layouts[source.path], progress.advance)
            progress.end_file(result)
            results.append(result)
    warnings = [f"{r.path}: {r.status}; {r.note}" for r in results if r.status is FileStatus.changed]
    return IngestResult(
        results,
        time.perf_counter() - began,
        target.bronze.version(),
        target.quarantine.version(),
        warnings,
    )


@dataclass(frozen=True)
class _Target:
    warehouse: Warehouse
    engine: Engine
    bronze: DeltaTable
    quarantine: DeltaTable


def _ingest_file(
    target: _Target,
    ledger: Ledger,
    source: SourceFile,
    settings: Settings,
    layout: Layout,
    on_progress: OnProgress,
) -> FileResult:
    known = ledger.by_path.get(source.name)
    if known and (known.size, known.mtime_ns) == (source.size, source.mtime_ns):
        return FileResult(source.name, FileStatus.already_ingested)
    fingerprint = source.fingerprint()
    if known and known.fingerprint != fingerprint:
        return FileResult(
            source.name,
            FileStatus.changed,
            note="its content differs from the ingested version, which stays in bronze; "
            "to load the new content, save it under a new file name",
        )
    if known or ledger.complete(fingerprint):
        same_as = known.path if known else ledger.path_of(fingerprint) or "an earlier file"
        status = FileStatus.already_ingested if known else FileStatus.duplicate
        return FileResult(source.name, status, note=f"same content as {same_as}" if not known else "")

    began = time.perf_counter()
    ingested_at = datetime.now(UTC)
    split = Split(spill_dir=target.warehouse.root / "_staging")
    batches = split.bronze_batches(
        typed_batches(
            target.engine,
            source,
            layout,
            ingested_at,
            ReadLimits(settings.read_chunk_bytes, settings.max_record_bytes),
            on_progress,
        )
    )
    if ledger.in_bronze(fingerprint):
        # An earlier run committed this file's bronze rows and stopped before
        # its quarantine: only the quarantine is left to write.
        for _ in batches:
            pass
    else:
        write(
            target.bronze,
            BRONZE_SCHEMA,
            batches,
            BRONZE_EVENTS.partition_by,
            bronze_commit(fingerprint, source.name),
        )
    record = FileRecord(
        path=source.name,
        size=source.size,
        mtime_ns=source.mtime_ns,
        fingerprint=fingerprint,
        records=split.bronze_rows + split.quarantined,
        bronze_rows=split.bronze_rows,
        quarantined=split.quarantined,
        ingested_at=ingested_at.isoformat(),
        columns=list(layout.source_columns),
    )
    write(
        target.quarantine,
        QUARANTINE_SCHEMA,
        _quarantine_rows(split, ingested_at),
        QUARANTINE.partition_by,
        quarantine_commit(record),
    )
    return FileResult(
        source.name,
        FileStatus.ingested,
        records=record.records,
        bronze_rows=record.bronze_rows,
        quarantined=record.quarantined,
        seconds=time.perf_counter() - began,
    )


def _quarantine_rows(split: Split, ingested_at: datetime):
    for batch in split.bad_rows():
        n = batch.num_rows
        yield pa.RecordBatch.from_arrays(
            [
                batch.column("_source_file"),
                batch.column("_source_line"),
                batch.column("raw_record"),
                pa.array([STAGE] * n, pa.string()),
                batch.column("reason"),
                pa.array([ingested_at] * n, QUARANTINE_SCHEMA.field("_ingested_at").type),
            ],
            schema=QUARANTINE_SCHEMA,
        )
