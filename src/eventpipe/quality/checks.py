"""The built-in data-quality checks, as data.

A check's SQL returns the offending rows: none when all is well. Checks read
the warehouse's views, plus ``ingested_files`` (one row per source file:
``path, position, ingested_at, columns``), with the parameters ``$now`` and
the thresholds of ``[quality]`` (``$freshness_hours``, ``$volume_min_ratio``,
``$volume_max_ratio``, ``$max_late_event_rate``, ``$max_quarantine_rate``).

A check reads the table it guards as ``@this``. The runner binds ``@this`` to
the whole table, or, after an incremental run, to what the run changed (as
SQLMesh binds an audit's ``@this_model``): the bronze rows the run added, the
silver partitions it rewrote, the user_funnel rows of the users with new rows;
a check guarding any other table sees all of it. ``$newest_before`` is the
newest bronze event before the run (NULL when the whole table is checked).
``eventpipe check`` always checks whole tables.

A built-in check over a large table may carry a ``screen``: SQL that returns no
rows only when the check's own SQL would return none, far cheaper over whole
tables (a count of distinct hashes, sums of hashes). The runner runs the
check's SQL, which names the offending rows, only when the screen returns any.
"""

from dataclasses import dataclass
from typing import Literal

from eventpipe.errors import ConfigError
from eventpipe.fields import count_column
from eventpipe.settings import Settings
from eventpipe.sql import ident
from eventpipe.warehouse import TABLES

Severity = Literal["warn", "fail"]


@dataclass(frozen=True)
class Check:
    """A named rule: the table it guards, SQL returning offending rows, severity, description.

    ``layer`` says after which stage it runs; by default the layer of its table.
    """

    name: str
    table: str
    sql: str
    severity: Severity
    description: str
    layer: str | None = None
    # a user's SQL runs where it can read no file by name, as `eventpipe query` does
    sandboxed: bool = False
    # SQL over the whole guarded table (as ``@this``) that returns no rows only when ``sql``
    # would return none: a cheaper first look, after which ``sql`` runs only if it returns rows
    screen: str | None = None

    @property
    def runs_after(self) -> str:
        if self.layer:
            return self.layer
        for table in TABLES:
            if table.view == self.table:
                return table.layer
        views = ", ".join(t.view for t in TABLES)
        raise ConfigError(f"check {self.name}: unknown table {self.table!r}; tables are: {views}")


def _unique(key: str) -> str:
    """Rows sharing a key (or without one). Keys are first grouped by their 64-bit hash, far
    cheaper than by 32-character text; only keys whose hash repeats are compared whole."""
    return f"""
WITH repeated AS (SELECT hash({ident(key)}) AS h FROM @this GROUP BY 1 HAVING count(*) > 1)
SELECT {ident(key)}, count(*) AS copies
FROM @this
WHERE {ident(key)} IS NULL OR hash({ident(key)}) IN (SELECT h FROM repeated)
GROUP BY 1
HAVING count(*) > 1 OR {ident(key)} IS NULL
"""


def _keys_screen(keys: tuple[str, ...], counts: tuple[str, ...] = ()) -> str:
    """No rows when no key is missing, no count is missing or negative, and the keys' hashes all
    differ (then the keys do too): the screen of ``_unique`` and ``_keys_and_counts``. Counting
    distinct hashes costs less than grouping them with a count each."""
    missing = [f"{ident(k)} IS NULL" for k in keys]
    bad = [f"{ident(c)} IS NULL OR {ident(c)} < 0" for c in counts]
    return f"""
SELECT count(*) AS rows_checked
FROM @this
HAVING count(DISTINCT hash({", ".join(ident(k) for k in keys)})) < count(*)
    OR count(*) FILTER (WHERE {" OR ".join(missing + bad)}) > 0
"""


def _keys_and_counts(keys: tuple[str, ...], counts: tuple[str, ...]) -> str:
    """Rows of a gold table with a missing or repeated key, or a missing or negative count."""
    key_list = ", ".join(ident(k) for k in keys)
    missing_key = " OR ".join(f"t.{ident(k)} IS NULL" for k in keys)
    bad_count = " OR ".join(f"t.{ident(c)} IS NULL OR t.{ident(c)} < 0" for c in counts)
    same_key = " AND ".join(f"t.{ident(k)} = r.{ident(k)}" for k in keys)
    # the repeated keys grouped, then looked up: a count per key as a window over every row
    # sorted them all (0.7 s for user_funnel at 10M events)
    return f"""
WITH repeated AS (
    SELECT {key_list}, count(*) AS key_copies FROM @this GROUP BY {key_list} HAVING count(*) > 1
)
SELECT t.*,
    CASE
        WHEN {missing_key} THEN 'missing key'
        WHEN r.key_copies IS NOT NULL THEN 'repeated key'
        ELSE 'missing or negative count'
    END AS problem
FROM @this AS t LEFT JOIN repeated AS r ON {same_key}
WHERE {missing_key} OR r.key_copies IS NOT NULL OR {bad_count}
"""


