"""The runs table, late events per run, and ``eventpipe status``."""

import json
from datetime import UTC, datetime

from deltalake import DeltaTable

from eventpipe.generate import generate_files
from eventpipe.settings import Settings

from .conftest import run_cli
from .steps import run

HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
NOW = datetime(2020, 10, 3, tzinfo=UTC)


def write_events(path, *rows: tuple[str, int]):
    lines = [f"{t} UTC,view,1,7,,acme,1.5,{user},s" for t, user in rows]
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return str(path)


def test_each_run_is_a_row_with_its_late_events(tmp_path):
    settings = Settings.load(warehouse=tmp_path / "wh")
    first = write_events(tmp_path / "a.csv", ("2020-10-01 10:00:00", 1), ("2020-10-02 09:00:00", 2))
    a = run(settings, [first], now=NOW)
    # the newest event before the second run is 2020-10-02 09:00: two of these three are late
    second = write_events(
        tmp_path / "b.csv",
        ("2020-10-01 10:10:00", 1),
        ("2020-10-02 08:59:59", 3),
        ("2020-10-02 09:00:00", 3),
    )
    b = run(settings, [first, second], now=NOW)
    c = run(settings, [first, second], now=NOW)
    assert (a.late_events, b.late_events, c.late_events) == (0, 2, 0)

    runs = DeltaTable(str(settings.warehouse / "meta/runs")).to_pyarrow_table().sort_by("run_id").to_pylist()
    assert [r["run_id"] for r in runs] == sorted([a.run_id, b.run_id, c.run_id])
    by_id = {r["run_id"]: r for r in runs}
    assert by_id[a.run_id]["files"] == [first] and by_id[b.run_id]["files"] == [second]
    assert by_id[c.run_id]["files"] == []
    assert [by_id[x.run_id]["records_read"] for x in (a, b, c)] == [2, 3, 0]
    assert [by_id[x.run_id]["late_events"] for x in (a, b, c)] == [0, 2, 0]
    assert [by_id[x.run_id]["silver_events"] for x in (a, b, c)] == [2, 5, 5]
    # one session for user 1 (10:00 and 10:10), one for 2, one for 3 (08:59:59 and 09:00)
    assert by_id[b.run_id]["sessions"] == 3
    assert json.loads(by_id[c.run_id]["table_versions"]) == json.loads(by_id[b.run_id]["table_versions"])
    assert by_id[b.run_id]["gold_published"] and by_id[b.run_id]["failed_checks"] == []


def test_each_run_reports_the_sessions_it_changed(tmp_path):
    settings = Settings.load(warehouse=tmp_path / "wh")
    first = write_events(tmp_path / "a.csv", ("2020-10-01 10:00:00", 1), ("2020-10-02 09:00:00", 2))
    a = run(settings, [first], now=NOW)
    # user 1's session gains 10:10; user 3 has two sessions, an hour apart
    second = write_events(
        tmp_path / "b.csv", ("2020-10-01 10:10:00", 1), ("2020-10-02 12:00:00", 3), ("2020-10-02 13:00:00", 3)
    )
    b = run(settings, [first, second], now=NOW)
    c = run(settings, [first, second], now=NOW)
    # user 1's session now starts at 09:50 (a new id; the old one is gone), user 2's gains 09:10,
    # user 4 has a first session, and 12:30 merges user 3's two sessions into the first
    third = write_events(
        tmp_path / "c.csv",
        ("2020-10-01 09:50:00", 1),
        ("2020-10-02 09:10:00", 2),
        ("2020-10-01 12:00:00", 4),
        ("2020-10-02 12:30:00", 3),
    )
    d = run(settings, [third], now=NOW)
    assert a.sessions_changed == {"new": 2, "updated": 0, "removed": 0}
    assert b.sessions_changed == {"new": 2, "updated": 1, "removed": 0}
    assert c.sessions_changed == {"new": 0, "updated": 0, "removed": 0}
    assert d.sessions_changed == {"new": 2, "updated": 2, "removed": 2}
    assert d.summary()["sessions_changed"] == d.sessions_changed


def test_status_lists_runs_and_tables(tmp_path):
    warehouse = tmp_path / "wh"
    source = write_events(tmp_path / "a.csv", ("2020-10-01 10:00:00", 1))
    assert run_cli("run", "-s", source, "-w", str(warehouse), "-q", "--no-report").returncode == 0
    status = run_cli("status", "-w", str(warehouse), "--format", "json")
    assert status.returncode == 0, status.stderr
    runs_json, tables_json = status.stdout.split("\n]\n", 1)
    runs = json.loads(runs_json + "\n]")
    tables = {t["table"]: t for t in json.loads(tables_json)}
    assert len(runs) == 1 and runs[0]["records_read"] == 1 and runs[0]["late_events"] == 0
    assert tables["silver_events"]["rows"] == 1 and tables["runs"]["rows"] == 1
    assert tables["bronze_events"]["path"] == "bronze/events"


def test_one_run_opens_the_warehouse_once_and_one_engine_connection(tmp_path):
    from eventpipe.engine import DuckDBEngine
    from eventpipe.warehouse import Warehouse

    source = generate_files(tmp_path / "in.csv", 2_000, seed=6, days=2).files[0]
    settings = Settings.load(warehouse=tmp_path / "wh")
    for html_report in (False, True):  # the HTML report is written with the run's connection too
        engines, warehouses = DuckDBEngine.opened, Warehouse.opened
        result = run(settings, [str(source)], html_report=html_report)
        assert result.gold is not None
        assert (DuckDBEngine.opened - engines, Warehouse.opened - warehouses) == (1, 1)
