"""The run: ingest -> silver -> checks -> gold -> checks -> the run's record, with one gate.

A run is a sequence of steps over one :class:`RunContext`. Each step takes the
run's state so far and returns it with its own result added; a failing
``fail`` check after silver stops the run before gold (the previous gold
stays). ``eventpipe run`` takes every step in one process; an orchestrator
(the Airflow DAG) takes each step as a task, passing the state between them
as JSON (:meth:`RunState.to_json`), so both leave the same tables, the same
``runs`` row and the same report.
"""

import json
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

from eventpipe.changes import Changes, Versions, changes_since
from eventpipe.context import RunContext
from eventpipe.gold import GoldResult, build_gold
from eventpipe.ingest import FileResult, FileStatus, IngestResult, Progress, ingest
from eventpipe.jsontext import dumps
from eventpipe.quality import CheckResult, QualityResult, report_path, run_checks, write_report
from eventpipe.report import ReportResult, write_html_report
from eventpipe.runs import count_late_events, count_session_changes, record_run
from eventpipe.silver import SilverResult, build_silver, rebuild_silver_dates
from eventpipe.warehouse import BRONZE_EVENTS, DAILY_METRICS, QUARANTINE


@dataclass(frozen=True)
class RunState:
    """What a run has done so far: its identity, and the result of each step taken."""

    run_id: str
    started_at: datetime
    before: Versions
    newest_before: datetime | None
    ingest: IngestResult | None = None
    late_events: int = 0
    silver: SilverResult | None = None
    changes: Changes | None = None
    sessions_changed: dict[str, int] | None = None
    quality: QualityResult | None = None
    gold: GoldResult | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def starting(cls, ctx: RunContext) -> "RunState":
        return cls(ctx.run_id, ctx.now, ctx.before, ctx.newest_before)

    @property
    def stopped(self) -> bool:
        """Whether a failing ``fail`` check stops the run before gold."""
        return self.quality is not None and bool(self.quality.failures)

    def timed(self, step: str, began: float, **changes: object) -> "RunState":
        seconds = {**self.stage_seconds, step: round(time.perf_counter() - began, 3)}
        return replace(self, stage_seconds=seconds, **changes)

    def to_json(self) -> str:
        return dumps(asdict(self), indent=None)

    @classmethod
    def from_json(cls, text: str) -> "RunState":
        return _state_from(json.loads(text))


def run(
    ctx: RunContext,
    sources: list[str] | None = None,
    progress: Progress | None = None,
    rebuild: bool = False,
    dates: tuple[date | None, date | None] | None = None,
    html_report: bool = True,
) -> "RunResult":
    """Ingest new files, bring silver up to date, check; then, unless a ``fail`` check failed,
    gold and its checks; then record the run.

    With ``rebuild``, ingest nothing and recompute silver and gold from bronze even if unchanged;
    with ``dates`` too (first, last; None: open), only for the events of those dates.
    """
    state = RunState.starting(ctx)
    state = ingest_step(ctx, state, sources, progress, rebuild)
    state = silver_step(ctx, state, rebuild, dates)
    state = silver_checks_step(ctx, state)
    if not state.stopped:  # the previous gold stays as it was
        state = gold_step(ctx, state, force=rebuild and dates is None)
        state = gold_checks_step(ctx, state)
    return record_step(ctx, state, html_report)


def ingest_step(
    ctx: RunContext,
    state: RunState,
    sources: list[str] | None = None,
    progress: Progress | None = None,
    rebuild: bool = False,
) -> RunState:
    began = time.perf_counter()
    ingested = _nothing_ingested(ctx) if rebuild else ingest(ctx, sources, progress)
    late = count_late_events(ctx.engine, ctx.warehouse, ctx.before.bronze, ctx.newest_before)
    return state.timed("ingest", began, ingest=ingested, late_events=late)


def silver_step(
    ctx: RunContext,
    state: RunState,
    rebuild: bool = False,
    dates: tuple[date | None, date | None] | None = None,
) -> RunState:
    began = time.perf_counter()
    silver = build_silver(ctx, force=rebuild and dates is None)
    if dates is not None and (silver.unchanged or silver.incremental):  # not just built in full
        silver = rebuild_silver_dates(ctx, *dates)
    # after an increment, the checks whose cost grows with history look at what changed
    changes = changes_since(ctx.warehouse, ctx.before, ctx.newest_before) if silver.incremental else None
    sessions_changed = (
        {"new": 0, "updated": 0, "removed": 0}
        if silver.unchanged
        else count_session_changes(
            ctx.engine, ctx.warehouse, ctx.before.sessions, changes.session_dates if changes else None
        )
    )
    return state.timed("silver", began, silver=silver, changes=changes, sessions_changed=sessions_changed)


