"""The same afternoon job as ``duckdb_script.py``, written with Polars' lazy API.

    python benchmarks/peers/polars_script.py EVENTS.csv[.gz ...] OUT_DIR

Typed CSV read, standardized types, invalid rows dropped, duplicates collapsed
with a count, md5-like ids, sessions by a 30-minute gap, Parquet partitioned by
date, a sessions table and gold per minute, type, user and day. Prints
``events=N sessions=M``.
"""

import sys
from pathlib import Path

import polars as pl

SYNONYMS = {
    "product_view": "view", "pageview": "view", "page_view": "view",
    "add_to_cart": "cart", "add-cart": "cart", "addtocart": "cart",
    "remove": "remove_from_cart", "remove-from-cart": "remove_from_cart",
    "buy": "purchase", "order": "purchase",
}  # fmt: skip
TYPES = ["view", "cart", "remove_from_cart", "purchase"]
SCHEMA = {
    "event_time": pl.String, "event_type": pl.String, "product_id": pl.Int64, "category_id": pl.Int64,
    "category_code": pl.String, "brand": pl.String, "price": pl.Float64, "user_id": pl.Int64,
    "user_session": pl.String,
}  # fmt: skip
CONTENT = list(SCHEMA)


def main(sources: list[str], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    spellings = {**{t: t for t in TYPES}, **SYNONYMS}
    raw = pl.concat(
        [pl.scan_csv(s, schema=SCHEMA, ignore_errors=True) for s in sources]
    )  # scan_csv reads .gz as well
    events = (
        raw.with_columns(
            pl.col("event_type").str.strip_chars().str.to_lowercase().replace_strict(spellings, default=None),
            pl.col("event_time").str.strptime(
                pl.Datetime("us", "UTC"), "%Y-%m-%d %H:%M:%S UTC", strict=False
            ),
        )
        .filter(
            pl.col("user_id").is_not_null()
            & pl.col("event_type").is_not_null()
            & pl.col("event_time").is_not_null()
            & (pl.col("price").fill_null(0) >= 0)
        )
        .group_by(CONTENT)
        .agg(duplicates=pl.len() - 1)
        .with_columns(
            event_id=pl.concat_str(
                [pl.col(c).cast(pl.String) for c in CONTENT], separator="|", ignore_nulls=True
            ).hash()
        )
        .sort("user_id", "event_time", "event_id")
        .with_columns(
            starts=(pl.col("event_time").diff().over("user_id") > pl.duration(minutes=30)).fill_null(True)
        )
        .with_columns(session_number=pl.col("starts").cast(pl.Int32).cum_sum().over("user_id"))
        .with_columns(
            session_id=pl.concat_str([pl.col("user_id"), pl.col("session_number")], separator=":").hash(),
            event_date=pl.col("event_time").dt.date(),
        )
        .collect()
    )
    events.write_parquet(out / "silver_events", partition_by="event_date")
    sessions = events.group_by("session_id", "user_id").agg(
        session_start=pl.col("event_time").min(),
        session_end=pl.col("event_time").max(),
        events_count=pl.len(),
        unique_event_types=pl.col("event_type").n_unique(),
        converted=(pl.col("event_type") == "purchase").any(),
    )
    sessions.write_parquet(out / "sessions.parquet")
    events.group_by(pl.col("event_time").dt.truncate("1m").alias("minute")).agg(
        events_count=pl.len()
    ).write_parquet(out / "events_by_minute.parquet")
    events.group_by("event_type").agg(
        events_count=pl.len(), users=pl.col("user_id").n_unique()
    ).write_parquet(out / "events_by_type.parquet")
    events.pivot(on="event_type", index="user_id", values="event_id", aggregate_function="len").write_parquet(
        out / "user_funnel.parquet"
    )
    events.group_by("event_date").agg(
        active_users=pl.col("user_id").n_unique(),
        events=pl.len(),
        revenue=pl.col("price").filter(pl.col("event_type") == "purchase").sum(),
    ).write_parquet(out / "daily.parquet")
    print(f"events={events.height} sessions={sessions.height}")


if __name__ == "__main__":
    main(sys.argv[1:-1], Path(sys.argv[-1]))
