"""Gold brought up to date with what silver changed since gold was built.

Silver's incremental builds only add events: to the users with new bronze
rows, on the days whose partitions they rewrite. So gold recomputes, with the
same SQL as a full build, only the rows those touch: the minutes and days of
rewritten event partitions, the dates of rewritten session partitions, the
users with new rows, the sessions of rewritten partitions. (``events_by_type``
and ``funnel`` are aggregated from the tables written here, by the gold stage.)
"""

import pyarrow as pa

from eventpipe.builds import REBUILT, marked, records_since
from eventpipe.engine import Engine
from eventpipe.engine.delta import Written, changed_partitions
from eventpipe.gold import sql
from eventpipe.settings import Settings
from eventpipe.sql import date_in, date_literal
from eventpipe.warehouse import (
    BRONZE_EVENTS,
    DAILY_METRICS,
    EVENTS_BY_MINUTE,
    FUNNEL_SESSIONS,
    GOLD_TABLES,
    SESSIONS,
    SESSIONS_DAILY,
    SILVER_EVENTS,
    USER_FUNNEL,
    TableSpec,
    Warehouse,
)

_CHANGED_USERS = "user_id IN (SELECT user_id FROM changed_users)"


def increment(
    warehouse: Warehouse, engine: Engine, settings: Settings, previous: dict, record: dict
) -> dict[TableSpec, Written] | None:
    """Update every gold table but those aggregated from ``user_funnel``; None (nothing written)
    if the changes cannot be told."""
    event_dates = changed_partitions(warehouse.table(SILVER_EVENTS), previous["silver_events"], "event_date")
    session_dates = changed_partitions(warehouse.table(SESSIONS), previous["sessions"], "session_date")
    if (
        event_dates is None
        or session_dates is None
        or not engine.expose_added("new_bronze", warehouse.table(BRONZE_EVENTS), previous["bronze"])
        or not engine.expose_version(
            "old_silver_events", warehouse.table(SILVER_EVENTS), previous["silver_events"]
        )
    ):
        return None
    in_days, in_session_days = date_in("event_date", event_dates), date_in("session_date", session_dates)
    # the users whose gold rows are recomputed: those with new bronze rows (and, below, more)
    engine.execute(
        "CREATE OR REPLACE TEMP TABLE changed_users AS "
        "SELECT DISTINCT user_id FROM new_bronze WHERE user_id IS NOT NULL"
    )
    warehouse.expose(engine, (SILVER_EVENTS, SESSIONS, *GOLD_TABLES))
    if any(REBUILT in r for r in records_since(warehouse.table(SILVER_EVENTS), previous["silver_events"])):
        # a range rebuild may have changed any user with events on the days it rewrote
        engine.execute(
            "CREATE OR REPLACE TEMP TABLE changed_users AS SELECT user_id FROM changed_users "
            f"UNION SELECT user_id FROM silver_events WHERE {in_days} "
            f"UNION SELECT user_id FROM old_silver_events WHERE {in_days}"
        )
    # the changed users' events are read by several statements: one scan of silver for all
    engine.execute(
        "CREATE OR REPLACE TEMP TABLE user_events AS "
        f"SELECT user_id, event_time, event_type, price FROM silver_events WHERE {_CHANGED_USERS}"
    )
    views = {
        "day_events": f"SELECT * FROM silver_events WHERE {in_days}",
        "day_sessions": f"SELECT * FROM sessions WHERE {in_session_days}",
        "user_sessions": f"SELECT * FROM sessions WHERE {_CHANGED_USERS}",
        # a session's events are on or after its date: its partition and later ones
        "session_events": f"SELECT * FROM silver_events WHERE {_from_first('event_date', session_dates)} "
        "AND session_id IN (SELECT session_id FROM day_sessions)",
    }
    for name, query in views.items():
        engine.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {query}")

    minute_sql, minute_params = sql.events_by_minute(settings.event_types, "day_events")
    users_sql, users_params = sql.user_funnel(
        settings.funnel_steps, settings.event_types, settings.revenue_type, "user_sessions", "user_events"
    )
    daily_sql, daily_params = sql.daily_metrics(settings.revenue_type, "day_events")
    statements = {
        EVENTS_BY_MINUTE: (
            f"SELECT * FROM events_by_minute WHERE NOT {date_in('CAST(minute AS DATE)', event_dates)} "
            f"UNION ALL SELECT * FROM ({minute_sql})",
            minute_params,
        ),
        USER_FUNNEL: (
            f"SELECT * FROM user_funnel WHERE NOT {_CHANGED_USERS} UNION ALL SELECT * FROM ({users_sql})",
            users_params,
        ),
        SESSIONS_DAILY: (
            f"SELECT * FROM sessions_daily WHERE NOT {date_in('date', session_dates)} "
            f"UNION ALL SELECT * FROM ({sql.sessions_daily('day_sessions')})",
            {},
        ),
        DAILY_METRICS: (
            f"SELECT * FROM daily_metrics WHERE NOT {date_in('date', event_dates)} "
            f"UNION ALL SELECT * FROM ({daily_sql})",
            daily_params,
        ),
    }
    written = {}
    for table, (statement, params) in statements.items():
        written[table] = warehouse.replace(table, engine.query(statement, params), commit=marked(record))
    if session_dates:
        statement, params = sql.session_step_times(settings.funnel_steps, "day_sessions", "session_events")
        written[FUNNEL_SESSIONS] = warehouse.replace(
            FUNNEL_SESSIONS,
            engine.query(statement, params),
            where=[("session_date", "in", sorted(session_dates))],
            commit=marked(record),
        )
    else:  # no session changed: a commit that only records the build
        written[FUNNEL_SESSIONS] = warehouse.append(FUNNEL_SESSIONS, pa.table({}), commit=marked(record))
    for name in ("day_events", "day_sessions", "user_sessions", "session_events"):
        engine.execute(f"DROP VIEW {name}")
    engine.execute("DROP TABLE user_events")
    engine.execute("DROP TABLE changed_users")
    return written


def _from_first(expression: str, dates: set[str]) -> str:
    """SQL that ``expression`` is on or after the earliest of ``dates``."""
    return f"{expression} >= {date_literal(min(dates))}" if dates else "FALSE"
