"""The bad-input corpus (tests/corpus/, one small file per case) through `eventpipe run`.

For each case: the documented exit code, no traceback, every record of the
file in bronze or quarantine exactly once at its line (with the reason
expected), and a good file next to it ingested whole. Cases about size check
that memory stays bounded.
"""

import gzip
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable

CORPUS = Path(__file__).parent / "corpus"
HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
NEIGHBOUR = "\n".join([HEADER, *(f"2020-09-25 08:00:0{i},view,1,2,,,1.5,9,n" for i in range(3))]) + "\n"
B = "bronze"

# file -> (exit code, {line: "bronze" or the start of the reason it is quarantined for});
# None: the file is not ingested (nothing of it anywhere)
CASES = {
    "cr_line_endings.csv": (0, {2: B, 3: "event_time: not a timestamp", 4: B}),
    "header_cr_then_lf.csv": (0, {2: B, 3: B}),
    "crlf_blank_lines_bom.csv": (0, {2: B, 4: B}),
    "quoted_line_breaks.csv": (0, {2: B, 4: B, 6: B}),  # a quoted line break: one record, its first line
    "stray_quote.csv": (0, {2: B, 3: "quoting:", 4: B, 5: B}),
    "quote_inside_field.csv": (0, {2: "quoting:", 3: B}),
    "wrong_field_count.csv": (0, {2: B, 3: "fields: expected 9 fields, found 3", 4: "fields: expected 9"}),
    "invalid_utf8.csv": (0, {2: B, 3: "encoding:"}),
    "nul_byte.csv": (0, {2: B, 3: B}),
    "header_in_other_case.csv": (0, {2: B}),
    "duplicate_column.csv": (4, None),
    "empty.csv": (4, None),
    "header_only.csv": (0, {}),
    "time_words_and_years.csv": (
        0,
        {
            **{n: "event_time: not a timestamp" for n in (2, 3, 4, 5, 8, 11)},
            **{n: "event_time: not in the years 1970 to 9999" for n in (6, 7, 9, 10)},
            12: B,
        },
    ),
    "numbers.csv": (
        0,
        {
            2: "price: not below",
            3: "price: not below",
            4: "price: not a number",
            5: "price: not a number",
            6: "price: not a number",
            **{n: "product_id: not an integer" for n in (7, 8, 9, 10)},
            11: B,
            12: B,
        },
    ),
    "truncated.csv.gz": (4, None),
    "trailing_garbage.csv.gz": (4, None),
    "not_really_gzip.csv.gz": (4, None),
    "broken.jsonl": (0, {1: B, 2: "json:", 3: "json:", 4: "json:", 5: B, 6: "encoding:"}),
    "array.json": (4, None),
    "float_user_id.parquet": (0, {1: B, 2: B, 3: "user_id: not an integer"}),
    "missing_column.parquet": (4, None),
    "corrupt.parquet": (4, None),
    "brack[1].csv": (0, {2: B}),
}


def landed(warehouse: Path, name: str) -> dict[int, str]:
    """Line -> "bronze", or the reason it was quarantined in bronze; every line at most once."""
    found: dict[int, str] = {}
    bronze = DeltaTable(str(warehouse / "bronze/events")).to_pyarrow_table().to_pylist()
    quarantine = DeltaTable(str(warehouse / "quarantine/events")).to_pyarrow_table().to_pylist()
    for row in bronze:
        if Path(row["_source_file"]).name == name:
            assert row["_source_line"] not in found, f"line {row['_source_line']} twice"
            found[row["_source_line"]] = B
    for row in quarantine:
        if Path(row["_source_file"]).name == name and row["stage"] == "bronze":
            assert row["_source_line"] not in found, f"line {row['_source_line']} twice"
            found[row["_source_line"]] = row["reason"]
    return found


def run(landing: Path, warehouse: Path, *extra: str) -> subprocess.CompletedProcess:
    command = ["run", "-q", "--no-report", "-s", str(landing), "-w", str(warehouse), *extra]
    return subprocess.run([sys.executable, "-m", "eventpipe", *command], capture_output=True, text=True)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_bad_input_is_kept_or_named_and_its_neighbours_land_whole(name, tmp_path):
    exit_code, expected = CASES[name]
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / name).write_bytes((CORPUS / name).read_bytes())
    (landing / "neighbour.csv").write_text(NEIGHBOUR)
    ran = run(landing, tmp_path / "wh")

    assert ran.returncode == exit_code, ran.stderr[-2000:]
    assert "Traceback" not in ran.stderr
    assert landed(tmp_path / "wh", "neighbour.csv") == {2: B, 3: B, 4: B}
    found = landed(tmp_path / "wh", name)
    if expected is None:
        assert found == {}
        [warning] = [line for line in ran.stderr.splitlines() if line.startswith("warning:")]
        assert name in warning and "not ingested" in warning
        return
    assert sorted(found) == sorted(expected)
    for line, outcome in expected.items():
        assert found[line].startswith(outcome), (line, found[line])


def test_a_file_name_that_is_not_utf8_is_named_and_left_out(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "neighbour.csv").write_text(NEIGHBOUR)
    os.makedirs(landing, exist_ok=True)
    with open(os.path.join(os.fsencode(landing), b"latin1_\xe9.csv"), "w") as handle:
        handle.write(NEIGHBOUR)
    ran = run(landing, tmp_path / "wh")
    assert ran.returncode == 4, ran.stderr
    assert "Traceback" not in ran.stderr and "not valid UTF-8" in ran.stderr
    assert landed(tmp_path / "wh", "neighbour.csv") == {2: B, 3: B, 4: B}
    again = run(landing, tmp_path / "wh")  # later runs are not stuck on it
    assert again.returncode == 4 and "Traceback" not in again.stderr


def test_a_300_mb_line_is_quarantined_with_its_length_in_bounded_memory(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    with gzip.open(landing / "long.csv.gz", "wb", compresslevel=1) as handle:
        handle.write((HEADER + "\n").encode())
        for _ in range(300):
            handle.write(b"x" * 1_000_000)
        handle.write(b"\n2020-09-25 08:00:00,view,1,2,,,1.5,9,n\n")
    assert (landing / "long.csv.gz").stat().st_size < 2_000_000
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    ran = run(landing, tmp_path / "wh")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert ran.returncode == 0, ran.stderr
    found = landed(tmp_path / "wh", "long.csv.gz")
    assert found[3] == B and found[2].startswith("record: 300,000,000 bytes, longer than max_record_bytes")
    [row] = [
        r
        for r in DeltaTable(str(tmp_path / "wh" / "quarantine/events")).to_pyarrow_table().to_pylist()
        if r["_source_line"] == 2
    ]
    assert len(row["raw_record"]) == 1024  # its first bytes, not the line
    if before < 700 * 1024:  # no earlier child of this test process used more (the peak is shared)
        assert peak_mib < 700, peak_mib
