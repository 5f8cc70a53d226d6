"""Watch mode: poll the sources and run the pipeline on each new set of files, until stopped.

Stopping (``stop`` set, e.g. by SIGINT or SIGTERM) takes effect between
batches: the batch in flight finishes, so it is committed whole.
"""

import threading
from collections.abc import Callable

from eventpipe.context import open_run
from eventpipe.ingest import Progress
from eventpipe.ingest.ledger import Ledger
from eventpipe.ingest.sources import discover
from eventpipe.pipeline import RunResult, run
from eventpipe.settings import Settings
from eventpipe.warehouse import BRONZE_EVENTS, QUARANTINE, Warehouse


def watch(
    settings: Settings,
    stop: threading.Event,
    interval: float,
    on_batch: Callable[[RunResult], None],
    sources: list[str] | None = None,
    progress: Progress | None = None,
    html_report: bool = True,
) -> RunResult | None:
    """Run a batch whenever new files appear; returns the last batch's result when stopped.

    Each batch is a run of its own (its own context, lock and engine).
    """
    sources = sources or settings.sources
    seen: set[tuple[str, int, int]] = set()
    last = None
    while not stop.is_set():
        found = {
            (str(f.path), f.size, f.mtime_ns)
            for f in discover(sources, allow_empty=True, warehouse=settings.warehouse)
        }
        if found - seen - _ingested(settings):
            with open_run(settings) as ctx:
                last = run(ctx, sources, progress, html_report=html_report)
            on_batch(last)
        seen |= found  # a file whose content changed is reported once, not every poll
        stop.wait(interval)
    return last


def _ingested(settings: Settings) -> set[tuple[str, int, int]]:
    """(path, size, modification time) of every file bronze holds."""
    warehouse = Warehouse(settings.warehouse)
    if not (warehouse.exists(BRONZE_EVENTS) and warehouse.exists(QUARANTINE)):
        return set()
    ledger = Ledger(warehouse.table(BRONZE_EVENTS), warehouse.table(QUARANTINE))
    return {(r.path, r.size, r.mtime_ns) for r in ledger.by_path.values()}
