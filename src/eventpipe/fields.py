"""The pipeline's event fields and the typed bronze schema.

Source files may name their columns differently; ``Settings.columns`` maps them
onto these fields.
"""

import pyarrow as pa

#: The fields of an event, in the order of the REES46 files.
EVENT_FIELDS: tuple[str, ...] = (
    "event_time",
    "event_type",
    "product_id",
    "category_id",
    "category_code",
    "brand",
    "price",
    "user_id",
    "user_session",
)

#: Fields a source must provide; the others are NULL when a source lacks them.
REQUIRED_FIELDS: tuple[str, ...] = ("event_time", "event_type", "user_id")

UTC_MICROS = pa.timestamp("us", tz="UTC")

BRONZE_SCHEMA = pa.schema(
    [
        ("event_time", UTC_MICROS),
        ("event_type", pa.string()),
        ("product_id", pa.int64()),
        ("category_id", pa.int64()),
        ("category_code", pa.string()),
        ("brand", pa.string()),
        ("price", pa.float64()),
        ("user_id", pa.int64()),
        ("user_session", pa.string()),
        ("event_date", pa.date32()),
        ("_source_file", pa.string()),
        ("_source_line", pa.int64()),
        ("_ingested_at", UTC_MICROS),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        ("_source_file", pa.string()),
        ("_source_line", pa.int64()),
        ("raw_record", pa.string()),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("_ingested_at", UTC_MICROS),
    ]
)

#: One row per check per run of the quality checks.
QUALITY_RESULTS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("checked_at", UTC_MICROS),
        ("check_name", pa.string()),
        ("table_name", pa.string()),
        ("layer", pa.string()),
        ("severity", pa.string()),
        ("status", pa.string()),
        ("offending_rows", pa.int64()),
        ("example", pa.string()),
        ("description", pa.string()),
    ]
)

#: One row per ``eventpipe run``.
RUNS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("started_at", UTC_MICROS),
        ("ended_at", UTC_MICROS),
        ("seconds", pa.float64()),
        ("files", pa.list_(pa.string())),
        ("records_read", pa.int64()),
        ("bronze_rows_added", pa.int64()),
        ("quarantined_in_bronze", pa.int64()),
        ("late_events", pa.int64()),
        ("bronze_rows", pa.int64()),
        ("silver_events", pa.int64()),
        ("duplicates_removed", pa.int64()),
        ("quarantined_in_silver", pa.int64()),
        ("sessions", pa.int64()),
        ("gold_published", pa.bool_()),
        ("failed_checks", pa.list_(pa.string())),
        ("table_versions", pa.string()),
    ]
)


def count_column(event_type: str) -> str:
    """The column counting events of ``event_type`` in sessions and gold: its name plus "s"
    (``view`` -> ``views``)."""
    return f"{event_type}s"


def entered_column(step: str) -> str:
    """The column of when a user or session entered a funnel step (``cart`` -> ``entered_cart_at``):
    one plain column per step, which reads and writes far faster than a list per row."""
    return f"entered_{step}_at"


def first_column(event_type: str) -> str:
    """The column of a session's first ``event_type`` event (``view`` -> ``first_view_at``)."""
    return f"first_{event_type}_at"
