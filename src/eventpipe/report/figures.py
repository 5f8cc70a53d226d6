"""What the HTML report shows, read from the warehouse with SQL; large tables arrive summarized."""

import json
from dataclasses import dataclass, field
from pathlib import Path

from eventpipe.engine import Engine
from eventpipe.fields import count_column
from eventpipe.settings import Settings
from eventpipe.sql import ident
from eventpipe.warehouse import QUALITY_RESULTS, QUARANTINE, Warehouse

TOP_N = 10
QUARANTINE_SAMPLE_PER_REASON = 3
QUARANTINE_SAMPLE_ROWS = 60
#: More points than this in events over time, and minutes are summed into hours (then days).
MAX_TIME_POINTS = 1500

# {orders}: the count column of the revenue type (purchases, by default)
TOTALS = """
SELECT
    (SELECT count(*) FROM bronze_events) AS bronze_rows,
    (SELECT count(*) FROM quarantine) AS quarantined,
    (SELECT count(*) FROM silver_events) AS silver_events,
    (SELECT coalesce(sum(duplicates), 0)::BIGINT FROM silver_events) AS duplicates_removed,
    (SELECT count(*) FROM sessions) AS sessions,
    (SELECT count(*) FROM user_funnel) AS users,
    (SELECT coalesce(sum({orders}), 0)::BIGINT FROM user_funnel) AS orders,
    (SELECT coalesce(sum(revenue), 0) FROM daily_metrics) AS revenue
"""

SESSION_LENGTHS = """
WITH binned AS (
    SELECT CASE
        WHEN events_count = 1 THEN 0
        WHEN session_length_minutes < 1 THEN 1
        WHEN session_length_minutes < 5 THEN 2
        WHEN session_length_minutes < 15 THEN 3
        WHEN session_length_minutes <= 30 THEN 4
        WHEN session_length_minutes <= 60 THEN 5
        ELSE 6
    END AS bin
    FROM sessions
)
SELECT bin, count(*) AS sessions FROM binned GROUP BY 1 ORDER BY 1
"""
SESSION_LENGTH_BINS = ["one event", "< 1 min", "1-5 min", "5-15 min", "15-30 min", "30-60 min", "> 60 min"]

# Events of the first funnel step and of the revenue type per value of a column, for the top
# lists (NULL is not a brand); {first} and {orders} are their count columns.
BY_VALUE = """
SELECT {column} AS name,
    count(*) FILTER (WHERE event_type = $first_step) AS {first},
    count(*) FILTER (WHERE event_type = $revenue_type) AS {orders}
FROM silver_events
WHERE {column} IS NOT NULL
GROUP BY 1
"""

QUARANTINE_SAMPLE = f"""
WITH numbered AS (
    SELECT *, row_number() OVER (PARTITION BY stage, reason ORDER BY _source_file, _source_line) AS k
    FROM quarantine
)
SELECT stage, reason, _source_file, _source_line, raw_record
FROM numbered
WHERE k <= {QUARANTINE_SAMPLE_PER_REASON}
ORDER BY stage, reason, k
LIMIT {QUARANTINE_SAMPLE_ROWS}
"""

QUARANTINE_BY_REASON = """
SELECT stage, reason, count(*) AS rows FROM quarantine GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2
"""

LATEST_CHECKS = """
SELECT check_name, table_name, layer, severity, status, offending_rows, example, description
FROM quality_results
WHERE run_id = (SELECT max(run_id) FROM quality_results)
ORDER BY checked_at, check_name
"""


@dataclass
class ReportData:
    """Everything the page shows, as plain rows."""

    totals: dict
    run: dict | None
    event_types: list[str]
    measures: list[str]  # the top lists' counts: of the first funnel step, of the revenue type
    orders: str  # the count column of the revenue type
    time_unit: str
    events_over_time: list[dict]
    funnel: list[dict]
    session_lengths: list[dict]
    sessions_daily: list[dict]
    daily_metrics: list[dict]
    top: dict[str, list[dict]]
    quarantine_by_reason: list[dict]
    quarantine_sample: list[dict]
    checks: list[dict] = field(default_factory=list)
    checks_run_id: str | None = None


