"""Every built-in check passes on a sound warehouse and reports the rows of a corrupted one.

The warehouse is real: daily CSV files through ``pipeline.run``. Each corruption
is a bad Delta version of one table (written with ``deltalake``) or a file
ingested through the public API, and the test names the offending rows the
check must report.
"""

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from eventpipe.changes import Changes
from eventpipe.generate import generate_files
from eventpipe.quality import BUILT_IN_CHECKS
from eventpipe.settings import Settings
from eventpipe.warehouse import (
    DAILY_METRICS,
    EVENTS_BY_MINUTE,
    EVENTS_BY_TYPE,
    FUNNEL,
    SESSIONS,
    SESSIONS_DAILY,
    SILVER_EVENTS,
    USER_FUNNEL,
    TableSpec,
)

from .steps import ingest, run, run_checks

HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
DAYS = [datetime(2020, 10, 1, tzinfo=UTC) + timedelta(days=d) for d in range(9)]
NOW = DAYS[-1] + timedelta(hours=20)  # the newest event is a few hours old


def day_lines(day: datetime) -> list[str]:
    """Four users, each with one session: views, a cart, and (for even users) a purchase."""
    lines = []
    for user in range(1, 5):
        start = day + timedelta(hours=10, minutes=user)
        kinds = ["view", "view", "cart"] + (["purchase"] if user % 2 == 0 else ["view"])
        for i, kind in enumerate(kinds):
            at = start + timedelta(minutes=2 * i)
            lines.append(
                f"{at:%Y-%m-%d %H:%M:%S} UTC,{kind},{100 + i},7,a.b,acme,{10 + user}.5,{user},s{user}"
            )
    return lines


