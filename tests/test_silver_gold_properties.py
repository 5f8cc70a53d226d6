"""Invariants of silver and gold, stated as Hypothesis properties."""

import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventpipe.settings import Settings
from eventpipe.warehouse import (
    BRONZE_EVENTS,
    EVENTS_BY_MINUTE,
    EVENTS_BY_TYPE,
    FUNNEL_SESSIONS,
    GOLD_TABLES,
    SESSIONS,
    SILVER_EVENTS,
)

from . import reference
from .conftest import read
from .steps import run
from .tables import as_multiset, assert_same_rows

NOW = datetime(2020, 11, 1, tzinfo=UTC)
START = datetime(2020, 9, 24, 23, 0, tzinfo=UTC)
HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
LINEAGE = {"_source_file", "_source_line"}


@st.composite
def event_lines(draw):
    """Few users and products, gaps around the timeout, midnight, duplicates and misspellings."""
    count = draw(st.integers(1, 40))
    lines = []
    for _ in range(count):
        when = START + timedelta(
            seconds=draw(st.sampled_from([0, 60, 1799, 1800, 1801, 3600, 7200])) * draw(st.integers(0, 3))
            + draw(st.integers(0, 5))
        )
        kind = draw(
            st.sampled_from(["view", "view", " View", "cart", "add_to_cart", "purchase", "remove_from_cart"])
        )
        offset = draw(st.sampled_from(["utc", "+02:00"]))
        stamp = (
            when.strftime("%Y-%m-%d %H:%M:%S UTC")
            if offset == "utc"
            else (when + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S") + "+02:00"
        )
        product = draw(st.integers(1, 3))
        price = draw(st.sampled_from(["1.5", "10.25", "0.1"]))
        user = draw(st.integers(1, 4))
        lines.append(f"{stamp},{kind},{product},7,,,{price},{user},s{user}")
    # repeat some lines exactly
    lines += draw(st.lists(st.sampled_from(lines), max_size=5))
    return lines


def build(lines: list[str], root: Path) -> Settings:
    source = root / "events.csv"
    source.write_text("\n".join([HEADER, *lines]) + "\n")
    config = Settings.load(warehouse=root / "warehouse")
    run(config, [str(source)], now=NOW)
    return config


def tables_without_lineage(config: Settings) -> dict:
    result = {}
    for table in (SILVER_EVENTS, SESSIONS, *GOLD_TABLES):
        rows = read(config, table).to_pylist()
        columns = sorted(set(rows[0]) - LINEAGE) if rows else []
        result[table.view] = as_multiset(rows, columns)
    return result


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=event_lines(), seed=st.integers(0, 2**32))
def test_shuffling_the_input_changes_no_table(lines, seed):
    shuffled = list(lines)
    random.Random(seed).shuffle(shuffled)
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        assert tables_without_lineage(build(lines, Path(a))) == tables_without_lineage(
            build(shuffled, Path(b))
        )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=event_lines())
def test_sessions_and_counts_add_up(lines):
    with tempfile.TemporaryDirectory() as folder:
        config = build(lines, Path(folder))
        events = read(config, SILVER_EVENTS).to_pylist()
        sessions = read(config, SESSIONS).to_pylist()

        session_ids = [s["session_id"] for s in sessions]
        assert len(session_ids) == len(set(session_ids))
        assert {e["session_id"] for e in events} == set(session_ids)  # every event in exactly one session
        assert sum(s["events_count"] for s in sessions) == len(events)
        by_session = {s["session_id"]: s for s in sessions}
        for e in events:
            session = by_session[e["session_id"]]
            assert session["user_id"] == e["user_id"]
            assert session["session_start"] <= e["event_time"] <= session["session_end"]
        assert sum(r["events_count"] for r in read(config, EVENTS_BY_TYPE).to_pylist()) == len(events)
        assert sum(r["events_count"] for r in read(config, EVENTS_BY_MINUTE).to_pylist()) == len(events)
        assert len({e["event_id"] for e in events}) == len(events)


@st.composite
def days_of_events(draw):
    """Users active around midnights over four days: chains of events that carry a session
    across one or more midnights, gaps at the timeout, quiet days."""
    lines = []
    for user in range(1, draw(st.integers(1, 4)) + 1):
        when = START + timedelta(minutes=draw(st.integers(-120, 60)))
        for _ in range(draw(st.integers(1, 12))):
            kind = draw(st.sampled_from(["view", "view", "cart", "purchase"]))
            price = draw(st.sampled_from(["1.5", "10.25", "0.1"]))
            lines.append(f"{when:%Y-%m-%d %H:%M:%S} UTC,{kind},{user},7,,,{price},{user},s{user}")
            # within the timeout, at it, past it, or a day or more later
            minutes = draw(st.sampled_from([1, 29, 30, 31, 200, 600, 1439, 1440, 2000]))
            when += timedelta(minutes=minutes, seconds=draw(st.sampled_from([0, 0, 1])))
    return lines


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=days_of_events(),
    timeout=st.sampled_from([30, 600, 1500, 3000]),
    longest=st.sampled_from([None, 45, 2000]),
)
def test_sessions_grouped_a_day_at_a_time_are_the_sessions(lines, timeout, longest):
    """A full build groups sessions a range of days at a time (here one day, the smallest
    range) and merges those that reach past a range: the sessions are the reference's, for
    timeouts shorter and longer than a day, with and without a maximum session length; so are
    their funnel steps, found a range of session dates at a time."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        source = root / "events.csv"
        source.write_text("\n".join([HEADER, *lines]) + "\n")
        config = Settings.load(
            warehouse=root / "warehouse",
            rows_per_bucket=4,  # sessions grouped from ranges of one event: one day each
            session_timeout_minutes=timeout,
            max_session_minutes=longest,
        )
        run(config, [str(source)], now=NOW)
        events, _ = reference.silver(read(config, BRONZE_EVENTS).to_pylist(), config, NOW)
        sessions = reference.sessions(events, config)
        assert_same_rows(read(config, SESSIONS), sessions)
        # the sessions' funnel steps, found a range of session dates at a time too
        gold = reference.gold(events, sessions, config)
        assert_same_rows(read(config, FUNNEL_SESSIONS), gold["funnel_sessions"])
