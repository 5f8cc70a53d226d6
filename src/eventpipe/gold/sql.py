"""The gold tables as SQL over named relations of silver events and sessions.

Each statement reads the relation it is given (``silver_events`` for a full
build, a restricted view of it for an incremental one), so a build of some
minutes, days or users runs exactly the SQL a full build runs. Values go in as
parameters, names through ``ident``.
"""

from eventpipe.fields import count_column, entered_column, first_column
from eventpipe.sql import ident, revenue, utc_minute_number


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


def events_by_type(event_types: list[str], users: str = "user_funnel") -> tuple[str, dict]:
    """Events and distinct users per type, from ``users`` (``user_funnel``: a row per user with
    a count per type). Exact, and one pass over a row per user instead of a distinct count over
    every event; an increment recomputes it whole, without silver as it was before."""
    totals = ", ".join(
        f"sum({c})::BIGINT AS events_{i}, count(*) FILTER (WHERE {c} > 0) AS users_{i}"
        for i, c in enumerate(ident(count_column(t)) for t in event_types)
    )
    per_type = "\nUNION ALL ".join(
        f"SELECT $type_{i} AS event_type, events_{i} AS events_count, users_{i} AS users FROM totals"
        for i in range(len(event_types))
    )
    statement = f"""
WITH totals AS MATERIALIZED (SELECT {totals} FROM {users})
SELECT * FROM ({per_type}) WHERE events_count > 0
"""
    return statement, {f"type_{i}": t for i, t in enumerate(event_types)}


def user_funnel(
    steps: list[str],
    event_types: list[str],
    revenue_type: str,
    sessions: str = "sessions",
    events: str = "silver_events",
) -> tuple[str, dict]:
    """Per user: a count per event type, revenue, and when the user entered each funnel step
    (``entered_<step>_at``; NULL from the first step the user never entered).

    Counts and the first step come from the user's sessions (one row per visit, not per
    event); revenue and the later steps from the few events of their types.
    """
    columns = [ident(count_column(t)) for t in event_types]
    sums = ", ".join(f"sum({c})::BIGINT AS {c}" for c in columns)
    first_step = f"min({ident(first_column(steps[0]))})"
    statement = f"""
WITH step_1 AS (
    SELECT user_id AS entity, {sums}, {first_step} AS at FROM {sessions} GROUP BY 1
), revenue AS (
    SELECT user_id AS entity, {revenue()} AS revenue
    FROM {events} WHERE event_type = $revenue_type GROUP BY 1
){_later_steps(steps, "user_id", events, firsts_known=False)}
SELECT entity AS user_id, {", ".join(f"step_1.{c}" for c in columns)},
    coalesce(revenue.revenue, 0) AS revenue,
    {_entered(steps)}
FROM step_1 LEFT JOIN revenue USING (entity) {_joins(steps)}
"""
    return statement, {**_step_parameters(steps), "revenue_type": revenue_type}


def sessions_daily(sessions: str = "sessions") -> str:
    return f"""
WITH per_day AS (
    SELECT
        session_date AS date,
        count(*) AS sessions,
        median(session_length_minutes) AS median_session_minutes,
        -- sums of integers, exact in any order: the same input gives the same bits
        sum(epoch_us(session_end) - epoch_us(session_start)) / count(*) / 60e6 AS mean_session_minutes,
        count(*) FILTER (WHERE events_count = 1) / count(*) AS bounce_rate,
        count(*) FILTER (WHERE converted) / count(*) AS conversion_rate
    FROM {sessions}
    GROUP BY 1
), {_distinct_users("session_date", sessions)}
SELECT date, sessions, users, median_session_minutes, mean_session_minutes, bounce_rate, conversion_rate
FROM per_day JOIN users_per_day USING (date)
"""


def daily_metrics(revenue_type: str, events: str = "silver_events") -> tuple[str, dict]:
    """Per day: active users, events, orders (``revenue_type`` events, a column named after
    them), revenue and the average order value."""
    orders = "count(*) FILTER (WHERE event_type = $revenue_type)"
    orders_column = ident(count_column(revenue_type))
    statement = f"""
WITH per_day AS (
    SELECT
        event_date AS date,
        count(*) AS events,
        {orders} AS {orders_column},
        coalesce({revenue()}, 0) AS revenue,
        {revenue()} / nullif({orders}, 0) AS average_order_value
    FROM {events}
    GROUP BY 1
), {_distinct_users("event_date", events)}
SELECT date, users AS active_users, events, {orders_column}, revenue, average_order_value
FROM per_day JOIN users_per_day USING (date)
"""
    return statement, {"revenue_type": revenue_type}


