"""A rerun with nothing new writes nothing; a change of input or rules rebuilds what it affects."""

from datetime import UTC, datetime, timedelta

from deltalake import DeltaTable

from eventpipe.settings import Settings
from eventpipe.warehouse import LOGS, TABLES

from .steps import run

HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
NOW = datetime(2020, 10, 2, 12, tzinfo=UTC)


def versions(settings: Settings) -> dict[str, int]:
    """Every pipeline table's version; the logs (quality_results, runs) get a row per run."""
    return {t.view: DeltaTable(str(settings.warehouse / t.path)).version() for t in TABLES if t not in LOGS}


def write_events(path, *times: str):
    lines = [f"{t} UTC,view,1,7,,acme,1.5,1,s" for t in times]
    path.write_text("\n".join([HEADER, *lines]) + "\n")


def test_a_rerun_with_no_new_files_changes_no_table(engine, tmp_path):
    write_events(tmp_path / "a.csv", "2020-10-01 10:00:00", "2020-10-01 10:20:00", "2020-10-01 11:30:00")
    settings = Settings.load(warehouse=tmp_path / "wh")
    first = run(settings, [str(tmp_path / "a.csv")], now=NOW)
    before = versions(settings)
    second = run(settings, [str(tmp_path / "a.csv")], now=NOW + timedelta(hours=1))
    assert versions(settings) == before
    assert second.silver.unchanged and second.gold is not None and second.gold.unchanged
    assert (second.silver.events, second.silver.sessions) == (first.silver.events, first.silver.sessions)
    assert second.gold.rows == first.gold.rows and second.gold.funnel == first.gold.funnel


def test_new_rules_rebuild_silver_and_gold(tmp_path):
    write_events(tmp_path / "a.csv", "2020-10-01 10:00:00", "2020-10-01 10:20:00", "2020-10-01 10:40:00")
    settings = Settings.load(warehouse=tmp_path / "wh")
    first = run(settings, [str(tmp_path / "a.csv")], now=NOW)
    stricter = Settings.load(warehouse=tmp_path / "wh", session_timeout_minutes=10)
    second = run(stricter, [str(tmp_path / "a.csv")], now=NOW)
    assert not second.silver.unchanged and not second.gold.unchanged
    assert (first.silver.sessions, second.silver.sessions) == (1, 3)


def test_an_event_quarantined_as_future_is_accepted_once_its_time_comes(tmp_path):
    write_events(tmp_path / "a.csv", "2020-10-01 10:00:00", "2020-10-05 10:00:00")
    settings = Settings.load(warehouse=tmp_path / "wh")
    first = run(settings, [str(tmp_path / "a.csv")], now=NOW)
    assert first.silver.quarantined == 1
    still_early = run(settings, [str(tmp_path / "a.csv")], now=NOW + timedelta(days=1))
    assert still_early.silver.unchanged and still_early.silver.quarantined == 1
    later = run(settings, [str(tmp_path / "a.csv")], now=NOW + timedelta(days=2))
    assert not later.silver.unchanged
    assert (later.silver.events, later.silver.quarantined) == (2, 0)
