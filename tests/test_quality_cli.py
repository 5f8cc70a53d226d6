"""``eventpipe check``, the checks inside ``eventpipe run``, user checks and the JSON report."""

import csv
import gzip
import json
from pathlib import Path

from deltalake import DeltaTable

from eventpipe.quality import BUILT_IN_CHECKS

from .conftest import run_cli

HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"

EXPENSIVE_CHECK = """
[[quality.checks]]
name = "no_expensive_purchases"
table = "silver_events"
sql = "SELECT event_id, price FROM silver_events WHERE event_type = 'purchase' AND price > 100"
severity = "fail"
description = "purchases above 100 need a look before they reach the dashboards"
"""


def write_day(folder: Path, day: int, price: float) -> Path:
    path = folder / f"2020-10-{day:02d}.csv"
    path.write_text(
        "\n".join(
            [
                HEADER,
                f"2020-10-{day:02d} 10:00:00 UTC,view,1,7,,acme,{price},1,s",
                f"2020-10-{day:02d} 10:01:00 UTC,cart,1,7,,acme,{price},1,s",
                f"2020-10-{day:02d} 10:02:00 UTC,purchase,1,7,,acme,{price},1,s",
                f"2020-10-{day:02d} 11:00:00 UTC,view,2,7,,acme,5.0,2,t",
            ]
        )
        + "\n"
    )
    return path


def gold_versions(warehouse: Path) -> dict[str, int]:
    return {p.name: DeltaTable(str(p)).version() for p in sorted((warehouse / "gold").iterdir())}


