"""Property: whatever the lines of a file, each record lands exactly once, in bronze or quarantine."""

import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventpipe.settings import Settings
from eventpipe.warehouse import BRONZE_EVENTS, QUARANTINE

from .conftest import read
from .steps import ingest

HEADER = b"event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)

no_newline = st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",))


def csv_field(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"') else text


@st.composite
def good_rows(draw):
    instant = EPOCH + timedelta(seconds=draw(st.integers(0, 10**8)))
    values = {
        "event_time": instant,
        "event_type": draw(st.sampled_from(["view", "cart", " View", "purchase"])),
        "product_id": draw(st.integers(-(2**63), 2**63 - 1)),
        "brand": draw(st.text(no_newline, min_size=1, max_size=8)),
        "price": draw(st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 2))),
        "user_id": draw(st.integers(0, 2**63 - 1)),
    }
    # A field that is only blanks reads as empty; keep brand meaningful.
    values["brand"] = values["brand"] if values["brand"].strip() else "b"
    offset = draw(st.sampled_from(["UTC", "+00:00", "-05:00", "+05:30"]))
    if offset == "UTC":
        when = instant.strftime("%Y-%m-%d %H:%M:%S UTC")
    else:
        sign = -1 if offset[0] == "-" else 1
        shift = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:])) * sign
        when = (instant + shift).replace(tzinfo=None).isoformat() + offset
    line = ",".join(
        [
            when,
            values["event_type"],
            str(values["product_id"]),
            "",
            "",
            csv_field(values["brand"]),
            repr(values["price"]),
            str(values["user_id"]),
            "s",
        ]
    )
    return line.encode(), values


lines = st.lists(
    st.one_of(
        good_rows(),
        st.text(no_newline, max_size=60).map(lambda t: (t.encode(), None)),
        st.binary(max_size=60).filter(lambda b: b"\n" not in b and b"\r" not in b).map(lambda b: (b, None)),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=lines, final_newline=st.booleans())
def test_every_record_lands_exactly_once(lines, final_newline):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        source = root / "events.csv"
        body = b"\n".join([HEADER, *(line for line, _ in lines)])
        source.write_bytes(body + (b"\n" if final_newline else b""))
        config = Settings.load(warehouse=root / "warehouse")

        result = ingest(config, [str(source)])

        bronze = read(config, BRONZE_EVENTS).to_pylist()
        quarantine = read(config, QUARANTINE).to_pylist()
        landed = Counter([r["_source_line"] for r in bronze] + [r["_source_line"] for r in quarantine])
        records = {n for n, (line, _) in enumerate(lines, start=2) if line != b""}
        assert set(landed) == records
        assert all(count == 1 for count in landed.values())
        assert result.records == len(records) == result.bronze_rows + result.quarantined

        by_line = {r["_source_line"]: r for r in bronze}
        for n, (_, expected) in enumerate(lines, start=2):
            if expected is not None:
                row = by_line[n]
                assert row["event_time"] == expected["event_time"]
                for field in ("event_type", "product_id", "brand", "price", "user_id"):
                    assert row[field] == expected[field], field
