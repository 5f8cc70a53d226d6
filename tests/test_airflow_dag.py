"""The Airflow 3 DAG, loaded by a real DagBag and run with ``dag.test()`` on a SQLite metadata DB.

Airflow runs in child processes, each with its own AIRFLOW_HOME, so its
configuration and logging never touch the test process.
"""

import importlib.util
import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable

from eventpipe.generate import generate_files

from .conftest import REPO, run_cli
from .tables import warehouse_rows

DAGS = REPO / "dags"
TASKS = [
    "ingest_bronze_events",
    "build_silver_layer",
    "check_silver_layer",
    "build_gold_layer",
    "run_quality_checks",
    "record_run",
]

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
             "versions": table_versions(conf["warehouse"]) if conf.get("warehouse") else {}}
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


def airflow_python(env: dict, code: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, str(DAGS), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def dag_tests(env: dict, confs: list[dict], cwd: Path | None = None) -> list[dict]:
    result = airflow_python(env, RUNS, json.dumps(confs), cwd=cwd)
    found = [
        json.loads(line.removeprefix("RESULT "))
        for line in result.stdout.splitlines()
        if line.startswith("RESULT ")
    ]
    assert len(found) == len(confs), result.stdout[-3000:] + result.stderr[-3000:]
    return [{**f, "log": result.stdout + result.stderr} for f in found]


def test_the_dag_imports_cleanly_with_the_run_steps_in_order(airflow_env):
    loaded = airflow_python(airflow_env, LOAD)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    found = json.loads(loaded.stdout.splitlines()[-1])
    assert found["import_errors"] == {}
    assert found["warnings"] == []
    assert found["tasks"] == {step: [after] for step, after in itertools.pairwise(TASKS)} | {"record_run": []}
    assert found["max_active_runs"] == 1
    assert found["retries"]["ingest_bronze_events"] == 2
    assert found["retries"]["check_silver_layer"] == 0


def test_dag_runs_equal_cli_runs_rerun_changes_nothing_and_a_failing_check_stops_gold(airflow_env, tmp_path):
    landing, extra = tmp_path / "landing", tmp_path / "extra"
    generate_files(landing, 20_000, seed=3, days=2, dirty=True, per_day=True)
    generate_files(extra / "later.csv", 2_000, seed=4, days=1)
    warehouse, cli_warehouse = tmp_path / "warehouse", tmp_path / "cli"
    conf = {"warehouse": str(warehouse), "sources": [str(landing)]}
    strict = tmp_path / "strict.toml"
    strict.write_text(
        '[[quality.checks]]\nname = "no_views_allowed"\ntable = "silver_events"\n'
        "sql = \"SELECT event_id FROM silver_events WHERE event_type = 'view'\"\n"
    )
    [first] = dag_tests(airflow_env, [conf])

    assert first["state"] == "success", first
    assert first["tasks"] == dict.fromkeys(TASKS, "success")
    summary = first["returned"]["record_run"]
    assert summary["gold_published"] is True and summary["failed_checks"] == []
    assert summary["rows"]["bronze"] == summary["rows"]["silver_events"] + summary[
        "duplicates_removed"
    ] + sum(summary["quarantined_by_reason"]["silver"].values())
    assert len(first["versions"]) == 12  # bronze, quarantine, silver events and sessions, 7 gold, runs

    # the CLI over the same files leaves the same tables, runs row and check results
    ran = run_cli("run", "-q", "--no-report", "-s", str(landing), "-w", str(cli_warehouse))
    assert ran.returncode == 0, ran.stderr
    assert_same_run_records(warehouse, cli_warehouse)

    # the same files again: no data table gets a new version
    again, more = dag_tests(airflow_env, [conf, {**conf, "sources": [str(landing), str(extra)]}])
    assert again["state"] == "success", again
    assert again["versions"] == {**first["versions"], "meta/runs": first["versions"]["meta/runs"] + 1}
    # data added between runs: it lands, and only what it touches changes
    assert more["state"] == "success", more
    assert more["returned"]["record_run"]["rows"]["records_read"] == 2_000

    # a user check that fails after silver: its task fails, gold is not built, the run is recorded
    stopped_at, stopped_cli = tmp_path / "stopped", tmp_path / "stopped-cli"
    [stopped] = dag_tests(airflow_env, [{**conf, "warehouse": str(stopped_at), "config": str(strict)}])
    assert stopped["state"] == "failed"
    assert stopped["tasks"] == {
        "ingest_bronze_events": "success",
        "build_silver_layer": "success",
        "check_silver_layer": "failed",
        "build_gold_layer": "upstream_failed",
        "run_quality_checks": "upstream_failed",
        "record_run": "failed",  # recorded, then failing the run as the CLI exits 1
    }
    assert not (stopped_at / "gold").exists()
    ran = run_cli(
        "run", "-q", "--no-report", "--config", str(strict), "-s", str(landing), "-w", str(stopped_cli)
    )
    assert ran.returncode == 1, ran.stderr
    assert_same_run_records(stopped_at, stopped_cli)


def test_a_run_without_a_warehouse_fails_at_once_saying_how_to_set_it(airflow_env, tmp_path):
    # the worker's folder holds a settings file naming a warehouse: it is not read unless named
    (tmp_path / "eventpipe.toml").write_text('warehouse = "from-the-folder"\n')
    [run] = dag_tests(airflow_env, [{"sources": [str(tmp_path)]}], cwd=tmp_path)
    assert run["state"] == "failed"
    assert run["tasks"]["ingest_bronze_events"] == "failed"
    assert "no warehouse given" in run["log"] and "eventpipe_warehouse" in run["log"]
    assert not (tmp_path / "from-the-folder").exists() and not (tmp_path / "warehouse").exists()


def assert_same_run_records(dag_warehouse: Path, cli_warehouse: Path) -> None:
    """Equal data tables, and runs and quality_results rows equal but for ids, clocks and timings."""
    assert warehouse_rows(dag_warehouse) == warehouse_rows(cli_warehouse)
    for table, moving in (
        ("meta/runs", {"run_id", "started_at", "ended_at", "seconds"}),
        ("quality/results", {"run_id", "checked_at", "example"}),
    ):
        dag = DeltaTable(str(dag_warehouse / table)).to_pyarrow_table().to_pylist()
        cli = DeltaTable(str(cli_warehouse / table)).to_pyarrow_table().to_pylist()

        def fixed(rows, moving=moving):
            return sorted(
                json.dumps({k: v for k, v in r.items() if k not in moving}, default=str) for r in rows
            )

        assert fixed(dag) == fixed(cli), table


def test_the_package_never_imports_airflow_and_loads_plotting_only_for_the_report():
    probe = (
        "import sys\n"
        "import eventpipe.cli.main, eventpipe.pipeline, eventpipe.orchestration.stages, eventpipe.report\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'airflow', 'matplotlib', 'jinja2'}))\n"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_a_run_triggered_under_a_real_scheduler_builds_the_tables_and_records_the_run(airflow_env, tmp_path):
    """The scheduler, the DAG processor and the API server (tasks report to its execution API)
    as separate processes, LocalExecutor, SQLite; a run triggered from the command line."""
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse"
    generate_files(landing, 6_000, seed=8, days=2, dirty=True, per_day=True)
    home = tmp_path / "home"
    home.mkdir()
    port = _free_port()
    env = {
        **airflow_env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": "a secret the processes share",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),  # not 8793, maybe in use
        # the DAG's defaults, read where it is parsed: this run's warehouse and landing folder
        "EVENTPIPE_WAREHOUSE": str(warehouse),
        "EVENTPIPE_SOURCES": json.dumps([str(landing)]),
    }
    airflow = [sys.executable, "-m", "airflow"]
    migrated = subprocess.run(
        [*airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=180
    )
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    logs = {
        name: (tmp_path / f"{name}.log").open("w") for name in ("api-server", "dag-processor", "scheduler")
    }
    components = [
        subprocess.Popen(
            [*airflow, name],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=tmp_path,
        )
        for name, log in logs.items()
    ]
    deadline = time.monotonic() + 420
    database = home / "airflow.db"
    try:
        # the DAG is known once the DAG processor has serialized it; then it can be triggered
        while not _dag_known(database):
            assert time.monotonic() < deadline, _tails(logs)
            assert all(c.poll() is None for c in components), _tails(logs)
            time.sleep(1)
        for command in (
            ["dags", "unpause", "event_stream"],
            ["dags", "trigger", "event_stream", "-r", "cli-run"],
        ):
            done = subprocess.run([*airflow, *command], env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr[-2000:]
        while (state := _run_state(database, "cli-run")) not in ("success", "failed"):
            assert time.monotonic() < deadline, f"run state {state}\n{_tails(logs)}"
            assert all(c.poll() is None for c in components), _tails(logs)
            time.sleep(2)
    finally:
        for component in components:
            if component.poll() is None:
                os.killpg(component.pid, signal.SIGTERM)
        for component in components:
            try:
                component.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(component.pid, signal.SIGKILL)
                component.wait()
        for log in logs.values():
            log.close()
    assert state == "success", _task_states(database, "cli-run") + "\n" + _tails(logs)

    # unpausing also started the latest hourly slot: runs in turn, each file ingested once
    cli_warehouse = tmp_path / "cli"
    ran = run_cli("run", "-q", "--no-report", "-s", str(landing), "-w", str(cli_warehouse))
    assert ran.returncode == 0, ran.stderr
    assert warehouse_rows(warehouse) == warehouse_rows(cli_warehouse)
    runs = DeltaTable(str(warehouse / "meta/runs")).to_pyarrow_table().to_pylist()
    assert sum(r["records_read"] for r in runs) == 6_000
    assert all(r["gold_published"] and not r["failed_checks"] for r in runs)
    assert any(r["silver_events"] == warehouse_rows(cli_warehouse)["silver_events"].total() for r in runs)


def _dag_known(database: Path) -> bool:
    found = _first_row(database, "SELECT count(*) FROM serialized_dag WHERE dag_id = 'event_stream'")
    return bool(found and found[0])


def _run_state(database: Path, run_id: str) -> str | None:
    sql = "SELECT state FROM dag_run WHERE dag_id = 'event_stream' AND run_id = ?"
    found = _first_row(database, sql, (run_id,))
    return found[0] if found else None


def _first_row(database: Path, sql: str, params: tuple = ()) -> tuple | None:
    """The first row of ``sql`` on Airflow's database; None while it is not migrated that far
    or locked for a moment."""
    try:
        with sqlite3.connect(database, timeout=5) as db:
            return db.execute(sql, params).fetchone()
    except sqlite3.OperationalError:
        return None


def _task_states(database: Path, run_id: str) -> str:
    with sqlite3.connect(database, timeout=5) as db:
        rows = db.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = 'event_stream' AND run_id = ?", (run_id,)
        ).fetchall()
    return f"tasks: {dict(rows)}"


def _tails(logs: dict) -> str:
    return "\n".join(f"--- {name}\n{Path(log.name).read_text()[-3000:]}" for name, log in logs.items())
