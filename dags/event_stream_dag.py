"""eventpipe on Apache Airflow 3: the steps of ``eventpipe run``, each a task, with the run's gate.

ingest_bronze_events -> build_silver_layer -> check_silver_layer -> build_gold_layer
-> run_quality_checks -> record_run. A failing ``fail`` check after silver fails
check_silver_layer, so gold is not built (the previous gold stays); record_run
runs whatever happened before it and leaves the run's ``runs`` row and reports,
as ``eventpipe run`` does. Each task is idempotent: a retried or cleared task
changes nothing it already committed.

Drop this file into Airflow's dags/ folder (with eventpipe installed where the
tasks run). The warehouse is a DAG param whose default is the Airflow Variable
``eventpipe_warehouse``, else EVENTPIPE_WAREHOUSE, read when the DAG is parsed;
with neither, a run fails at once saying so. Sources likewise
(``eventpipe_sources`` / EVENTPIPE_SOURCES, a JSON list); a settings file is
read only when the ``config`` param names one. The DAG runs hourly
(EVENTPIPE_SCHEDULE, cron) and whenever the landing asset
(EVENTPIPE_LANDING_URI, default the first source folder) gets an event. The
pipeline lives in ``eventpipe.orchestration.stages``; this file only wires it.
"""

import json
import os
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.sdk import (
    Asset,
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    Param,
    TriggerRule,
    Variable,
    dag,
    get_current_context,
    task,
)
from airflow.sdk.exceptions import AirflowFailException

from eventpipe.errors import EventpipeError, WarehouseLockedError
from eventpipe.orchestration import stages

STEPS = (
    "ingest_bronze_events",
    "build_silver_layer",
    "check_silver_layer",
    "build_gold_layer",
    "run_quality_checks",
)


def _default(variable: str, environment: str) -> str | None:
    """A Variable's value, else the environment's, read when the DAG file is parsed."""
    try:
        found = Variable.get(variable, default=None)
    except Exception:  # no metadata database to ask (a DAG file checked on its own)
        found = None
    return found or os.environ.get(environment) or None


WAREHOUSE = _default("eventpipe_warehouse", "EVENTPIPE_WAREHOUSE")
SOURCES = json.loads(_default("eventpipe_sources", "EVENTPIPE_SOURCES") or "null")


def _landing_uri() -> str:
    if os.environ.get("EVENTPIPE_LANDING_URI"):
        return os.environ["EVENTPIPE_LANDING_URI"]
    return Path(SOURCES[0] if SOURCES else "landing").resolve().as_uri()


LANDING = Asset(name="eventpipe_landing", uri=_landing_uri())


@contextmanager
def _no_retry_for_mistakes():
    """A wrong setting or source fails the same way again: fail at once, saying how to fix it.
    A warehouse locked by another run is worth a retry."""
    try:
        yield
    except EventpipeError as error:
        if isinstance(error, WarehouseLockedError):
            raise
        raise AirflowFailException(str(error)) from None


def _keep(state: str) -> str:
    """Hand the state on under its own key too, so that the record finds it after a failure."""
    get_current_context()["ti"].xcom_push(key="state", value=state)
    return state


@dag(
    dag_id="event_stream",
    description="Clickstream files to bronze, silver and gold Delta tables, checked after each layer",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(os.environ.get("EVENTPIPE_SCHEDULE", "0 * * * *"), timezone="UTC"),
        assets=LANDING,
    ),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,  # runs share one warehouse; its lock would turn a second one away
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        "warehouse": Param(WAREHOUSE, type=["null", "string"], description="warehouse folder"),
        "sources": Param(SOURCES, type=["null", "array"], description="files, folders or globs to ingest"),
        "config": Param(None, type=["null", "string"], description="eventpipe.toml to read, if any"),
    },
    tags=["eventpipe"],
)
def event_stream():
    @task
    def ingest_bronze_events(params=None) -> str:
        with _no_retry_for_mistakes():
            return _keep(stages.ingest_bronze_events(params))

    @task
    def build_silver_layer(state: str, params=None) -> str:
        with _no_retry_for_mistakes():
            return _keep(stages.build_silver_layer(params, state))

    @task(retries=0)  # a failed check fails again until the data changes
    def check_silver_layer(state: str, params=None) -> str:
        with _no_retry_for_mistakes():
            state, failed = stages.check_silver_layer(params, state)
        _keep(state)
        if failed:
            raise AirflowFailException(f"{failed}; gold is not built and stays as it was")
        return state

    @task
    def build_gold_layer(state: str, params=None) -> str:
        with _no_retry_for_mistakes():
            return _keep(stages.build_gold_layer(params, state))

    @task(retries=0)
    def run_quality_checks(state: str, params=None) -> str:
        with _no_retry_for_mistakes():
            state, failed = stages.run_quality_checks(params, state)
        _keep(state)
        if failed:
            raise AirflowFailException(failed)
        return state

    @task(trigger_rule=TriggerRule.ALL_DONE)  # after a failed check too: the run is recorded
    def record_run(params=None) -> dict:
        ti = get_current_context()["ti"]
        # the state of the last step that left one
        state = next(filter(None, (ti.xcom_pull(task_ids=s, key="state") for s in reversed(STEPS))), None)
        if state is None:
            raise AirflowFailException("no step of this run left a state: ingest did not run")
        with _no_retry_for_mistakes():
            summary = stages.record_run(params, state)
        if summary["failed_checks"]:  # recorded; the DAG run fails as `eventpipe run` exits 1
            raise AirflowFailException(
                f"run recorded; check(s) failed: {', '.join(summary['failed_checks'])}"
            )
        return summary

    checked = run_quality_checks(
        build_gold_layer(check_silver_layer(build_silver_layer(ingest_bronze_events())))
    )
    checked >> record_run()


event_stream()
