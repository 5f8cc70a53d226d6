"""The gold stage: every gold table recomputed from silver and swapped in atomically."""

import time
from dataclasses import dataclass, field

from eventpipe.builds import built_from, marked
from eventpipe.gold import sql
from eventpipe.settings import Settings
from eventpipe.warehouse import (
    DAILY_METRICS,
    EVENTS_BY_MINUTE,
    EVENTS_BY_TYPE,
    FUNNEL,
    GOLD_TABLES,
    SESSIONS,
    SESSIONS_DAILY,
    SILVER_EVENTS,
    USER_FUNNEL,
    Warehouse,
)


@dataclass(frozen=True)
class GoldResult:
    """Rows and version of each gold table, and the funnel as rows."""

    rows: dict[str, int]
    versions: dict[str, int]
    funnel: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    unchanged: bool = False  # silver and the rules were as at the last build: nothing was written


def build_gold(settings: Settings, force: bool = False) -> GoldResult:
    """Recompute each gold table from silver events and sessions, unless (without ``force``)
    they are as at the last build."""
    began = time.perf_counter()
    warehouse = Warehouse.open(settings.warehouse, create=False)
    statements = {
        EVENTS_BY_MINUTE: sql.events_by_minute(settings.event_types),
        EVENTS_BY_TYPE: (sql.EVENTS_BY_TYPE, {}),
        USER_FUNNEL: (sql.USER_FUNNEL, {}),
        FUNNEL: sql.funnel(settings.funnel_steps),
        SESSIONS_DAILY: (sql.SESSIONS_DAILY, {}),
        DAILY_METRICS: (sql.DAILY_METRICS, {}),
    }
    rows, versions = {}, {}
    warehouse.require((SILVER_EVENTS, SESSIONS), built_by="silver")
    with warehouse.lock(), warehouse.engine(settings.memory_limit) as engine, engine.translated_errors():
        inputs = {
            "silver_events": warehouse.table(SILVER_EVENTS).version(),
            "sessions": warehouse.table(SESSIONS).version(),
            "rules": settings.model_dump(mode="json", include={"event_types", "funnel_steps"}),
        }
        last = GOLD_TABLES[-1]  # its commit completes gold, so it carries what gold was built from
        unchanged = not force and warehouse.exists(last) and built_from(warehouse.table(last)) == inputs
        if unchanged:
            for table in GOLD_TABLES:
                rows[table.view] = warehouse.table(table).to_pyarrow_dataset().count_rows()
                versions[table.view] = warehouse.table(table).version()
        else:
            warehouse.expose(engine, (SILVER_EVENTS, SESSIONS))
            for table in GOLD_TABLES:
                statement, params = statements[table]
                commit = marked(inputs) if table is last else None
                written = warehouse.replace(table, engine.stream(statement, params), commit=commit)
                rows[table.view], versions[table.view] = written.rows, written.version
        warehouse.expose(engine, (FUNNEL,))
        funnel = engine.table("SELECT * FROM funnel ORDER BY level, step_number").to_pylist()
    return GoldResult(rows, versions, funnel, time.perf_counter() - began, unchanged)