def silver_checks_step(ctx: RunContext, state: RunState) -> RunState:
    began = time.perf_counter()
    ctx.changes = state.changes
    quality = run_checks(ctx, ("bronze", "silver"), figures=False)
    return state.timed("checks after silver", began, quality=quality)


def gold_step(ctx: RunContext, state: RunState, force: bool = False) -> RunState:
    began = time.perf_counter()
    return state.timed("gold", began, gold=build_gold(ctx, force=force))


def gold_checks_step(ctx: RunContext, state: RunState) -> RunState:
    began = time.perf_counter()
    ctx.changes = state.changes
    quality = run_checks(ctx, ("gold",))
    merged = state.quality.merged(quality) if state.quality else quality
    return state.timed("checks after gold", began, quality=merged)


def record_step(ctx: RunContext, state: RunState, html_report: bool = True) -> "RunResult":
    """The run's row in ``runs`` (once per run id), its JSON report and, unless told not to and
    once gold exists, its HTML report (``_reports/<run id>.json`` and ``.html``)."""
    ended = datetime.now(UTC)
    result = RunResult(state, ended, report_path(ctx.warehouse, state.run_id))
    summary = result.summary()
    write_report(ctx.warehouse, state.quality, summary)
    record_run(ctx.warehouse, _run_row(result, summary))
    if html_report and ctx.warehouse.exists(DAILY_METRICS):
        page = ctx.warehouse.reports() / f"{state.run_id}.html"
        result = replace(result, html_report=write_html_report(ctx.settings, ctx.warehouse, ctx.engine, page))
    return result


@dataclass(frozen=True)
class RunResult:
    """What a run did. ``gold`` is None when a failing check stopped the run before gold."""

    state: RunState
    ended_at: datetime
    report: Path | None = None
    html_report: ReportResult | None = None

    @property
    def run_id(self) -> str:
        return self.state.run_id

    @property
    def ingest(self) -> IngestResult:
        return self.state.ingest

    @property
    def silver(self) -> SilverResult:
        return self.state.silver

    @property
    def gold(self) -> GoldResult | None:
        return self.state.gold

    @property
    def quality(self) -> QualityResult:
        return self.state.quality

    @property
    def started_at(self) -> datetime:
        return self.state.started_at

    @property
    def seconds(self) -> float:
        return (self.ended_at - self.state.started_at).total_seconds()

    @property
    def late_events(self) -> int:
        return self.state.late_events

    @property
    def sessions_changed(self) -> dict[str, int] | None:
        return self.state.sessions_changed

    @property
    def stage_seconds(self) -> dict[str, float]:
        return self.state.stage_seconds

    @property
    def failed(self) -> bool:
        return self.state.stopped

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
            "files_not_ingested": [f.path for f in self.ingest.failed],
            "report": str(self.report) if self.report else None,
            "stage_seconds": self.stage_seconds,
        }


def _nothing_ingested(ctx: RunContext) -> IngestResult:
    ctx.warehouse.require((BRONZE_EVENTS,), built_by="ingest")
    return IngestResult(
        [], 0.0, ctx.warehouse.table(BRONZE_EVENTS).version(), ctx.warehouse.table(QUARANTINE).version()
    )


def _run_row(result: RunResult, summary: dict) -> dict:
    new_files = [f.path for f in result.ingest.files if f.status is FileStatus.ingested]
    return {
        "run_id": result.run_id,
        "started_at": result.started_at,
        "ended_at": result.ended_at,
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


def _state_from(data: dict) -> RunState:
    """A state back from its JSON form (see :meth:`RunState.to_json`)."""

    def moment(text: str | None) -> datetime | None:
        return datetime.fromisoformat(text) if text else None

    ingested = data["ingest"]
    quality = data["quality"]
    changes = data["changes"]
    return RunState(
        run_id=data["run_id"],
        started_at=moment(data["started_at"]),
        before=Versions(**data["before"]),
        newest_before=moment(data["newest_before"]),
        ingest=IngestResult(
            **{
                **ingested,
                "files": [FileResult(**{**f, "status": FileStatus(f["status"])}) for f in ingested["files"]],
            }
        )
        if ingested
        else None,
        late_events=data["late_events"],
        silver=SilverResult(**data["silver"]) if data["silver"] else None,
        changes=Changes(
            bronze_since=changes["bronze_since"],
            event_dates=frozenset(changes["event_dates"]),
            session_dates=frozenset(changes["session_dates"]),
            newest_before=moment(changes["newest_before"]),
        )
        if changes
        else None,
        sessions_changed=data["sessions_changed"],
        quality=QualityResult(
            run_id=quality["run_id"],
            checked_at=moment(quality["checked_at"]),
            checks=[CheckResult(**c) for c in quality["checks"]],
            figures=quality["figures"],
        )
        if quality
        else None,
        gold=GoldResult(**data["gold"]) if data["gold"] else None,
        stage_seconds=data["stage_seconds"],
    )
