"""Property: files around the CSV grammar (quotes, separators, line endings, encodings, truncation)
lose nothing and invent nothing.

The invariant is stated on physical lines, independently of how the reader
splits records: every record landed (in bronze or quarantine) starts at its
own line and covers that line plus the line breaks inside it, no two records
cover the same line, and every line that is not blank is covered by one.
"""

import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from eventpipe.ingest import FileStatus
from eventpipe.settings import Settings
from eventpipe.warehouse import BRONZE_EVENTS, QUARANTINE

from .conftest import read
from .steps import ingest

HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
BREAK = re.compile(r"\r\n|\r|\n")
TEXT_FIELDS = ("event_type", "category_code", "brand", "user_session")

# pieces a field is made of: ordinary text, the characters CSV gives meaning to, and oddities
piece = st.sampled_from(
    [
        "view",
        "cart",
        "7",
        "12.5",
        "2020-09-24 10:00:00 UTC",
        "a b",
        "é",
        ",",
        '"',
        "\n",
        "\r",
        "\r\n",
        " ",
        "",
        "\t",
    ]
)
field = st.lists(piece, max_size=4).map("".join)
# what most files hold: no quote, no separator or line break inside a field (the fast path)
plain_field = st.lists(st.sampled_from(["view", "7", "a b", "é", " ", ""]), max_size=3).map("".join)


@st.composite
def rendered(draw, value: str) -> str:
    """A field as a writer would put it: plain, quoted by the rules, or quoted badly."""
    how = draw(st.sampled_from(["plain", "quoted", "quoted", "broken"]))
    if how == "quoted":
        return '"' + value.replace('"', '""') + '"'
    if how == "broken":
        return '"' + value
    return value


@st.composite
def csv_files(draw) -> bytes:
    # one line ending for the file, or any of them line by line
    endings = st.sampled_from(["\n", "\r\n", "\r"])
    ending = draw(endings)
    mixed = draw(st.booleans())
    plain = draw(st.booleans())
    lines = [draw(st.sampled_from([HEADER, HEADER.upper()]))]
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 9)) == 0:
            lines.append("")  # a blank line
            continue
        width = 9 if plain else draw(st.sampled_from([9, 9, 9, 8, 10]))
        good = [
            draw(st.sampled_from(["2020-09-24 10:00:00 UTC", "2020-09-24T12:00:00+02:00", "soon"])),
            draw(st.sampled_from(["view", "cart", ""])),
            "1",
            "2",
        ]
        cells = [*good, *(draw(plain_field if plain else field) for _ in range(width - len(good)))]
        lines.append(",".join(cells if plain else (draw(rendered(cell)) for cell in cells)))
    # the header's ending may differ from the body's, as when a header was written by hand
    text = lines[0] + (draw(endings) if len(lines) > 1 else "")
    text += "".join(line + (draw(endings) if mixed else ending) for line in lines[1:-1])
    text += lines[-1] if len(lines) > 1 else ""
    text += draw(st.sampled_from([ending, ""]))
    data = text.encode(draw(st.sampled_from(["utf-8", "utf-8", "latin-1"])), errors="replace")
    if draw(st.booleans()):  # truncated anywhere after the header
        data = data[: draw(st.integers(len(HEADER) + 1, max(len(HEADER) + 1, len(data))))]
    return data


def breaks(text: str) -> int:
    return len(BREAK.findall(text))


ROW = "2020-09-24 10:00:00 UTC,view,1,2,a,b,1.5,7,s"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=csv_files())
# files that broke a reader once: a header ended by a lone CR before LF lines (the fast path
# skipped a line with the header), and quoted line breaks of each kind
@example(data=f"{HEADER}\r{ROW}\n{ROW}\n".encode())
@example(data=f'{HEADER}\r\n{ROW}\r\n"{ROW}\r\n2020"\r\n{ROW}'.encode())
@example(data=f'{HEADER}\n2020-09-24 10:00:00 UTC,view,1,2,,"a\rb",1.5,7,s\n{ROW}\r'.encode())
def test_every_line_is_covered_by_exactly_one_record(data):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        source = root / "events.csv"
        source.write_bytes(data)
        config = Settings.load(warehouse=root / "warehouse", max_record_bytes=1024)

        result = ingest(config, [str(source)])

        [outcome] = result.files
        assert outcome.status is FileStatus.ingested, outcome.note
        spans = {}
        for row in read(config, BRONZE_EVENTS).to_pylist():
            assert row["_source_line"] not in spans
            spans[row["_source_line"]] = sum(breaks(row[f] or "") for f in TEXT_FIELDS)
        for row in read(config, QUARANTINE).to_pylist():
            assert row["_source_line"] not in spans
            spans[row["_source_line"]] = breaks(row["raw_record"])
        assert result.records == len(spans) == result.bronze_rows + result.quarantined

        physical = BREAK.split(data.decode("utf-8", "replace"))
        if physical and physical[-1] == "":
            physical = physical[:-1]  # after the final terminator
        covered: set[int] = set()
        for first, extra in spans.items():
            lines = set(range(first, first + extra + 1))
            assert not lines & covered, f"record at line {first} overlaps another"
            assert first >= 2 and first + extra <= len(physical)
            covered |= lines
        non_blank = {n for n, line in enumerate(physical, start=1) if n > 1 and line != ""}
        assert non_blank <= covered, f"lines lost: {sorted(non_blank - covered)}"
