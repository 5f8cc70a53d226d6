"""The silver transformations as SQL over named relations.

Inputs: ``bronze_events`` (the bronze table); ``events()`` reads ``event_rows``
(valid rows, see ``VALID``) and ``sessions()`` reads silver events.
Parameters: ``$spellings`` and ``$canonical_types`` (two lists: spelling ->
canonical type), ``$future_limit`` (events after it are quarantined),
``$timeout_us`` (session gap, microseconds) and ``$max_session_us`` (a
session's maximum length, when there is one).
"""

import pyarrow as pa

from eventpipe.engine import Engine
from eventpipe.fields import count_column, first_column
from eventpipe.sql import exact_revenue, ident, utc_date

# Every bronze row, with its canonical type and the first rule it breaks (if any).
# The spellings are a constant map rather than a joined table: a join let the
# planner build its hash table on bronze, which does not fit in memory.
JUDGED = """
WITH typed AS (
    SELECT *,
        map_extract_value(map($spellings, $canonical_types), lower(trim(event_type))) AS canonical_type
    FROM bronze_events
)
SELECT *,
    CASE
        WHEN user_id IS NULL THEN 'user_id: missing'
        WHEN canonical_type IS NULL
            THEN 'event_type: not a known event type: "' || coalesce(event_type, '') || '"'
        WHEN price < 0 THEN 'price: negative'
        WHEN event_time > $future_limit THEN 'event_time: more than the allowed time in the future'
    END AS reason
FROM typed
"""

# Bronze rows that break a rule, as quarantine rows (the bronze row as JSON).
REJECTED = f"""
SELECT
    _source_file,
    _source_line,
    -- the time and the price as texts that every engine writes alike
    to_json(struct_pack(
        event_time := strftime(event_time, '%Y-%m-%d %H:%M:%S.%f'), event_type, product_id, category_id,
        category_code, brand, price := canonical_double(price), user_id, user_session
    ))::VARCHAR AS raw_record,
    'silver' AS stage,
    reason,
    $now::TIMESTAMPTZ AS _ingested_at
FROM ({JUDGED})
WHERE reason IS NOT NULL
"""

# Valid rows with their canonical type; each stands for ``_copies`` records (1 for a bronze row).
VALID = f"""
SELECT
    event_time, canonical_type AS event_type, product_id, category_id, category_code, brand, price,
    user_id, user_session, _source_file, _source_line, 1 AS _copies
FROM ({JUDGED})
WHERE reason IS NULL
"""


def valid_of_users(after: int | None, up_to: int | None) -> str:
    """VALID's rows of the users whose ``user_id`` is above ``after`` and at most ``up_to``
    (None: no bound on that side).

    A user's rows are all in one range, and silver's windows only look within a user:
    silver events built a range of users at a time are the events built from all rows at
    once. A range of ids, unlike a hash bucket, is a filter the Parquet scan applies itself.
    """
    bounds = []
    if after is not None:
        bounds.append(f"user_id > {int(after)}")
    if up_to is not None:
        bounds.append(f"user_id <= {int(up_to)}")
    return f"SELECT * FROM ({VALID}) WHERE {' AND '.join(bounds) or 'true'}"


# Silver events from ``event_rows`` (valid rows, each standing for ``_copies`` records:
# 1 for a bronze row, more for a silver event being recomputed).
#
# Rows are ordered by user, time and content id, so a user's events are adjacent and
# in time order, and copies of one event are adjacent. A copy group's last row in that
# order is the one kept: it has the smallest (file, line), where the event was first
# seen. Ties in time are ordered by event_id, so the same events always give the same
# sessions, whatever order they arrived in; a session's id hashes the user and its
# first event's id.
#
# On an engine whose windows read rows in the order of the query below them (DuckDB),
# one sort does all the work: the windows read that order as it streams past
# (``OVER ()``: no partition, no second sort). Elsewhere (Spark) each window is the
# user's events in that order. Both give the same rows: every window value is relative
# to the user's first row, which starts a visit and a copy group either way.
_BY_USER = "PARTITION BY user_id ORDER BY event_time, event_id, file_index DESC, _source_line DESC"

