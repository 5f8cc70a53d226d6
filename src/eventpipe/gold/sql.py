"""The gold tables as SQL over named relations of silver events and sessions.

Each statement reads the relation it is given (``silver_events`` for a full
build, a restricted view of it for an incremental one), so a build of some
minutes, days or users runs exactly the SQL a full build runs. Values go in as
parameters, names through ``ident``.
"""

from eventpipe.fields import count_column
from eventpipe.sql import ident, revenue, utc_date, utc_minute_number


def events_by_minute(event_types: list[str], events: str = "silver_events") -> tuple[str, dict]:
    """Events per minute, in total and per canonical type (one column named after each type)."""
    per_type = ",\n    ".join(
        f"count(*) FILTER (WHERE event_type = $type_{i}) AS {ident(t)}" for i, t in enumerate(event_types)
    )
    # grouped by the minute's number, made a time once per minute
    statement = f"""
SELECT to_timestamp(minute_number * 60) AS minute, * EXCLUDE (minute_number)
FROM (
    SELECT
        {utc_minute_number("event_time")} AS minute_number,
        count(*) AS events_count,
        {per_type}
    FROM {events}
    GROUP BY 1
)
"""
    return statement, {f"type_{i}": t for i, t in enumerate(event_types)}


def events_by_type(events: str = "silver_events") -> str:
    return f"""
SELECT event_type, count(*) AS events_count, count(DISTINCT user_id) AS users
FROM {events}
GROUP BY 1
"""


def user_funnel(
    steps: list[str], event_types: list[str], revenue_type: str, events: str = "silver_events"
) -> tuple[str, dict]:
    """Per user: a count per event type, revenue, and when the user entered each funnel step
    (``funnel_step_times``, NULL if never the first)."""
    columns = [ident(count_column(t)) for t in event_types]
    counts = "".join(
        f"\n        count(*) FILTER (WHERE event_type = $user_type_{i}) AS {c},"
        for i, c in enumerate(columns)
    )
    statement, params = step_times(
        steps,
        "user_id",
        events,
        f"{counts}\n        coalesce({revenue()}, 0) AS revenue",
        ", ".join([*columns, "revenue"]),
        "funnel_step_times",
    )
    types = {f"user_type_{i}": t for i, t in enumerate(event_types)}
    return statement, {**params, **types, "revenue_type": revenue_type}


def sessions_daily(sessions: str = "sessions") -> str:
    return f"""
SELECT
    session_date AS date,
    count(*) AS sessions,
    count(DISTINCT user_id) AS users,
    median(session_length_minutes) AS median_session_minutes,
    -- sums of integers, exact in any order: the same input gives the same bits
    sum(epoch_us(session_end) - epoch_us(session_start)) / count(*) / 60e6 AS mean_session_minutes,
    count(*) FILTER (WHERE events_count = 1) / count(*) AS bounce_rate,
    count(*) FILTER (WHERE converted) / count(*) AS conversion_rate
FROM {sessions}
GROUP BY 1
"""


def daily_metrics(revenue_type: str, events: str = "silver_events") -> tuple[str, dict]:
    """Per day: active users, events, orders (``revenue_type`` events, a column named after
    them), revenue and the average order value."""
    orders = "count(*) FILTER (WHERE event_type = $revenue_type)"
    statement = f"""
SELECT
    event_date AS date,
    count(DISTINCT user_id) AS active_users,
    count(*) AS events,
    {orders} AS {ident(count_column(revenue_type))},
    coalesce({revenue()}, 0) AS revenue,
    {revenue()} / nullif({orders}, 0) AS average_order_value
FROM {events}
GROUP BY 1
"""
    return statement, {"revenue_type": revenue_type}


