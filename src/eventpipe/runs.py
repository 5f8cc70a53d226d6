"""Runs: their identifiers, the late events and session changes each brought, and the ``runs`` table."""

import secrets
from datetime import UTC, datetime

import pyarrow as pa

from eventpipe.fields import RUNS_SCHEMA
from eventpipe.sql import date_in
from eventpipe.warehouse import BRONZE_EVENTS, RUNS, SESSIONS, Warehouse


def new_run_id(now: datetime | None = None) -> str:
    """E.g. ``20261128T023000Z-1a2b3c``: the UTC start time, then random hex."""
    now = now or datetime.now(UTC)
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def newest_event(warehouse: Warehouse, memory_limit: str) -> datetime | None:
    """The newest event time in bronze, or None when bronze is empty."""
    if not warehouse.exists(BRONZE_EVENTS):
        return None
    with warehouse.engine(memory_limit) as engine:
        warehouse.expose(engine, (BRONZE_EVENTS,))
        return engine.scalar("SELECT max(event_time) FROM bronze_events")


def count_late_events(
    warehouse: Warehouse, memory_limit: str, files: list[str], newest_before: datetime | None
) -> int:
    """Bronze rows of ``files`` older than ``newest_before`` (the newest event before the run)."""
    if newest_before is None or not files:
        return 0
    with warehouse.engine(memory_limit) as engine:
        warehouse.expose(engine, (BRONZE_EVENTS,))
        return engine.scalar(
            "SELECT count(*) FROM bronze_events "
            "WHERE list_contains($files, _source_file) AND event_time < $newest_before",
            {"files": files, "newest_before": newest_before},
        )


def count_session_changes(
    warehouse: Warehouse, memory_limit: str, before_version: int | None, dates: frozenset[str] | None
) -> dict[str, int] | None:
    """Sessions ``new`` (an id not there before), ``updated`` (more events, a later end) and
    ``removed`` (merged into another, or now starting with an earlier event: a new id) since
    ``before_version``, on the session dates ``dates`` only when given; None when that
    version can no longer be read."""
    with warehouse.engine(memory_limit) as engine:
        warehouse.expose(engine, (SESSIONS,))
        if before_version is None:
            return {"new": engine.scalar("SELECT count(*) FROM sessions"), "updated": 0, "removed": 0}
        if not engine.expose_version("old_sessions", warehouse.path(SESSIONS), before_version):
            return None
        within = "TRUE" if dates is None else date_in("session_date", set(dates))
        return engine.table(
            f"""
            WITH old AS (SELECT session_id, events_count, session_end FROM old_sessions WHERE {within}),
            cur AS (SELECT session_id, events_count, session_end FROM sessions WHERE {within})
            SELECT
                count(*) FILTER (WHERE old.session_id IS NULL) AS new,
                count(*) FILTER (
                    WHERE old.session_id IS NOT NULL AND cur.session_id IS NOT NULL
                    AND (old.events_count <> cur.events_count OR old.session_end <> cur.session_end)
                ) AS updated,
                count(*) FILTER (WHERE cur.session_id IS NULL) AS removed
            FROM old FULL JOIN cur ON old.session_id = cur.session_id
            """
        ).to_pylist()[0]


def record_run(warehouse: Warehouse, row: dict) -> int:
    """Append ``row`` (the columns of the runs table) to it; returns the new version."""
    return warehouse.append(RUNS, pa.Table.from_pylist([row], schema=RUNS_SCHEMA)).version
