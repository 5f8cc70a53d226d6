"""The generator: realistic shape, determinism, and an exact record of what --dirty broke."""

import csv
import gzip
from collections import Counter
from datetime import datetime

import pytest

from eventpipe.fields import EVENT_FIELDS
from eventpipe.generate import DirtyKind, generate_files


def read_lines(path):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        return handle.read().split(b"\n")[:-1]


def test_clean_file_has_the_rees46_shape(tmp_path):
    result = generate_files(tmp_path / "events.csv", 20_000, seed=7, days=5)
    with open(result.files[0], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(EVENT_FIELDS)
    assert len(rows) == 20_000
    types = Counter(r["event_type"] for r in rows)
    assert 0.88 < types["view"] / len(rows) < 0.93
    assert 0.03 < types["cart"] / len(rows) < 0.08
    assert 0.02 < types["purchase"] / len(rows) < 0.06
    assert 0.18 < sum(r["brand"] == "" for r in rows) / len(rows) < 0.35
    assert 0.2 < sum(r["category_code"] == "" for r in rows) / len(rows) < 0.4
    # users come back: fewer users than events, but most users have few events
    users = Counter(r["user_id"] for r in rows)
    assert 0.3 < len(users) / len(rows) < 0.7
    # one price per product
    prices = {}
    for r in rows:
        assert prices.setdefault(r["product_id"], r["price"]) == r["price"]
    times = [datetime.strptime(r["event_time"], "%Y-%m-%d %H:%M:%S UTC") for r in rows]
    assert times == sorted(times)
    assert (times[-1] - times[0]).days in (4, 5)


def test_same_seed_same_bytes(tmp_path):
    a = generate_files(tmp_path / "a.csv", 5_000, seed=3, dirty=True)
    b = generate_files(tmp_path / "b.csv", 5_000, seed=3, dirty=True)
    c = generate_files(tmp_path / "c.csv", 5_000, seed=4, dirty=True)
    assert a.files[0].read_bytes() == b.files[0].read_bytes()
    assert a.files[0].read_bytes() != c.files[0].read_bytes()


def test_per_day_gzip_files(tmp_path):
    result = generate_files(tmp_path / "days", 6_000, seed=1, days=3, per_day=True, compress=True)
    assert [f.name for f in result.files] == [
        "events_2020-09-24.csv.gz",
        "events_2020-09-25.csv.gz",
        "events_2020-09-26.csv.gz",
    ]
    total = 0
    for path in result.files:
        lines = read_lines(path)
        day = path.name[len("events_") : -len(".csv.gz")]
        assert all(line.startswith(day.encode()) for line in lines[1:])
        total += len(lines) - 1
    assert total == 6_000


def test_dirty_manifest_points_at_each_broken_line(tmp_path):
    result = generate_files(tmp_path / "dirty.csv", 30_000, seed=5, dirty=True, dirty_rate=0.005)
    lines = read_lines(result.files[0])
    assert len(lines) - 1 == 30_000
    kinds = Counter(c.kind for c in result.corruptions)
    assert set(kinds) == set(DirtyKind) - {DirtyKind.clean}
    for corruption in result.corruptions:
        line = lines[corruption.line - 1]
        fields = line.split(b",")
        match corruption.kind:
            case DirtyKind.invalid_utf8:
                with pytest.raises(UnicodeDecodeError):
                    line.decode("utf-8")
            case DirtyKind.wrong_field_count:
                assert len(fields) != 9
            case DirtyKind.broken_quoting:
                assert line.count(b'"') % 2 == 1
            case DirtyKind.missing_user_id:
                assert fields[7] == b""
            case DirtyKind.negative_price:
                assert fields[6].startswith(b"-")
            case DirtyKind.utc_offset:
                assert datetime.fromisoformat(fields[0].decode()).utcoffset().total_seconds() != 0
            case DirtyKind.unknown_event_type:
                assert fields[1] in (b"wishlist", b"click", b"share")
            case DirtyKind.exact_duplicate:
                assert lines.count(line) >= 2
            case DirtyKind.spelling_duplicate:
                assert fields[1] not in (b"view", b"cart", b"purchase")
