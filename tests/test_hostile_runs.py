"""Hostile layouts, checks and values through the real command line: nothing of the warehouse
is read as input, user SQL touches no file, exports neutralize formulas however they are
disguised, and the same input gives the same bits."""

import csv
import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from eventpipe.engine import create_engine
from eventpipe.generate import generate_files
from eventpipe.gold import sql as gold_sql
from eventpipe.settings import Settings

from .conftest import run_cli

HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"


def bronze_rows(warehouse: Path) -> int:
    return DeltaTable(str(warehouse / "bronze/events")).to_pyarrow_table().num_rows


def test_a_warehouse_inside_the_landing_folder_is_never_ingested(tmp_path):
    landing = tmp_path / "landing"
    generate_files(landing, 2_000, seed=5, days=2, per_day=True)
    warehouse = landing / "warehouse"  # its Parquet files lie under the landing folder
    for _ in range(2):
        ran = run_cli("run", "-q", "--no-report", "--json", "-s", str(landing), "-w", str(warehouse))
        assert ran.returncode == 0, ran.stderr
        assert bronze_rows(warehouse) == 2_000
    assert json.loads(ran.stdout)["rows"]["bronze"] == 2_000


def test_a_source_inside_the_warehouse_is_refused(tmp_path):
    landing = tmp_path / "landing"
    generate_files(landing, 500, seed=5, days=1, per_day=True)
    warehouse = tmp_path / "wh"
    assert run_cli("run", "-q", "--no-report", "-s", str(landing), "-w", str(warehouse)).returncode == 0
    refused = run_cli("run", "-q", "--no-report", "-s", str(warehouse / "bronze"), "-w", str(warehouse))
    assert refused.returncode == 2
    assert "inside the warehouse" in refused.stderr and "Traceback" not in refused.stderr
    assert bronze_rows(warehouse) == 500


def test_a_user_check_can_neither_read_nor_write_files(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the password is swordfish\n")
    written = tmp_path / "written.csv"
    (tmp_path / "eventpipe.toml").write_text(
        f"""
[[quality.checks]]
name = "reads_a_file"
table = "silver_events"
sql = "SELECT * FROM read_text('{secret}')"
severity = "warn"

[[quality.checks]]
name = "writes_a_file"
table = "silver_events"
sql = "SELECT * FROM (COPY (SELECT 1) TO '{written}')"
severity = "warn"
"""
    )
    landing = tmp_path / "landing"
    generate_files(landing, 500, seed=5, days=1, per_day=True)
    warehouse = tmp_path / "wh"
    command = ("run", "-q", "--no-report", "--json", "-s", str(landing), "-w", str(warehouse))
    ran = run_cli(*command, cwd=tmp_path)
    checks = json.loads(ran.stdout)["checks"]
    assert checks["reads_a_file"] == "error" and checks["writes_a_file"] == "error"
    assert not written.exists()
    stored = DeltaTable(str(warehouse / "quality/results")).to_pyarrow_table().to_pylist()
    assert not any("swordfish" in json.dumps(row, default=str) for row in stored)


def test_export_neutralizes_formulas_behind_spaces_and_invisible_characters(tmp_path):
    disguises = [" =1+1", "\u00a0=1+1", "\u200b@sum", "\ufeff+1", "\x01-1", "\t=1", "ok"]
    source = tmp_path / "events.csv"
    with open(source, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(HEADER.split(","))
        for i, brand in enumerate(disguises):
            out.writerow([f"2020-09-24 10:00:0{i} UTC", "view", 1, 9, "", brand, 1.5, 1, "s"])
    warehouse, exports = tmp_path / "wh", tmp_path / "exports"
    assert run_cli("run", "-q", "--no-report", "-s", str(source), "-w", str(warehouse)).returncode == 0
    exported = run_cli("export", "-w", str(warehouse), "--out", str(exports))
    assert exported.returncode == 0, exported.stderr
    with open(exports / "silver" / "events_silver.csv", newline="", encoding="utf-8") as handle:
        brands = {row["brand"] for row in csv.DictReader(handle)}
    # every disguised formula starts with a quote, so a spreadsheet shows it as text
    assert brands == {"'" + b for b in disguises if b != "ok"} | {"ok"}


def test_the_same_input_gives_the_same_bits_in_every_table(tmp_path):
    landing = tmp_path / "landing"
    generate_files(landing, 20_000, seed=12, days=3, dirty=True, per_day=True)
    tables = []
    for name in ("first", "second"):
        warehouse = tmp_path / name
        ran = run_cli("run", "-q", "--no-report", "-s", str(landing), "-w", str(warehouse))
        assert ran.returncode == 0, ran.stderr
        found = {}
        for path in [*sorted((warehouse / "gold").iterdir()), warehouse / "silver/sessions"]:
            rows = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
            # floats compared by their bits (repr is exact); sorted, so the order is irrelevant
            found[path.name] = sorted(repr(sorted(r.items())) for r in rows)
        tables.append(found)
    assert tables[0] == tables[1]


def test_files_gone_before_their_turn_are_named_and_the_others_land(tmp_path):
    from eventpipe.context import open_run
    from eventpipe.ingest.bronze import Progress, ingest
    from eventpipe.settings import Settings

    landing = tmp_path / "landing"
    generate_files(landing, 3_000, seed=5, days=3, per_day=True)
    first, second, third = sorted(landing.iterdir())
    kept = len(second.read_text().splitlines()) - 1

    class RemovingFiles(Progress):
        """Deletes the file about to be read, and one not yet read ahead, as a cleanup job might."""

        def start_file(self, source) -> None:
            if source.path == first:
                first.unlink()
                third.unlink()

    with open_run(Settings.load(warehouse=tmp_path / "wh")) as ctx:
        result = ingest(ctx, [str(landing)], RemovingFiles())
    assert {Path(f.path) for f in result.failed} == {first, third}
    assert all("disappeared while it was read" in f.note for f in result.failed)
    assert result.bronze_rows == kept == bronze_rows(tmp_path / "wh")


def test_daily_means_do_not_depend_on_the_order_sessions_are_read_in():
    """Floating-point sums depend on the order of their terms, which threads make vary from run
    to run; sessions_daily's mean is an exact integer sum divided once, so every order gives
    the same bits."""
    chance = random.Random(4)
    start = datetime(2020, 10, 1, tzinfo=UTC)
    sessions = []
    for i in range(60_000):
        began = start + timedelta(days=i % 3, microseconds=chance.randrange(80_000_000_000))
        ended = began + timedelta(microseconds=chance.randrange(1, 5_000_000_000))
        sessions.append(
            {
                "session_date": date(2020, 10, 1 + i % 3),
                "user_id": chance.randrange(20_000),
                "session_start": began,
                "session_end": ended,
                "session_length_minutes": (ended - began) / timedelta(minutes=1),
                "events_count": chance.randrange(1, 9),
                "converted": chance.random() < 0.1,
            }
        )
    results = []
    with create_engine(Settings(memory_limit="1GB")) as engine:
        for _ in range(4):
            chance.shuffle(sessions)
            engine.register("shuffled_sessions", pa.Table.from_pylist(sessions))
            rows = engine.table(gold_sql.sessions_daily("shuffled_sessions")).to_pylist()
            results.append(sorted(repr(sorted(r.items())) for r in rows))
    assert all(r == results[0] for r in results)
