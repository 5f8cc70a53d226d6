"""The whole pipeline: ingest -> silver -> checks -> gold -> checks, under one warehouse lock."""

import json
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

from eventpipe.changes import Versions, changes_since
from eventpipe.gold import GoldResult, build_gold
from eventpipe.ingest import FileStatus, IngestResult, Progress, ingest
from eventpipe.quality import QualityResult, report_path, run_checks, write_report
from eventpipe.runs import count_late_events, count_session_changes, new_run_id, newest_event, record_run
from eventpipe.settings import Settings
from eventpipe.silver import SilverResult, build_silver, rebuild_silver_dates
from eventpipe.warehouse import BRONZE_EVENTS, QUARANTINE, Warehouse


@dataclass(frozen=True)
class RunResult:
    """What a run did. ``gold`` is None when a failing check stopped the run before gold."""

    run_id: str
    ingest: IngestResult
    silver: SilverResult
    gold: GoldResult | None
    quality: QualityResult
    seconds: float
    started_at: datetime
    late_events: int = 0
    sessions_changed: dict[str, int] | None = None  # new, updated, removed; None: could not be told
    report: Path | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)  # wall time of each step, in order

    @property
    def failed(self) -> bool:
        return bool(self.quality.failures)

    def summary(self) -> dict:
        """The machine-readable summary: printed by ``run --json``, kept in the run's report."""
        gold_rows = self.gold.rows if self.gold else {}
        return {
            "run_id": self.run_id,
            "seconds": self.seconds,
            "events_per_second": self.ingest.records / self.seconds if self.seconds else 0.0,
            "files": [asdict(f) for f in self.ingest.files],
            "rows": {
                "records_read": self.ingest.records,
                "bronze": self.silver.bronze_rows,
                "silver_events": self.silver.events,
                "sessions": self.silver.sessions,
                **{f"gold.{name}": rows for name, rows in gold_rows.items()},
            },
            "duplicates_removed": self.silver.duplicates,
            "late_events": self.late_events,
            "sessions_changed": self.sessions_changed,
            "quarantined": {"bronze_this_run": self.ingest.quarantined, "silver": self.silver.quarantined},
            "quarantined_by_reason": {"silver": self.silver.quarantined_by_reason},
            "funnel": self.gold.funnel if self.gold else [],
            "versions": {**self.silver.versions, **(self.gold.versions if self.gold else {})},
            "gold_published": self.gold is not None,
            "checks": {c.name: c.status for c in self.quality.checks},
            "failed_checks": [c.name for c in self.quality.failures],
            "report": str(self.report) if self.report else None,
            "stage_seconds": self.stage_seconds,
        }


def run(
    settings: Settings,
    sources: list[str] | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
    rebuild: bool = False,
    dates: tuple[date | None, date | None] | None = None,
) -> RunResult:
    """Ingest new files, rebuild silver, check; then, unless a ``fail`` check failed, gold and its checks.

    With ``rebuild``, ingest nothing and recompute silver and gold from bronze even if unchanged;
    with ``dates`` too (first, last; None: open), only for the events of those dates.
    """
    began = time.perf_counter()
    now = now or datetime.now(UTC)
    run_id = new_run_id(now)
    timer = _StageTimer()
    warehouse = Warehouse.open(settings.warehouse, create=True)
    with warehouse.lock():
        newest_before = newest_event(warehouse, settings.memory_limit)
        before = Versions.of(warehouse)
        ingested = _nothing_ingested(warehouse) if rebuild else ingest(settings, sources, progress)
        new_files = [f.path for f in ingested.files if f.status is FileStatus.ingested]
        late = count_late_events(warehouse, settings.memory_limit, new_files, newest_before)
        timer.lap("ingest")
        silver = build_silver(settings, now, force=rebuild and dates is None)
        if dates is not None and (silver.unchanged or silver.incremental):  # not just built in full
            silver = rebuild_silver_dates(settings, *dates, now=now)
        # after an increment, the checks whose cost grows with history look at what changed
        changes = changes_since(warehouse, before, newest_before) if silver.incremental else None
        sessions_changed = (
            {"new": 0, "updated": 0, "removed": 0}
            if silver.unchanged
            else count_session_changes(
                warehouse, settings.memory_limit, before.sessions, changes.session_dates if changes else None
            )
        )
        timer.lap("silver")
        quality = run_checks(settings, ("bronze", "silver"), run_id, now, changes, figures=False)
        timer.lap("checks after silver")
        gold = None
        if not quality.failures:  # the previous gold stays as it was
            gold = build_gold(settings, force=rebuild and dates is None)
            timer.lap("gold")
            quality = quality.merged(run_checks(settings, ("gold",), run_id, now, changes))
            timer.lap("checks after gold")
        seconds = time.perf_counter() - began
        result = RunResult(run_id, ingested, silver, gold, quality, seconds, now, late, sessions_changed)
        result = replace(result, report=report_path(warehouse, run_id), stage_seconds=timer.laps)
        summary = result.summary()
        write_report(warehouse, quality, summary)
        record_run(warehouse, _run_row(result, summary, new_files))
    return result


class _StageTimer:
    """Wall seconds of each step of a run, in the order they ran."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._mark = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._mark, 3)
        self._mark = now


def _nothing_ingested(warehouse: Warehouse) -> IngestResult:
    warehouse.require((BRONZE_EVENTS,), built_by="ingest")
    return IngestResult(
        [], 0.0, warehouse.table(BRONZE_EVENTS).version(), warehouse.table(QUARANTINE).version()
    )


def _run_row(result: RunResult, summary: dict, new_files: list[str]) -> dict:
    return {
        "run_id": result.run_id,
        "started_at": result.started_at,
        "ended_at": datetime.now(UTC),
        "seconds": result.seconds,
        "files": new_files,
        "records_read": result.ingest.records,
        "bronze_rows_added": result.ingest.bronze_rows,
        "quarantined_in_bronze": result.ingest.quarantined,
        "late_events": result.late_events,
        "bronze_rows": result.silver.bronze_rows,
        "silver_events": result.silver.events,
        "duplicates_removed": result.silver.duplicates,
        "quarantined_in_silver": result.silver.quarantined,
        "sessions": result.silver.sessions,
        "gold_published": result.gold is not None,
        "failed_checks": summary["failed_checks"],
        "table_versions": json.dumps(summary["versions"], sort_keys=True),
    }
