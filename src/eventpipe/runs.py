"""Runs: their identifiers, the late events each brought, and the ``runs`` table."""

import secrets
from datetime import UTC, datetime

import pyarrow as pa

from eventpipe.fields import RUNS_SCHEMA
from eventpipe.warehouse import BRONZE_EVENTS, RUNS, Warehouse


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


def record_run(warehouse: Warehouse, row: dict) -> int:
    """Append ``row`` (the columns of the runs table) to it; returns the new version."""
    return warehouse.append(RUNS, pa.Table.from_pylist([row], schema=RUNS_SCHEMA)).version
