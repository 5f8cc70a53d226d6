"""``eventpipe run`` and ``eventpipe export`` through the real command line."""

import csv
import json

from .conftest import run_cli

HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"


def test_run_summary_and_export_in_the_old_layout(tmp_path):
    source = tmp_path / "events.csv"
    source.write_text(
        "\n".join(
            [
                HEADER,
                '2020-09-24 10:00:00 UTC,view,1,9,=cmd|calc,"=HYPERLINK(""x"")",10.5,1,s',
                "2020-09-24 10:00:00 UTC,view,1,9,=cmd|calc,@sum,10.5,1,s",
                "2020-09-24 10:00:00 UTC,view,1,9,=cmd|calc,@sum,10.5,1,s",
                "2020-09-24 10:05:00 UTC,add_to_cart,1,9,,+brand,10.5,1,s",
                "2020-09-24 10:06:00 UTC,purchase,1,9,,-brand,10.5,1,s",
                "2020-09-24 10:06:00 UTC,purchase,1,9,,,10.5,,s",
            ]
        )
        + "\n"
    )
    warehouse = tmp_path / "wh"
    result = run_cli("run", "-s", str(source), "-w", str(warehouse), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"]["bronze"] == 6
    assert summary["rows"]["silver_events"] == 4
    assert summary["duplicates_removed"] == 1
    assert summary["quarantined_by_reason"]["silver"] == {"user_id: missing": 1}
    user_purchase = next(s for s in summary["funnel"] if s["level"] == "user" and s["step"] == "purchase")
    assert user_purchase["entered"] == 1
    assert "funnel per session" in result.stderr

    out = tmp_path / "exports"
    exported = run_cli("export", "-w", str(warehouse), "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    with open(out / "silver" / "events_silver.csv", newline="") as handle:
        events = list(csv.DictReader(handle))
    assert {e["category_code"] for e in events} == {"'=cmd|calc", ""}
    assert {e["brand"] for e in events} == {'\'=HYPERLINK("x")', "'@sum", "'+brand", "'-brand"}
    assert {e["price"] for e in events} == {"10.5"}
    with open(out / "gold" / "user_funnel.csv", newline="") as handle:
        assert list(csv.reader(handle)) == [["user_id", "carts", "purchases", "views"], ["1", "1", "1", "2"]]
    with open(out / "gold" / "events_by_minute.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["minute", "events_count"]
    assert rows[1] == ["2020-09-24 10:00:00+00:00", "2"]
    with open(out / "silver" / "sessions.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == [
        "session_id",
        "user_id",
        "session_start",
        "session_end",
        "events_count",
        "unique_event_types",
        "session_length_minutes",
    ]
    assert (out / "gold" / "events_by_type.csv").read_text().splitlines()[0] == "event_type,events_count"
