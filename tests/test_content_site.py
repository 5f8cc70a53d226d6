"""A content site, configured by event_types and funnel_steps alone: gold, export and report follow."""

import csv
from datetime import UTC, date, datetime

import pytest

from eventpipe.settings import Settings
from eventpipe.warehouse import DAILY_METRICS, EVENTS_BY_TYPE, FUNNEL, SESSIONS, USER_FUNNEL

from .conftest import read, run_cli

NOW = datetime(2020, 11, 1, tzinfo=UTC)
HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
LINES = [
    # reader 1: reads, signs up, subscribes for 9.99 in one visit
    "2020-09-24 10:00:00 UTC,page_view,1,9,news.world,,,1,a",
    "2020-09-24 10:05:00 UTC,page_view,2,9,news.world,,,1,a",
    "2020-09-24 10:06:00 UTC,signup,,,,,,1,a",
    "2020-09-24 10:07:00 UTC,subscribe,,,,,9.99,1,a",
    # reader 2: reads on two days, signs up on the second, never subscribes
    "2020-09-24 12:00:00 UTC,page_view,3,9,sport.football,,,2,b",
    "2020-09-25 08:00:00 UTC,page_view,3,9,sport.football,,,2,c",
    "2020-09-25 08:01:00 UTC,Signup,,,,,,2,c",
    # reader 3: one page, then (next day) subscribes yearly for 99.00 without signing up first
    "2020-09-25 09:00:00 UTC,page_view,4,9,news.world,,,3,d",
    "2020-09-26 09:00:00 UTC,subscribe,,,,,99.00,3,e",
    # not a type of this site: quarantined in silver
    "2020-09-25 09:00:00 UTC,purchase,4,9,,,5.0,3,d",
]


@pytest.fixture
def content_site(tmp_path):
    (tmp_path / "eventpipe.toml").write_text(
        'event_types = ["page_view", "signup", "subscribe"]\n'
        'funnel_steps = ["page_view", "signup", "subscribe"]\n'
    )
    source = tmp_path / "landing" / "events.csv"
    source.parent.mkdir()
    source.write_text("\n".join([HEADER, *LINES]) + "\n")
    return Settings.load(warehouse=tmp_path / "warehouse"), source


def rows(settings, table, key):
    return {r[key]: r for r in read(settings, table).to_pylist()}


def test_a_content_site_runs_end_to_end_with_revenue_on_subscribe(content_site, tmp_path):
    settings, source = content_site
    assert settings.revenue_type == "subscribe"  # no purchase type: the last funnel step carries revenue
    ran = run_cli("run", "-q", "-s", str(source))  # ./eventpipe.toml, ./warehouse, with the report
    assert ran.returncode == 0, ran.stderr

    by_type = rows(settings, EVENTS_BY_TYPE, "event_type")
    assert {t: (r["events_count"], r["users"]) for t, r in by_type.items()} == {
        "page_view": (5, 3),
        "signup": (2, 2),
        "subscribe": (2, 2),
    }
    users = rows(settings, USER_FUNNEL, "user_id")
    assert {u: (r["page_views"], r["signups"], r["subscribes"], r["revenue"]) for u, r in users.items()} == {
        1: (2, 1, 1, 9.99),
        2: (2, 1, 0, 0.0),
        3: (1, 0, 1, 99.0),
    }
    # reader 3 subscribed without signing up: the ordered funnel stops at the first step for them
    entered = ("entered_page_view_at", "entered_signup_at", "entered_subscribe_at")
    assert [users[3][c] is not None for c in entered] == [True, False, False]
    funnel = {(r["level"], r["step"]): r["entered"] for r in read(settings, FUNNEL).to_pylist()}
    assert funnel == {
        ("user", "page_view"): 3,
        ("user", "signup"): 2,
        ("user", "subscribe"): 1,
        ("session", "page_view"): 4,  # a, b, c, d
        ("session", "signup"): 2,  # a, c
        ("session", "subscribe"): 1,  # a (e has no page view)
    }
    daily = rows(settings, DAILY_METRICS, "date")
    assert {d: (r["subscribes"], r["revenue"], r["average_order_value"]) for d, r in daily.items()} == {
        date(2020, 9, 24): (1, 9.99, 9.99),
        date(2020, 9, 25): (0, 0.0, None),
        date(2020, 9, 26): (1, 99.0, 99.0),
    }
    sessions = rows(settings, SESSIONS, "session_id")
    assert sum(s["converted"] for s in sessions.values()) == 2  # sessions a and e hold a subscribe

    exported = run_cli("export", "--out", str(tmp_path / "exports"))
    assert exported.returncode == 0, exported.stderr
    with open(tmp_path / "exports" / "gold" / "user_funnel.csv") as handle:
        assert next(csv.reader(handle)) == ["user_id", "page_views", "signups", "subscribes"]
    [page] = (settings.warehouse / "_reports").glob("*.html")
    html = page.read_text()
    assert "Subscribes and average order value per day" in html and "Brands by page views" in html