def _unique_key(name: str, table: str, key: str, description: str) -> Check:
    return Check(name, table, _unique(key), "fail", description, screen=_keys_screen((key,)))


def _valid_keys_and_counts(
    name: str, table: str, keys: tuple[str, ...], counts: tuple[str, ...], description: str
) -> Check:
    return Check(
        name, table, _keys_and_counts(keys, counts), "fail", description, screen=_keys_screen(keys, counts)
    )


def _sums_to_silver(view: str, counts: str) -> str:
    """A table's counts sum to silver's rows: over whole tables, whatever is bound to ``@this``."""
    return f"""
WITH figures AS (
    SELECT
        (SELECT coalesce(sum({ident(counts)}), 0) FROM {ident(view)}) AS counted,
        (SELECT count(*) FROM silver_events) AS silver_events
)
SELECT counted, silver_events, counted - silver_events AS difference
FROM figures
WHERE counted <> silver_events
"""


# bronze rows = silver events + duplicates removed + rows quarantined in silver
_CONSERVATION = """
WITH figures AS (
    SELECT
        (SELECT count(*) FROM bronze_events) AS bronze_rows,
        (SELECT count(*) FROM silver_events) AS silver_events,
        (SELECT coalesce(sum(duplicates), 0) FROM silver_events) AS duplicates_removed,
        (SELECT count(*) FROM quarantine WHERE stage = 'silver') AS quarantined_in_silver
)
SELECT *, bronze_rows - silver_events - duplicates_removed - quarantined_in_silver AS difference
FROM figures
WHERE bronze_rows <> silver_events + duplicates_removed + quarantined_in_silver
"""

# A session holding an event of day D starts on or before D and ends on or after it: only those
# sessions are looked at.
_EVENT_WITHOUT_SESSION = """
WITH days AS (SELECT min(event_date) AS first, max(event_date) AS last FROM @this)
SELECT e.event_id, e.session_id, e.user_id, e.event_time
FROM @this AS e
ANTI JOIN (
    SELECT session_id, user_id FROM sessions, days
    WHERE session_end >= days.first AND session_date <= days.last
) AS s ON e.session_id = s.session_id AND e.user_id = s.user_id
"""


def _hash_sum(keys: str, times: str | None = None) -> str:
    """SQL: the sum of the rows' 64-bit hashes of ``keys`` (each counted ``times`` times), exact
    (DECIMAL(38, 0) holds the hashes of over 10^18 rows). Two sides' sums agree over different
    keys only by a chance of about one in 2^64: a screen compares them instead of joining keys."""
    hashed = f"CAST(hash({keys}) AS DECIMAL(38, 0))"
    return f"coalesce(sum({f'{times} * ' if times else ''}{hashed}), 0)"


# Every event names a session of its user when the events' (session, user) keys are, counted
# with their multiplicity, the sessions' keys counted events_count times: far cheaper than the
# anti-join, whose hash table of text keys spills at 40M events (12 s against 1.6 s).
_EVENT_WITHOUT_SESSION_SCREEN = f"""
WITH events AS (
    SELECT {_hash_sum("session_id, user_id")} AS keys,
        count(*) FILTER (WHERE session_id IS NULL OR user_id IS NULL) AS without_key
    FROM @this
), counted AS (
    SELECT {_hash_sum("session_id, user_id", times="events_count")} AS keys
    FROM sessions
)
SELECT e.keys AS event_keys, c.keys AS session_keys, e.without_key
FROM events AS e, counted AS c
WHERE e.keys <> c.keys OR e.without_key > 0
"""

_SESSION_START_AND_END = """
SELECT session_id, user_id, session_start, session_end
FROM @this
WHERE session_start IS NULL OR session_end IS NULL OR session_end < session_start
"""

_SESSION_LENGTH = """
SELECT session_id, user_id, session_length_minutes
FROM @this
WHERE session_length_minutes IS NULL OR session_length_minutes < 0
"""

# Silver's users (those of the events checked) each have one row in user_funnel.
_USER_FUNNEL_USERS = """
WITH users AS (SELECT DISTINCT user_id FROM @this),
figures AS (
    SELECT
        (SELECT count(*) FROM users) AS silver_users,
        (SELECT count(*) FROM user_funnel WHERE user_id IN (SELECT user_id FROM users)) AS user_funnel_rows
)
SELECT * FROM figures WHERE user_funnel_rows <> silver_users
"""

