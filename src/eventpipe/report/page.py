"""The self-contained HTML run report: figures from the warehouse, charts inlined as SVG."""

import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from eventpipe.engine import Engine
from eventpipe.report import figures
from eventpipe.settings import Settings
from eventpipe.warehouse import DAILY_METRICS, FUNNEL, SESSIONS, SESSIONS_DAILY, SILVER_EVENTS, Warehouse

GOLD_NEEDED = (SILVER_EVENTS, SESSIONS, FUNNEL, SESSIONS_DAILY, DAILY_METRICS)


@dataclass(frozen=True)
class ReportResult:
    path: Path
    bytes: int
    seconds: float


def write_html_report(
    settings: Settings, warehouse: Warehouse, engine: Engine, out: Path | None = None
) -> ReportResult:
    """Write the report to ``out`` (default: ``warehouse/_reports/report.html``)."""
    began = time.perf_counter()
    warehouse.require(GOLD_NEEDED, built_by="run")
    with engine.translated_errors():
        warehouse.expose(engine)
        data = figures.collect(engine, warehouse, settings)
    html = render(data, warehouse.root)
    out = out or warehouse.reports() / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(html, encoding="utf-8")
    os.replace(partial, out)
    return ReportResult(out, len(html.encode()), time.perf_counter() - began)


def render(data: figures.ReportData, warehouse: Path) -> str:
    """The page as text; every value from the data is escaped by the template."""
    # plotting and templating are imported here: only the report needs them
    from jinja2 import Environment, PackageLoader, select_autoescape

    from eventpipe.report import charts

    environment = Environment(
        loader=PackageLoader("eventpipe.report", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["number"] = _number
    # control characters are not allowed in XML (the inline SVG) and mean nothing on a page
    environment.finalize = _printable_value
    top = data.top
    svg = {
        "events_over_time": charts.events_over_time(data.events_over_time, data.event_types, data.time_unit),
        "funnel": charts.funnel(data.funnel),
        "session_lengths": charts.bars(
            [b["bin"] for b in data.session_lengths],
            [b["sessions"] for b in data.session_lengths],
            "session_lengths",
            "sessions",
        ),
        "sessions_daily": charts.daily(
            data.sessions_daily, "sessions", ("bounce_rate", "conversion_rate"), "sessions_daily", "%", True
        ),
        "daily_users_revenue": charts.daily(
            data.daily_metrics, "active_users", ("revenue",), "daily_users_revenue", "revenue", False
        ),
        "daily_order_value": charts.daily(
            data.daily_metrics, data.orders, ("average_order_value",), "daily_order_value", "AOV", False
        ),
    }
    for key, rows in top.items():
        measure = key.rsplit("_by_", 1)[1]
        names = [printable(r["name"]) for r in rows]
        svg[f"top_{key}"] = charts.bars(names, [r[measure] for r in rows], key, measure)
    return environment.get_template("report.html.j2").render(
        data=data,
        svg=svg,
        warehouse=str(warehouse),
        generated_at=datetime.now(UTC),
    )


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def printable(text: str) -> str:
    """``text`` with each control character written as a visible ``\\xNN`` escape."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found[0]):02x}", text)


def _printable_value(value: object) -> object:
    """A value as it goes into the page: text without control characters, still marked safe
    (the charts' SVG) when it was."""
    from markupsafe import Markup  # with the template engine, only for the report

    if isinstance(value, Markup):
        return Markup(printable(str(value)))
    return printable(value) if isinstance(value, str) else value


def _number(value: object, digits: int = 0) -> str:
    if value is None:
        return "—"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return str(value)