# The event's content as one text that every engine writes byte for byte: integers and
# strings as they are, the time as microseconds, the price as its shortest round-trip text.
_EVENT_ID = """md5(concat_ws(chr(31),
            epoch_us(event_time)::VARCHAR, event_type,
            coalesce(product_id::VARCHAR, chr(30)), coalesce(category_id::VARCHAR, chr(30)),
            coalesce(category_code, chr(30)), coalesce(brand, chr(30)),
            coalesce(canonical_double(price), chr(30)), user_id::VARCHAR, coalesce(user_session, chr(30))
        ))"""

_ORDERED = f"""
WITH identified AS (
    -- the file as its place among the files (in name order): a small number is far cheaper
    -- to sort and carry than a path
    SELECT r.event_time, r.event_type, r.product_id, r.category_id, r.category_code, r.brand, r.price,
        r.user_id, r.user_session, r._source_line, r._copies, f.file_index,
        {_EVENT_ID} AS event_id
    FROM {{rows}} AS r JOIN source_files AS f ON r._source_file = f._source_file
), ordered AS (
    SELECT * FROM identified
    {{order}}
), flagged AS (
    SELECT *,
        event_id IS DISTINCT FROM lag(event_id) OVER ({{window}}) AS first_copy,
        event_id IS DISTINCT FROM lead(event_id) OVER ({{window}}) AS last_copy,
        sum(_copies) OVER ({{window}} ROWS UNBOUNDED PRECEDING) AS copies_so_far,
        user_id IS DISTINCT FROM lag(user_id) OVER ({{window}})
            OR epoch_us(event_time) - lag(epoch_us(event_time)) OVER ({{window}}) > $timeout_us
            AS starts_visit
    FROM ordered
)"""

_SESSIONS_ARE_VISITS = """, starts AS (
    SELECT *, starts_visit AS starts_session FROM flagged
)"""

# A maximum length cuts a visit into pieces of that length, counted from the visit's start.
_SESSIONS_ARE_PIECES_OF_VISITS = """, visits AS (
    SELECT *,
        (epoch_us(event_time) - last_value(CASE WHEN starts_visit THEN epoch_us(event_time) END IGNORE NULLS)
            OVER ({window} ROWS UNBOUNDED PRECEDING)) // $max_session_us AS piece
    FROM flagged
), starts AS (
    SELECT *, starts_visit OR piece <> lag(piece) OVER ({window}) AS starts_session
    FROM visits
)"""

_SELECT_EVENTS = """, grouped AS (
    SELECT *,
        -- the records before this copy group: what the running count held before its first row
        last_value(CASE WHEN first_copy THEN copies_so_far - _copies END IGNORE NULLS)
            OVER ({window} ROWS UNBOUNDED PRECEDING) AS copies_before,
        last_value(CASE WHEN starts_session THEN md5(user_id::VARCHAR || ':' || event_id) END IGNORE NULLS)
            OVER ({window} ROWS UNBOUNDED PRECEDING) AS session_id
    FROM starts
)
SELECT
    event_id,
    session_id,
    event_time,
    {event_date} AS event_date,
    event_type, product_id, category_id, category_code, brand, price, user_id, user_session,
    (copies_so_far - copies_before - 1)::BIGINT AS duplicates,
    CAST($source_files[file_index] AS VARCHAR) AS _source_file,  -- typed when there are no files
    _source_line
FROM grouped
WHERE last_copy
"""


def events(max_session_length: bool, ordered_windows: bool, rows: str = "event_rows") -> str:
    """Silver events of the relation ``rows``; with ``max_session_length``, uses ``$max_session_us``.
    ``ordered_windows``: the engine's windows read rows in the order of the query below them.

    Also reads ``source_files`` (``_source_file``, ``file_index``: every file of ``rows``,
    numbered from 1 in name order) and ``$source_files`` (the same names as a list);
    :func:`expose_source_files` gives both.
    """
    sessions = _SESSIONS_ARE_PIECES_OF_VISITS if max_session_length else _SESSIONS_ARE_VISITS
    window = "" if ordered_windows else _BY_USER
    order = "ORDER BY user_id, event_time, event_id, file_index DESC, _source_line DESC"
    statement = _ORDERED.format(rows=rows, order=order if ordered_windows else "", window=window)
    statement += sessions + _SELECT_EVENTS.replace("{event_date}", utc_date("event_time"))
    return statement.replace("{window}", window)


