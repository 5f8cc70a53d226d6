"""The job as a data engineer would write it in an afternoon with DuckDB: raw CSV to gold.

    python benchmarks/peers/duckdb_script.py EVENTS.csv[.gz ...] OUT_DIR [--memory-limit 2GB]

Typed read_csv, standardized types, invalid rows dropped, duplicates collapsed
with a count, md5 ids, sessions by a 30-minute gap, Parquet partitioned by
date, a sessions table, gold per minute, per type, per user and per day.
No exactly-once ingest, no quarantine, no Delta, no checks. Prints
``events=N sessions=M`` so the benchmark can compare counts.
"""

import argparse
from pathlib import Path

import duckdb

SYNONYMS = {
    "product_view": "view", "pageview": "view", "page_view": "view",
    "add_to_cart": "cart", "add-cart": "cart", "addtocart": "cart",
    "remove": "remove_from_cart", "remove-from-cart": "remove_from_cart",
    "buy": "purchase", "order": "purchase",
}  # fmt: skip
TYPES = ["view", "cart", "remove_from_cart", "purchase"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sources", nargs="+")
    parser.add_argument("out", type=Path)
    parser.add_argument("--memory-limit")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if args.memory_limit:
        con.execute(f"SET memory_limit = '{args.memory_limit}'")
        con.execute(f"SET temp_directory = '{args.out / 'tmp'}'")
    spellings = {**{t: t for t in TYPES}, **SYNONYMS}
    con.execute(
        """
        CREATE TABLE raw AS SELECT * FROM read_csv($files, header = true, ignore_errors = true, columns = {
            'event_time': 'VARCHAR', 'event_type': 'VARCHAR', 'product_id': 'BIGINT',
            'category_id': 'BIGINT', 'category_code': 'VARCHAR', 'brand': 'VARCHAR',
            'price': 'DOUBLE', 'user_id': 'BIGINT', 'user_session': 'VARCHAR'})
        """,
        {"files": args.sources},
    )
    con.execute(
        """
        CREATE TABLE events AS
        WITH clean AS (
            SELECT * REPLACE (
                coalesce(map_extract_value(MAP($spellings, $types), lower(trim(event_type))))
                    AS event_type,
                coalesce(try_strptime(event_time, '%Y-%m-%d %H:%M:%S UTC'),
                         TRY_CAST(event_time AS TIMESTAMPTZ)) AS event_time)
            FROM raw
        ), valid AS (
            SELECT * FROM clean
            WHERE user_id IS NOT NULL AND event_type IS NOT NULL AND event_time IS NOT NULL
                AND coalesce(price, 0) >= 0
        ), deduped AS (
            SELECT *, count(*) - 1 AS duplicates FROM valid GROUP BY ALL
        ), ided AS (
            SELECT *, md5(concat_ws('|', event_time, event_type, product_id, category_id, category_code,
                                    brand, price, user_id, user_session)) AS event_id
            FROM deduped
        ), gaps AS (
            SELECT *, coalesce(event_time - lag(event_time) OVER w > INTERVAL 30 MINUTE, true) AS starts
            FROM ided WINDOW w AS (PARTITION BY user_id ORDER BY event_time, event_id)
        ), numbered AS (
            SELECT *, sum(starts::INT) OVER (PARTITION BY user_id ORDER BY event_time, event_id
                                            ROWS UNBOUNDED PRECEDING) AS session_number
            FROM gaps
        )
        SELECT * EXCLUDE (starts, session_number),
            md5(user_id::VARCHAR || ':' || session_number::VARCHAR) AS session_id,
            CAST(event_time AS DATE) AS event_date
        FROM numbered
        """,
        {"spellings": list(spellings), "types": list(spellings.values())},
    )
    con.execute(
        f"COPY events TO '{args.out / 'silver_events'}' (FORMAT parquet, PARTITION_BY (event_date), "
        "OVERWRITE_OR_IGNORE)"
    )
    con.execute(
        """
        CREATE TABLE sessions AS
        SELECT session_id, user_id, min(event_time) AS session_start, max(event_time) AS session_end,
            count(*) AS events_count, count(DISTINCT event_type) AS unique_event_types,
            epoch(max(event_time) - min(event_time)) / 60 AS session_length_minutes,
            count(*) FILTER (WHERE event_type = 'purchase') > 0 AS converted
        FROM events GROUP BY ALL
        """
    )
    con.execute(f"COPY sessions TO '{args.out / 'sessions.parquet'}' (FORMAT parquet)")
    gold = {
        "events_by_minute": "SELECT date_trunc('minute', event_time) AS minute, count(*) AS events_count "
        "FROM events GROUP BY 1",
        "events_by_type": "SELECT event_type, count(*) AS events_count, count(DISTINCT user_id) AS users "
        "FROM events GROUP BY 1",
        "user_funnel": "PIVOT (SELECT user_id, event_type FROM events) ON event_type IN "
        "('view', 'cart', 'remove_from_cart', 'purchase') USING count(*) GROUP BY user_id",
        "daily": "SELECT event_date, count(DISTINCT user_id) AS active_users, count(*) AS events, "
        "sum(price) FILTER (WHERE event_type = 'purchase') AS revenue FROM events GROUP BY 1",
    }
    for name, query in gold.items():
        con.execute(f"COPY ({query}) TO '{args.out / name}.parquet' (FORMAT parquet)")
    counts = "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM sessions)"
    events, sessions = con.execute(counts).fetchone()
    print(f"events={events} sessions={sessions}")


if __name__ == "__main__":
    main()
