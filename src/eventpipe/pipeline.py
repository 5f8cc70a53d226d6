"""The whole pipeline: ingest -> silver -> gold, under one warehouse lock."""

import time
from dataclasses import dataclass
from datetime import datetime

from eventpipe.gold import GoldResult, build_gold
from eventpipe.ingest import IngestResult, Progress, ingest
from eventpipe.settings import Settings
from eventpipe.silver import SilverResult, build_silver
from eventpipe.warehouse import Warehouse


@dataclass(frozen=True)
class RunResult:
    ingest: IngestResult
    silver: SilverResult
    gold: GoldResult
    seconds: float


def run(
    settings: Settings,
    sources: list[str] | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> RunResult:
    """Ingest new files, then rebuild silver and gold."""
    began = time.perf_counter()
    warehouse = Warehouse.open(settings.warehouse, create=True)
    with warehouse.lock():
        ingested = ingest(settings, sources, progress)
        silver = build_silver(settings, now)
        gold = build_gold(settings)
    return RunResult(ingested, silver, gold, time.perf_counter() - began)