def test_a_user_check_that_fails_stops_the_run_before_gold(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    warehouse = tmp_path / "wh"
    write_day(landing, 1, 50.0)
    first = run_cli("run", "-s", str(landing), "-w", str(warehouse), "-q")
    assert first.returncode == 0, first.stderr
    gold_before = gold_versions(warehouse)

    (tmp_path / "eventpipe.toml").write_text(EXPENSIVE_CHECK)
    write_day(landing, 2, 250.0)
    second = run_cli("run", "-s", str(landing), "-w", str(warehouse), "-q", "--json", cwd=tmp_path)
    assert second.returncode == 1, second.stderr
    assert "Traceback" not in second.stderr
    assert "stopped before gold: check(s) no_expensive_purchases failed" in second.stderr
    summary = json.loads(second.stdout)
    assert summary["failed_checks"] == ["no_expensive_purchases"]
    assert summary["gold_published"] is False
    # the previous gold is untouched and readable, and still says one purchase
    assert gold_versions(warehouse) == gold_before
    purchases = run_cli(
        "query", "-w", str(warehouse), "-f", "json", "SELECT sum(purchases) AS n FROM user_funnel"
    )
    assert json.loads(purchases.stdout) == [{"n": 1}]

    report = json.loads(Path(summary["report"]).read_text())
    assert report["failed_checks"] == ["no_expensive_purchases"]
    failed = next(c for c in report["checks"] if c["name"] == "no_expensive_purchases")
    assert failed["offending_rows"] == 1
    assert failed["examples"][0]["price"] == 250.0
    assert not any(c["layer"] == "gold" for c in report["checks"])  # gold did not run

    check = run_cli("check", "-w", str(warehouse), "--json", cwd=tmp_path)
    assert check.returncode == 1
    stored = run_cli(
        "query",
        "-w",
        str(warehouse),
        "-f",
        "json",
        "SELECT status FROM quality_results WHERE check_name = 'no_expensive_purchases' ORDER BY run_id",
    )
    assert [r["status"] for r in json.loads(stored.stdout)] == ["fail", "fail"]


def test_a_user_check_over_this_checks_the_whole_table_on_every_run(tmp_path):
    """A user check runs sandboxed, where the run's changed slices cannot be read: @this is its
    whole table, also after an incremental run that did not touch the offending rows."""
    landing = tmp_path / "landing"
    landing.mkdir()
    warehouse = tmp_path / "wh"
    (tmp_path / "eventpipe.toml").write_text(
        EXPENSIVE_CHECK.replace("FROM silver_events WHERE", "FROM @this WHERE").replace('"fail"', '"warn"')
    )
    write_day(landing, 1, 250.0)  # one expensive purchase on day 1
    first = run_cli("run", "-s", str(landing), "-w", str(warehouse), "-q", "--json", cwd=tmp_path)
    assert json.loads(first.stdout)["checks"]["no_expensive_purchases"] == "warn"

    write_day(landing, 5, 50.0)  # a later day: day 1 is not touched
    second = run_cli("run", "-s", str(landing), "-w", str(warehouse), "-q", "--json", cwd=tmp_path)
    assert json.loads(second.stdout)["checks"]["no_expensive_purchases"] == "warn"
    report = json.loads(Path(json.loads(second.stdout)["report"]).read_text())
    found = next(c for c in report["checks"] if c["name"] == "no_expensive_purchases")
    assert found["offending_rows"] == 1 and found["examples"][0]["price"] == 250.0


def test_a_user_check_whose_sql_fails_is_reported_as_an_error(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    write_day(landing, 1, 5.0)
    (tmp_path / "eventpipe.toml").write_text(
        '[[quality.checks]]\nname = "broken"\ntable = "sessions"\nsql = "SELECT nope FROM sessions"\n'
    )
    result = run_cli("run", "-s", str(landing), "-w", str(tmp_path / "wh"), "-q", "--json", cwd=tmp_path)
    assert result.returncode == 1
    assert json.loads(result.stdout)["checks"]["broken"] == "error"
    assert "nope" in result.stderr


def test_a_user_check_on_an_unknown_table_is_a_settings_error(tmp_path):
    (tmp_path / "eventpipe.toml").write_text(
        '[[quality.checks]]\nname = "x"\ntable = "silver"\nsql = "SELECT 1"\nseverity = "warn"\n'
    )
    landing = tmp_path / "landing"
    landing.mkdir()
    write_day(landing, 1, 5.0)
    result = run_cli("run", "-s", str(landing), "-w", str(tmp_path / "wh"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: check x: unknown table 'silver'; tables are: bronze_events")


def test_the_real_sample_passes_every_fail_check_and_its_figures_add_up(tmp_path, sample_dir):
    warehouse = tmp_path / "wh"
    source = sample_dir / "events_raw.csv.gz"
    ran = run_cli("run", "-s", str(source), "-w", str(warehouse), "-q", "--json")
    assert ran.returncode == 0, ran.stderr
    checked = run_cli("check", "-w", str(warehouse), "--json")
    assert checked.returncode == 0, checked.stderr
    result = json.loads(checked.stdout)
    assert result["failed_checks"] == []
    statuses = {c["name"]: c["status"] for c in result["checks"]}
    assert set(statuses) == {c.name for c in BUILT_IN_CHECKS}
    assert all(statuses[c.name] == "pass" for c in BUILT_IN_CHECKS if c.severity == "fail")

    report = json.loads(Path(json.loads(ran.stdout)["report"]).read_text())
    with gzip.open(source, "rt", newline="") as handle:
        records = sum(1 for _ in csv.reader(handle)) - 1
    conservation = report["conservation"]
    assert conservation["balanced"] is True
    assert records == report["rows"]["bronze_events"] + report["rows"]["quarantine"] - sum(
        q["rows"] for q in report["quarantined_by_reason"] if q["stage"] == "silver"
    )
    assert conservation["bronze_rows"] == (
        conservation["silver_events"]
        + conservation["duplicates_removed"]
        + conservation["quarantined_in_silver"]
    )
    silver = run_cli("query", "-w", str(warehouse), "-f", "json", "SELECT count(*) AS n FROM silver_events")
    assert conservation["silver_events"] == json.loads(silver.stdout)[0]["n"]
    assert sum(q["rows"] for q in report["quarantined_by_reason"]) == report["rows"]["quarantine"]
