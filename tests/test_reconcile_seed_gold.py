"""Every difference from the old pandas scripts' gold tables is a removed duplicate or a quarantined row.

The old scripts counted all 100,000 raw rows of the sample; the pipeline
removes exact duplicates and quarantines invalid rows. Row for row, their
count minus ours must equal what we removed, in that minute, type or user.
"""

import csv
import gzip
from collections import Counter

import pytest

from eventpipe.engine import DuckDBEngine
from eventpipe.warehouse import TABLES, Warehouse

from .steps import run


def seed_table(sample_dir, name):
    with gzip.open(sample_dir / "seed-gold" / f"{name}.csv.gz", "rt", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def warehouse(sample_dir, tmp_path_factory):
    from eventpipe.settings import Settings

    settings = Settings.load(warehouse=tmp_path_factory.mktemp("reconcile") / "warehouse")
    run(settings, [str(sample_dir / "events_raw.csv.gz")])
    return Warehouse.open(settings.warehouse, create=False)


def removed(warehouse, key_sql: str) -> Counter:
    """Rows removed by silver (duplicates and quarantine), counted per key."""
    with DuckDBEngine() as engine:
        warehouse.expose(engine, TABLES)
        rows = engine.table(
            f"""
            SELECT {key_sql} AS key, sum(duplicates) AS n FROM silver_events GROUP BY 1
            UNION ALL
            SELECT {key_sql.replace("event_type", "lower(trim(b.event_type))")} AS key, count(*)
            FROM quarantine AS q JOIN bronze_events AS b USING (_source_file, _source_line)
            GROUP BY 1
            """
        ).to_pylist()
    total = Counter()
    for row in rows:
        total[row["key"]] += int(row["n"])
    return +total


def ours(warehouse, sql: str) -> dict:
    with DuckDBEngine() as engine:
        warehouse.expose(engine, TABLES)
        return {r["key"]: r["n"] for r in engine.table(sql).to_pylist()}


def test_events_by_type(warehouse, sample_dir):
    seed = {r["event_type"]: int(r["events_count"]) for r in seed_table(sample_dir, "events_by_type")}
    mine = ours(warehouse, "SELECT event_type AS key, events_count AS n FROM events_by_type")
    gone = removed(warehouse, "event_type")
    assert sum(gone.values()) > 0
    assert set(seed) == set(mine)
    for event_type, count in seed.items():
        assert count - mine[event_type] == gone[event_type], event_type


def test_events_by_minute(warehouse, sample_dir):
    seed = {r["minute"]: int(r["events_count"]) for r in seed_table(sample_dir, "events_by_minute")}
    key = "strftime(date_trunc('minute', event_time), '%Y-%m-%d %H:%M:%S+00:00')"
    mine = ours(
        warehouse,
        "SELECT strftime(minute, '%Y-%m-%d %H:%M:%S+00:00') AS key, events_count AS n FROM events_by_minute",
    )
    gone = removed(warehouse, key)
    assert set(mine) <= set(seed)
    differences = Counter({m: seed[m] - mine.get(m, 0) for m in seed})
    assert +differences == gone


def test_user_funnel(warehouse, sample_dir):
    seed = seed_table(sample_dir, "user_funnel")
    for column, event_type in (("views", "view"), ("carts", "cart"), ("purchases", "purchase")):
        expected = {int(r["user_id"]): int(r[column]) for r in seed}
        mine = ours(warehouse, f"SELECT user_id AS key, {column} AS n FROM user_funnel")
        gone = removed(warehouse, f"CASE WHEN event_type = '{event_type}' THEN user_id END")
        gone.pop(None, None)
        differences = Counter({u: n - mine.get(u, 0) for u, n in expected.items()})
        assert +differences == gone, column
        assert set(mine) <= set(expected)
