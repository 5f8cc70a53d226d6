"""Silver brought up to date with the bronze rows added since it was built, without a full build.

Added events can only extend or merge sessions, never split them (a new event
only shortens gaps). So with T the earliest new valid event, the only sessions
that can change are those ending at or after T minus the timeout; their events
plus the new rows are sessionized again, exactly as a full build would, and
the partitions holding their events are rewritten; new events elsewhere are
added beside a partition's files. Everything else stays as it is.
"""

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from eventpipe.builds import applying, marked
from eventpipe.engine import Engine
from eventpipe.engine.delta import Written, files_per_partition
from eventpipe.settings import Settings
from eventpipe.silver import sql
from eventpipe.sql import date_in, date_literal
from eventpipe.warehouse import BRONZE_EVENTS, QUARANTINE, SESSIONS, SILVER_EVENTS, TableSpec, Warehouse

#: Later than any event: the end of a build that nothing in the future will invalidate.
FOREVER = datetime.max.replace(tzinfo=UTC)

#: The app transaction that says up to which bronze version silver's rejects are in the quarantine.
REJECTS_APPLIED = "eventpipe.silver.rejects"

# Files a partition may have before rows only added to it are written with all of its rows instead
# (readers open every file; a full build writes a partition as one or two).
_MOST_FILES = 16

_FIELDS = (
    "event_time, event_type, product_id, category_id, category_code, brand, price, user_id, user_session"
)


def increment(
    warehouse: Warehouse, engine: Engine, settings: Settings, params: dict, previous: dict, record: dict
) -> bool:
    """Apply the bronze rows added since ``previous`` was built; False if the engine cannot tell them apart.

    ``record`` is what the new build records (its ``valid_until`` is lowered here when new
    rows are in the future).
    """
    since = previous["inputs"]["bronze"]
    if not engine.expose_added("bronze_events", warehouse.table(BRONZE_EVENTS), since):
        return False
    bronze_version = record["inputs"]["bronze"]
    first_future = engine.scalar(
        "SELECT min(event_time) FROM bronze_events WHERE event_time > $future_limit", params
    )
    valid_until = datetime.fromisoformat(previous["valid_until"])
    if first_future:
        valid_until = min(valid_until, first_future - timedelta(hours=settings.future_tolerance_hours))
    record = {**record, "valid_until": valid_until.astimezone(UTC).isoformat()}

    quarantine = warehouse.table(QUARANTINE)
    if (quarantine.transaction_version(REJECTS_APPLIED) or -1) < bronze_version:  # not twice after a kill
        warehouse.append(
            QUARANTINE, engine.query(sql.REJECTED, params), commit=applying(REJECTS_APPLIED, bronze_version)
        )
    engine.execute(f"CREATE OR REPLACE TEMP TABLE new_rows AS SELECT * FROM ({sql.VALID})", params)
    warehouse.expose(engine, (SILVER_EVENTS, SESSIONS))
    # per user with new rows, the sessions ending within the timeout before its first new event, or later;
    # the earliest such end as a constant too, so that only the files of sessions ending after it are read
    earliest = engine.scalar("SELECT min(event_time) FROM new_rows")
    engine.execute(
        """
        CREATE OR REPLACE TEMP TABLE touched AS
        SELECT s.session_id, s.session_date
        FROM sessions AS s JOIN (
            SELECT user_id, min(epoch_us(event_time)) - $timeout_us AS cutoff_us FROM new_rows GROUP BY 1
        ) AS n ON s.user_id = n.user_id AND epoch_us(s.session_end) >= n.cutoff_us
        WHERE s.session_end >= $earliest_end
        """,
        params | {"earliest_end": (earliest or FOREVER) - timedelta(microseconds=params["timeout_us"])},
    )
    # a touched session's events are on or after its date: as a literal, the earlier partitions are not read
    first_date = engine.scalar("SELECT min(session_date) FROM touched")
    from_first = f"event_date >= {date_literal(first_date.isoformat())}" if first_date else "FALSE"
    touched_events = f"{from_first} AND session_id IN (SELECT session_id FROM touched)"
    engine.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE event_rows AS
        SELECT {_FIELDS}, _source_file, _source_line, duplicates + 1 AS _copies
        FROM silver_events
        WHERE {touched_events}
        UNION ALL
        SELECT {_FIELDS}, _source_file, _source_line, _copies FROM new_rows
        """
    )
    params = {**params, **sql.expose_source_files(engine, "event_rows")}
    engine.execute(
        f"CREATE OR REPLACE TEMP TABLE new_events AS {sql.events(False, engine.ordered_windows)}", params
    )
    sessions_sql, sessions_params = sql.sessions(settings.event_types, settings.revenue_type)
    engine.execute(f"CREATE OR REPLACE TEMP TABLE new_sessions AS {sessions_sql}", sessions_params)
    untouched = "session_id NOT IN (SELECT session_id FROM touched)"
    rewrite_partitions(
        warehouse,
        engine,
        SILVER_EVENTS,
        "event_date",
        f"SELECT event_date FROM silver_events WHERE {touched_events}",
        untouched,
        "new_events",
        record,
    )
    rewrite_partitions(
        warehouse,
        engine,
        SESSIONS,
        "session_date",
        "SELECT session_date FROM touched",
        untouched,
        "new_sessions",
        record,
    )
    for name in ("new_rows", "touched", "event_rows", "new_events", "new_sessions"):
        engine.execute(f"DROP TABLE {name}")
    return True


def rewrite_partitions(
    warehouse: Warehouse,
    engine: Engine,
    table: TableSpec,
    partition: str,
    old_partitions: str,
    kept: str,
    new_rows: str,
    record: dict,
) -> Written:
    """Bring the table's partitions up to date with ``new_rows``, in one commit.

    The partitions ``old_partitions`` selects hold every row that changes: each is rewritten with
    its rows for which ``kept`` holds (SQL on the table's columns) and its new rows. A partition that
    only gains rows gets them as files of their own, unless it already has ``_MOST_FILES`` files:
    then it is rewritten too (all its rows are kept), so that files do not pile up.
    """
    changed = _partitions(engine, partition, old_partitions)
    gaining = _partitions(engine, partition, f"SELECT {partition} FROM {new_rows}")
    if not changed and not gaining:  # nothing changed here: a commit that only records the build
        return warehouse.append(table, pa.table({}), commit=marked(record))
    target = warehouse.table(table)
    files = files_per_partition(target, partition)
    rewritten = changed | {d for d in gaining if files[d] >= _MOST_FILES}
    columns = ", ".join(pa.schema(target.schema().to_arrow()).names)
    # the dates as literals, so that only their partitions are read
    rows = engine.query(
        f"""
        SELECT {columns} FROM {table.view} AS old
        WHERE {date_in(partition, rewritten)} AND {kept}
        UNION ALL
        SELECT {columns} FROM {new_rows}
        """
    )
    if not rewritten:  # rows only added: every file stays
        return warehouse.append(table, rows, commit=marked(record))
    return warehouse.replace(table, rows, where=[(partition, "in", sorted(rewritten))], commit=marked(record))


def _partitions(engine: Engine, partition: str, rows: str) -> set[str]:
    """The distinct dates of ``partition`` in the query ``rows``, as ISO texts (as partition folders
    and filters name them)."""
    found = engine.table(f"SELECT DISTINCT {partition} FROM ({rows})").column(0).to_pylist()
    return {d.isoformat() for d in found}
