"""The pipeline's steps as tests call them: each in a run context of its own, as a command would."""

from datetime import date, datetime
from pathlib import Path

from eventpipe import pipeline
from eventpipe.changes import Changes
from eventpipe.context import open_reader, open_run
from eventpipe.ingest import IngestResult
from eventpipe.ingest import ingest as ingest_files
from eventpipe.quality import QualityResult
from eventpipe.quality import run_checks as check_layers
from eventpipe.report import ReportResult
from eventpipe.report import write_html_report as write_report
from eventpipe.settings import Settings
from eventpipe.warehouse import LAYERS


def run(
    settings: Settings,
    sources: list[str] | None = None,
    *,
    now: datetime | None = None,
    rebuild: bool = False,
    dates: tuple[date | None, date | None] | None = None,
    html_report: bool = False,
) -> pipeline.RunResult:
    """``eventpipe run`` (or ``rebuild``), without the HTML report unless asked."""
    with open_run(settings, now=now) as ctx:
        return pipeline.run(ctx, sources, rebuild=rebuild, dates=dates, html_report=html_report)


def ingest(settings: Settings, sources: list[str] | None = None) -> IngestResult:
    with open_run(settings) as ctx:
        return ingest_files(ctx, sources)


def run_checks(
    settings: Settings,
    layers: tuple[str, ...] = LAYERS,
    now: datetime | None = None,
    changes: Changes | None = None,
) -> QualityResult:
    """The checks of ``layers``: on whole tables, or, with ``changes``, bound to what they name."""
    with open_run(settings, create=False, now=now) as ctx:
        ctx.changes = changes
        return check_layers(ctx, layers)


def write_html_report(settings: Settings, out: Path | None = None) -> ReportResult:
    with open_reader(settings) as (warehouse, engine):
        return write_report(settings, warehouse, engine, out)
