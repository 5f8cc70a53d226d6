"""Silver recomputed from bronze for a range of event dates, everything else kept as it is.

A session is decided by the chain of its user's events between two gaps longer
than the timeout (a maximum session length only cuts a chain into pieces). So
the range is rebuilt from the whole chains that hold its events: bronze is read
over the range and a margin, and the margin widens until every such chain
starts and ends more than the timeout inside what was read. Those chains'
events and sessions replace, in their partitions, whatever silver held for
the range's dates and those chains; the silver quarantine rows of the range's
bronze rows are recomputed too. Each table changes in one commit.
"""

from datetime import UTC, date, datetime, time, timedelta

from eventpipe.engine import Engine
from eventpipe.fields import QUARANTINE_SCHEMA
from eventpipe.silver import sql
from eventpipe.silver.increment import rewrite_partitions
from eventpipe.sql import date_literal
from eventpipe.warehouse import BRONZE_EVENTS, QUARANTINE, SESSIONS, SILVER_EVENTS, Warehouse

_ALL_BRONZE = "all_bronze_events"
_DAY = timedelta(days=1)


def rebuild_dates(
    warehouse: Warehouse,
    engine: Engine,
    params: dict,
    max_session_length: bool,
    record: dict,
    dates: tuple[date, date],
    bronze_dates: tuple[date, date] | None,
) -> None:
    """Recompute silver events, sessions and silver quarantine rows for events dated ``dates``
    (first, last); ``bronze_dates``: the first and last date of bronze (None: it is empty)."""
    first, last = dates
    engine.expose_table(_ALL_BRONZE, warehouse.table(BRONZE_EVENTS))
    warehouse.expose(engine, (SILVER_EVENTS, SESSIONS, QUARANTINE))
    _bronze_between(engine, first, last)
    # the silver quarantine rows of the range's bronze rows, judged again; the others as they are
    rejects = engine.query(
        f"{sql.REJECTED} UNION ALL "  # REJECTED gives the quarantine's columns, in its order
        f"SELECT {', '.join(QUARANTINE_SCHEMA.names)} FROM quarantine AS q "
        "WHERE stage = 'silver' AND NOT EXISTS ("
        "SELECT 1 FROM bronze_events AS b "
        "WHERE b._source_file = q._source_file AND b._source_line = q._source_line)",
        params,
    )
    warehouse.replace(QUARANTINE, rejects, where=[("stage", "=", "silver")])

    start, end = first, last  # the dates read, and the most any of their chains reaches
    if bronze_dates is not None:
        start, end = _sessionize_chains(engine, params, max_session_length, dates, bronze_dates)
    else:  # no bronze rows at all: nothing to put back
        engine.execute("CREATE OR REPLACE TEMP TABLE new_events AS SELECT * FROM silver_events LIMIT 0")
        engine.execute(
            "CREATE OR REPLACE TEMP TABLE chains AS "
            "SELECT user_id, event_time AS chain_start, event_time AS chain_end FROM silver_events LIMIT 0"
        )
    sessions_sql, sessions_params = sql.sessions(params["event_types"], params["revenue_type"])
    engine.execute(f"CREATE OR REPLACE TEMP TABLE new_sessions AS {sessions_sql}", sessions_params)
    start, end = min(start, first), max(end, last)
    for table, partition, moment, new_rows in (
        (SILVER_EVENTS, "event_date", "event_time", "new_events"),
        (SESSIONS, "session_date", "session_start", "new_sessions"),
    ):
        # the range's rows, and those of the chains read (only the dates read can hold them)
        replaced = (
            f"{partition} BETWEEN {_date(start)} AND {_date(end)} AND ("
            f"{partition} BETWEEN {_date(first)} AND {_date(last)} OR EXISTS (SELECT 1 FROM chains AS c "
            f"WHERE c.user_id = old.user_id AND old.{moment} BETWEEN c.chain_start AND c.chain_end))"
        )
        old_partitions = f"SELECT {partition} FROM {table.view} AS old WHERE {replaced}"
        rewrite_partitions(
            warehouse, engine, table, partition, old_partitions, f"NOT ({replaced})", new_rows, record
        )
    for name in ("event_rows", "new_events", "chains", "new_sessions"):
        engine.execute(f"DROP TABLE IF EXISTS {name}")


