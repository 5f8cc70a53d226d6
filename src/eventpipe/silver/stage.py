"""The silver stage: bronze in; silver events, sessions and silver quarantine out."""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from eventpipe.engine import DuckDBEngine
from eventpipe.settings import Settings
from eventpipe.silver import sql
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

    @property
    def quarantined(self) -> int:
        return sum(self.quarantined_by_reason.values())


def engine_for(settings: Settings, warehouse: Warehouse) -> DuckDBEngine:
    """The engine of a transformation stage: bounded memory, spilling inside the warehouse."""
    return DuckDBEngine(memory_limit=settings.memory_limit, spill_to=warehouse.scratch())


def event_types(settings: Settings) -> pa.Table:
    """Spelling -> canonical type: each canonical type spells itself, plus the synonyms."""
    spellings = {t.lower(): t for t in settings.event_types}
    spellings.update({k.strip().lower(): v for k, v in settings.event_type_synonyms.items()})
    return pa.table({"spelling": list(spellings), "canonical": list(spellings.values())})


def silver_parameters(settings: Settings, now: datetime) -> dict:
    return {
        "now": now,
        "future_limit": now + timedelta(hours=settings.future_tolerance_hours),
        "timeout_us": round(settings.session_timeout_minutes * 60e6),
        "max_session_us": round(settings.max_session_minutes * 60e6)
        if settings.max_session_minutes
        else None,
    }


def build_silver(settings: Settings, now: datetime | None = None) -> SilverResult:
    """Rebuild silver events, sessions and the silver part of the quarantine from bronze."""
    began = time.perf_counter()
    now = now or datetime.now(UTC)
    warehouse = Warehouse.open(settings.warehouse, create=False)
    with warehouse.lock(), engine_for(settings, warehouse) as engine:
        warehouse.table(BRONZE_EVENTS)
        warehouse.expose(engine, (BRONZE_EVENTS,))
        engine.register("event_types", event_types(settings))
        params = silver_parameters(settings, now)
        rejected = warehouse.replace(
            QUARANTINE,
            engine.stream(sql.REJECTED, _used(sql.REJECTED, params)),
            where=[("stage", "=", STAGE)],
        )
        events = warehouse.replace(SILVER_EVENTS, engine.stream(sql.EVENTS, _used(sql.EVENTS, params)))
        warehouse.expose(engine, (SILVER_EVENTS, QUARANTINE))
        sessions = warehouse.replace(SESSIONS, engine.stream(sql.SESSIONS))
        bronze_rows = engine.scalar("SELECT count(*) FROM bronze_events")
        duplicates = engine.scalar("SELECT coalesce(sum(duplicates), 0) FROM silver_events")
        reasons = engine.table(
            "SELECT reason, count(*) AS n FROM quarantine WHERE stage = $stage GROUP BY 1 ORDER BY 1",
            {"stage": STAGE},
        ).to_pylist()
    return SilverResult(
        bronze_rows=bronze_rows,
        events=events.rows,
        duplicates=int(duplicates),
        sessions=sessions.rows,
        quarantined_by_reason={r["reason"]: r["n"] for r in reasons},
        seconds=time.perf_counter() - began,
        versions={
            "silver_events": events.version,
            "sessions": sessions.version,
            "quarantine": rejected.version,
        },
    )


def _used(statement: str, params: dict) -> dict:
    """The parameters ``statement`` refers to (DuckDB refuses unused named parameters)."""
    return {name: value for name, value in params.items() if f"${name}" in statement}
