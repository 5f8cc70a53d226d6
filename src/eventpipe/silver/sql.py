"""The silver transformations as SQL over named relations.

Inputs: ``bronze_events`` (the bronze table) and ``event_types`` (spelling ->
canonical type, from the settings). Parameters: ``$future_limit`` (events
after it are quarantined), ``$timeout_us`` (session gap, microseconds) and
``$max_session_us`` (NULL when sessions have no maximum length).
"""

# Every bronze row, with its canonical type and the first rule it breaks (if any).
JUDGED = """
SELECT
    b.*,
    t.canonical AS canonical_type,
    CASE
        WHEN b.user_id IS NULL THEN 'user_id: missing'
        WHEN t.canonical IS NULL
            THEN 'event_type: not a known event type: "' || coalesce(b.event_type, '') || '"'
        WHEN b.price < 0 THEN 'price: negative'
        WHEN b.event_time > $future_limit THEN 'event_time: more than the allowed time in the future'
    END AS reason
FROM bronze_events AS b
LEFT JOIN event_types AS t ON t.spelling = lower(trim(b.event_type))
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

# Valid rows, one per distinct content; a deterministic event_id from that content;
# sessions from gaps per user. Ties in time are ordered by event_id, so the same
# events always give the same sessions, whatever order they arrived in.
EVENTS = f"""
WITH valid AS (
    SELECT * FROM ({JUDGED}) WHERE reason IS NULL
), distinct_events AS (
    SELECT
        event_time, canonical_type AS event_type, product_id, category_id, category_code, brand,
        price, user_id, user_session,
        min(struct_pack(_source_file, _source_line)) AS first_seen,
        count(*) - 1 AS duplicates
    FROM valid
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
        epoch_us(event_time) - lag(epoch_us(event_time)) OVER by_user AS gap_us
    FROM identified
    WINDOW by_user AS (PARTITION BY user_id ORDER BY event_time, event_id)
), visits AS (
    SELECT *,
        sum(CASE WHEN gap_us IS NULL OR gap_us > $timeout_us THEN 1 ELSE 0 END)
            OVER (PARTITION BY user_id ORDER BY event_time, event_id ROWS UNBOUNDED PRECEDING) AS visit
    FROM gaps
), pieces AS (
    -- an optional maximum length cuts a visit into pieces of that length from its start
    SELECT *,
        CASE WHEN $max_session_us IS NULL THEN 0 ELSE
            (epoch_us(event_time) - min(epoch_us(event_time)) OVER (PARTITION BY user_id, visit))
            // $max_session_us
        END AS piece
    FROM visits
)
SELECT
    event_id,
    md5(user_id::VARCHAR || ':' || first_value(event_id) OVER (
        PARTITION BY user_id, visit, piece ORDER BY event_time, event_id
    )) AS session_id,
    event_time,
    CAST(event_time AS DATE) AS event_date,
    event_type, product_id, category_id, category_code, brand, price, user_id, user_session,
    duplicates,
    first_seen._source_file AS _source_file,
    first_seen._source_line AS _source_line
FROM pieces
"""

# One row per session, from silver events. Money is summed as decimals so the
# total does not depend on the order rows are added in.
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
FROM silver_events
GROUP BY session_id, user_id
"""
