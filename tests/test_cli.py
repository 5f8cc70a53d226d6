"""The real command line: summaries, JSON output, and one clear line for every user mistake."""

import json
import os

import pytest
import typer
from deltalake import DeltaTable

from eventpipe.cli.main import app
from eventpipe.generate import generate_files
from eventpipe.warehouse import Warehouse

from .conftest import run_cli


@pytest.fixture
def small_csv(tmp_path):
    return generate_files(tmp_path / "in" / "events.csv", 500, seed=2, dirty=True, dirty_rate=0.01).files[0]


def assert_one_clear_line(result, *fragments, code=2):
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert message.startswith("error:") and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message


def test_ingest_json_summary_and_query(tmp_path, small_csv):
    warehouse = tmp_path / "wh"
    result = run_cli("ingest", "--source", str(small_csv), "--warehouse", str(warehouse), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    [file] = summary["files"]
    assert file["status"] == "ingested"
    assert file["records"] == 500 == file["bronze_rows"] + file["quarantined"]
    assert summary["events_per_second"] > 0
    assert "500 records" in result.stderr

    counted = run_cli(
        "query",
        "-w",
        str(warehouse),
        "--format",
        "json",
        "SELECT (SELECT count(*) FROM bronze_events) AS b, (SELECT count(*) FROM quarantine) AS q",
    )
    assert counted.returncode == 0, counted.stderr
    [row] = json.loads(counted.stdout)
    assert (row["b"], row["q"]) == (file["bronze_rows"], file["quarantined"])

    as_csv = run_cli(
        "query", "-w", str(warehouse), "-f", "csv", "SELECT reason FROM quarantine ORDER BY 1 LIMIT 1"
    )
    assert as_csv.stdout.splitlines()[0] == "reason"


def test_query_cannot_touch_files(tmp_path, small_csv):
    warehouse = tmp_path / "wh"
    run_cli("ingest", "-s", str(small_csv), "-w", str(warehouse))
    target = tmp_path / "leak.csv"
    result = run_cli("query", "-w", str(warehouse), f"COPY bronze_events TO '{target}'")
    assert_one_clear_line(result, "query failed")
    assert not target.exists()


def test_missing_source(tmp_path):
    result = run_cli("ingest", "--source", str(tmp_path / "nope.csv"), "-w", str(tmp_path / "wh"))
    assert_one_clear_line(result, "nope.csv does not exist")


def test_source_missing_a_required_column_lists_its_columns(tmp_path):
    source = tmp_path / "events.csv"
    source.write_text("when,what,who\n2020-09-24 12:00:00 UTC,view,1\n")
    result = run_cli("ingest", "--source", str(source), "-w", str(tmp_path / "wh"))
    assert result.returncode == 4, result.stderr  # the file is named and left out; nothing else stops
    assert "Traceback" not in result.stderr
    [warning] = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    for fragment in ("events.csv", "not ingested", "event_time", "the file has columns: when, what, who"):
        assert fragment in warning
    assert "[columns]" in result.stderr
    assert DeltaTable(str(tmp_path / "wh" / "bronze" / "events")).to_pyarrow_table().num_rows == 0


def test_folder_that_is_not_a_warehouse(tmp_path, small_csv):
    other = tmp_path / "documents"
    other.mkdir()
    (other / "thesis.txt").write_text("precious")
    result = run_cli("ingest", "-s", str(small_csv), "-w", str(other))
    assert_one_clear_line(result, "not an eventpipe warehouse")
    assert sorted(p.name for p in other.iterdir()) == ["thesis.txt"]


def test_warehouse_that_is_a_file(tmp_path, small_csv):
    target = tmp_path / "file"
    target.write_text("x")
    assert_one_clear_line(run_cli("ingest", "-s", str(small_csv), "-w", str(target)), "is a file")


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root reads any folder, so permissions cannot make one unreadable"
)
def test_unreadable_warehouse(tmp_path, small_csv):
    locked = tmp_path / "wh"
    locked.mkdir(mode=0)
    assert_one_clear_line(run_cli("ingest", "-s", str(small_csv), "-w", str(locked)), "not readable")


def test_query_of_a_missing_warehouse(tmp_path):
    assert_one_clear_line(run_cli("query", "-w", str(tmp_path / "none"), "SELECT 1"), "no warehouse at")


def test_locked_warehouse(tmp_path, small_csv):
    warehouse = Warehouse.open(tmp_path / "wh", create=True)
    with warehouse.lock():
        result = run_cli("ingest", "-s", str(small_csv), "-w", str(warehouse.root))
    assert_one_clear_line(result, "in use by another eventpipe run", f"pid {os.getpid()}", code=3)
    assert run_cli("ingest", "-s", str(small_csv), "-w", str(warehouse.root)).returncode == 0


def test_bad_settings_file(tmp_path, small_csv):
    (tmp_path / "eventpipe.toml").write_text("session_timeout_minutes = 'soon'\n")
    result = run_cli("ingest", "-s", str(small_csv), cwd=tmp_path)
    assert_one_clear_line(result, "invalid settings", "session_timeout_minutes")


def test_every_command_has_help_with_an_example():
    commands = sorted(typer.main.get_command(app).commands)
    assert {"generate", "ingest", "query", "silver", "gold", "run", "export", "check"} <= set(commands)
    for command in commands:
        result = run_cli(command, "--help")
        assert result.returncode == 0
        assert "Example: eventpipe " + command in result.stdout


def test_warehouse_that_cannot_be_created(tmp_path, small_csv):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli("ingest", "-s", str(small_csv), "-w", str(blocker / "wh"))
    assert_one_clear_line(result, "cannot create warehouse")


def test_gold_before_silver(tmp_path, small_csv):
    warehouse = tmp_path / "wh"
    run_cli("ingest", "-s", str(small_csv), "-w", str(warehouse))
    assert_one_clear_line(
        run_cli("gold", "-w", str(warehouse)), "no silver_events, sessions yet", "eventpipe silver"
    )


def test_out_of_memory_says_which_setting_to_raise(tmp_path):
    source = generate_files(tmp_path / "in.csv", 200_000, seed=1, days=3).files[0]
    warehouse = tmp_path / "wh"
    assert run_cli("ingest", "-s", str(source), "-w", str(warehouse)).returncode == 0
    result = run_cli("silver", "-w", str(warehouse), env={"EVENTPIPE_MEMORY_LIMIT": "4MB"})
    assert_one_clear_line(result, "ran out of memory", "memory_limit")
