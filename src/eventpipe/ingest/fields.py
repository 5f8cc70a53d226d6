"""The fast path for plain CSV: a chunk split into fields by Arrow's CSV reader.

Most event files hold no quotes and no blank lines. For a chunk like that, a
line is a record and a comma ends a field, so Arrow's multi-threaded reader
splits it exactly as the SQL parser would, many times faster. Anything else
(a row count other than the line count: a blank line; any line Arrow refuses:
a wrong number of fields, bad UTF-8) sends the chunk to the SQL parser, which
judges each record.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from eventpipe.ingest.lines import Chunk, first_line_end

_PARSE = pacsv.ParseOptions(
    quote_char=False, double_quote=False, newlines_in_values=False, ignore_empty_lines=True
)


def split_fields(chunk: Chunk, width: int, max_record_bytes: int) -> pa.Table | None:
    """``_source_line`` and the text of each field (``f1`` ... ``f<width>``) of every record of
    ``chunk``, or None when the chunk needs the SQL parser."""
    data, first_line, lines = chunk.data, chunk.first_line, chunk.lines
    if not _plain(data):
        return None
    if first_line == 1:  # the header, a line of its own (ended by LF, CRLF or a lone CR)
        data, first_line, lines = _after_first_line(data), 2, lines - 1
    if not data:
        return None
    names = [f"f{i}" for i in range(1, width + 1)]
    try:
        fields = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=True),
            parse_options=_PARSE,
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False, check_utf8=True
            ),
        )
    except pa.ArrowInvalid:  # a wrong number of fields, bad UTF-8: the SQL parser says which line
        return None
    if fields.num_rows != lines or _longest(fields) > max_record_bytes:
        return None
    numbers = pa.array(np.arange(first_line, first_line + fields.num_rows, dtype=np.int64))
    return fields.add_column(0, "_source_line", numbers)


def _after_first_line(data: bytes) -> bytes:
    end = first_line_end(data)
    if end is None:
        return b""
    return data[end + (2 if data[end : end + 2] == b"\r\n" else 1) :]


def _plain(data: bytes) -> bool:
    """No quote (so no field spans lines) and no NUL byte. Arrow ends lines at LF, CRLF and a
    lone CR, as the reader counts them; it skips blank lines, which the row count then shows."""
    return b'"' not in data and b"\0" not in data


def _longest(fields: pa.Table) -> int:
    """The longest record's length in bytes: its fields and the commas between them."""
    total = None
    for column in fields.columns:
        lengths = pc.binary_length(column)
        total = lengths if total is None else pc.add(total, lengths)
    return (pc.max(total).as_py() or 0) + fields.num_columns - 1
