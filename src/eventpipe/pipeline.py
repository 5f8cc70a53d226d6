"""The whole pipeline: ingest -> silver -> checks -> gold -> checks, under one warehouse lock."""

import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from eventpipe.gold import GoldResult, build_gold
from eventpipe.ingest import IngestResult, Progress, ingest
from eventpipe.quality import QualityResult, run_checks, write_report
from eventpipe.runs import new_run_id
from eventpipe.settings import Settings
from eventpipe.silver import SilverResult, build_silver
from eventpipe.warehouse import Warehouse


@dataclass(frozen=True)
class RunResult:
    """What a run did. ``gold`` is None when a failing check stopped the run before gold."""

    run_id: str
    ingest: IngestResult
    silver: SilverResult
    gold: GoldResult | None
    quality: QualityResult
    seconds: float
    report: Path | None = None

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
            "quarantined": {"bronze_this_run": self.ingest.quarantined, "silver": self.silver.quarantined},
            "quarantined_by_reason": {"silver": self.silver.quarantined_by_reason},
            "funnel": self.gold.funnel if self.gold else [],
            "versions": {**self.silver.versions, **(self.gold.versions if self.gold else {})},
            "gold_published": self.gold is not None,
            "checks": {c.name: c.status for c in self.quality.checks},
            "failed_checks": [c.name for c in self.quality.failures],
            "report": str(self.report) if self.report else None,
        }


def run(
    settings: Settings,
    sources: list[str] | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> RunResult:
    """Ingest new files, rebuild silver, check; then, unless a ``fail`` check failed, gold and its checks."""
    began = time.perf_counter()
    now = now or datetime.now(UTC)
    run_id = new_run_id(now)
    warehouse = Warehouse.open(settings.warehouse, create=True)
    with warehouse.lock():
        ingested = ingest(settings, sources, progress)
        silver = build_silver(settings, now)
        quality = run_checks(settings, ("bronze", "silver"), run_id, now)
        gold = None
        if not quality.failures:  # the previous gold stays as it was
            gold = build_gold(settings)
            quality = quality.merged(run_checks(settings, ("gold",), run_id, now))
        result = RunResult(run_id, ingested, silver, gold, quality, time.perf_counter() - began)
        report = write_report(warehouse, quality, result.summary())
    return replace(result, report=report)
