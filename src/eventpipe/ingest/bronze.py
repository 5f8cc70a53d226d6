"""The bronze stage: every record of every new source file, exactly once, typed or quarantined."""

import gzip
import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import pyarrow as pa
from deltalake import DeltaTable

from eventpipe.context import RunContext
from eventpipe.engine import Engine
from eventpipe.engine.delta import Staged, stage
from eventpipe.errors import SourceError
from eventpipe.fields import BRONZE_SCHEMA, QUARANTINE_SCHEMA
from eventpipe.ingest.layout import detect_layout
from eventpipe.ingest.ledger import FileRecord, Ledger, bronze_commit, quarantine_commit
from eventpipe.ingest.parse import Layout
from eventpipe.ingest.records import OnProgress, ReadLimits, Split, read_ahead, typed_batches
from eventpipe.ingest.sources import SourceFile, SourceFormat, discover, new_fingerprint
from eventpipe.prefetch import ReadAhead
from eventpipe.settings import Settings
from eventpipe.warehouse import BRONZE_EVENTS, QUARANTINE, Warehouse

STAGE = "bronze"


class FileStatus(StrEnum):
    ingested = "ingested"
    already_ingested = "already ingested"
    duplicate = "same content as an ingested file"
    changed = "changed since it was ingested"
    # nothing of it is in bronze or recorded; the next run tries it again
    failed = "not ingested"


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

    @classmethod
    def ingested(cls, record: FileRecord, seconds: float) -> "FileResult":
        """The result for a file just committed with ``record``."""
        return cls(
            record.path,
            FileStatus.ingested,
            records=record.records,
            bronze_rows=record.bronze_rows,
            quarantined=record.quarantined,
            seconds=seconds,
        )


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

    @property
    def failed(self) -> list[FileResult]:
        """The files that could not be ingested (their notes say why)."""
        return [f for f in self.files if f.status is FileStatus.failed]


class Progress:
    """Told how far ingestion is; the CLI shows it, library callers may ignore it."""

    def start_file(self, source: SourceFile) -> None: ...

    def advance(self, position: int) -> None: ...

    def end_file(self, result: FileResult) -> None: ...


def ingest(
    ctx: RunContext, sources: list[str] | None = None, progress: Progress | None = None
) -> IngestResult:
    """Ingest every new file of ``sources`` (default: the settings' sources) into bronze.

    A file that cannot be read (empty, truncated, without the required columns, gone)
    is reported with its cause in the result and left out; the others are ingested.
    """
    progress = progress or Progress()
    began = time.perf_counter()
    settings, warehouse = ctx.settings, ctx.warehouse
    files = discover(sources if sources else settings.sources, warehouse=settings.warehouse)
    target = _Target(
        warehouse,
        ctx.engine,
        warehouse.table(BRONZE_EVENTS),
        warehouse.table(QUARANTINE),
        ReadLimits(settings.read_chunk_bytes, settings.max_record_bytes),
    )
    ledger = Ledger(target.bronze, target.quarantine, warehouse.fingerprint)
    if ctx.engine.reads_files_in_tasks:
        results = _ingest_in_tasks(target, ledger, files, settings, progress)
    else:
        results = _ingest_here(target, ledger, files, settings, progress)
    warnings = [
        f"{r.path}: {r.status}; {r.note}"
        for r in results
        if r.status in (FileStatus.changed, FileStatus.failed)
    ]
    return IngestResult(
        results,
        time.perf_counter() - began,
        target.bronze.version(),
        target.quarantine.version(),
        warnings,
    )


def _ingest_here(
    target: "_Target", ledger: Ledger, files: list[SourceFile], settings: Settings, progress: Progress
) -> list["FileResult"]:
    """Read and commit the files one after the other in this process."""
    results = []
    following: _Started | None = None
    try:
        for source, after in zip(files, [*files[1:], None], strict=True):
            started, following = following, None
            if after is not None:
                # the next file is read, decompressed and split while this one is typed,
                # encoded and committed, so that the two cores stay busy across files
                following = _start(after, ledger, settings, target.limits)
            progress.start_file(source)
            try:
                result = _ingest_file(target, ledger, source, settings, progress.advance, started)
            finally:
                if started is not None:  # a file skipped, or failed, before its reading ended
                    started.reading.close()
            progress.end_file(result)
            results.append(result)
    finally:
        if following is not None:
            following.reading.close()
    return results


