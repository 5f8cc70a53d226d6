"""Silver, sessions and every gold table against the plain-Python reference implementation."""

from datetime import UTC, date, datetime, timedelta

import pytest

from eventpipe.generate import generate_files
from eventpipe.settings import Settings
from eventpipe.warehouse import (
    BRONZE_EVENTS,
    FUNNEL,
    FUNNEL_SESSIONS,
    GOLD_TABLES,
    QUARANTINE,
    SESSIONS,
    SILVER_EVENTS,
)

from . import reference
from .conftest import read
from .steps import run
from .tables import assert_same_rows

NOW = datetime(2020, 11, 1, tzinfo=UTC)
HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"


def check_against_reference(settings: Settings) -> dict:
    """Compare every silver and gold table with the reference; returns the reference tables."""
    bronze = read(settings, BRONZE_EVENTS).to_pylist()
    events, quarantined = reference.silver(bronze, settings, NOW)
    sessions = reference.sessions(events, settings)
    gold = reference.gold(events, sessions, settings)

    assert_same_rows(read(settings, SILVER_EVENTS), events)
    silver_quarantine = [r for r in read(settings, QUARANTINE).to_pylist() if r["stage"] == "silver"]
    assert_same_rows(silver_quarantine, quarantined)
    assert_same_rows(read(settings, SESSIONS), sessions)
    for table in GOLD_TABLES:
        assert_same_rows(read(settings, table), gold[table.view])
    assert len(bronze) == len(events) + sum(e["duplicates"] for e in events) + len(quarantined)
    return {"events": events, "sessions": sessions, "quarantined": quarantined, **gold}


def test_real_sample(engine, settings, sample_dir):
    run(settings, [str(sample_dir / "events_raw.csv.gz")], now=NOW)
    expected = check_against_reference(settings)
    assert len(expected["events"]) == 100_000 - 71  # the sample repeats 71 rows exactly


@pytest.mark.parametrize("rows_per_bucket", [2_000_000, 3_000])
def test_dirty_generated_files(tmp_path, rows_per_bucket):
    files = generate_files(tmp_path / "in", 20_000, seed=8, days=3, dirty=True, dirty_rate=0.01, per_day=True)
    settings = Settings.load(warehouse=tmp_path / "wh", rows_per_bucket=rows_per_bucket)
    run(settings, [str(tmp_path / "in")], now=NOW)
    expected = check_against_reference(settings)
    reasons = {q["reason"].split(":")[0] for q in expected["quarantined"]}
    assert reasons == {"user_id", "event_type", "price"}
    assert sum(e["duplicates"] for e in expected["events"]) >= sum(
        1 for c in files.corruptions if c.kind.name.endswith("duplicate")
    )


EDGE_CASES = [
    # user 1: a gap of exactly 30 minutes continues the session, 30 min 1 s starts another
    "2020-09-24 10:00:00 UTC,view,1,9,,,10.0,1,s",
    "2020-09-24 10:30:00 UTC,cart,1,9,,,10.0,1,s",
    "2020-09-24 11:00:01 UTC,purchase,1,9,,,10.0,1,s",
    # user 2: a session across midnight, rows out of order
    "2020-09-25 00:10:00 UTC,view,2,9,,,5.5,2,t",
    "2020-09-24 23:50:00 UTC,view,3,9,,,5.5,2,t",
    # user 3: the same event spelled two ways, and the same instant with two UTC offsets
    "2020-09-24 12:00:00 UTC,view,4,9,,,1.0,3,u",
    "2020-09-24 12:00:00 UTC, View,4,9,,,1.0,3,u",
    "2020-09-24T14:00:00+02:00,view,4,9,,,1.0,3,u",
    "2020-09-24T07:00:00-05:00,product_view,4,9,,,1.0,3,u",
    # user 4: one event
    "2020-09-24 08:00:00 UTC,purchase,5,9,,,99.99,4,v",
    # quarantined in silver
    "2020-09-24 08:00:00 UTC,view,5,9,,,1.0,,w",
    "2020-09-24 08:00:00 UTC,wishlist,5,9,,,1.0,5,w",
    "2020-09-24 08:00:00 UTC,view,5,9,,,-1.0,5,w",
    "2030-01-01 00:00:00 UTC,view,5,9,,,1.0,5,w",
]


def test_hand_built_edge_cases(engine, settings, tmp_path):
    source = tmp_path / "edge.csv"
    source.write_text("\n".join([HEADER, *EDGE_CASES]) + "\n")
    run(settings, [str(source)], now=NOW)
    expected = check_against_reference(settings)

    # and the same, computed by hand
    sessions = read(settings, SESSIONS).to_pylist()
    per_user = {
        u: sorted((s["events_count"], s["session_length_minutes"]) for s in sessions if s["user_id"] == u)
        for u in (1, 2, 3, 4)
    }
    assert per_user == {1: [(1, 0.0), (2, 30.0)], 2: [(2, 20.0)], 3: [(1, 0.0)], 4: [(1, 0.0)]}
    midnight = next(s for s in sessions if s["user_id"] == 2)
    assert midnight["session_start"].date() != midnight["session_end"].date()
    events = read(settings, SILVER_EVENTS).to_pylist()
    [merged] = [e for e in events if e["user_id"] == 3]
    assert merged["duplicates"] == 3 and merged["event_type"] == "view"
    reasons = sorted(q["reason"] for q in expected["quarantined"])
    assert reasons == [
        "event_time: more than the allowed time in the future",
        'event_type: not a known event type: "wishlist"',
        "price: negative",
        "user_id: missing",
    ]
    funnel = {(r["level"], r["step"]): r["entered"] for r in read(settings, FUNNEL).to_pylist()}
    # user 1 views, carts, then purchases in a second session: the user funnel sees all three
    assert funnel[("user", "purchase")] == 1 and funnel[("session", "purchase")] == 0
    assert funnel[("user", "view")] == 3 and funnel[("session", "view")] == 3


