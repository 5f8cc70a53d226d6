"""Running the checks: offending rows counted, a few kept as examples, every result stored."""

import json
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from eventpipe.builds import applying
from eventpipe.changes import Changes
from eventpipe.context import RunContext
from eventpipe.engine import Engine, create_engine
from eventpipe.engine.delta import row_count
from eventpipe.fields import QUALITY_RESULTS_SCHEMA
from eventpipe.ingest.ledger import file_records
from eventpipe.quality.checks import Check, all_checks
from eventpipe.silver.stage import duplicates_removed
from eventpipe.sql import date_in, ident
from eventpipe.warehouse import BRONZE_EVENTS, LAYERS, LOGS, QUALITY_RESULTS, QUARANTINE, TABLES, Warehouse

#: Offending rows kept per check, for the console, the report and the tests.
EXAMPLES_KEPT = 5

PASS, WARN, FAIL, ERROR, SKIPPED = "pass", "warn", "fail", "error", "skipped"


@dataclass(frozen=True)
class CheckResult:
    """What one check found. ``status`` is pass, warn, fail, error (the SQL failed) or skipped."""

    name: str
    table: str
    layer: str
    severity: str
    description: str
    status: str
    offending_rows: int = 0
    examples: list[dict] = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0

    @property
    def stops_the_run(self) -> bool:
        return self.severity == FAIL and self.status in (FAIL, ERROR)


@dataclass(frozen=True)
class QualityResult:
    """The results of one run's checks, and the warehouse's figures when they ran."""

    run_id: str
    checked_at: datetime
    checks: list[CheckResult]
    figures: dict = field(default_factory=dict)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.stops_the_run]

    def merged(self, later: "QualityResult") -> "QualityResult":
        """This run's results followed by those of a later set of checks in the same run."""
        return QualityResult(self.run_id, self.checked_at, self.checks + later.checks, later.figures)


def run_checks(ctx: RunContext, layers: tuple[str, ...] = LAYERS, figures: bool = True) -> QualityResult:
    """Run the checks of ``layers`` and append their results to ``quality_results``.

    After an incremental run (``ctx.changes``), checks that have a ``changed_sql``
    look only at what it changed. Without ``figures``, the warehouse's figures are
    left out unless a check stops the run (a later set of checks in the same run
    gives them). The results of a run's checks of the same layers are appended
    once: a retried step appends nothing again.
    """
    settings, warehouse, engine, now = ctx.settings, ctx.warehouse, ctx.engine, ctx.now
    checks = [c for c in all_checks(settings) if c.runs_after in layers]
    missing = [t.view for t in TABLES if not warehouse.exists(t)]
    params = {"now": now, **settings.quality.model_dump(exclude={"checks"})}
    warehouse.expose(engine)
    engine.register("ingested_files", _ingested_files(warehouse))
    bindings = {} if missing else _bindings(engine, warehouse, ctx.changes)
    params["newest_before"] = ctx.changes.newest_before if bindings else None
    built_in = [c for c in checks if not c.sandboxed]
    results = _each(lambda c: _run_check(engine, c, params, missing, bindings), built_in, engine)
    sandboxed = [c for c in checks if c.sandboxed]
    if sandboxed:
        with create_engine(settings, sealed=True) as sandbox:
            warehouse.expose(sandbox)
            sandbox.register("ingested_files", _ingested_files(warehouse))
            results += [_run_check(sandbox, c, params, missing, {}) for c in sandboxed]
        # in the order the checks were given
        order = {c.name: i for i, c in enumerate(checks)}
        results.sort(key=lambda r: order[r.name])
    found = {}
    if figures or any(r.stops_the_run for r in results):
        found = warehouse_figures(engine, warehouse, missing)
    applied = f"eventpipe.checks:{ctx.run_id}:{','.join(layers)}"
    if warehouse.table(QUALITY_RESULTS).transaction_version(applied) is None:
        warehouse.append(QUALITY_RESULTS, _result_rows(ctx.run_id, now, results), commit=applying(applied, 1))
    return QualityResult(ctx.run_id, now, results, found)


# What ``@this`` is bound to after an incremental run, per guarded table: what the run changed.
_SLICES = {
    "bronze_events": "(SELECT * FROM checked_bronze_rows)",
    "silver_events": "(SELECT * FROM silver_events WHERE {event_dates})",
    "sessions": "(SELECT * FROM sessions WHERE {session_dates})",
    "user_funnel": "(SELECT * FROM user_funnel WHERE user_id IN (SELECT user_id FROM checked_bronze_rows))",
}


def _each(run: Callable[[Check], CheckResult], checks: list[Check], engine: Engine) -> list[CheckResult]:
    """``run`` on every check, in order; several at once on an engine that takes concurrent
    queries (each of Spark's small queries waits mostly on scheduling, not on work)."""
    if not engine.concurrent_queries:
        return [run(c) for c in checks]
    with ThreadPoolExecutor(max_workers=_CONCURRENT_CHECKS, thread_name_prefix="eventpipe-check") as pool:
        return list(pool.map(run, checks))


