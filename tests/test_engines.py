"""The engines build the same warehouse: a build made on one is continued on the other, and a
real Spark cluster (a standalone master and a worker on this machine) builds what DuckDB does."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from eventpipe.generate import generate_files
from eventpipe.settings import Settings

from .conftest import run_cli
from .steps import run
from .tables import warehouse_rows

NOW_FILES = 4


@pytest.fixture(scope="module")
def daily_files(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("landing")
    generate_files(folder, 6_000, seed=14, days=NOW_FILES, dirty=True, dirty_rate=0.02, per_day=True)
    return sorted(str(p) for p in folder.iterdir())


@pytest.fixture(scope="module")
def full_build(daily_files, tmp_path_factory) -> dict:
    """Every table of one DuckDB run over all the files."""
    settings = Settings.load(warehouse=tmp_path_factory.mktemp("full") / "wh", engine="duckdb")
    run(settings, daily_files)
    return warehouse_rows(settings.warehouse)


def test_importing_eventpipe_loads_neither_spark_nor_sqlglot():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, eventpipe.cli.main, eventpipe.pipeline, eventpipe.engine, eventpipe.ingest.tasks; "
            "print(sorted(m for m in ('pyspark', 'py4j', 'sqlglot') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"


@pytest.mark.slow
@pytest.mark.parametrize(("first", "then"), [("duckdb", "spark"), ("spark", "duckdb")])
def test_a_build_on_one_engine_continued_on_the_other_equals_one_full_build(
    with_spark, daily_files, full_build, tmp_path, first, then
):
    warehouse = tmp_path / "wh"
    half = len(daily_files) // 2
    for engine, files in ((first, daily_files[:half]), (then, daily_files[half:])):
        settings = Settings.load(warehouse=warehouse, engine=engine, spark_master="local[2]")
        result = run(settings, files)
        assert [f.status.value for f in result.ingest.files] == ["ingested"] * len(files)
    assert warehouse_rows(warehouse) == full_build
    # and the second engine took the first's tables as they were: it only added what was new
    assert result.silver.incremental and result.gold.incremental


@pytest.mark.slow
def test_eventpipe_run_on_a_standalone_spark_cluster(with_spark, daily_files, full_build, tmp_path):
    with spark_cluster(tmp_path / "cluster") as master:
        spark_conf = {
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.executor.memory": "1g",
            "spark.cores.max": "2",
        }
        done = run_cli(
            "run",
            "--engine",
            "spark",
            "--no-report",
            "-w",
            str(tmp_path / "wh"),
            *(arg for f in daily_files for arg in ("-s", f)),
            env={"EVENTPIPE_SPARK_MASTER": master, "EVENTPIPE_SPARK": json.dumps(spark_conf)},
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Traceback" not in done.stderr
    assert warehouse_rows(tmp_path / "wh") == full_build


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listens(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def spark_cluster(folder: Path, timeout: float = 60):
    """A Spark standalone master and one worker (2 cores) on 127.0.0.1, from the pyspark
    install; yields the master's URL and stops both, whatever happens."""
    import pyspark

    home = Path(pyspark.__file__).parent
    folder.mkdir(parents=True)
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_WORKER_DIR": str(folder / "work"),  # else it writes into site-packages
        "SPARK_LOG_DIR": str(folder / "logs"),
    }
    port = _free_port()
    url = f"spark://127.0.0.1:{port}"
    spark_class = str(home / "bin" / "spark-class")
    commands = {
        "master": f"{spark_class} org.apache.spark.deploy.master.Master --host 127.0.0.1 --port {port}",
        "worker": f"{spark_class} org.apache.spark.deploy.worker.Worker {url} --host 127.0.0.1 "
        "--cores 2 --memory 2g",
    }
    processes = []
    try:
        for name, command in commands.items():
            log = open(folder / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
            arguments = [*command.split(), "--webui-port", str(_free_port())]
            process = subprocess.Popen(
                arguments, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            processes.append((process, log))
            ready = "Starting Spark master" if name == "master" else "Successfully registered with master"
            deadline = time.monotonic() + timeout
            while ready not in (folder / f"{name}.log").read_text():
                assert processes[-1][0].poll() is None, (folder / f"{name}.log").read_text()[-2000:]
                assert time.monotonic() < deadline, f"the {name} did not start in {timeout} s"
                time.sleep(0.2)
            if name == "master":  # the master takes workers once it listens
                while not _listens(port):
                    assert time.monotonic() < deadline, "the master does not listen"
                    time.sleep(0.2)
        yield url
    finally:
        for process, log in reversed(processes):
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            log.close()
