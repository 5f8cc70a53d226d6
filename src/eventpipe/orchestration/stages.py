"""The run's steps for an orchestrator such as Airflow: one call per step, state passed as JSON.

Each step takes the run's parameters (``warehouse``, ``sources``, ``config``)
and the state the step before it returned, opens the run's context (same run
id, clock and starting point as the first step), takes its step of
:mod:`eventpipe.pipeline`, and returns the state with its result added. So a
run of the DAG leaves the same tables, ``runs`` row, check results and report
as ``eventpipe run``; and each step is idempotent, so a retried or cleared
task changes nothing it already committed.
"""

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eventpipe import pipeline
from eventpipe.context import RunContext, open_run
from eventpipe.errors import ConfigError, EventpipeError
from eventpipe.jsontext import dumps
from eventpipe.pipeline import RunState
from eventpipe.settings import Settings


class QualityCheckFailed(EventpipeError):
    """A ``fail`` check failed; the message names it."""

    exit_code = 1


def settings_from(params: Mapping[str, Any] | None) -> Settings:
    """Settings from the run's parameters: a warehouse is required, and a settings file is read
    only when ``config`` names one (never one that happens to lie in the worker's folder)."""
    params = params or {}
    if not params.get("warehouse"):
        raise ConfigError(
            "no warehouse given: set the DAG param 'warehouse', the Airflow Variable "
            "'eventpipe_warehouse' or EVENTPIPE_WAREHOUSE where the DAG is parsed"
        )
    config = params.get("config")
    return Settings.load(
        Path(config) if config else None,
        implicit_file=False,
        warehouse=Path(params["warehouse"]),
        sources=list(params["sources"]) if params.get("sources") else None,
    )


def ingest_bronze_events(params: Mapping[str, Any] | None = None) -> str:
    """The run's first step: its identity, and the new files ingested."""
    settings = settings_from(params)
    with open_run(settings) as ctx:
        return pipeline.ingest_step(ctx, RunState.starting(ctx)).to_json()


def build_silver_layer(params: Mapping[str, Any] | None, state: str) -> str:
    with _continuing(params, state) as (ctx, run):
        return pipeline.silver_step(ctx, run).to_json()


def check_silver_layer(params: Mapping[str, Any] | None, state: str) -> tuple[str, str | None]:
    """The checks after silver: (state, why the run stops before gold, or None)."""
    with _continuing(params, state) as (ctx, run):
        run = pipeline.silver_checks_step(ctx, run)
        return run.to_json(), _failures(run)


def build_gold_layer(params: Mapping[str, Any] | None, state: str) -> str:
    with _continuing(params, state) as (ctx, run):
        return pipeline.gold_step(ctx, run).to_json()


def run_quality_checks(params: Mapping[str, Any] | None, state: str) -> tuple[str, str | None]:
    """The checks after gold: (state, which checks failed, or None)."""
    with _continuing(params, state) as (ctx, run):
        run = pipeline.gold_checks_step(ctx, run)
        return run.to_json(), _failures(run)


def record_run(params: Mapping[str, Any] | None, state: str) -> dict:
    """The run's record: its ``runs`` row, JSON and HTML reports; returns the run's summary."""
    with _continuing(params, state) as (ctx, run):
        return json.loads(dumps(pipeline.record_step(ctx, run).summary()))


@contextmanager
def _continuing(params: Mapping[str, Any] | None, state: str) -> Iterator[tuple[RunContext, RunState]]:
    run = RunState.from_json(state)
    settings = settings_from(params)
    with open_run(
        settings,
        create=False,
        now=run.started_at,
        run_id=run.run_id,
        before=run.before,
        newest_before=run.newest_before,
    ) as ctx:
        yield ctx, run


def _failures(run: RunState) -> str | None:
    if not run.stopped:
        return None
    failed = ", ".join(f"{c.name} ({c.offending_rows} offending rows)" for c in run.quality.failures)
    return f"quality check(s) failed: {failed}"
