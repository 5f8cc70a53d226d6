"""Write the bad-input corpus: one small file per case of tests/test_bad_input.py.

    python tests/corpus/make_corpus.py

Kept with the files it writes, so that each can be read and remade. A few cases
(a name that is not UTF-8, a 300 MB line) are made by the test itself.
"""

import gzip
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).parent
H = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
OK = "2020-09-24 10:00:0{},view,1,2,electronics.phone,acme,1.5,7,s"


def ok(second: int) -> str:
    return OK.format(second)


def text(name: str, content: str | bytes) -> None:
    data = content.encode() if isinstance(content, str) else content
    (HERE / name).write_bytes(data)


def main() -> None:
    # line endings
    text("cr_line_endings.csv", "\r".join([H, ok(1), "not a time,view,1,2,,,1.5,7,s", ok(2)]) + "\r")
    text("header_cr_then_lf.csv", H + "\r" + "\n".join([ok(1), ok(2)]) + "\n")
    text("crlf_blank_lines_bom.csv", "\ufeff" + "\r\n".join([H, ok(1), "", ok(2), "", ""]) + "\r\n")
    # quoting (RFC 4180)
    text(
        "quoted_line_breaks.csv",
        "\n".join(
            [
                H,
                '2020-09-24 10:00:01 UTC,view,1,2,,"two\nlines",1.5,7,s',
                '2020-09-24 10:00:02 UTC,view,1,2,,"crlf\r\ninside ""quoted""",1.5,7,s',
                ok(3),
            ]
        )
        + "\n",
    )
    text(
        "stray_quote.csv",
        "\n".join([H, ok(1), '2020-09-24 10:00:02 UTC,view,1,2,,"acme,1.5,7,s', ok(3), ok(4)]) + "\n",
    )
    text("quote_inside_field.csv", "\n".join([H, 'ok,view,1,2,,ac"me,1.5,7,s', ok(2)]) + "\n")
    # fields, encodings
    text(
        "wrong_field_count.csv",
        "\n".join([H, ok(1), "2020-09-24 10:00:02 UTC,view,1", ok(3) + ",extra"]) + "\n",
    )
    text(
        "invalid_utf8.csv",
        (H + "\n" + ok(1) + "\n").encode() + b"2020-09-24 10:00:02 UTC,view,1,2,,\xff\xfe,1.5,7,s\n",
    )
    text("nul_byte.csv", H + "\n" + "2020-09-24 10:00:01 UTC,view,1,2,,br\x00and,1.5,7,s\n" + ok(2) + "\n")
    text("header_in_other_case.csv", H.upper().replace("EVENT_TIME", "Event_Time") + "\n" + ok(1) + "\n")
    text("duplicate_column.csv", H + ",user_id\n" + ok(1) + ",8\n")
    text("empty.csv", b"")
    text("header_only.csv", H + "\n")
    # values
    text(
        "time_words_and_years.csv",
        "\n".join(
            [
                H,
                *(
                    f"{t},view,1,2,,,1.5,7,s"
                    for t in [
                        "epoch",
                        " EPOCH ",
                        "infinity",
                        "-infinity",
                        "10000-01-01 00:00:00",
                        "0000-01-01 00:00:00",
                        "-0001-01-01 00:00:00",
                        "0001-01-01 00:00:00 UTC",
                        "1969-12-31 23:59:59 UTC",
                        "2020-09-24T10:00:00+25:00",
                    ]
                ),
                "2020-09-24T10:00:00+05:30,view,1,2,,,1.5,7,s",
            ]
        )
        + "\n",
    )
    text(
        "numbers.csv",
        "\n".join(
            [
                H,
                *(
                    f"2020-09-24 10:00:00 UTC,view,1,2,,,{p},7,s"
                    for p in ["1e12", "1e300", "1_000.5", "NaN", "inf"]
                ),
                *(
                    f"2020-09-24 10:00:00 UTC,view,{i},2,,,1.5,7,s"
                    for i in ["0x1F", "1e3", "12.5", "9223372036854775808"]
                ),
                "2020-09-24 10:00:00 UTC,view,1,2,,,-0,7,s",
                "2020-09-24 10:00:00 UTC,view, 007 ,2,,,+1.5,7,s",
            ]
        )
        + "\n",
    )
    # gzip
    good = gzip.compress(("\n".join([H, ok(1), ok(2)]) + "\n").encode())
    text("truncated.csv.gz", good[: len(good) - 12])
    text("trailing_garbage.csv.gz", good + b"this is not gzip")
    text("not_really_gzip.csv.gz", "\n".join([H, ok(1)]) + "\n")
    # JSON lines
    rows = [
        json.dumps({"event_time": "2020-09-24 10:00:01 UTC", "event_type": "view", "user_id": 7}),
        "{not json",
        "[1, 2]",
        "42",
        json.dumps({"event_time": "2020-09-24 10:00:02 UTC", "event_type": "view", "user_id": 7}),
    ]
    text("broken.jsonl", ("\n".join(rows) + "\n").encode() + b'{"event_type": "\xff"}\n')
    late = [
        json.dumps({"event_time": "2020-09-24 10:00:00 UTC", "event_type": "view", "user_id": i})
        for i in range(1000)
    ]
    late += [
        json.dumps(
            {
                "event_time": "2020-09-24 10:00:00 UTC",
                "event_type": "view",
                "user_id": i,
                "price": 2.5,
                "brand": "b",
            }
        )
        for i in range(1000, 1100)
    ]
    text("keys_after_line_1000.jsonl", "\n".join(late) + "\n")
    text(
        "array.json",
        json.dumps([{"event_time": "2020-09-24 10:00:00 UTC", "event_type": "view", "user_id": 1}]),
    )
    # Parquet
    pq.write_table(
        pa.table(
            {
                "event_time": [
                    "2020-09-24 10:00:01 UTC",
                    "2020-09-24 10:00:02 UTC",
                    "2020-09-24 10:00:03 UTC",
                ],
                "event_type": ["view", "view", "view"],
                "user_id": pa.array(
                    [1515915625519388267.0, None, 7.5], pa.float64()
                ),  # as pandas writes gaps
            }
        ),
        HERE / "float_user_id.parquet",
    )
    pq.write_table(
        pa.table({"event_time": ["2020-09-24 10:00:01 UTC"], "kind": ["view"]}),
        HERE / "missing_column.parquet",
    )
    buffer = io.BytesIO()
    pq.write_table(pa.table({"event_time": ["x"], "event_type": ["view"], "user_id": [1]}), buffer)
    text("corrupt.parquet", buffer.getvalue()[:-20])
    text("brack[1].csv", "\n".join([H, ok(1)]) + "\n")


if __name__ == "__main__":
    main()
