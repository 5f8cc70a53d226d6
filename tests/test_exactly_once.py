"""Kill ``eventpipe ingest`` with SIGKILL at random moments; a rerun leaves every record exactly once."""

import random
import shutil
import subprocess
import sys
import time
from collections import Counter

import pytest

from eventpipe.generate import generate_files
from eventpipe.settings import Settings
from eventpipe.warehouse import BRONZE_EVENTS, QUARANTINE

from .conftest import read
from .processes import kill_while_running

# a Spark run starts a JVM first: fewer trials, most of them killed before Spark has begun
TRIALS = {"duckdb": 20, "spark": 3}


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    folder = tmp_path_factory.mktemp("landing")
    generate_files(folder, 60_000, seed=21, days=4, dirty=True, dirty_rate=0.003, per_day=True, compress=True)
    return folder


def ingest_command(landing, warehouse):
    return [sys.executable, "-m", "eventpipe", "ingest", "-q", "-s", str(landing), "-w", str(warehouse)]


def landed(warehouse):
    config = Settings.load(warehouse=warehouse)
    rows = read(config, BRONZE_EVENTS).select(["_source_file", "_source_line"]).to_pylist()
    bad = read(config, QUARANTINE).select(["_source_file", "_source_line"]).to_pylist()
    return Counter((r["_source_file"], r["_source_line"]) for r in rows), Counter(
        (r["_source_file"], r["_source_line"]) for r in bad
    )


@pytest.mark.slow
def test_killed_runs_then_rerun_land_every_record_once(engine, landing, tmp_path):
    began = time.perf_counter()
    subprocess.run(ingest_command(landing, tmp_path / "undisturbed"), check=True, capture_output=True)
    full_run = time.perf_counter() - began
    expected_bronze, expected_quarantine = landed(tmp_path / "undisturbed")
    assert len(expected_bronze) == 60_000 - len(expected_quarantine) and expected_quarantine

    chance = random.Random(2020)
    for trial in range(TRIALS[engine]):
        warehouse = tmp_path / f"trial-{trial}"
        killed = kill_while_running(
            ingest_command(landing, warehouse),
            chance.uniform(0.2, full_run),
            fresh=lambda w=warehouse: shutil.rmtree(w, ignore_errors=True),
        )
        assert killed, f"trial {trial}: every attempt had ended before its kill"

        rerun = subprocess.run(ingest_command(landing, warehouse), capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr
        bronze, quarantine = landed(warehouse)
        assert bronze == expected_bronze, f"trial {trial}"
        assert quarantine == expected_quarantine, f"trial {trial}"