# Silver's distinct users (none missing) are user_funnel's users, one row each, when the two
# have as many and their hashes sum alike: one distinct over silver's users, without the join
# of user_funnel to them.
_USER_FUNNEL_USERS_SCREEN = f"""
WITH users AS (
    SELECT count(*) AS silver_users, count(user_id) AS with_id, {_hash_sum("user_id")} AS keys
    FROM (SELECT DISTINCT user_id FROM @this)
), rows AS (
    SELECT count(*) AS user_funnel_rows, {_hash_sum("user_id")} AS keys
    FROM user_funnel
)
SELECT u.silver_users, r.user_funnel_rows
FROM users AS u, rows AS r
WHERE u.silver_users <> r.user_funnel_rows OR u.with_id < u.silver_users OR u.keys <> r.keys
"""

_FUNNEL_NEVER_INCREASES = """
WITH steps AS (
    SELECT level, step_number, step, entered,
        lag(entered) OVER (PARTITION BY level ORDER BY step_number) AS entered_previous_step
    FROM @this
)
SELECT * FROM steps WHERE entered > entered_previous_step
"""

_FRESHNESS = """
SELECT max(event_time) AS newest_event, $now::TIMESTAMPTZ AS checked_at,
    (epoch_us($now::TIMESTAMPTZ) - epoch_us(max(event_time))) / 3600e6 AS age_hours
FROM silver_events  -- all of it: the newest event may be one the run did not touch
HAVING epoch_us($now::TIMESTAMPTZ) - epoch_us(max(event_time)) > $freshness_hours * 3600e6
"""

# The newest day against the average of the (up to) seven days before it that have events.
_VOLUME = """
WITH daily AS (
    SELECT event_date AS date, count(*) AS events FROM silver_events GROUP BY 1
), newest AS (
    SELECT * FROM daily ORDER BY date DESC LIMIT 1
), before_newest AS (
    SELECT avg(d.events) AS average, count(*) AS days
    FROM daily AS d, newest AS n
    WHERE d.date >= n.date - 7 AND d.date < n.date
)
SELECT n.date, n.events, t.average AS trailing_average, t.days AS trailing_days, n.events / t.average AS ratio
FROM newest AS n, before_newest AS t
WHERE t.days > 0
    AND (n.events < $volume_min_ratio * t.average OR n.events > $volume_max_ratio * t.average)
"""


# Per file, its events older than the newest event of the files ingested before it, or than
# $newest_before (when only the run's new rows are checked, the newest event before them).
_LATE_EVENTS = """
WITH files AS (
    SELECT _source_file AS file, min(_ingested_at) AS ingested_at, max(event_time) AS newest
    FROM @this
    GROUP BY 1
), watermarks AS (
    SELECT file, greatest(max(newest) OVER (
        ORDER BY ingested_at, file ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ), $newest_before::TIMESTAMPTZ) AS newest_before
    FROM files
), by_file AS (
    SELECT b._source_file AS file, count(*) AS events,
        count(*) FILTER (WHERE b.event_time < w.newest_before) AS late_events
    -- The small side first: DuckDB builds its hash table on the right side,
    -- and with tied estimates it would build it on every bronze row.
    FROM watermarks AS w RIGHT JOIN @this AS b ON b._source_file = w.file
    GROUP BY 1
)
SELECT file, events, late_events, late_events / events AS late_event_rate
FROM by_file
WHERE late_events > $max_late_event_rate * events
"""


# Records of a file = its bronze rows + its rows quarantined in bronze; silver
# quarantines rows that are also in bronze.
_QUARANTINE_RATE = """
WITH in_bronze AS (
    SELECT _source_file AS file, count(*) AS bronze_rows FROM bronze_events GROUP BY 1
), quarantined AS (
    SELECT _source_file AS file,
        count(*) FILTER (WHERE stage = 'bronze') AS quarantined_in_bronze,
        count(*) AS quarantined
    FROM quarantine
    GROUP BY 1
), rates AS (
    SELECT file, quarantined, coalesce(bronze_rows, 0) + quarantined_in_bronze AS records
    FROM quarantined LEFT JOIN in_bronze USING (file)
)
SELECT file, records, quarantined, quarantined / records AS quarantine_rate
FROM rates
WHERE quarantined > $max_quarantine_rate * records
"""

_SCHEMA_DRIFT = """
WITH ordered AS (
    SELECT path, columns, lag(columns) OVER (ORDER BY position) AS previous_columns
    FROM ingested_files
    WHERE array_length(columns) > 0  -- files ingested before columns were recorded are unknown
)
SELECT path AS file,
    list_filter(columns, lambda c: NOT list_contains(previous_columns, c)) AS appeared,
    list_filter(previous_columns, lambda c: NOT list_contains(columns, c)) AS disappeared
FROM ordered
WHERE previous_columns IS NOT NULL AND list_sort(columns) <> list_sort(previous_columns)
"""


