"""The gold tables as SQL over ``silver_events`` and ``sessions``.

Statements that depend on settings (the canonical types, the funnel steps)
are built by functions; values go in as parameters, names through ``ident``.
"""

from eventpipe.sql import ident

# Money is summed as decimals, so totals do not depend on the order of rows.
_REVENUE = "CAST(sum(CAST(price AS DECIMAL(18, 6))) FILTER (WHERE event_type = 'purchase') AS DOUBLE)"


def events_by_minute(event_types: list[str]) -> tuple[str, dict]:
    """Events per minute, in total and per canonical type (one column named after each type)."""
    per_type = ",\n    ".join(
        f"count(*) FILTER (WHERE event_type = $type_{i}) AS {ident(t)}" for i, t in enumerate(event_types)
    )
    statement = f"""
SELECT
    date_trunc('minute', event_time) AS minute,
    count(*) AS events_count,
    {per_type}
FROM silver_events
GROUP BY 1
"""
    return statement, {f"type_{i}": t for i, t in enumerate(event_types)}


EVENTS_BY_TYPE = """
SELECT event_type, count(*) AS events_count, count(DISTINCT user_id) AS users
FROM silver_events
GROUP BY 1
"""

USER_FUNNEL = f"""
SELECT
    user_id,
    count(*) FILTER (WHERE event_type = 'view') AS views,
    count(*) FILTER (WHERE event_type = 'cart') AS carts,
    count(*) FILTER (WHERE event_type = 'remove_from_cart') AS removals,
    count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
    coalesce({_REVENUE}, 0) AS revenue
FROM silver_events
GROUP BY 1
"""

SESSIONS_DAILY = """
SELECT
    session_date AS date,
    count(*) AS sessions,
    count(DISTINCT user_id) AS users,
    median(session_length_minutes) AS median_session_minutes,
    avg(session_length_minutes) AS mean_session_minutes,
    avg(CASE WHEN events_count = 1 THEN 1.0 ELSE 0.0 END) AS bounce_rate,
    avg(CASE WHEN converted THEN 1.0 ELSE 0.0 END) AS conversion_rate
FROM sessions
GROUP BY 1
"""

DAILY_METRICS = f"""
SELECT
    event_date AS date,
    count(DISTINCT user_id) AS active_users,
    count(*) AS events,
    count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
    coalesce({_REVENUE}, 0) AS revenue,
    {_REVENUE} / nullif(count(*) FILTER (WHERE event_type = 'purchase'), 0) AS average_order_value
FROM silver_events
GROUP BY 1
"""


def funnel(steps: list[str]) -> tuple[str, dict]:
    """The ordered funnel per session and per user.

    An entity enters step k at its earliest step-k event at or after the time it
    entered step k-1; it enters step 1 at its first step-1 event.
    """
    parts = []
    for level, entity in (("session", "session_id"), ("user", "user_id")):
        reached = [
            f"{level}_1 AS (SELECT {entity} AS entity, min(event_time) AS at FROM silver_events "
            f"WHERE event_type = $step_1 GROUP BY 1)"
        ]
        for k in range(2, len(steps) + 1):
            reached.append(
                f"{level}_{k} AS (SELECT e.{entity} AS entity, min(e.event_time) AS at "
                f"FROM silver_events AS e JOIN {level}_{k - 1} AS p "
                f"ON e.{entity} = p.entity AND e.event_time >= p.at "
                f"WHERE e.event_type = $step_{k} GROUP BY 1)"
            )
        parts.append((level, reached))

    ctes = ",\n".join(cte for _, reached in parts for cte in reached)
    counts = []
    for level, _ in parts:
        counts.append(
            f"SELECT '{level}' AS level, 1 AS step_number, $step_1 AS step, "
            f"(SELECT count(*) FROM {level}_1) AS entered, NULL::DOUBLE AS median_seconds_from_previous"
        )
        for k in range(2, len(steps) + 1):
            counts.append(
                f"SELECT '{level}', {k}, $step_{k}, (SELECT count(*) FROM {level}_{k}), "
                f"(SELECT median(epoch(c.at - p.at)) FROM {level}_{k} AS c "
                f"JOIN {level}_{k - 1} AS p USING (entity))"
            )
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