# typed, as no file (nothing valid in bronze) gives no type to infer
_SOURCE_FILES = pa.schema([("_source_file", pa.string()), ("file_index", pa.int64())])


def expose_source_files(engine: Engine, relation: str) -> dict:
    """Register ``source_files`` for the files of ``relation``; returns the ``$source_files``
    parameter. Both are what ``events`` reads."""
    names = sorted(engine.table(f"SELECT DISTINCT _source_file FROM {relation}").column(0).to_pylist())
    numbered = {"_source_file": names, "file_index": range(1, len(names) + 1)}
    engine.register("source_files", pa.table(numbered, schema=_SOURCE_FILES))
    return {"source_files": names}


def sessions(event_types: list[str], revenue_type: str, events: str = "new_events") -> tuple[str, dict]:
    """One row per session of the silver events ``events``, whose types are among ``event_types``:
    a count per type, when it first had each type, and the revenue (the prices of
    ``revenue_type`` events)."""
    parts, parameters = session_parts(event_types, revenue_type, events)
    return finished_sessions(event_types, parts), parameters


def session_parts(event_types: list[str], revenue_type: str, events: str) -> tuple[str, dict]:
    """Per session of ``events``: the counts, sums, firsts and lasts a sessions row is made of.

    The parts of one session from events taken apart add up to the parts of all its events
    (``merged_session_parts``): a count per type and the revenue (exact, as a decimal), the
    number of ``revenue_type`` events, the first and last times.
    """
    counts = "".join(
        f"\n    count(*) FILTER (WHERE event_type = $session_type_{i}) AS {ident(count_column(t))},"
        for i, t in enumerate(event_types)
    )
    firsts = "".join(
        f"\n    min(event_time) FILTER (WHERE event_type = $session_type_{i}) AS {ident(first_column(t))},"
        for i, t in enumerate(event_types)
    )
    statement = f"""
SELECT
    session_id,
    user_id,
    min(event_time) AS session_start,
    max(event_time) AS session_end,
    count(*) AS events_count,{counts}{firsts}
    {exact_revenue()} AS exact_revenue,
    count(*) FILTER (WHERE event_type = $revenue_type) AS orders
FROM {events}
GROUP BY session_id, user_id
"""
    parameters = {f"session_type_{i}": t for i, t in enumerate(event_types)}
    return statement, {**parameters, "revenue_type": revenue_type}


def merged_session_parts(event_types: list[str], parts: str) -> str:
    """``parts`` (rows of ``session_parts``, several per session) as one row per session."""
    counts = [ident(count_column(t)) for t in event_types]
    firsts = [ident(first_column(t)) for t in event_types]
    summed = "".join(f"\n    sum({c})::BIGINT AS {c}," for c in ["events_count", *counts])
    earliest = "".join(f"\n    min({c}) AS {c}," for c in firsts)
    return f"""
SELECT
    session_id,
    user_id,
    min(session_start) AS session_start,
    max(session_end) AS session_end,{summed}{earliest}
    sum(exact_revenue) AS exact_revenue,
    sum(orders)::BIGINT AS orders
FROM {parts}
GROUP BY session_id, user_id
"""


def finished_sessions(event_types: list[str], parts: str, carried: str = "") -> str:
    """Sessions rows from ``parts`` (one row per session of ``session_parts``), with the
    columns ``carried`` (SQL of a select list) after them.

    The distinct types are counted as the types present: far cheaper than ``count(DISTINCT)``.
    """
    counts = [ident(count_column(t)) for t in event_types]
    present = " + ".join(f"({c} > 0)::INTEGER" for c in counts)
    columns = ", ".join([*counts, *(ident(first_column(t)) for t in event_types)])
    return f"""
SELECT
    session_id,
    user_id,
    session_start,
    session_end,
    {utc_date("session_start")} AS session_date,
    events_count,
    ({present or "0"})::BIGINT AS unique_event_types,
    (epoch_us(session_end) - epoch_us(session_start)) / 60e6 AS session_length_minutes,
    {columns}{", " if columns else ""}coalesce(CAST(exact_revenue AS DOUBLE), 0) AS revenue,
    orders > 0 AS converted{", " if carried else ""}{carried}
FROM ({parts})
"""
