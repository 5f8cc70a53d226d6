"""The gold stage: gold tables brought up to date with silver, each swapped in atomically."""

import time
from dataclasses import dataclass, field

import pyarrow as pa

from eventpipe.builds import built_from, marked
from eventpipe.context import RunContext
from eventpipe.engine import Engine
from eventpipe.engine.base import Relation
from eventpipe.engine.delta import row_count
from eventpipe.gold import sql
from eventpipe.gold.increment import increment
from eventpipe.settings import Settings
from eventpipe.sql import date_ranges, dated_rows, utc_date
from eventpipe.warehouse import (
    DAILY_METRICS,
    EVENTS_BY_MINUTE,
    EVENTS_BY_TYPE,
    FUNNEL,
    FUNNEL_SESSIONS,
    GOLD_TABLES,
    SESSIONS,
    SESSIONS_DAILY,
    SILVER_EVENTS,
    USER_FUNNEL,
    Warehouse,
)

# Raised when gold's tables change shape, so that a warehouse built before is built again.
_LAYOUT = 4


@dataclass(frozen=True)
class GoldResult:
    """Rows and version of each gold table, and the funnel as rows."""

    rows: dict[str, int]
    versions: dict[str, int]
    funnel: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    unchanged: bool = False  # silver and the rules were as at the last build: nothing was written
    incremental: bool = False  # only the rows that silver's changes touch were recomputed


def build_gold(ctx: RunContext, force: bool = False) -> GoldResult:
    """Bring each gold table up to date with silver events and sessions.

    Every gold commit records what it was built from. When all of them record
    the same build, and silver has since only had events added, only the
    touched rows are recomputed; with the same inputs (and no ``force``)
    nothing is written; otherwise everything is rebuilt.
    """
    began = time.perf_counter()
    settings, warehouse, engine = ctx.settings, ctx.warehouse, ctx.engine
    warehouse.require((SILVER_EVENTS, SESSIONS), built_by="silver")
    silver = built_from(warehouse.table(SESSIONS)) or {}
    inputs = {
        "silver_events": warehouse.table(SILVER_EVENTS).version(),
        "sessions": warehouse.table(SESSIONS).version(),
        # silver's full build and the bronze version it is up to: what lets gold follow its increments
        "silver_build": silver.get("build"),
        "bronze": silver.get("inputs", {}).get("bronze"),
        "rules": {
            **settings.model_dump(mode="json", include={"event_types", "funnel_steps"}),
            "revenue_type": settings.revenue_type,
            "layout": _LAYOUT,
        },
    }
    records = [built_from(warehouse.table(t)) if warehouse.exists(t) else None for t in GOLD_TABLES]
    # a run killed between gold's commits leaves them apart: build in full
    previous = records[0] if all(r == records[0] for r in records) else None
    unchanged = not force and previous == inputs
    written = None
    if not unchanged and not force and _follows(previous, inputs):
        written = increment(warehouse, engine, settings, previous, inputs)
        if written is not None:
            warehouse.expose(engine, (FUNNEL_SESSIONS, USER_FUNNEL))
            written |= _write_from_user_funnel(warehouse, engine, settings, inputs)
    if not unchanged and written is None:
        _build_all(warehouse, engine, settings, inputs)
    rows, versions = {}, {}
    for table in GOLD_TABLES:
        delta = warehouse.table(table)
        rows[table.view] = row_count(delta)
        versions[table.view] = delta.version()
    warehouse.expose(engine, (FUNNEL,))
    funnel = engine.table("SELECT * FROM funnel ORDER BY level, step_number").to_pylist()
    return GoldResult(rows, versions, funnel, time.perf_counter() - began, unchanged, written is not None)


def _follows(previous: dict | None, inputs: dict) -> bool:
    """Whether silver has only had events added since gold was built from ``previous``."""
    return (
        previous is not None
        and previous["rules"] == inputs["rules"]
        and previous.get("silver_build") is not None
        and previous["silver_build"] == inputs["silver_build"]
        and previous["bronze"] is not None
    )


def _build_all(warehouse: Warehouse, engine: Engine, settings: Settings, inputs: dict) -> None:
    warehouse.expose(engine, (SILVER_EVENTS, SESSIONS))
    statements = {
        EVENTS_BY_MINUTE: sql.events_by_minute(settings.event_types),
        USER_FUNNEL: sql.user_funnel(settings.funnel_steps, settings.event_types, settings.revenue_type),
        SESSIONS_DAILY: (sql.sessions_daily(), {}),
        DAILY_METRICS: sql.daily_metrics(settings.revenue_type),
    }
    for table, (statement, params) in statements.items():
        warehouse.replace(table, engine.query(statement, params), commit=marked(inputs))
    warehouse.replace(FUNNEL_SESSIONS, _session_step_times(engine, settings), commit=marked(inputs))
    warehouse.expose(engine, (FUNNEL_SESSIONS, USER_FUNNEL))
    _write_from_user_funnel(warehouse, engine, settings, inputs)


def _session_step_times(engine: Engine, settings: Settings) -> Relation | pa.RecordBatchReader:
    """``funnel_sessions`` of all sessions: a range of session dates at a time (about
    ``rows_per_bucket`` sessions) on an engine bound to a memory limit.

    Each session's steps come from its own events, dated from its start to its end. At 40M
    events the one query over 21M sessions spilled 4.3 GB past memory_limit 1GB and took
    6.0-6.3 s; ranges of 3 to 10 days 3.2-3.4 s (the rows drained, not written).
    """
    steps = settings.funnel_steps
    if engine.bounded_memory:
        days = engine.table(
            f"SELECT session_date, count(*) AS n, {utc_date('max(session_end)')} AS last_event_date "
            "FROM sessions GROUP BY 1 ORDER BY 1"
        ).to_pylist()
        dates = [d["session_date"] for d in days]
        ranges = date_ranges(dates, [d["n"] for d in days], settings.rows_per_bucket)
        if len(ranges) > 1:
            last_event = dict(zip(dates, (d["last_event_date"] for d in days), strict=True))
            statements = []
            for first, last in ranges:
                until = max(last_event[d] for d in dates if first <= d <= last)
                statement, params = sql.session_step_times(
                    steps,
                    dated_rows("sessions", "session_date", first, last),
                    dated_rows("silver_events", "event_date", first, until),
                )
                statements.append(statement)
            return engine.stream_in_turn(statements, params)
    statement, params = sql.session_step_times(steps, "sessions", "silver_events")
    return engine.query(statement, params)


def _write_from_user_funnel(warehouse: Warehouse, engine: Engine, settings: Settings, inputs: dict) -> dict:
    """The tables aggregated from ``user_funnel`` (and ``funnel_sessions``), both as written."""
    by_type, params = sql.events_by_type(settings.event_types)
    return {
        EVENTS_BY_TYPE: warehouse.replace(
            EVENTS_BY_TYPE, engine.query(by_type, params), commit=marked(inputs)
        ),
        FUNNEL: _write_funnel(warehouse, engine, settings, inputs),
    }


def _write_funnel(warehouse: Warehouse, engine: Engine, settings: Settings, inputs: dict):
    statement, params = sql.funnel(settings.funnel_steps)
    return warehouse.replace(FUNNEL, engine.query(statement, params), commit=marked(inputs))