_CONCURRENT_CHECKS = 4


def _bindings(engine: Engine, warehouse: Warehouse, changes: Changes | None) -> dict[str, str]:
    """What ``@this`` means per guarded table: the table itself, or the slice a run changed
    (empty when the engine cannot tell the run's bronze rows apart: everything is checked)."""
    if changes is None or not engine.expose_added(
        "checked_bronze_rows", warehouse.table(BRONZE_EVENTS), changes.bronze_since
    ):
        return {}
    dates = {
        "event_dates": date_in("event_date", set(changes.event_dates)),
        "session_dates": date_in("session_date", set(changes.session_dates)),
    }
    return {table: sliced.format(**dates) for table, sliced in _SLICES.items()}


def bind(check: Check, bindings: dict[str, str], sql: str | None = None) -> str:
    """The check's SQL (or ``sql`` of the check) with ``@this`` bound to its table, or to the
    slice of it in ``bindings``."""
    return re.sub(r"@this\b", bindings.get(check.table, ident(check.table)), sql or check.sql)


def _run_check(
    engine: Engine, check: Check, params: dict, missing_views: list[str], bindings: dict[str, str]
) -> CheckResult:
    found = dict(
        name=check.name,
        table=check.table,
        layer=check.runs_after,
        severity=check.severity,
        description=check.description,
    )
    sql = bind(check, {})
    absent = [v for v in missing_views if re.search(rf"\b{v}\b", sql)]
    if absent:
        return CheckResult(**found, status=SKIPPED, message=f"no {', '.join(absent)} yet")
    offending_sql = bind(check, bindings).strip().rstrip(";")
    # a screen looks at whole tables: a check bound to what a run changed runs its own SQL
    screen = check.screen if check.screen and check.table not in bindings else None
    began = time.perf_counter()
    try:
        if screen and not engine.scalar(f"SELECT count(*) FROM ({bind(check, {}, screen)})", params):
            return CheckResult(**found, status=PASS, seconds=time.perf_counter() - began)
        # counted, then (only when there are any) the first few: kept in a materialized CTE
        # instead, they made a join that fits in memory run out of it
        offending = engine.scalar(f"SELECT count(*) FROM ({offending_sql})", params)
        examples = []
        if offending:
            first = f"SELECT to_json(o)::VARCHAR FROM ({offending_sql}) AS o LIMIT {EXAMPLES_KEPT}"
            examples = [json.loads(e) for e in engine.table(first, params).column(0).to_pylist()]
    except Exception as error:  # a user's SQL may fail in any way; the report says how
        message = str(error).splitlines()[0]
        return CheckResult(**found, status=ERROR, message=message, seconds=time.perf_counter() - began)
    status = PASS if offending == 0 else check.severity
    return CheckResult(
        **found,
        status=status,
        offending_rows=offending,
        examples=examples,
        seconds=time.perf_counter() - began,
    )


def warehouse_figures(engine: Engine, warehouse: Warehouse, missing_views: list[str]) -> dict:
    """Rows per table, quarantined rows by stage and reason, and the conservation of rows."""
    # from the Delta log's statistics: a query per table cost ~10 ms each
    rows = {
        t.view: row_count(warehouse.table(t)) for t in TABLES if t.view not in missing_views and t not in LOGS
    }
    figures: dict = {"rows": rows, "quarantined_by_reason": []}
    if QUARANTINE.view not in missing_views:
        figures["quarantined_by_reason"] = engine.table(
            "SELECT stage, reason, count(*) AS rows FROM quarantine GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2"
        ).to_pylist()
    if "silver_events" in rows and "bronze_events" in rows:
        duplicates = duplicates_removed(engine)
        in_silver = sum(q["rows"] for q in figures["quarantined_by_reason"] if q["stage"] == "silver")
        figures["conservation"] = {
            "bronze_rows": rows["bronze_events"],
            "silver_events": rows["silver_events"],
            "duplicates_removed": duplicates,
            "quarantined_in_silver": in_silver,
            "balanced": rows["bronze_events"] == rows["silver_events"] + duplicates + in_silver,
        }
    return figures


def _ingested_files(warehouse: Warehouse) -> pa.Table:
    records = file_records(warehouse.table(QUARANTINE)) if warehouse.exists(QUARANTINE) else []
    return pa.table(
        {
            "path": pa.array([r.path for r in records], pa.string()),
            "position": pa.array(range(len(records)), pa.int64()),
            "ingested_at": pa.array([r.ingested_at for r in records], pa.string()),
            "columns": pa.array([r.columns for r in records], pa.list_(pa.string())),
        }
    )


def _result_rows(run_id: str, now: datetime, results: list[CheckResult]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "run_id": run_id,
                "checked_at": now,
                "check_name": r.name,
                "table_name": r.table,
                "layer": r.layer,
                "severity": r.severity,
                "status": r.status,
                "offending_rows": r.offending_rows,
                "example": json.dumps(r.examples[0], default=str) if r.examples else r.message or None,
                "description": r.description,
            }
            for r in results
        ],
        schema=QUALITY_RESULTS_SCHEMA,
    )
