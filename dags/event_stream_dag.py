"""eventpipe on Apache Airflow 3: bronze -> silver -> gold -> quality checks.

Drop this file into Airflow's dags/ folder (with eventpipe installed where the
tasks run). Settings come from the DAG params, then eventpipe.toml and
EVENTPIPE_* variables: EVENTPIPE_WAREHOUSE, EVENTPIPE_SOURCES (a JSON list),
EVENTPIPE_CONFIG. The DAG runs on a schedule (EVENTPIPE_SCHEDULE, cron,
default hourly) and whenever the landing asset (EVENTPIPE_LANDING_URI, default
the first source folder) gets an event: whoever lands files posts one, e.g.
``POST /api/v2/assets/events {"asset_id": ..}`` or a producing task with
``outlets=[Asset(uri)]``. The pipeline logic lives in
``eventpipe.orchestration.stages``; this file only wires it.
"""

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from eventpipe.orchestration import stages


def _landing_uri() -> str:
    if os.environ.get("EVENTPIPE_LANDING_URI"):
        return os.environ["EVENTPIPE_LANDING_URI"]
    sources = json.loads(os.environ.get("EVENTPIPE_SOURCES") or '["landing"]')
    return Path(sources[0] if sources else "landing").resolve().as_uri()


LANDING = Asset(name="eventpipe_landing", uri=_landing_uri())


@dag(
    dag_id="event_stream",
    description="Clickstream files to bronze, silver and gold Delta tables, then data-quality checks",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(os.environ.get("EVENTPIPE_SCHEDULE", "0 * * * *"), timezone="UTC"),
        assets=LANDING,
    ),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,  # runs share one warehouse; its lock would turn a second one away
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        "warehouse": Param(None, type=["null", "string"], description="warehouse folder"),
        "sources": Param(None, type=["null", "array"], description="files, folders or globs to ingest"),
        "config": Param(None, type=["null", "string"], description="eventpipe.toml to read"),
    },
    tags=["eventpipe"],
)
def event_stream():
    @task
    def ingest_bronze_events(params=None) -> dict:
        return stages.ingest_bronze_events(params)

    @task
    def build_silver_layer(params=None) -> dict:
        return stages.build_silver_layer(params)

    @task
    def build_gold_layer(params=None) -> dict:
        return stages.build_gold_layer(params)

    @task(retries=0)  # a failed check fails again until the data changes
    def run_quality_checks(params=None) -> dict:
        return stages.run_quality_checks(params)

    ingest_bronze_events() >> build_silver_layer() >> build_gold_layer() >> run_quality_checks()


event_stream()
