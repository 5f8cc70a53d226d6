"""Everything the CLI prints: progress and messages on stderr, results on stdout."""

import csv
import io
import json
import sys
from collections import Counter
from datetime import date, datetime

import pyarrow as pa
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from eventpipe.gold import GoldResult
from eventpipe.ingest import FileResult, IngestResult
from eventpipe.ingest import Progress as IngestProgress
from eventpipe.ingest.sources import SourceFile
from eventpipe.jsontext import dumps
from eventpipe.pipeline import RunResult
from eventpipe.quality import QualityResult
from eventpipe.report import ReportResult
from eventpipe.silver import SilverResult

err = Console(stderr=True)
out = Console(soft_wrap=True)

MAX_TABLE_ROWS = 1000


class ConsoleProgress(IngestProgress):
    """A progress bar per file on stderr; silent when stderr is not a terminal or ``quiet``."""

    def __init__(self, quiet: bool = False) -> None:
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=quiet,
            transient=True,
        )
        self._task = None

    def __enter__(self) -> "ConsoleProgress":
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def start_file(self, source: SourceFile) -> None:
        self._task = self._bar.add_task(source.path.name, total=source.size)

    def advance(self, position: int) -> None:
        self._bar.update(self._task, completed=position)

    def end_file(self, result: FileResult) -> None:
        self._bar.remove_task(self._task)


def progress(quiet: bool) -> ConsoleProgress:
    """Progress bars, unless asked for quiet or stderr is not a terminal."""
    return ConsoleProgress(quiet=quiet or not err.is_terminal)


def print_ingest_summary(result: IngestResult) -> None:
    table = Table(title="bronze ingestion", title_justify="left")
    for column in ("file", "status", "records", "bronze", "quarantined"):
        table.add_column(column, justify="right" if column not in ("file", "status") else "left")
    for f in result.files:
        table.add_row(f.path, str(f.status), *(f"{n:,}" for n in (f.records, f.bronze_rows, f.quarantined)))
    err.print(table)
    ingested = sum(1 for f in result.files if f.status == "ingested")
    err.print(
        f"{ingested} of {len(result.files)} files ingested: {result.records:,} records = "
        f"{result.bronze_rows:,} bronze + {result.quarantined:,} quarantined in "
        f"{result.seconds:.1f} s ({result.events_per_second:,.0f} events/s)"
    )
    for warning in result.warnings:
        err.print(Text.assemble(("warning: ", "yellow"), warning), soft_wrap=True)


def print_silver_summary(result: SilverResult) -> None:
    err.print(
        f"silver: {result.bronze_rows:,} bronze rows -> {result.events:,} events "
        f"+ {result.duplicates:,} duplicates removed + {result.quarantined:,} quarantined; "
        f"{result.sessions:,} sessions ({result.seconds:.1f} s)",
        highlight=False,
    )
    for reason, count in result.quarantined_by_reason.items():
        err.print(Text(f"  quarantined {count:,}: {reason}"))


def print_gold_summary(result: GoldResult) -> None:
    tables = ", ".join(f"{name} {rows:,}" for name, rows in result.rows.items())
    err.print(f"gold rows: {tables} ({result.seconds:.1f} s)", highlight=False)
    for level in ("session", "user"):
        steps = [s for s in result.funnel if s["level"] == level]
        shown = " -> ".join(
            f"{s['step']} {s['entered']:,}"
            + (f" ({s['conversion_from_previous']:.1%})" if s["conversion_from_previous"] is not None else "")
            for s in steps
        )
        err.print(f"funnel per {level}: {shown}", highlight=False)


def print_run_summary(result: RunResult) -> None:
    print_ingest_summary(result.ingest)
    print_silver_summary(result.silver)
    if result.gold is not None:
        print_gold_summary(result.gold)
    print_checks(result.quality, verbose=False)
    if result.gold is None:
        names = ", ".join(c.name for c in result.quality.failures)
        err.print(
            Text.assemble(
                ("stopped before gold: ", "bold red"), f"check(s) {names} failed; gold is unchanged"
            ),
            soft_wrap=True,
        )
    changed = result.sessions_changed
    sessions = (
        f"{changed['new']:,} new, {changed['updated']:,} updated, "
        f"{changed['removed']:,} gone (merged or re-identified)"
        if changed is not None
        else "not known (the version before the run is no longer readable)"
    )
    err.print(
        f"late events (older than the newest event before the run): {result.late_events:,}\n"
        f"sessions changed: {sessions}\n"
        f"run {result.run_id} took {result.seconds:.1f} s "
        f"({result.ingest.records / result.seconds if result.seconds else 0:,.0f} new events/s); "
        f"report: {result.report}",
        highlight=False,
        soft_wrap=True,
    )


_STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "error": "bold red", "skipped": "dim"}


def print_checks(quality: QualityResult, verbose: bool = True) -> None:
    """A table of every check (with ``verbose``) or of those that did not pass, and a count line."""
    shown = [c for c in quality.checks if verbose or c.status not in ("pass", "skipped")]
    if shown:
        table = Table(title="quality checks", title_justify="left")
        for column in ("check", "table", "status", "offending rows"):
            table.add_column(column, justify="right" if column == "offending rows" else "left", no_wrap=True)
        table.add_column("first example", overflow="fold")
        for c in shown:
            example = json.dumps(c.examples[0], default=str) if c.examples else c.message
            table.add_row(
                c.name,
                c.table,
                Text(c.status, style=_STATUS_STYLE[c.status]),
                f"{c.offending_rows:,}",
                Text(example[:120]),
            )
        err.print(table)
    counts = Counter(c.status for c in quality.checks)
    err.print(
        f"checks: {', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}"
        + (f"; failed: {', '.join(c.name for c in quality.failures)}" if quality.failures else ""),
        highlight=False,
    )


def print_report(report: ReportResult) -> None:
    err.print(
        f"HTML report: {report.path} ({report.bytes / 1024:,.0f} KiB, {report.seconds:.1f} s)",
        highlight=False,
        soft_wrap=True,
    )


def print_error(message: str) -> None:
    """One line; the message is shown as written (it may contain brackets, paths, SQL)."""
    err.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True, highlight=False)


def print_json(payload: object) -> None:
    sys.stdout.write(dumps(payload) + "\n")


def print_rows(rows: pa.Table, form: str) -> None:
    """Query results on stdout as a table, CSV or JSON."""
    if form == "json":
        print_json(rows.to_pylist())
    elif form == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(rows.column_names)
        writer.writerows([_csv_cell(v) for v in row.values()] for row in rows.to_pylist())
        sys.stdout.write(buffer.getvalue())
    else:
        table = Table(*rows.column_names)
        for row in rows.slice(0, MAX_TABLE_ROWS).to_pylist():
            # Text, not markup: a value such as "[b]" is data, shown as it is
            table.add_row(*(Text(_table_cell(v)) for v in row.values()))
        out.print(table)
        if rows.num_rows > MAX_TABLE_ROWS:
            err.print(f"showing {MAX_TABLE_ROWS:,} of {rows.num_rows:,} rows; use --format csv for all")


def _table_cell(value: object) -> str:
    if value is None:
        return ""
    return dumps(value, indent=None) if isinstance(value, list | dict) else str(value)


def _csv_cell(value: object) -> object:
    if isinstance(value, list | dict):
        return dumps(value, indent=None)
    return value.isoformat() if isinstance(value, datetime | date) else value
