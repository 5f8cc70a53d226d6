"""Other formats and spellings: JSON lines, Parquet, renamed columns, quoting, line endings."""

import gzip
import hashlib
import json
import re
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from eventpipe.context import open_run
from eventpipe.ingest.ledger import file_records
from eventpipe.settings import Settings
from eventpipe.warehouse import BRONZE_EVENTS, MARKER, QUARANTINE

from .conftest import read
from .steps import ingest

NOON = datetime(2020, 9, 24, 12, 0, 0, tzinfo=UTC)
HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"


def bronze_by_line(settings):
    rows = read(settings, BRONZE_EVENTS).to_pylist()
    return {row["_source_line"]: row for row in rows}


def test_csv_quoting_line_endings_and_blank_lines(settings, tmp_path):
    source = tmp_path / "events.csv"
    source.write_bytes(
        (
            "\ufeff" + HEADER + "\r\n"
            '2020-09-24 12:00:00 UTC,view,1,2,"a,b","say ""hi""",1.5,7,s1\r\n'
            "\r\n"
            "2020-09-24T14:00:00+02:00,cart,1,2,,,1.5,7,s1\r\n"
            "2020-09-24 12:00:00 UTC,purchase,1,2,,,1.5,7,s1"  # no final newline
        ).encode()
    )
    result = ingest(settings, [str(source)])
    assert (result.records, result.bronze_rows, result.quarantined) == (3, 3, 0)
    rows = bronze_by_line(settings)
    assert sorted(rows) == [2, 4, 5]
    assert rows[2]["category_code"] == "a,b"
    assert rows[2]["brand"] == 'say "hi"'
    assert rows[2]["user_session"] == "s1"
    assert {rows[n]["event_time"] for n in rows} == {NOON}
    assert rows[4]["brand"] is None and rows[4]["category_code"] is None


def test_renamed_columns_through_settings(tmp_path):
    source = tmp_path / "events.csv.gz"
    with gzip.open(source, "wt") as handle:
        handle.write("timestamp,action,uid\n2020-09-24 12:00:00 UTC,view,42\n")
    unmapped = Settings.load(warehouse=tmp_path / "a")
    [failed] = ingest(unmapped, [str(source)]).failed
    assert re.search(r"event_time, event_type, user_id not found.*timestamp, action, uid", failed.note)
    assert read(unmapped, BRONZE_EVENTS).num_rows == 0

    (tmp_path / "eventpipe.toml").write_text(
        '[columns]\ntimestamp = "event_time"\naction = "event_type"\nuid = "user_id"\n'
    )
    mapped = Settings.load(warehouse=tmp_path / "b")
    ingest(mapped, [str(source)])
    [row] = read(mapped, BRONZE_EVENTS).to_pylist()
    assert (row["event_time"], row["event_type"], row["user_id"], row["price"]) == (NOON, "view", 42, None)


def test_json_lines(settings, tmp_path):
    source = tmp_path / "events.jsonl"
    records = [
        {
            "event_time": "2020-09-24 12:00:00 UTC",
            "event_type": "view",
            "user_id": 1515915625519388267,
            "price": 31.9,
            "brand": "x",
        },
        "not json",
        {"event_time": "2020-09-24T12:00:00Z", "event_type": "cart", "user_id": 5, "product_id": "12x"},
        {"event_time": "2020-09-24T07:00:00-05:00", "event_type": "cart", "user_id": 6},
    ]
    source.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    result = ingest(settings, [str(source)])
    assert (result.records, result.bronze_rows, result.quarantined) == (4, 2, 2)
    rows = bronze_by_line(settings)
    assert rows[1]["user_id"] == 1515915625519388267
    assert rows[1]["price"] == 31.9
    assert rows[4]["event_time"] == NOON
    reasons = {r["_source_line"]: r["reason"] for r in read(settings, QUARANTINE).to_pylist()}
    assert reasons[2].startswith("json:")
    assert reasons[3] == 'product_id: not an integer: "12x"'