def test_maximum_session_length(tmp_path):
    rows = [f"2020-09-24 10:{m:02d}:00 UTC,view,{m},9,,,1.0,7,s" for m in range(0, 60, 10)]
    rows += [f"2020-09-24 11:{m:02d}:00 UTC,view,{m},9,,,1.0,7,s" for m in range(0, 60, 10)]
    source = tmp_path / "long.csv"
    source.write_text("\n".join([HEADER, *rows]) + "\n")
    settings = Settings.load(warehouse=tmp_path / "wh", max_session_minutes=45)
    run(settings, [str(source)], now=NOW)
    check_against_reference(settings)
    counts = sorted(s["events_count"] for s in read(settings, SESSIONS).to_pylist())
    assert counts == [3, 4, 5]  # 10:00-10:40, 10:50-11:30, 11:40-11:50 (pieces of 45 min from 10:00)


@pytest.mark.parametrize("timeout", [1, 30, 240])
def test_other_timeouts_on_generated_data(tmp_path, timeout):
    generate_files(tmp_path / "in.csv", 5_000, seed=timeout, days=2)
    settings = Settings.load(warehouse=tmp_path / "wh", session_timeout_minutes=timeout)
    run(settings, [str(tmp_path / "in.csv")], now=NOW)
    check_against_reference(settings)


@pytest.mark.parametrize(
    "line",
    [
        "2020-09-24 10:00:00 UTC,click,1,9,,,1.0,1,s",  # quarantined in silver (an unknown type)
        "2020-13-45 99:00:00 UTC,view,1,9,,,1.0,1,s",  # quarantined in bronze: bronze stays empty
    ],
)
def test_nothing_valid_gives_empty_tables(engine, settings, tmp_path, line):
    source = tmp_path / "bad.csv"
    source.write_text(f"{HEADER}\n{line}\n")
    result = run(settings, [str(source)], now=NOW)
    assert (result.silver.events, result.silver.sessions) == (0, 0)
    assert result.ingest.quarantined + result.silver.quarantined == 1
    assert read(settings, SESSIONS).num_rows == 0
    assert all(read(settings, table).num_rows == 0 for table in GOLD_TABLES if table.view != "funnel")


def test_sessions_across_the_days_they_are_grouped_by(tmp_path):
    """A full build groups sessions a range of days at a time and merges those that reach
    past a range, and finds the sessions' funnel steps a range of dates at a time among
    events up to the range's last session end; here each day is a range."""
    rows = [
        # user 1: 23:30:00 -> 00:00:00 is exactly the timeout: one session across midnight
        "2020-09-24 23:30:00 UTC,view,1,9,,,1.0,1,s",
        "2020-09-25 00:00:00 UTC,cart,1,9,,,1.0,1,s",
        # user 2: one second more: two sessions
        "2020-09-24 23:29:59 UTC,view,1,9,,,1.0,2,s",
        "2020-09-25 00:00:00 UTC,cart,1,9,,,1.0,2,s",
        # user 3: a day's last event, then two of the next day's within the timeout of each other
        "2020-09-24 23:59:00 UTC,view,1,9,,,1.0,3,s",
        "2020-09-25 00:29:00 UTC,cart,1,9,,,2.5,3,s",
        "2020-09-25 00:59:00 UTC,purchase,1,9,,,2.5,3,s",
        # user 5: the first event of its day, at the timeout past midnight
        "2020-09-25 00:30:00 UTC,view,1,9,,,1.0,5,s",
        # user 6: a cart before the first view; the cart after it comes the next day
        "2020-09-24 23:50:00 UTC,cart,1,9,,,1.0,6,s",
        "2020-09-24 23:58:00 UTC,view,1,9,,,1.0,6,s",
        "2020-09-25 00:10:00 UTC,cart,1,9,,,1.0,6,s",
    ]
    # user 4: an event every 25 minutes for a day and a half: one session over three dates
    start = datetime(2020, 9, 24, 23, 40, tzinfo=UTC)
    times = [start + timedelta(minutes=25 * i) for i in range(60)]
    rows += [f"{t:%Y-%m-%d %H:%M:%S} UTC,view,2,9,,,1.0,4,t" for t in times]
    source = tmp_path / "midnights.csv"
    source.write_text("\n".join([HEADER, *rows]) + "\n")
    settings = Settings.load(warehouse=tmp_path / "wh", rows_per_bucket=4)  # a day a range
    run(settings, [str(source)], now=NOW)
    check_against_reference(settings)
    sessions = read(settings, SESSIONS).to_pylist()
    per_user = {u: sorted(s["events_count"] for s in sessions if s["user_id"] == u) for u in range(1, 7)}
    assert per_user == {1: [2], 2: [1, 1], 3: [3], 4: [60], 5: [1], 6: [3]}
    [six] = [s["session_id"] for s in sessions if s["user_id"] == 6]
    [steps] = [r for r in read(settings, FUNNEL_SESSIONS).to_pylist() if r["session_id"] == six]
    assert steps["entered_cart_at"] == datetime(2020, 9, 25, 0, 10, tzinfo=UTC)
    [three] = [s for s in sessions if s["user_id"] == 3]
    assert (three["revenue"], three["converted"], three["unique_event_types"]) == (2.5, True, 3)
    assert three["session_date"] == date(2020, 9, 24)
