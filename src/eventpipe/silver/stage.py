"""The silver stage: bronze in; silver events, sessions and silver quarantine out."""

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa

from eventpipe.builds import REBUILT, applying, built_from, marked
from eventpipe.context import RunContext
from eventpipe.engine import Engine
from eventpipe.engine.base import Relation
from eventpipe.engine.delta import row_count
from eventpipe.errors import MissingTableError
from eventpipe.settings import Settings
from eventpipe.silver import sql
from eventpipe.silver.dates import rebuild_dates
from eventpipe.silver.increment import FOREVER, REJECTS_APPLIED, increment
from eventpipe.silver.sessions import sessions_by_dates
from eventpipe.warehouse import BRONZE_EVENTS, QUARANTINE, SESSIONS, SILVER_EVENTS, Warehouse

STAGE = "silver"


@dataclass(frozen=True)
class SilverResult:
    """What a silver build produced; bronze rows = events + duplicates + quarantined."""

    bronze_rows: int
    events: int
    duplicates: int
    sessions: int
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    versions: dict[str, int] = field(default_factory=dict)
    unchanged: bool = False  # bronze and the rules were as at the last build: nothing was written
    incremental: bool = False  # only the sessions the new bronze rows can touch were rebuilt

    @property
    def quarantined(self) -> int:
        return sum(self.quarantined_by_reason.values())


def event_types(settings: Settings) -> dict[str, str]:
    """Spelling -> canonical type: each canonical type spells itself, plus the synonyms."""
    spellings = {t.lower(): t for t in settings.event_types}
    spellings.update({k.strip().lower(): v for k, v in settings.synonyms.items()})
    return spellings


def silver_parameters(settings: Settings, now: datetime) -> dict:
    spellings = event_types(settings)
    return {
        "event_types": settings.event_types,
        "revenue_type": settings.revenue_type,
        "spellings": list(spellings),
        "canonical_types": list(spellings.values()),
        "now": now,
        "future_limit": now + timedelta(hours=settings.future_tolerance_hours),
        "timeout_us": round(settings.session_timeout_minutes * 60e6),
        "max_session_us": round(settings.max_session_minutes * 60e6)
        if settings.max_session_minutes
        else None,
    }


def build_silver(ctx: RunContext, force: bool = False) -> SilverResult:
    """Rebuild silver events, sessions and the silver part of the quarantine from bronze.

    Unless ``force``: when bronze and the rules are as they were at the last build, and
    no event quarantined as "in the future" has come within the tolerance since, nothing is written.
    """
    began = time.perf_counter()
    settings, warehouse, engine, now = ctx.settings, ctx.warehouse, ctx.engine, ctx.now
    bronze = warehouse.table(BRONZE_EVENTS)
    inputs = {"bronze": bronze.version(), "rules": _rules(settings)}
    warehouse.expose(engine, (BRONZE_EVENTS,))
    previous = built_from(warehouse.table(SESSIONS)) if warehouse.exists(SESSIONS) else None
    current = (
        not force
        and previous is not None
        and previous["inputs"]["rules"] == inputs["rules"]
        and now < datetime.fromisoformat(previous["valid_until"])
        # a run killed between the two commits leaves them apart: build in full
        and built_from(warehouse.table(SILVER_EVENTS)) == previous
    )
    if current and previous["inputs"] == inputs:
        return _as_built(warehouse, engine, began)
    bronze_rows = row_count(bronze)
    params = silver_parameters(settings, now)
    if current and settings.max_session_minutes is None:
        # the same full build, brought further (a range rebuild's mark does not carry over)
        record = {**{k: v for k, v in previous.items() if k != REBUILT}, "inputs": inputs}
        if increment(warehouse, engine, settings, params, previous, record):
            return _as_built(warehouse, engine, began, unchanged=False, incremental=True)
        warehouse.expose(engine, (BRONZE_EVENTS,))
    # the build stays right until the earliest event quarantined as future comes within the tolerance
    first_future = engine.scalar(
        "SELECT min(event_time) FROM bronze_events WHERE event_time > $future_limit", params
    )
    valid_until = first_future - timedelta(hours=settings.future_tolerance_hours) if first_future else FOREVER
    # "build" names this full build; increments keep it, so gold can tell it only had events added
    record = {
        "inputs": inputs,
        "valid_until": valid_until.astimezone(UTC).isoformat(),
        "build": uuid.uuid4().hex,
    }
    rejected = warehouse.replace(
        QUARANTINE,
        engine.query(sql.REJECTED, params),
        where=[("stage", "=", STAGE)],
        commit=applying(REJECTS_APPLIED, inputs["bronze"]),
    )
    params |= sql.expose_source_files(engine, BRONZE_EVENTS.view)
    max_session_length = settings.max_session_minutes is not None
    rows = _silver_events(engine, max_session_length, params, bronze_rows, settings.rows_per_bucket)
    # both commits record what silver was built from; sessions, the last, completes it
    events = warehouse.replace(SILVER_EVENTS, rows, commit=marked(record))
    warehouse.expose(engine, (SILVER_EVENTS, QUARANTINE))
    sessions = warehouse.replace(SESSIONS, _sessions(engine, settings, params), commit=marked(record))
    duplicates = duplicates_removed(engine)
    reasons = _quarantined_by_reason(engine)
    return SilverResult(
        bronze_rows=bronze_rows,
        events=events.rows,
        duplicates=duplicates,
        sessions=sessions.rows,
        quarantined_by_reason=reasons,
        seconds=time.perf_counter() - began,
        versions={
            "silver_events": events.version,
            "sessions": sessions.version,
            "quarantine": rejected.version,
        },
    )