def test_parquet_rows_numbered_from_one(settings, tmp_path):
    source = tmp_path / "events.parquet"
    table = pa.table(
        {
            "event_time": pa.array([NOON, NOON], pa.timestamp("us", tz="UTC")),
            "event_type": ["view", "purchase"],
            "user_id": pa.array([1, 2], pa.int64()),
            "price": [1.0, float("nan")],
        }
    )
    pq.write_table(table, source)
    result = ingest(settings, [str(source)])
    assert (result.records, result.bronze_rows, result.quarantined) == (2, 1, 1)
    [row] = read(settings, BRONZE_EVENTS).to_pylist()
    assert (row["_source_line"], row["event_time"], row["user_id"]) == (1, NOON, 1)
    [bad] = read(settings, QUARANTINE).to_pylist()
    assert (bad["_source_line"], bad["reason"]) == (2, 'price: not a number: "nan"')
    assert json.loads(bad["raw_record"])["event_type"] == "purchase"


def test_changed_file_is_reported_not_ingested_twice(settings, tmp_path):
    source = tmp_path / "events.csv"
    source.write_text(HEADER + "\n2020-09-24 12:00:00 UTC,view,1,2,,,1.5,7,s1\n")
    ingest(settings, [str(source)])
    source.write_text(
        HEADER
        + "\n2020-09-24 12:00:00 UTC,view,1,2,,,1.5,7,s1\n2020-09-24 12:00:01 UTC,view,1,2,,,1.5,7,s1\n"
    )
    result = ingest(settings, [str(source)])
    assert result.files[0].status == "changed since it was ingested"
    assert result.warnings and str(source) in result.warnings[0]
    assert read(settings, BRONZE_EVENTS).num_rows == 1

    copy = tmp_path / "copy.csv"
    copy.write_text(HEADER + "\n2020-09-24 12:00:00 UTC,view,1,2,,,1.5,7,s1\n")
    assert ingest(settings, [str(copy)]).files[0].status == "same content as an ingested file"


@pytest.mark.parametrize("made_before", [False, True])
def test_a_warehouse_keeps_the_fingerprint_it_was_made_with(settings, tmp_path, made_before):
    """New warehouses know files by their SHA-256; one made before its marker named the hash
    keeps BLAKE2b, so that the files it holds are still known, by path and by content."""
    with open_run(settings):
        pass
    if made_before:
        (settings.warehouse / MARKER).write_text(json.dumps({"format": 1}) + "\n")
    content = (HEADER + "\n2020-09-24 12:00:00 UTC,view,1,2,,,1.5,7,s1\n").encode()
    source = tmp_path / "events.csv"
    source.write_bytes(content)
    ingest(settings, [str(source)])

    [record] = file_records(DeltaTable(str(settings.warehouse / QUARANTINE.path)))
    expected = hashlib.blake2b(content, digest_size=20) if made_before else hashlib.sha256(content)
    assert record.fingerprint == expected.hexdigest()
    assert ingest(settings, [str(source)]).files[0].status == "already ingested"
    copy = tmp_path / "copy.csv"
    copy.write_bytes(content)
    assert ingest(settings, [str(copy)]).files[0].status == "same content as an ingested file"
    assert read(settings, BRONZE_EVENTS).num_rows == 1


def test_glob_and_folder_sources(settings, tmp_path):
    landing = tmp_path / "landing"
    (landing / "nested").mkdir(parents=True)
    (landing / "a.csv").write_text(HEADER + "\n2020-09-24 12:00:00 UTC,view,1,2,,,1.5,7,s1\n")
    (landing / "nested" / "b.csv").write_text(HEADER + "\n2020-09-24 12:00:01 UTC,view,1,2,,,1.5,7,s1\n")
    (landing / "_hidden.csv").write_text(HEADER + "\n2020-09-24 12:00:02 UTC,view,1,2,,,1.5,7,s1\n")
    (landing / "notes.txt").write_text("not events")

    only_a = ingest(settings, [str(landing / "*.csv")])
    assert [f.path for f in only_a.files] == [str(landing / "_hidden.csv"), str(landing / "a.csv")]

    everything = ingest(settings, [str(landing)])
    assert {f.path: f.status for f in everything.files} == {
        str(landing / "a.csv"): "already ingested",
        str(landing / "nested" / "b.csv"): "ingested",
    }
