"""The real REES46 sample, checked against a plain-Python reading of the same file."""

import csv
import gzip
from datetime import UTC, datetime

from eventpipe.ingest import FileStatus
from eventpipe.warehouse import BRONZE_EVENTS, QUARANTINE

from .conftest import read, version
from .steps import ingest


def reference_rows(path):
    """The sample parsed with the csv module and datetime, independently of the SQL."""

    def integer(text):
        return int(text) if text else None

    with gzip.open(path, "rt", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            yield {
                "_source_line": line,
                "event_time": datetime.strptime(row["event_time"], "%Y-%m-%d %H:%M:%S UTC").replace(
                    tzinfo=UTC
                ),
                "event_type": row["event_type"] or None,
                "product_id": integer(row["product_id"]),
                "category_id": integer(row["category_id"]),
                "category_code": row["category_code"] or None,
                "brand": row["brand"] or None,
                "price": float(row["price"]) if row["price"] else None,
                "user_id": integer(row["user_id"]),
                "user_session": row["user_session"] or None,
            }


def test_sample_lands_whole_and_exactly_as_written(settings, sample_dir):
    source = sample_dir / "events_raw.csv.gz"
    result = ingest(settings, [str(source)])

    assert [f.status for f in result.files] == [FileStatus.ingested]
    assert (result.records, result.bronze_rows, result.quarantined) == (100_000, 100_000, 0)
    bronze = read(settings, BRONZE_EVENTS).sort_by("_source_line")
    assert bronze.num_rows == 100_000
    assert read(settings, QUARANTINE).num_rows == 0

    expected = list(reference_rows(source))
    actual = bronze.select(list(expected[0])).to_pylist()
    assert actual == expected
    assert set(bronze["_source_file"].to_pylist()) == {str(source.resolve())}
    dates = bronze["event_date"].to_pylist()
    assert dates == [row["event_time"].date() for row in expected]


def test_second_ingest_adds_no_table_version(settings, sample_dir):
    source = str(sample_dir / "events_raw.csv.gz")
    ingest(settings, [source])
    before = version(settings, BRONZE_EVENTS), version(settings, QUARANTINE)

    again = ingest(settings, [source])

    assert [f.status for f in again.files] == [FileStatus.already_ingested]
    assert (version(settings, BRONZE_EVENTS), version(settings, QUARANTINE)) == before
    assert read(settings, BRONZE_EVENTS).num_rows == 100_000