def collect(engine: Engine, warehouse: Warehouse, settings: Settings) -> ReportData:
    """Read the report's figures; silver and gold must exist (``Warehouse.require``)."""
    event_types = settings.event_types
    first, orders = count_column(settings.funnel_steps[0]), count_column(settings.revenue_type)
    measures = list(dict.fromkeys([first, orders]))
    roles = {"first_step": settings.funnel_steps[0], "revenue_type": settings.revenue_type}
    time_unit, over_time = _events_over_time(engine, event_types)
    by_length = {r["bin"]: r["sessions"] for r in engine.table(SESSION_LENGTHS).to_pylist()}
    top = {}
    for column in ("brand", "category_code"):
        counts = BY_VALUE.format(column=ident(column), first=ident(first), orders=ident(orders))
        groups = engine.table(counts, roles).to_pylist()
        for measure in measures:
            ranked = sorted(groups, key=lambda g, m=measure: (-g[m], g["name"]))
            top[f"{column}_by_{measure}"] = [g for g in ranked[:TOP_N] if g[measure] > 0]
    has_quarantine = warehouse.exists(QUARANTINE)
    checks, checks_run = [], None
    if warehouse.exists(QUALITY_RESULTS):
        checks = engine.table(LATEST_CHECKS).to_pylist()
        checks_run = engine.scalar("SELECT max(run_id) FROM quality_results")
    return ReportData(
        totals=engine.table(TOTALS.format(orders=ident(orders))).to_pylist()[0],
        run=latest_run(warehouse),
        event_types=event_types,
        measures=measures,
        orders=orders,
        time_unit=time_unit,
        events_over_time=over_time,
        funnel=engine.table("SELECT * FROM funnel ORDER BY level, step_number").to_pylist(),
        session_lengths=[
            {"bin": label, "sessions": by_length.get(i, 0)} for i, label in enumerate(SESSION_LENGTH_BINS)
        ],
        sessions_daily=engine.table("SELECT * FROM sessions_daily ORDER BY date").to_pylist(),
        daily_metrics=engine.table("SELECT * FROM daily_metrics ORDER BY date").to_pylist(),
        top=top,
        quarantine_by_reason=engine.table(QUARANTINE_BY_REASON).to_pylist() if has_quarantine else [],
        quarantine_sample=engine.table(QUARANTINE_SAMPLE).to_pylist() if has_quarantine else [],
        checks=checks,
        checks_run_id=checks_run,
    )


def latest_run(warehouse: Warehouse) -> dict | None:
    """The summary of the newest ``eventpipe run`` (from its JSON report), if any."""
    folder = warehouse.reports()
    for path in sorted(folder.glob("*.json"), reverse=True) if folder.is_dir() else []:
        report = _read_json(path)
        if report.get("run"):
            return report["run"]
    return None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _events_over_time(engine: Engine, event_types: list[str]) -> tuple[str, list[dict]]:
    """Events per minute, or per hour or day when minutes would be too many points."""
    per_type = ", ".join(f"sum({ident(t)})::BIGINT AS {ident(t)}" for t in event_types)
    minutes, hours = (
        engine.table("SELECT count(*), count(DISTINCT date_trunc('hour', minute)) FROM events_by_minute")
        .to_pylist()[0]
        .values()
    )
    unit = "minute" if minutes <= MAX_TIME_POINTS else "hour" if hours <= MAX_TIME_POINTS else "day"
    rows = engine.table(
        f"SELECT date_trunc($unit, minute) AS at, sum(events_count)::BIGINT AS events, {per_type} "
        "FROM events_by_minute GROUP BY 1 ORDER BY 1",
        {"unit": unit},
    ).to_pylist()
    return unit, rows
