"""Shared fixtures: isolated settings, real warehouses in temporary folders, the real sample."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from eventpipe.settings import Settings
from eventpipe.warehouse import TableSpec

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO.parent / "shared" / "data" / "rees46-electronics-sample"


@pytest.fixture(autouse=True)
def isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No eventpipe.toml or EVENTPIPE_* variable of the developer's leaks into a test."""
    for name in list(os.environ):
        if name.startswith("EVENTPIPE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def spark_missing() -> str | None:
    """Why the Spark engine cannot run here, or None when it can."""
    if importlib.util.find_spec("pyspark") is None:
        return "PySpark is not installed (pip install -e '.[spark]')"
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        return "no Java here (make test installs openjdk-17-jre-headless)"
    return None


@pytest.fixture
def with_spark() -> None:
    """Skips the test, saying why, where the Spark engine cannot run."""
    if reason := spark_missing():
        pytest.skip(reason)


@pytest.fixture(params=["duckdb", "spark"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The engine a test runs on, for every command and stage it runs (by EVENTPIPE_ENGINE)."""
    if request.param == "spark":
        request.getfixturevalue("with_spark")
        monkeypatch.setenv("EVENTPIPE_SPARK_MASTER", "local[2]")
    monkeypatch.setenv("EVENTPIPE_ENGINE", request.param)
    return request.param


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(warehouse=tmp_path / "warehouse")


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    if not (SAMPLE_DIR / "events_raw.csv.gz").is_file():
        pytest.skip(f"the real sample is not here ({SAMPLE_DIR}); it lives in ../shared/data")
    return SAMPLE_DIR


def read(settings: Settings, table: TableSpec) -> pa.Table:
    return DeltaTable(str(settings.warehouse / table.path)).to_pyarrow_table()


def version(settings: Settings, table: TableSpec) -> int:
    return DeltaTable(str(settings.warehouse / table.path)).version()


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real ``eventpipe`` command in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "eventpipe", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=300,
    )