def built_in_checks(event_types: list[str], revenue_type: str) -> tuple[Check, ...]:
    """The built-in checks, for the count columns that ``event_types`` give gold."""
    type_counts = tuple(count_column(t) for t in event_types)
    return (
    # bronze
    Check(
        "late_event_rate", "bronze_events", _LATE_EVENTS, "warn",
        "a file's share of events older than the newest event before it stays under max_late_event_rate",
    ),
    Check(
        "schema_drift", "bronze_events", _SCHEMA_DRIFT, "warn",
        "every source file has the same columns as the file ingested before it",
    ),
    # silver
    Check(
        "conservation", "silver_events", _CONSERVATION, "fail",
        "bronze rows = silver events + duplicates removed + rows quarantined in silver",
    ),
    Check(
        "quarantine_rate", "quarantine", _QUARANTINE_RATE, "warn",
        "a file's share of quarantined records stays under max_quarantine_rate",
        layer="silver",
    ),
    # an event_id (session_id) is derived from the event (first event), so copies share a partition
    _unique_key("event_id_unique", "silver_events", "event_id",
                "every silver event has an event_id of its own"),
    Check("event_in_session", "silver_events", _EVENT_WITHOUT_SESSION, "fail",
          "every silver event belongs to a session that exists, of the same user",
          screen=_EVENT_WITHOUT_SESSION_SCREEN),
    _unique_key("session_id_unique", "sessions", "session_id", "every session has a session_id of its own"),
    Check("session_start_and_end", "sessions", _SESSION_START_AND_END, "fail",
          "every session has a start and an end, and does not end before it starts"),
    Check("session_length_not_negative", "sessions", _SESSION_LENGTH, "fail",
          "every session's length is known and not negative"),
    Check("sessions_sum_to_silver", "sessions", _sums_to_silver("sessions", "events_count"), "fail",
          "session event counts sum to the silver row count"),
    Check("freshness", "silver_events", _FRESHNESS, "warn",
          "the newest event is at most freshness_hours old by the run's clock"),
    Check("volume", "silver_events", _VOLUME, "warn",
          "the newest day's events are within volume_min_ratio..volume_max_ratio of the trailing "
          "7-day average"),
    # gold
    _valid_keys_and_counts("events_by_minute_valid", "events_by_minute", ("minute",), ("events_count",),
                           "one row per minute, with a count that is not negative"),
    Check("events_by_minute_sums_to_silver", "events_by_minute",
          _sums_to_silver("events_by_minute", "events_count"), "fail",
          "events_by_minute sums to the silver row count"),
    _valid_keys_and_counts("events_by_type_valid", "events_by_type",
                           ("event_type",), ("events_count", "users"),
                           "one row per event type, with counts that are not negative"),
    Check("events_by_type_sums_to_silver", "events_by_type",
          _sums_to_silver("events_by_type", "events_count"), "fail",
          "events_by_type sums to the silver row count"),
    _valid_keys_and_counts("user_funnel_valid", "user_funnel", ("user_id",), (*type_counts, "revenue"),
                           "one row per user_id, with counts and revenue that are not negative"),
    Check("user_funnel_covers_users", "silver_events", _USER_FUNNEL_USERS, "fail",
          "every user of silver has one row in user_funnel", layer="gold", screen=_USER_FUNNEL_USERS_SCREEN),
    _valid_keys_and_counts("funnel_valid", "funnel", ("level", "step_number"), ("entered",),
                           "one row per level and step, with a count that is not negative"),
    Check("funnel_never_increases", "funnel", _FUNNEL_NEVER_INCREASES, "fail",
          "no funnel step has more entrants than the step before it"),
    _valid_keys_and_counts("sessions_daily_valid", "sessions_daily", ("date",), ("sessions", "users"),
                           "one row per day, with counts that are not negative"),
    _valid_keys_and_counts("daily_metrics_valid", "daily_metrics", ("date",),
                           ("active_users", "events", count_column(revenue_type), "revenue"),
                           "one row per day, with counts and revenue that are not negative"),
)  # fmt: skip


#: The built-in checks of the default event types.
BUILT_IN_CHECKS = built_in_checks(["view", "cart", "remove_from_cart", "purchase"], "purchase")


def all_checks(settings: Settings) -> list[Check]:
    """The built-in checks followed by the user's; names must be unique."""
    checks = list(built_in_checks(settings.event_types, settings.revenue_type))
    user_checks = settings.quality.checks
    names = {c.name for c in checks}
    for user in user_checks:
        if user.name in names:
            raise ConfigError(f"quality check {user.name!r} is defined twice; give each check its own name")
        names.add(user.name)
        checks.append(Check(user.name, user.table, user.sql, user.severity, user.description, sandboxed=True))
    for check in checks:
        check.runs_after  # noqa: B018  (validates the table name before anything runs)
    return checks