def _distinct_users(day: str, rows: str) -> str:
    """A CTE ``users_per_day`` (``date``, ``users``): the distinct users of ``rows`` per ``day``.

    Apart from the day's other figures: in one grouping with them, DuckDB took 2.8-3.0 s for
    sessions_daily at 40M events against 1.9-2.2 for the two groupings joined (daily_metrics
    2.3-2.7 against 2.2-2.3).
    """
    return f"users_per_day AS (SELECT {day} AS date, count(DISTINCT user_id) AS users FROM {rows} GROUP BY 1)"


def _later_steps(steps: list[str], key: str, events: str, *, firsts_known: bool) -> str:
    """CTEs ``step_2`` ... : when each entity of ``step_1`` (``entity``, ``at``) entered each later
    step of the ordered funnel: its earliest step-k event at or after it entered step k-1.

    With ``firsts_known``, ``step_1`` also has ``first_k``, the entity's earliest event of step
    k's type, for each later step k (sessions have them): that is the answer when it is not
    before, and only the few entities whose first step-k event came before they entered step
    k-1 look for a later one among the events. Joining every session to the events instead took
    4 s of the 8 s of funnel_sessions at 40M events. For users, computing the firsts in the
    grouping of their sessions cost more (at 40M) than the join it saves.
    """
    ctes = []
    for k in range(2, len(steps) + 1):
        carried = "".join(f", p.first_{n}" for n in range(k + 1, len(steps) + 1)) if firsts_known else ""
        only_early = f"p.first_{k} < p.at AND " if firsts_known else ""
        entered = f"""SELECT e.{ident(key)} AS entity, min(e.event_time) AS at{carried}
    FROM {events} AS e JOIN step_{k - 1} AS p ON e.{ident(key)} = p.entity AND e.event_time >= p.at
    WHERE {only_early}e.event_type = $step_{k}
    GROUP BY e.{ident(key)}{carried}"""
        if firsts_known:  # the others entered step k with their first step-k event
            entered = (
                f"SELECT p.entity, p.first_{k} AS at{carried} FROM step_{k - 1} AS p "
                f"WHERE p.first_{k} >= p.at\n    UNION ALL\n    {entered}"
            )
        ctes.append(f""", step_{k} AS (\n    {entered}\n)""")
    return "".join(ctes)


def _entered(steps: list[str]) -> str:
    """A column per step, when the entity entered it (a step's CTE only holds entities that
    entered the one before, so a later step is NULL once one is)."""
    return ", ".join(f"step_{k}.at AS {ident(entered_column(s))}" for k, s in enumerate(steps, start=1))


def _joins(steps: list[str]) -> str:
    return " ".join(f"LEFT JOIN step_{k} USING (entity)" for k in range(2, len(steps) + 1))


def _step_parameters(steps: list[str]) -> dict:
    return {f"step_{k}": s for k, s in enumerate(steps, start=1)}


def session_step_times(steps: list[str], sessions: str, events: str) -> tuple[str, dict]:
    """When each session of ``sessions`` that entered the first funnel step entered each step,
    with the session's date, which the table is partitioned by. ``events`` holds (at least)
    the sessions' events."""
    later = enumerate(steps[1:], start=2)
    later_firsts = "".join(f", {ident(first_column(s))} AS first_{k}" for k, s in later)
    statement = f"""
WITH step_1 AS (
    SELECT session_id AS entity, session_date, {ident(first_column(steps[0]))} AS at{later_firsts}
    FROM {sessions} WHERE {ident(first_column(steps[0]))} IS NOT NULL
){_later_steps(steps, "session_id", events, firsts_known=True)}
SELECT entity AS session_id, session_date, {_entered(steps)}
FROM step_1 {_joins(steps)}
"""
    return statement, _step_parameters(steps)


def funnel(steps: list[str]) -> tuple[str, dict]:
    """The ordered funnel per session and per user, from ``funnel_sessions`` and ``user_funnel``:
    how many entered each step, conversion, and the median time from the previous step."""
    figures, counts = [], []
    at = [ident(entered_column(s)) for s in steps]
    users = f"(SELECT * FROM user_funnel WHERE {at[0]} IS NOT NULL)"
    for level, entities in (("session", "funnel_sessions"), ("user", users)):
        # one pass over the entities for all steps; MATERIALIZED, so it is not repeated per step
        per_step = ", ".join(
            f"count({at[k - 1]}) AS entered_{k}, "
            f"median((epoch_us({at[k - 1]}) - epoch_us({at[k - 2]})) / 1e6) AS median_{k}"
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
    return statement, _step_parameters(steps)
