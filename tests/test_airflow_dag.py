"""The Airflow 3 DAG, loaded by a real DagBag and run with ``dag.test()`` on a SQLite metadata DB.

Airflow runs in child processes, each with its own AIRFLOW_HOME, so its
configuration and logging never touch the test process.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable

from eventpipe.generate import generate_files

from .conftest import REPO

DAGS = REPO / "dags"
TASKS = ["ingest_bronze_events", "build_silver_layer", "build_gold_layer", "run_quality_checks"]

LOAD = """
import json, sys, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags.get("event_stream")
print(json.dumps({
    "import_errors": bag.import_errors,
    "warnings": [f"{w.category.__name__}: {w.message} ({w.filename})" for w in caught
                 if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning))],
    "tasks": {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks} if dag else None,
    "max_active_runs": dag.max_active_runs if dag else None,
    "retries": {t.task_id: t.retries for t in dag.tasks} if dag else None,
}))
"""

# dag.test() for each conf in turn, in one process: Airflow's in-process API starts once.
RUNS = """
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import DagBag
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from deltalake import DeltaTable

def table_versions(warehouse):
    # quality/results is left out: each run appends its check results there, by design
    return {
        str(log.parent.relative_to(warehouse)): DeltaTable(str(log.parent)).version()
        for log in Path(warehouse).glob("*/*/_delta_log")
        if log.parent.parent.name != "quality"
    }

dag = DagBag(dag_folder=sys.argv[1]).dags["event_stream"]
for conf in json.loads(sys.argv[2]):
    run = dag.test(run_conf=conf)
    with create_session() as session:
        query = XComModel.get_many(run_id=run.run_id, dag_ids=dag.dag_id, key="return_value")
        returned = {x.task_id: XComModel.deserialize_value(x) for x in session.scalars(query)}
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}
    found = {"state": str(run.state), "tasks": states, "returned": returned,
             "versions": table_versions(conf["warehouse"])}
    print("RESULT " + json.dumps(found, default=str), flush=True)
"""


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory) -> dict:
    if importlib.util.find_spec("airflow") is None:
        if os.environ.get("CI"):
            pytest.fail("apache-airflow is not installed; `make test` installs the [airflow] extra")
        pytest.skip("apache-airflow is not installed (pip install -e '.[airflow]')")
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    migrated = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    return env


def airflow_python(env: dict, code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, str(DAGS), *args], env=env, capture_output=True, text=True, timeout=180
    )


def dag_tests(env: dict, confs: list[dict]) -> list[dict]:
    result = airflow_python(env, RUNS, json.dumps(confs))
    found = [
        json.loads(line.removeprefix("RESULT "))
        for line in result.stdout.splitlines()
        if line.startswith("RESULT ")
    ]
    assert len(found) == len(confs), result.stdout[-3000:] + result.stderr[-3000:]
    return found


def test_the_dag_imports_cleanly_with_the_four_tasks_in_order(airflow_env):
    loaded = airflow_python(airflow_env, LOAD)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    found = json.loads(loaded.stdout.splitlines()[-1])
    assert found["import_errors"] == {}
    assert found["warnings"] == []
    assert found["tasks"] == {
        "ingest_bronze_events": ["build_silver_layer"],
        "build_silver_layer": ["build_gold_layer"],
        "build_gold_layer": ["run_quality_checks"],
        "run_quality_checks": [],
    }
    assert found["max_active_runs"] == 1
    assert found["retries"]["ingest_bronze_events"] == 2


def test_dag_runs_end_to_end_then_reruns_without_changes_then_fails_on_a_failing_check(airflow_env, tmp_path):
    landing = tmp_path / "landing"
    generated = generate_files(landing, 20_000, seed=3, days=2, dirty=True, per_day=True)
    warehouse = tmp_path / "warehouse"
    conf = {"warehouse": str(warehouse), "sources": [str(landing)]}
    settings_file = tmp_path / "strict.toml"
    settings_file.write_text(
        '[[quality.checks]]\nname = "no_views_allowed"\ntable = "silver_events"\n'
        "sql = \"SELECT event_id FROM silver_events WHERE event_type = 'view'\"\n"
    )

    first, second, failing = dag_tests(airflow_env, [conf, conf, {**conf, "config": str(settings_file)}])

    assert first["state"] == "success", first
    assert first["tasks"] == dict.fromkeys(TASKS, "success")
    returned = first["returned"]
    ingested = returned["ingest_bronze_events"]
    lines = sum(len(Path(f).read_bytes().splitlines()) - 1 for f in generated.files)
    assert ingested["records"] == lines
    silver = returned["build_silver_layer"]
    assert ingested["bronze_rows"] == silver["bronze_rows"]
    assert silver["bronze_rows"] == silver["events"] + silver["duplicates"] + silver["quarantined"]
    gold = returned["build_gold_layer"]
    by_type = DeltaTable(str(warehouse / "gold/events_by_type")).to_pyarrow_table()
    assert sum(by_type["events_count"].to_pylist()) == silver["events"]
    assert gold["rows"]["events_by_type"] == by_type.num_rows
    funnel_users = {s["step"]: s["entered"] for s in gold["funnel"] if s["level"] == "user"}
    assert funnel_users["view"] >= funnel_users["cart"] >= funnel_users["purchase"] > 0
    assert returned["run_quality_checks"]["conservation"]["balanced"] is True
    assert len(first["versions"]) == 11  # bronze, quarantine, silver events and sessions, 7 gold tables

    # the same files again: every task succeeds and no table gets a new version
    assert second["state"] == "success", second
    assert second["versions"] == first["versions"]
    assert second["returned"]["build_silver_layer"]["unchanged"] is True
    assert second["returned"]["build_gold_layer"]["unchanged"] is True

    # a check that fails fails its task, and the run
    assert failing["state"] == "failed"
    assert failing["tasks"] == {**dict.fromkeys(TASKS[:3], "success"), "run_quality_checks": "failed"}
    assert failing["versions"] == first["versions"]


def test_the_package_never_imports_airflow_and_loads_plotting_only_for_the_report():
    probe = (
        "import sys\n"
        "import eventpipe.cli.main, eventpipe.pipeline, eventpipe.orchestration.stages, eventpipe.report\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'airflow', 'matplotlib', 'jinja2'}))\n"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]"