def step_times(
    steps: list[str],
    entity: str,
    events: str = "silver_events",
    aggregates: str = "",
    columns: str = "",
    times_column: str = "step_times",
    entered_only: bool = False,
) -> tuple[str, dict]:
    """When each ``entity`` (``session_id`` or ``user_id``) entered each step of the ordered funnel.

    One row per entity of ``events``: ``times_column[k]`` is its earliest step-k event
    at or after it entered step k-1 (NULL if it never did); it enters step 1 at
    its first step-1 event; the whole list is NULL if it never did (with
    ``entered_only``, such entities are left out). ``aggregates`` are further
    aggregates over the entity's events, computed in the same pass as step 1,
    and ``columns`` the names they are given in the result.
    """
    key = ident(entity)
    extra = f",{aggregates}" if aggregates else ""
    first = "min(event_time) FILTER (WHERE event_type = $step_1)"
    reached = [f"step_1 AS (SELECT {key} AS entity, {first} AS at{extra} FROM {events} GROUP BY 1)"]
    for k in range(2, len(steps) + 1):
        reached.append(
            f"step_{k} AS (SELECT e.{key} AS entity, min(e.event_time) AS at "
            f"FROM {events} AS e JOIN step_{k - 1} AS p ON e.{key} = p.entity AND e.event_time >= p.at "
            f"WHERE e.event_type = $step_{k} GROUP BY 1)"
        )
    times = ", ".join(f"step_{k}.at" for k in range(1, len(steps) + 1))
    joins = " ".join(f"LEFT JOIN step_{k} USING (entity)" for k in range(2, len(steps) + 1))
    ctes = ",\n".join(reached)
    selected = f"{columns}, " if columns else ""
    statement = f"""
WITH {ctes}
SELECT entity AS {key}, {selected}CASE WHEN step_1.at IS NOT NULL THEN [{times}] END AS {times_column}
FROM step_1 {joins}
{"WHERE step_1.at IS NOT NULL" if entered_only else ""}
"""
    return statement, {f"step_{k}": s for k, s in enumerate(steps, start=1)}


def session_step_times(steps: list[str], events: str) -> tuple[str, dict]:
    """``step_times`` of the sessions of ``events`` (all events of each) that entered the first
    step, with the session's date, which the table is partitioned by."""
    return step_times(
        steps,
        "session_id",
        events,
        f"\n        {utc_date('min(event_time)')} AS session_date",
        "session_date",
        entered_only=True,
    )


def funnel(steps: list[str]) -> tuple[str, dict]:
    """The ordered funnel per session and per user, from ``funnel_sessions`` and ``user_funnel``:
    how many entered each step, conversion, and the median time from the previous step."""
    figures, counts = [], []
    users = "(SELECT funnel_step_times AS step_times FROM user_funnel WHERE funnel_step_times IS NOT NULL)"
    for level, entities in (("session", "funnel_sessions"), ("user", users)):
        # one pass over the entities for all steps; MATERIALIZED, so it is not repeated per step
        per_step = ", ".join(
            f"count(step_times[{k}]) AS entered_{k}, "
            f"median(epoch(step_times[{k}] - step_times[{k - 1}])) AS median_{k}"
            for k in range(2, len(steps) + 1)
        )
        figures.append(
            f"{level}_figures AS MATERIALIZED (SELECT count(*) AS entered_1, "
            f"NULL::DOUBLE AS median_1{', ' if per_step else ''}{per_step} FROM {entities})"
        )
        counts.extend(
            f"SELECT '{level}' AS level, {k} AS step_number, $step_{k} AS step, entered_{k} AS entered, "
            f"median_{k} AS median_seconds_from_previous FROM {level}_figures"
            for k in range(1, len(steps) + 1)
        )
    ctes = ",\n".join(figures)
    union = "\nUNION ALL ".join(counts)
    statement = f"""
WITH {ctes},
steps AS ({union})
SELECT
    level, step_number, step, entered,
    entered / nullif(lag(entered) OVER (PARTITION BY level ORDER BY step_number), 0)
        AS conversion_from_previous,
    entered / nullif(first_value(entered) OVER (PARTITION BY level ORDER BY step_number), 0)
        AS conversion_from_first,
    median_seconds_from_previous
FROM steps
ORDER BY level, step_number
"""
    return statement, {f"step_{k}": s for k, s in enumerate(steps, start=1)}
