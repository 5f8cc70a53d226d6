"""The JSON report of a run: check results, rows per layer, quarantine by reason."""

import os
from dataclasses import asdict
from pathlib import Path

from eventpipe.context import RunContext
from eventpipe.jsontext import dumps
from eventpipe.quality.runner import QualityResult, run_checks
from eventpipe.warehouse import Warehouse


def write_report(warehouse: Warehouse, quality: QualityResult, run: dict | None = None) -> Path:
    """Write ``_reports/<run id>.json`` (atomically) and return its path."""
    report = {
        "run_id": quality.run_id,
        "checked_at": quality.checked_at,
        "run": run,
        **quality.figures,
        "checks": [asdict(c) for c in quality.checks],
        "failed_checks": [c.name for c in quality.failures],
    }
    path = report_path(warehouse, quality.run_id)
    path.parent.mkdir(exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(dumps(report) + "\n")
    os.replace(partial, path)
    return path


def check_warehouse(ctx: RunContext) -> tuple[QualityResult, Path]:
    """Run every check on the whole warehouse and write their report; returns both."""
    result = run_checks(ctx)
    return result, write_report(ctx.warehouse, result)


def report_path(warehouse: Warehouse, run_id: str) -> Path:
    return warehouse.reports() / f"{run_id}.json"
