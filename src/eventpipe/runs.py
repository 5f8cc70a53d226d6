"""Runs: their identifiers, the late events and session changes each brought, and the ``runs`` table."""

import secrets
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from eventpipe.builds import applying
from eventpipe.engine import Engine
from eventpipe.engine.delta import file_statistics, local_path, row_count
from eventpipe.fields import RUNS_SCHEMA
from eventpipe.sql import date_in
from eventpipe.warehouse import BRONZE_EVENTS, RUNS, SESSIONS, Warehouse


def new_run_id(now: datetime | None = None) -> str:
    """E.g. ``20261128T023000Z-1a2b3c``: the UTC start time, then random hex."""
    now = now or datetime.now(UTC)
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def newest_event(warehouse: Warehouse) -> datetime | None:
    """The newest event time in bronze, or None when bronze is empty.

    Read from the log's file statistics, else from the Parquet footers of bronze's files
    (their row groups' maximum), not from the rows: a run asks this before it starts,
    whatever bronze's size.
    """
    if not warehouse.exists(BRONZE_EVENTS):
        return None
    stats = file_statistics(warehouse.table(BRONZE_EVENTS))
    if stats is not None and "max.event_time" in stats.column_names:
        files = zip(*(stats.column(c).to_pylist() for c in _STATS), strict=True)
        highs = [(high, nulls == rows) for high, nulls, rows in files]
        # a file without a maximum holds only missing times, or says nothing: then its footer is read
        if all(high is not None or all_missing for high, all_missing in highs):
            return _aware(max((high for high, _ in highs if high is not None), default=None))
    newest = None
    for uri in warehouse.table(BRONZE_EVENTS).file_uris():
        metadata = pq.read_metadata(local_path(uri))
        column = metadata.schema.to_arrow_schema().get_field_index("event_time")
        for group in range(metadata.num_row_groups):
            stats = metadata.row_group(group).column(column).statistics
            if stats is None or not stats.has_min_max:
                if metadata.row_group(group).num_rows:  # no statistics: the rows must be read
                    return _newest_by_reading(warehouse)
                continue
            newest = stats.max if newest is None else max(newest, stats.max)
    return _aware(newest)


_STATS = ("max.event_time", "null_count.event_time", "num_records")


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _newest_by_reading(warehouse: Warehouse) -> datetime | None:
    files = [str(local_path(u)) for u in warehouse.table(BRONZE_EVENTS).file_uris()]
    return pc.max(pq.ParquetDataset(files).read(columns=["event_time"]).column(0)).as_py()


def count_late_events(
    engine: Engine, warehouse: Warehouse, since_version: int | None, newest_before: datetime | None
) -> int:
    """Bronze rows added since ``since_version`` older than ``newest_before`` (the newest event before
    the run)."""
    if newest_before is None or since_version is None:
        return 0
    if not engine.expose_added("run_bronze_rows", warehouse.table(BRONZE_EVENTS), since_version):
        return 0
    return engine.scalar(
        "SELECT count(*) FROM run_bronze_rows WHERE event_time < $newest_before",
        {"newest_before": newest_before},
    )


def count_session_changes(
    engine: Engine, warehouse: Warehouse, before_version: int | None, dates: frozenset[str] | None
) -> dict[str, int] | None:
    """Sessions ``new`` (an id not there before), ``updated`` (more events, a later end) and
    ``removed`` (merged into another, or now starting with an earlier event: a new id) since
    ``before_version``, on the session dates ``dates`` only when given; None when that
    version can no longer be read."""
    warehouse.expose(engine, (SESSIONS,))
    if before_version is None:
        return {"new": row_count(warehouse.table(SESSIONS)), "updated": 0, "removed": 0}
    if not engine.expose_version("old_sessions", warehouse.table(SESSIONS), before_version):
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
    """Append ``row`` (the columns of the runs table) to it, once per run id: a retried step
    that records the same run again changes nothing. Returns the table's version."""
    applied = f"eventpipe.runs:{row['run_id']}"
    if warehouse.exists(RUNS) and warehouse.table(RUNS).transaction_version(applied) is not None:
        return warehouse.table(RUNS).version()
    rows = pa.Table.from_pylist([row], schema=RUNS_SCHEMA)
    return warehouse.append(RUNS, rows, commit=applying(applied, 1)).version