def _silver_events(
    engine: Engine, max_session_length: bool, params: dict, bronze_rows: int, rows_per_bucket: int
) -> Relation | pa.RecordBatchReader:
    """Silver events of all of bronze, computed a bucket (a range) of users at a time, one
    bucket after another.

    An engine with ordered windows (DuckDB) sorts all the rows it is given at once: within
    memory_limit, one sort of 40M rows spilled 14 GB to disk and took 91 s; eight sorts,
    each of one bucket of users, 68 s in all. Each bucket's query scans bronze again, so a
    bucket is a range of user ids, which the scan filters as it reads, rather than a hash of
    them (the events of ten buckets at 40M: 66-68 s against 74-75). Other engines (Spark)
    sort each user's rows apart anyway, and stream only small results to this process: one
    query.
    """

    def events_of(rows: str) -> str:
        return sql.events(max_session_length, engine.ordered_windows, f"({rows})")

    buckets = -(-bronze_rows // rows_per_bucket) if engine.ordered_windows else 1
    splits = _user_splits(engine, buckets) if buckets > 1 else []
    if not splits:
        return engine.query(events_of(sql.VALID), params)
    ranges = zip([None, *splits], [*splits, None], strict=True)
    statements = [events_of(sql.valid_of_users(after, up_to)) for after, up_to in ranges]
    return engine.stream_in_turn(statements, params)


def _user_splits(engine: Engine, buckets: int) -> list[int]:
    """The user ids that cut bronze's rows into ``buckets`` ranges of about as many rows each.

    Estimated from a sample of 1% of the rows (at 40M events in 0.23 s against 1.3 s for exact
    quantiles; each tenth within 1.1% of 4M rows): the ranges only bound each sort's memory,
    and the events are the same however they are cut. Exact when the sample is empty.
    """
    fractions = ", ".join(repr(i / buckets) for i in range(1, buckets))
    for sample in ("USING SAMPLE 1% (bernoulli)", ""):
        splits = engine.scalar(f"SELECT quantile_disc(user_id, [{fractions}]) FROM bronze_events {sample}")
        if splits is not None:
            return sorted(set(splits))
    return []


def _sessions(engine: Engine, settings: Settings, params: dict) -> Relation | pa.RecordBatchReader:
    """The sessions of all silver events (exposed): a range of days at a time on an engine
    bound to a memory limit, when they are many.

    Grouping takes more memory per row than sorting: a quarter of a bucket's rows a query.
    At 40M events a day a query (1.3M events) took 9.3-9.5 s, two days 10.4, three 11.5; at
    10M three days (1M) 2.5 s against 3.1 in one query (the sessions drained, not written).
    """
    if engine.bounded_memory:
        by_dates = sessions_by_dates(
            engine,
            settings.event_types,
            settings.revenue_type,
            params["timeout_us"],
            events_per_query=max(1, settings.rows_per_bucket // 4),
        )
        if by_dates is not None:
            return by_dates
    statement, sessions_params = sql.sessions(settings.event_types, settings.revenue_type, SILVER_EVENTS.view)
    return engine.query(statement, sessions_params)


def rebuild_silver_dates(ctx: RunContext, first: date | None, last: date | None) -> SilverResult:
    """Recompute silver from bronze for events dated ``first``..``last`` (None: the oldest, the newest).

    Silver must be up to date with bronze (``build_silver`` first); outside the
    range (and the sessions that reach into it) nothing changes. A range holding
    more bronze rows than ``rows_per_bucket`` is rebuilt by building everything.
    """
    began = time.perf_counter()
    settings, warehouse, engine = ctx.settings, ctx.warehouse, ctx.engine
    warehouse.require((SILVER_EVENTS, SESSIONS), built_by="silver")
    previous = built_from(warehouse.table(SESSIONS))
    if previous is None or built_from(warehouse.table(SILVER_EVENTS)) != previous:
        raise MissingTableError(
            f"silver in {settings.warehouse} is not complete; run `eventpipe rebuild` without a range"
        )
    warehouse.expose(engine, (BRONZE_EVENTS,))
    bronze = engine.table(
        "SELECT min(event_date) AS oldest, max(event_date) AS newest, "
        "count(*) FILTER (WHERE event_date BETWEEN $first AND $last) AS rows FROM bronze_events",
        {"first": first or date.min, "last": last or date.max},
    ).to_pylist()[0]
    oldest, newest = bronze["oldest"], bronze["newest"]
    first, last = first or oldest or date.min, last or newest or date.max
    # the range is sessionized in one piece: up to the rows a full build sessionizes at once
    if bronze["rows"] > settings.rows_per_bucket:  # a full build gives the same tables
        return build_silver(ctx, force=True)
    record = {**previous, REBUILT: [first.isoformat(), last.isoformat()]}
    params = silver_parameters(settings, ctx.now)
    max_session_length = settings.max_session_minutes is not None
    bronze_dates = (oldest, newest) if oldest else None
    rebuild_dates(warehouse, engine, params, max_session_length, record, (first, last), bronze_dates)
    return _as_built(warehouse, engine, began, unchanged=False, incremental=True)


# Raised when silver's tables change shape, so that a warehouse built before is built again.
_LAYOUT = 4


def _rules(settings: Settings) -> dict:
    """The settings silver's result depends on, as in force."""
    return {
        **settings.model_dump(
            mode="json",
            include={
                "event_types",
                "future_tolerance_hours",
                "session_timeout_minutes",
                "max_session_minutes",
            },
        ),
        "event_type_synonyms": settings.synonyms,
        "revenue_type": settings.revenue_type,
        "layout": _LAYOUT,
    }


def duplicates_removed(engine: Engine) -> int:
    """Records silver removed as copies of an event (``silver_events`` exposed)."""
    return engine.scalar(f"SELECT coalesce(sum(duplicates), 0)::BIGINT FROM {SILVER_EVENTS.view}")


def _quarantined_by_reason(engine: Engine) -> dict[str, int]:
    rows = engine.table(
        "SELECT reason, count(*) AS n FROM quarantine WHERE stage = $stage GROUP BY 1 ORDER BY 1",
        {"stage": STAGE},
    ).to_pylist()
    return {r["reason"]: r["n"] for r in rows}


def _as_built(
    warehouse: Warehouse, engine: Engine, began: float, unchanged: bool = True, incremental: bool = False
) -> SilverResult:
    """The figures of the silver tables as they are (``unchanged``: as the last build left them)."""
    warehouse.expose(engine, (SILVER_EVENTS, QUARANTINE))
    return SilverResult(
        bronze_rows=row_count(warehouse.table(BRONZE_EVENTS)),
        events=row_count(warehouse.table(SILVER_EVENTS)),
        duplicates=duplicates_removed(engine),
        sessions=row_count(warehouse.table(SESSIONS)),
        quarantined_by_reason=_quarantined_by_reason(engine),
        seconds=time.perf_counter() - began,
        versions={t.view: warehouse.table(t).version() for t in (SILVER_EVENTS, SESSIONS, QUARANTINE)},
        unchanged=unchanged,
        incremental=incremental,
    )