def _bronze_between(engine: Engine, first: date, last: date) -> None:
    """Make ``bronze_events``, which silver's SQL reads, the bronze rows dated ``first``..``last``."""
    engine.unregister("bronze_events")  # Arrow data registered under the name would hide the view
    engine.execute(
        f"CREATE OR REPLACE VIEW bronze_events AS SELECT * FROM {_ALL_BRONZE} "
        f"WHERE event_date BETWEEN {_date(first)} AND {_date(last)}"
    )


def _sessionize_chains(
    engine: Engine,
    params: dict,
    max_session_length: bool,
    dates: tuple[date, date],
    bronze_dates: tuple[date, date],
) -> tuple[date, date]:
    """The dates read. Leaves ``new_events``, the silver events of the chains holding the
    range's events, and ``chains``, their spans."""
    timeout = timedelta(microseconds=params["timeout_us"])
    (first, last), (oldest, newest) = dates, bronze_dates
    first, last = max(min(first, newest), oldest), min(max(last, oldest), newest)  # what bronze holds
    before, after = _DAY, _DAY
    while True:
        start, end = max(first - before, oldest), min(last + after, newest)
        _bronze_between(engine, start, end)
        engine.execute(
            "CREATE OR REPLACE TEMP TABLE event_rows AS " + sql.VALID,
            params,
        )
        events_sql = sql.events(max_session_length, engine.ordered_windows)
        engine.execute(
            f"CREATE OR REPLACE TEMP TABLE window_events AS {events_sql}",
            {**params, **sql.expose_source_files(engine, "event_rows")},
        )
        engine.execute(_CHAINS, {**params, "from": midnight(first), "until": midnight(last + _DAY)})
        earliest, latest = _row(engine, "SELECT min(chain_start), max(chain_end) FROM chains")
        # a chain is whole when no event outside what was read can be within the timeout of its ends
        open_before = earliest is not None and start > oldest and earliest - timeout <= midnight(start)
        open_after = latest is not None and end < newest and latest + timeout >= midnight(end + _DAY)
        if not (open_before or open_after):
            break
        before, after = before * (2 if open_before else 1), after * (2 if open_after else 1)
    engine.execute(
        "CREATE OR REPLACE TEMP TABLE new_events AS SELECT e.* FROM window_events AS e "
        "JOIN chains AS c ON c.user_id = e.user_id AND e.event_time BETWEEN c.chain_start AND c.chain_end"
    )
    engine.execute("DROP TABLE window_events")
    return start, end


# Per user, the chains of events between gaps longer than the timeout that hold an event of the range.
_CHAINS = """
CREATE OR REPLACE TEMP TABLE chains AS
WITH gaps AS (
    SELECT user_id, event_time, event_id,
        coalesce(epoch_us(event_time) - lag(epoch_us(event_time)) OVER by_user > $timeout_us, true)
            AS starts_chain
    FROM window_events
    WINDOW by_user AS (PARTITION BY user_id ORDER BY event_time, event_id)
), numbered AS (
    SELECT *, sum(starts_chain::INTEGER) OVER (
        PARTITION BY user_id ORDER BY event_time, event_id ROWS UNBOUNDED PRECEDING
    ) AS chain
    FROM gaps
)
SELECT user_id, min(event_time) AS chain_start, max(event_time) AS chain_end
FROM numbered
GROUP BY user_id, chain
HAVING count(*) FILTER (WHERE event_time >= $from AND event_time < $until) > 0
"""


def _date(day: date) -> str:
    return date_literal(day.isoformat())


def _row(engine: Engine, query: str) -> tuple:
    return tuple(engine.table(query).to_pylist()[0].values())


def midnight(day: date) -> datetime:
    """The UTC midnight that starts ``day``."""
    return datetime.combine(day, time(), UTC)