def write_csv(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


@pytest.fixture(scope="module")
def sound_warehouse(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sound")
    landing = root / "landing"
    landing.mkdir()
    for day in DAYS:
        write_csv(landing / f"{day:%Y-%m-%d}.csv", day_lines(day))
    settings = Settings.load(warehouse=root / "warehouse")
    result = run(settings, [str(p) for p in sorted(landing.iterdir())], now=NOW)
    assert not result.failed and result.gold is not None
    return settings.warehouse


@pytest.fixture
def settings(sound_warehouse: Path, tmp_path: Path) -> Settings:
    """A private copy of the sound warehouse."""
    shutil.copytree(sound_warehouse, tmp_path / "warehouse")
    return Settings.load(warehouse=tmp_path / "warehouse")


def rewrite(settings: Settings, table: TableSpec, change: Callable[[list[dict]], list[dict]]) -> None:
    """Commit a new version of ``table`` whose rows are ``change`` of the current ones."""
    path = str(settings.warehouse / table.path)
    current = DeltaTable(path).to_pyarrow_table()
    rows = change(current.to_pylist())
    write_deltalake(
        path,
        pa.Table.from_pylist(rows, schema=current.schema),
        mode="overwrite",
        partition_by=list(table.partition_by) or None,
    )


@pytest.fixture(params=["whole", "changed"])
def scope(request) -> str:
    """Each check finds the offending rows on whole tables, and bound to what a run changed."""
    return request.param


def everything_changed(settings: Settings) -> Changes:
    """What a run changed, were it every bronze row and every silver partition."""
    events = DeltaTable(str(settings.warehouse / SILVER_EVENTS.path)).to_pyarrow_table(columns=["event_date"])
    sessions = DeltaTable(str(settings.warehouse / SESSIONS.path)).to_pyarrow_table(columns=["session_date"])
    return Changes(
        bronze_since=0,  # the table's creation: every row is the run's
        event_dates=frozenset(str(d) for d in events["event_date"].to_pylist()),
        session_dates=frozenset(str(d) for d in sessions["session_date"].to_pylist()),
        newest_before=None,
    )


def result_of(settings: Settings, scope: str, name: str, now: datetime = NOW):
    changes = everything_changed(settings) if scope == "changed" else None
    results = {c.name: c for c in run_checks(settings, now=now, changes=changes).checks}
    return results[name]


def test_a_sound_warehouse_passes_every_built_in_check(settings):
    results = run_checks(settings, now=NOW).checks
    assert [c.name for c in results] == [c.name for c in BUILT_IN_CHECKS]
    assert {c.name: c.status for c in results} == {c.name: "pass" for c in BUILT_IN_CHECKS}


def test_results_are_appended_to_quality_results(settings):
    first = run_checks(settings, now=NOW)
    second = run_checks(settings, now=NOW)
    stored = DeltaTable(str(settings.warehouse / "quality/results")).to_pyarrow_table().to_pylist()
    runs = {r["run_id"] for r in stored}
    assert {first.run_id, second.run_id} <= runs
    for run_id in (first.run_id, second.run_id):
        assert sorted(r["check_name"] for r in stored if r["run_id"] == run_id) == sorted(
            c.name for c in BUILT_IN_CHECKS
        )


# --- bronze ---------------------------------------------------------------------------------


def test_late_event_rate_names_a_file_of_old_events_ingested_last(settings, scope, tmp_path):
    late = write_csv(tmp_path / "late.csv", day_lines(DAYS[2])[:5])
    ingest(settings, [str(late)])
    found = result_of(settings, scope, "late_event_rate")
    assert found.status == "warn"
    assert found.examples == [{"file": str(late), "events": 5, "late_events": 5, "late_event_rate": 1.0}]


def test_schema_drift_names_the_column_that_appeared(settings, scope, tmp_path):
    drifted = write_csv(
        tmp_path / "drift.csv",
        [line + ",home" for line in day_lines(DAYS[-1] + timedelta(days=1))],
        header=HEADER + ",referrer",
    )
    ingest(settings, [str(drifted)])
    found = result_of(settings, scope, "schema_drift")
    assert found.status == "warn"
    assert found.examples == [{"file": str(drifted), "appeared": ["referrer"], "disappeared": []}]


def test_quarantine_rate_names_a_file_with_many_bad_records(settings, scope, tmp_path):
    good = day_lines(DAYS[-1] + timedelta(days=1))[:2]
    bad = write_csv(tmp_path / "bad.csv", [*good, "not a record", "2020-10-10 10:00:00 UTC,view,x,1,,,1,1,s"])
    ingest(settings, [str(bad)])
    found = result_of(settings, scope, "quarantine_rate")
    assert found.status == "warn"
    assert found.examples == [{"file": str(bad), "records": 4, "quarantined": 2, "quarantine_rate": 0.5}]


# --- silver ---------------------------------------------------------------------------------


def test_conservation_reports_a_lost_silver_row(settings, scope):
    rewrite(settings, SILVER_EVENTS, lambda rows: rows[1:])
    found = result_of(settings, scope, "conservation")
    assert found.status == "fail"
    assert found.examples == [
        {
            "bronze_rows": 144,
            "silver_events": 143,
            "duplicates_removed": 0,
            "quarantined_in_silver": 0,
            "difference": 1,
        }
    ]


def test_event_id_unique_reports_a_repeated_event(settings, scope):
    rewrite(settings, SILVER_EVENTS, lambda rows: [*rows, rows[3]])
    event_id = DeltaTable(str(settings.warehouse / SILVER_EVENTS.path)).to_pyarrow_table()["event_id"]
    found = result_of(settings, scope, "event_id_unique")
    assert found.status == "fail"
    assert found.offending_rows == 1
    assert found.examples[0]["copies"] == 2
    assert found.examples[0]["event_id"] in event_id.to_pylist()


def test_event_in_session_reports_an_event_of_no_session(settings, scope):
    def orphan(rows):
        rows[0]["session_id"] = "no-such-session"
        return rows

    rewrite(settings, SILVER_EVENTS, orphan)
    found = result_of(settings, scope, "event_in_session")
    assert found.status == "fail"
    assert [e["session_id"] for e in found.examples] == ["no-such-session"]


def test_session_id_unique_reports_a_repeated_session(settings, scope):
    rewrite(settings, SESSIONS, lambda rows: [*rows, rows[0]])
    found = result_of(settings, scope, "session_id_unique")
    assert found.status == "fail"
    assert found.offending_rows == 1
    assert found.examples[0]["copies"] == 2


def test_session_start_and_end_reports_missing_and_reversed_ends(settings, scope):
    def break_two(rows):
        rows[0]["session_end"] = None
        rows[1]["session_end"] = rows[1]["session_start"] - timedelta(minutes=1)
        return rows

    rewrite(settings, SESSIONS, break_two)
    found = result_of(settings, scope, "session_start_and_end")
    assert found.status == "fail"
    assert found.offending_rows == 2


def test_session_length_not_negative_reports_a_negative_length(settings, scope):
    def negative(rows):
        rows[5]["session_length_minutes"] = -3.0
        return rows

    rewrite(settings, SESSIONS, negative)
    found = result_of(settings, scope, "session_length_not_negative")
    assert found.status == "fail"
    assert [e["session_length_minutes"] for e in found.examples] == [-3.0]


def test_sessions_sum_to_silver_reports_a_miscounted_session(settings, scope):
    def miscount(rows):
        rows[0]["events_count"] += 2
        return rows

    rewrite(settings, SESSIONS, miscount)
    found = result_of(settings, scope, "sessions_sum_to_silver")
    assert found.status == "fail"
    assert found.examples == [{"counted": 146, "silver_events": 144, "difference": 2}]


def test_freshness_warns_when_the_newest_event_is_old(settings, scope):
    found = result_of(settings, scope, "freshness", now=NOW + timedelta(days=2))
    assert found.status == "warn"
    assert found.examples[0]["age_hours"] == pytest.approx(20 + 48 - (10 + 4 / 60 + 6 / 60))


def test_volume_warns_when_the_newest_day_falls_short(settings, scope):
    newest = DAYS[-1].date()
    rewrite(
        settings,
        SILVER_EVENTS,
        lambda rows: [r for r in rows if r["event_date"] != newest or r["user_id"] == 1],
    )
    found = result_of(settings, scope, "volume")
    assert found.status == "warn"
    assert found.examples == [
        {
            "date": str(newest),
            "events": 4,
            "trailing_average": 16.0,
            "trailing_days": 7,
            "ratio": 0.25,
        }
    ]


# --- gold -----------------------------------------------------------------------------------


def _set(index: int, column: str, value):
    def change(rows):
        rows[index][column] = value
        return rows

    return change


def _repeat_key(column: str):
    def change(rows):
        rows[1][column] = rows[0][column]
        return rows

    return change


@pytest.mark.parametrize(
    ("check", "table", "change", "problem"),
    [
        (
            "events_by_minute_valid",
            EVENTS_BY_MINUTE,
            _set(0, "events_count", -1),
            "missing or negative count",
        ),
        ("events_by_type_valid", EVENTS_BY_TYPE, _set(0, "event_type", None), "missing key"),
        ("user_funnel_valid", USER_FUNNEL, _repeat_key("user_id"), "repeated key"),
        ("funnel_valid", FUNNEL, _set(0, "entered", None), "missing or negative count"),
        ("sessions_daily_valid", SESSIONS_DAILY, _set(2, "users", -4), "missing or negative count"),
        ("daily_metrics_valid", DAILY_METRICS, _set(0, "revenue", -1.0), "missing or negative count"),
    ],
)
def test_gold_validity_checks_report_bad_keys_and_counts(settings, scope, check, table, change, problem):
    rewrite(settings, table, change)
    found = result_of(settings, scope, check)
    assert found.status == "fail"
    assert {e["problem"] for e in found.examples} == {problem}
    assert found.offending_rows == (2 if problem == "repeated key" else 1)


@pytest.mark.parametrize(
    ("check", "table"),
    [
        ("events_by_minute_sums_to_silver", EVENTS_BY_MINUTE),
        ("events_by_type_sums_to_silver", EVENTS_BY_TYPE),
    ],
)
def test_gold_sums_to_silver_reports_the_difference(settings, scope, check, table):
    def one_more(rows):
        rows[0]["events_count"] += 1
        return rows

    rewrite(settings, table, one_more)
    found = result_of(settings, scope, check)
    assert found.status == "fail"
    assert found.examples == [{"counted": 145, "silver_events": 144, "difference": 1}]


def test_user_funnel_covers_users_reports_a_missing_user(settings, scope):
    rewrite(settings, USER_FUNNEL, lambda rows: rows[1:])
    found = result_of(settings, scope, "user_funnel_covers_users")
    assert found.status == "fail"
    assert found.examples == [{"user_funnel_rows": 3, "silver_users": 4}]


def test_funnel_never_increases_reports_a_step_above_its_predecessor(settings, scope):
    def widen(rows):
        for row in rows:
            if row["level"] == "user" and row["step_number"] == 3:
                row["entered"] = 99
        return rows

    rewrite(settings, FUNNEL, widen)
    found = result_of(settings, scope, "funnel_never_increases")
    assert found.status == "fail"
    assert found.examples == [
        {"level": "user", "step_number": 3, "step": "purchase", "entered": 99, "entered_previous_step": 4}
    ]


def test_checks_of_tables_not_built_yet_are_skipped(tmp_path):
    settings = Settings.load(warehouse=tmp_path / "fresh")
    ingest(settings, [str(write_csv(tmp_path / "d.csv", day_lines(DAYS[0])))])
    results = {c.name: c for c in run_checks(settings, now=NOW).checks}
    assert results["late_event_rate"].status == "pass"
    assert results["conservation"].status == "skipped"
    assert results["conservation"].message == "no silver_events yet"
    assert results["funnel_valid"].status == "skipped"


def test_a_check_bound_to_what_a_run_changed_looks_at_nothing_else(settings):
    first_day, last_day = DAYS[0].date(), DAYS[-1].date()
    rewrite(
        settings, SILVER_EVENTS, lambda rows: [*rows, next(r for r in rows if r["event_date"] == first_day)]
    )
    bronze = DeltaTable(str(settings.warehouse / "bronze/events")).version()

    def changed_on(day):
        return Changes(bronze, frozenset({str(day)}), frozenset({str(day)}), newest_before=None)

    def status(changes):
        return {c.name: c for c in run_checks(settings, now=NOW, changes=changes).checks}["event_id_unique"]

    assert status(None).status == "fail"  # the whole table
    assert status(changed_on(first_day)).offending_rows == 1
    assert status(changed_on(last_day)).status == "pass"  # the run did not touch the first day


@pytest.mark.slow
def test_every_check_runs_within_a_small_memory_limit_on_one_large_file(tmp_path):
    """late_event_rate ran out of memory on one 10M-event file under the default limit (1GB):
    here 500,000 events in one file, and a limit of 64MB, about the same squeeze."""
    source = generate_files(tmp_path / "big.csv", 500_000, seed=3, days=5).files[0]
    built = run(Settings.load(warehouse=tmp_path / "wh"), [str(source)], now=NOW)
    assert built.gold is not None
    settings = Settings.load(warehouse=tmp_path / "wh", memory_limit="64MB")
    statuses = {c.name: c.status for c in run_checks(settings, now=NOW).checks}
    assert statuses["late_event_rate"] == "pass"
    assert "error" not in statuses.values()
