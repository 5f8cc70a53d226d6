"""Watch mode: poll the sources and run the pipeline on each new set of files, until stopped.

Stopping (``stop`` set, e.g. by SIGINT or SIGTERM) takes effect between
batches: the batch in flight finishes, so it is committed whole.
"""

import threading
from collections.abc import Callable
from dataclasses import replace

from eventpipe.context import open_reader, open_run
from eventpipe.ingest import Progress
from eventpipe.ingest.ledger import records_by_path
from eventpipe.ingest.sources import discover
from eventpipe.pipeline import RunResult, run
from eventpipe.report import ReportResult, write_html_report
from eventpipe.settings import Settings
from eventpipe.warehouse import BRONZE_EVENTS, DAILY_METRICS, QUARANTINE, Warehouse


def watch(
    settings: Settings,
    stop: threading.Event,
    interval: float,
    on_batch: Callable[[RunResult], None],
    sources: list[str] | None = None,
    progress: Progress | None = None,
    html_report: bool = True,
    on_report: Callable[[ReportResult], None] | None = None,
) -> RunResult | None:
    """Run a batch whenever new files appear; returns the last batch's result when stopped.

    Each batch is a run of its own (its own context, lock and engine). A batch's HTML
    report is written at the first poll that finds nothing new, or on stopping, in a
    thread of its own: at millions of events it takes seconds, which would otherwise
    hold back a file landing meanwhile (it reads a snapshot; a batch may commit beside it).
    """
    sources = sources or settings.sources
    seen: set[tuple[str, int, int]] = set()
    last, report_due = None, False
    reporting: _BackgroundReport | None = None
    while not stop.is_set():
        found = {
            (str(f.path), f.size, f.mtime_ns)
            for f in discover(sources, allow_empty=True, warehouse=settings.warehouse)
        }
        # bronze's ledger is read only when the folder shows something not seen before
        if (new := found - seen) and new - _ingested(settings):
            with open_run(settings) as ctx:
                last = run(ctx, sources, progress, html_report=False)
            on_batch(last)
            report_due = html_report
        elif report_due:
            if reporting is not None:
                reporting.finish()  # one report at a time: the previous batch's is done or nearly
            reporting, report_due = _BackgroundReport(settings, last, on_report), False
        seen |= found  # a file whose content changed is reported once, not every poll
        stop.wait(interval)
    if reporting is not None:
        reported = reporting.finish()
        last = reported if reported.run_id == last.run_id else last
    if report_due:
        last = _with_report(settings, last, on_report)
    return last


class _BackgroundReport:
    """A batch's HTML report, written in a thread while watching goes on."""

    def __init__(
        self, settings: Settings, result: RunResult, on_report: Callable[[ReportResult], None] | None
    ) -> None:
        self.result = result
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._write, args=(settings, on_report), name="eventpipe-report", daemon=True
        )
        self._thread.start()

    def _write(self, settings: Settings, on_report: Callable[[ReportResult], None] | None) -> None:
        try:
            self.result = _with_report(settings, self.result, on_report)
        except BaseException as error:  # raised where watching waits for the report
            self._error = error

    def finish(self) -> RunResult:
        """Wait for the report; the batch's result with it."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.result


def _with_report(
    settings: Settings, result: RunResult, on_report: Callable[[ReportResult], None] | None
) -> RunResult:
    """``result`` with its HTML report written, as ``eventpipe run`` writes it."""
    with open_reader(settings) as (warehouse, engine):
        if not warehouse.exists(DAILY_METRICS):  # no gold yet: nothing to show
            return result
        page = write_html_report(settings, warehouse, engine, warehouse.reports() / f"{result.run_id}.html")
    if on_report is not None:
        on_report(page)
    return replace(result, html_report=page)


def _ingested(settings: Settings) -> set[tuple[str, int, int]]:
    """(path, size, modification time) of every file bronze holds."""
    warehouse = Warehouse(settings.warehouse)
    if not (warehouse.exists(BRONZE_EVENTS) and warehouse.exists(QUARANTINE)):
        return set()
    # the records alone: bronze's log is not needed to know which files it holds
    return {(r.path, r.size, r.mtime_ns) for r in records_by_path(warehouse.table(QUARANTINE)).values()}