def _ingest_in_tasks(
    target: "_Target", ledger: Ledger, files: list[SourceFile], settings: Settings, progress: Progress
) -> list["FileResult"]:
    """Read the new files in tasks of the engine (one per file), then commit them in order."""
    from eventpipe.ingest.tasks import ingest_in_tasks, task_for

    decided: dict[str, FileResult] = {}
    work = []
    for source in files:
        if (unchanged := _unchanged(source, ledger)) is not None:
            decided[source.name] = unchanged
            continue
        try:
            _check_name(source)
            layout = detect_layout(source, settings.columns)
        except (SourceError, OSError, EOFError) as error:
            decided[source.name] = _failed(source, error)
            continue
        task = task_for(source, layout, target.limits, settings.memory_limit, ledger.fingerprint)
        work.append((source, layout, task))
    if work:
        decided |= {r.path: r for r in ingest_in_tasks(target, ledger, work)}
    results = [decided[source.name] for source in files]
    for source, result in zip(files, results, strict=True):  # all read by now
        progress.start_file(source)
        progress.end_file(result)
    return results


@dataclass(frozen=True)
class _Target:
    warehouse: Warehouse
    engine: Engine
    bronze: DeltaTable
    quarantine: DeltaTable
    limits: ReadLimits


@dataclass(frozen=True)
class _Started:
    """A new text file whose reading has started: its layout, and its fingerprint as it is read."""

    layout: Layout
    fingerprint: "hashlib._Hash"
    reading: ReadAhead


def _start(source: SourceFile, ledger: Ledger, settings: Settings, limits: ReadLimits) -> _Started | None:
    """Start reading ``source`` ahead, if it is a text file bronze has never seen by its path.
    Anything wrong with it is left for its turn, which reports it."""
    if source.format is SourceFormat.parquet or source.name in ledger.by_path:
        return None
    try:
        _check_name(source)
        layout = detect_layout(source, settings.columns)
    except (SourceError, OSError, EOFError):
        return None
    fingerprint = new_fingerprint(ledger.fingerprint)
    return _Started(layout, fingerprint, read_ahead(source, layout, limits, fingerprint))


def _ingest_file(
    target: _Target,
    ledger: Ledger,
    source: SourceFile,
    settings: Settings,
    on_progress: OnProgress,
    started: _Started | None = None,
) -> FileResult:
    if (unchanged := _unchanged(source, ledger)) is not None:
        return unchanged
    try:
        return _read_new_file(target, ledger, source, settings, on_progress, started)
    except (SourceError, OSError, EOFError) as error:
        return _failed(source, error)


def _unchanged(source: SourceFile, ledger: Ledger) -> FileResult | None:
    """The result for a file bronze holds with this path, size and time; None otherwise."""
    known = ledger.by_path.get(source.name)
    if known and (known.size, known.mtime_ns) == (source.size, source.mtime_ns):
        return FileResult(source.name, FileStatus.already_ingested)
    return None


def _failed(source: SourceFile, error: SourceError | OSError | EOFError) -> FileResult:
    note = str(error) if isinstance(error, SourceError) else unreadable(source, error)
    return FileResult(source.name, FileStatus.failed, note=note)


