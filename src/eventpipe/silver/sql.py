"""The silver transformations as SQL over named relations.

Inputs: ``bronze_events`` (the bronze table); ``EVENTS`` reads ``bucket_rows``,
the valid rows of one bucket of users. Parameters: ``$spellings`` and
``$canonical_types`` (two lists: spelling -> canonical type), ``$future_limit`` (events
after it are quarantined), ``$buckets`` (how many buckets users are hashed
into), ``$timeout_us`` (session gap, microseconds) and ``$max_session_us``
(a session's maximum length, when there is one).
"""

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
    to_json(struct_pack(
        event_time, event_type, product_id, category_id, category_code, brand, price,
        user_id, user_session
    ))::VARCHAR AS raw_record,
    'silver' AS stage,
    reason,
    $now::TIMESTAMPTZ AS _ingested_at
FROM ({JUDGED})
WHERE reason IS NOT NULL
"""

# Valid rows with their canonical type, and the bucket of users each belongs to.
# Silver works one bucket at a time, so its memory does not grow with history.
VALID = f"""
SELECT
    event_time, canonical_type AS event_type, product_id, category_id, category_code, brand, price,
    user_id, user_session, _source_file, _source_line, 1 AS _copies,
    hash(user_id) % $buckets AS bucket
FROM ({JUDGED})
WHERE reason IS NULL
"""

# The valid rows of a bucket (``_copies`` of each: 1 for a bronze row, more for a
# silver event being recomputed), one per distinct content; a deterministic event_id
# from that content; sessions from gaps per user. Ties in time are ordered by
# event_id, so the same events always give the same sessions, whatever order
# they arrived in. A session's id hashes the user and the session's first event.
# Every window shares one ordering, so DuckDB sorts each bucket once per step.
_DISTINCT_EVENTS = """
WITH distinct_events AS (
    SELECT
        event_time, event_type, product_id, category_id, category_code, brand,
        price, user_id, user_session,
        min(struct_pack(_source_file, _source_line)) AS first_seen,
        sum(_copies)::BIGINT - 1 AS duplicates
    FROM bucket_rows
    GROUP BY ALL
), identified AS (
    SELECT *,
        md5(concat_ws(chr(31),
            epoch_us(event_time)::VARCHAR, event_type,
            coalesce(product_id::VARCHAR, chr(30)), coalesce(category_id::VARCHAR, chr(30)),
            coalesce(category_code, chr(30)), coalesce(brand, chr(30)),
            coalesce(price::VARCHAR, chr(30)), user_id::VARCHAR, coalesce(user_session, chr(30))
        )) AS event_id
    FROM distinct_events
), gaps AS (
    SELECT *,
        coalesce(epoch_us(event_time) - lag(epoch_us(event_time)) OVER by_user > $timeout_us, true)
            AS starts_visit
    FROM identified
    WINDOW by_user AS (PARTITION BY user_id ORDER BY event_time, event_id)
)"""

_SESSIONS_ARE_VISITS = """, starts AS (
    SELECT *, starts_visit AS starts_session FROM gaps
)"""

# A maximum length cuts a visit into pieces of that length, counted from the visit's start.
_SESSIONS_ARE_PIECES_OF_VISITS = """, visits AS (
    SELECT *,
        (epoch_us(event_time) - last_value(CASE WHEN starts_visit THEN epoch_us(event_time) END IGNORE NULLS)
            OVER by_user) // $max_session_us AS piece
    FROM gaps
    WINDOW by_user AS (PARTITION BY user_id ORDER BY event_time, event_id ROWS UNBOUNDED PRECEDING)
), starts AS (
    SELECT *,
        starts_visit OR piece <> lag(piece) OVER (PARTITION BY user_id ORDER BY event_time, event_id)
            AS starts_session
    FROM visits
)"""

_SELECT_EVENTS = """
SELECT
    event_id,
    md5(user_id::VARCHAR || ':' || last_value(CASE WHEN starts_session THEN event_id END IGNORE NULLS) OVER (
        PARTITION BY user_id ORDER BY event_time, event_id ROWS UNBOUNDED PRECEDING
    )) AS session_id,
    event_time,
    CAST(event_time AS DATE) AS event_date,
    event_type, product_id, category_id, category_code, brand, price, user_id, user_session,
    duplicates,
    first_seen._source_file AS _source_file,
    first_seen._source_line AS _source_line
FROM starts
"""


def events(max_session_length: bool) -> str:
    """Silver events of ``bucket_rows``; with ``max_session_length``, uses ``$max_session_us``."""
    sessions = _SESSIONS_ARE_PIECES_OF_VISITS if max_session_length else _SESSIONS_ARE_VISITS
    return _DISTINCT_EVENTS + sessions + _SELECT_EVENTS


# One row per session, from the silver events of a bucket. Money is summed as
# decimals so the total does not depend on the order rows are added in.
SESSIONS = """
SELECT
    session_id,
    user_id,
    min(event_time) AS session_start,
    max(event_time) AS session_end,
    CAST(min(event_time) AS DATE) AS session_date,
    count(*) AS events_count,
    count(DISTINCT event_type) AS unique_event_types,
    (epoch_us(max(event_time)) - epoch_us(min(event_time))) / 60e6 AS session_length_minutes,
    count(*) FILTER (WHERE event_type = 'view') AS views,
    count(*) FILTER (WHERE event_type = 'cart') AS carts,
    count(*) FILTER (WHERE event_type = 'remove_from_cart') AS removals,
    count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
    coalesce(CAST(sum(CAST(price AS DECIMAL(18, 6))) FILTER (WHERE event_type = 'purchase') AS DOUBLE), 0)
        AS revenue,
    count(*) FILTER (WHERE event_type = 'purchase') > 0 AS converted
FROM bucket_events
GROUP BY session_id, user_id
"""
