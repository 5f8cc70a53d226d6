"""Dirty generated files: every record lands once, bad ones in quarantine at the right line."""

import gzip
from collections import Counter
from datetime import datetime

import pytest

from eventpipe.generate import DirtyKind, generate_files
from eventpipe.warehouse import BRONZE_EVENTS, QUARANTINE

from .conftest import read
from .steps import ingest

# What each kind of breakage must produce in bronze, stated independently of the SQL.
QUARANTINED_BECAUSE = {
    DirtyKind.bad_timestamp: ("event_time:",),
    DirtyKind.wrong_field_count: ("fields: expected 9 fields",),
    DirtyKind.broken_quoting: ("quoting:",),
    DirtyKind.bad_number: ("price: not a number", "product_id: not an integer"),
    DirtyKind.invalid_utf8: ("encoding:",),
}


@pytest.fixture(scope="module")
def dirty_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("dirty") / "landing"
    return generate_files(
        out, 40_000, seed=11, days=3, dirty=True, dirty_rate=0.004, per_day=True, compress=True
    )


def count_records(path):
    with gzip.open(path, "rb") as handle:
        return sum(1 for line in handle) - 1  # less the header


def test_records_equal_bronze_plus_quarantine_per_file(settings, dirty_files):
    result = ingest(settings, [str(dirty_files.files[0].parent)])
    bronze = Counter(read(settings, BRONZE_EVENTS)["_source_file"].to_pylist())
    quarantine = Counter(read(settings, QUARANTINE)["_source_file"].to_pylist())
    assert len(result.files) == 3
    for path in dirty_files.files:
        name = str(path.resolve())
        file_result = next(f for f in result.files if f.path == name)
        assert count_records(path) == bronze[name] + quarantine[name] == file_result.records
        assert (file_result.bronze_rows, file_result.quarantined) == (bronze[name], quarantine[name])


def test_each_broken_line_is_quarantined_with_its_reason(settings, dirty_files):
    ingest(settings, [str(dirty_files.files[0].parent)])
    quarantine = read(settings, QUARANTINE).to_pylist()
    found = {(row["_source_file"], row["_source_line"]): row for row in quarantine}
    expected = {
        (str(c.file.resolve()), c.line): c.kind
        for c in dirty_files.corruptions
        if c.kind in QUARANTINED_BECAUSE
    }
    assert set(found) == set(expected)
    for key, kind in expected.items():
        row = found[key]
        assert row["stage"] == "bronze"
        assert row["reason"].startswith(QUARANTINED_BECAUSE[kind]), (kind, row)
        assert row["raw_record"]


def test_rows_that_parse_keep_their_line_and_instant(settings, dirty_files):
    ingest(settings, [str(dirty_files.files[0].parent)])
    bronze = read(settings, BRONZE_EVENTS)
    by_line = {
        (f, n): t
        for f, n, t in zip(
            bronze["_source_file"].to_pylist(),
            bronze["_source_line"].to_pylist(),
            bronze["event_time"].to_pylist(),
            strict=True,
        )
    }
    offsets = [c for c in dirty_files.corruptions if c.kind is DirtyKind.utc_offset]
    assert offsets
    for corruption in offsets:
        with gzip.open(corruption.file, "rb") as handle:
            line = handle.read().split(b"\n")[corruption.line - 1].decode()
        written = datetime.fromisoformat(line.split(",")[0])
        assert by_line[(str(corruption.file.resolve()), corruption.line)] == written
    kept = [c for c in dirty_files.corruptions if c.kind not in QUARANTINED_BECAUSE]
    assert all((str(c.file.resolve()), c.line) in by_line for c in kept)