def _read_new_file(
    target: _Target,
    ledger: Ledger,
    source: SourceFile,
    settings: Settings,
    on_progress: OnProgress,
    started: _Started | None,
) -> FileResult:
    """Bronze and quarantine rows of a file bronze does not hold yet (by path, size and time)."""
    began = time.perf_counter()
    _check_name(source)
    known = ledger.by_path.get(source.name)
    # a file known by its path is checked before it is read (it may have changed, and
    # would be read again on every run); a new one is fingerprinted while it is read
    fingerprint = (
        source.fingerprint(ledger.fingerprint) if known or source.format is SourceFormat.parquet else None
    )
    if fingerprint is not None and (skipped := _skipped(source, known, ledger, fingerprint)):
        return skipped

    if started is None:
        layout, ahead = detect_layout(source, settings.columns), None
        reading = new_fingerprint(ledger.fingerprint) if fingerprint is None else None
    else:  # a new text file: nothing known of it, fingerprinted as it is read
        layout, reading, ahead = started.layout, started.fingerprint, started.reading
    ingested_at = datetime.now(UTC)
    split = Split(spill_dir=target.warehouse.root / "_staging")
    rows = typed_batches(
        target.engine, source, layout, ingested_at, target.limits, on_progress, reading, ahead
    )
    bronze = stage(
        target.bronze,
        BRONZE_SCHEMA,
        split.bronze_batches(rows),
        BRONZE_EVENTS.partition_by,
        BRONZE_EVENTS.cluster_by,
    )
    if reading is not None:
        fingerprint = reading.hexdigest()
        if skipped := _skipped(source, known, ledger, fingerprint):
            bronze.discard()
            split.discard()
            return skipped
    quarantine = stage(
        target.quarantine, QUARANTINE_SCHEMA, _quarantine_rows(split, ingested_at), QUARANTINE.partition_by
    )
    record = commit_file(ledger, source, layout, fingerprint, (bronze, quarantine), ingested_at.isoformat())
    return FileResult.ingested(record, time.perf_counter() - began)


def commit_file(
    ledger: Ledger,
    source: SourceFile,
    layout: Layout,
    fingerprint: str,
    staged: tuple[Staged, Staged],
    ingested_at: str,
) -> FileRecord:
    """Commit a new file's staged (bronze, quarantine) rows: bronze first, then the quarantine
    with the file's record, which marks the file ingested. Returns the record."""
    bronze, quarantine = staged
    if ledger.in_bronze(fingerprint):
        # An earlier run committed this file's bronze rows and stopped before
        # its quarantine: only the quarantine is left to write.
        bronze.discard()
    else:
        bronze.commit(bronze_commit(fingerprint, source.name))
    record = FileRecord(
        path=source.name,
        size=source.size,
        mtime_ns=source.mtime_ns,
        fingerprint=fingerprint,
        records=bronze.rows + quarantine.rows,
        bronze_rows=bronze.rows,
        quarantined=quarantine.rows,
        ingested_at=ingested_at,
        columns=list(layout.source_columns),
    )
    quarantine.commit(quarantine_commit(record))
    return record


def _skipped(
    source: SourceFile, known: FileRecord | None, ledger: Ledger, fingerprint: str
) -> FileResult | None:
    """The result for a file whose content bronze already holds, or that changed; None for new content."""
    if known and known.fingerprint != fingerprint:
        return FileResult(
            source.name,
            FileStatus.changed,
            note="its content differs from the ingested version, which stays in bronze; "
            "to load the new content, save it under a new file name",
        )
    if known:
        return FileResult(source.name, FileStatus.already_ingested)
    if ledger.complete(fingerprint):
        same_as = ledger.path_of(fingerprint) or "an earlier file"
        return FileResult(source.name, FileStatus.duplicate, note=f"same content as {same_as}")
    return None


def _check_name(source: SourceFile) -> None:
    try:
        source.name.encode("utf-8")
    except UnicodeEncodeError:
        raise SourceError(
            "its name is not valid UTF-8 text, which the tables cannot record; rename the file"
        ) from None


def unreadable(source: SourceFile, error: OSError | EOFError) -> str:
    """Why ``source`` could not be read, and what to do: for the file's note."""
    if isinstance(error, EOFError):
        return "the gzip data ends early (a truncated or still-copying file); copy the file again"
    if isinstance(error, gzip.BadGzipFile):
        return f"not gzip data ({error}); compress the file again, or drop the .gz from its name"
    if isinstance(error, FileNotFoundError):
        return "it disappeared while it was read; land files under a temporary name, then rename them"
    reason = error.strerror or str(error)
    return f"it cannot be read: {reason}; check the file and its permissions"


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
