"""The pipeline's stages for an orchestrator such as Airflow.

Each function takes the run's parameters (``warehouse``, ``sources``,
``config``: any may be missing or None, and then settings, ``EVENTPIPE_*``
variables and defaults decide) and returns its stage's summary as plain JSON
values, for XComs and logs. Every stage is idempotent: ingest skips files it
holds, silver and gold skip inputs they already built from.
"""

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from eventpipe.errors import EventpipeError
from eventpipe.jsontext import dumps
from eventpipe.settings import Settings


class QualityCheckFailed(EventpipeError):
    """A ``fail`` check failed; the message names it."""

    exit_code = 1


def settings_from(params: Mapping[str, Any] | None) -> Settings:
    params = params or {}
    config = params.get("config")
    warehouse = params.get("warehouse")
    return Settings.load(
        Path(config) if config else None,
        warehouse=Path(warehouse) if warehouse else None,
        sources=list(params["sources"]) if params.get("sources") else None,
    )


def ingest_bronze_events(params: Mapping[str, Any] | None = None) -> dict:
    from eventpipe.ingest import ingest

    result = ingest(settings_from(params))
    return _plain(
        {
            **asdict(result),
            "records": result.records,
            "bronze_rows": result.bronze_rows,
            "quarantined": result.quarantined,
        }
    )


def build_silver_layer(params: Mapping[str, Any] | None = None) -> dict:
    from eventpipe.silver import build_silver

    result = build_silver(settings_from(params))
    return _plain({**asdict(result), "quarantined": result.quarantined})


def build_gold_layer(params: Mapping[str, Any] | None = None) -> dict:
    from eventpipe.gold import build_gold

    return _plain(asdict(build_gold(settings_from(params))))


def run_quality_checks(params: Mapping[str, Any] | None = None) -> dict:
    """Every check; raises :class:`QualityCheckFailed` when a ``fail`` check fails."""
    from eventpipe.quality import check_warehouse

    result, report = check_warehouse(settings_from(params))
    if result.failures:
        failed = ", ".join(f"{c.name} ({c.offending_rows} offending rows)" for c in result.failures)
        raise QualityCheckFailed(f"quality check(s) failed: {failed}; see {report}")
    return _plain(
        {
            "run_id": result.run_id,
            "report": str(report),
            "checks": {c.name: c.status for c in result.checks},
            "conservation": result.figures.get("conservation"),
        }
    )


def _plain(summary: dict) -> dict:
    """Dates, times and decimals as JSON values."""
    return json.loads(dumps(summary))
