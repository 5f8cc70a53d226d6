"""A text file (plain or gzip) read in chunks of whole records, with exact line numbers.

Reading the bytes ourselves, rather than handing the file to a CSV parser, is
what lets every record keep its physical line number and its raw text,
including records a parser would reject: those are exactly the ones the
quarantine needs.

A line ends at ``\\n``, ``\\r\\n`` or a lone ``\\r``. A CSV record is one line,
except that a quoted field may hold line breaks (RFC 4180): a line that leaves
a quote open is joined with the lines that close it, provided the joined text
is one well-formed record of the file's width and no longer than the record
limit; otherwise the line stands alone (and is quarantined for its quoting),
so one stray quote never swallows the records after it. A record longer than
the limit is reported with its length and first bytes, never held whole.
"""

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from isal import igzip_threaded

RECORD_SCHEMA = pa.schema(
    [("_source_line", pa.int64()), ("raw_record", pa.string()), ("problem", pa.string())]
)
#: Bytes of an over-long record kept in the quarantine.
PREFIX_BYTES = 1024
_NEWLINE, _CARRIAGE_RETURN, _QUOTE = 10, 13, 34
_PARALLEL_SLICES = 8  # DuckDB scans the slices of a chunk in parallel
_INVALID_UTF8 = "encoding: the line is not valid UTF-8"


@dataclass(frozen=True)
class Chunk:
    """Whole records of a file: ``data`` holds its lines from ``first_line`` on.

    ``lines`` is how many lines it holds; ``joined`` lists (first, last) line
    offsets within the chunk of records that span several lines. ``position``
    is how far into the file (its bytes on disk) reading has come.
    """

    first_line: int
    data: bytes
    position: int
    lines: int
    joined: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Oversized:
    """A record longer than the limit: its line, its length and its first bytes."""

    line: int
    length: int
    prefix: bytes
    position: int


def read_chunks(
    path: str,
    compressed: bool,
    chunk_bytes: int,
    max_record_bytes: int,
    csv_width: int | None = None,
    fingerprint: "hashlib._Hash | None" = None,
) -> Iterator[Chunk | Oversized]:
    """The file's records in chunks of about ``chunk_bytes``, in order.

    ``csv_width`` (the number of columns of a CSV file) lets quoted fields span
    lines; without it (JSON lines) every line is a record of its own. Every byte
    of the file on disk is fed to ``fingerprint``, if given, as it is read.
    Raises ``OSError`` or ``EOFError`` when the file cannot be read to its end.
    """
    with open(path, "rb") as handle:
        raw = _Fingerprinted(handle, fingerprint) if fingerprint is not None else handle
        # ISA-L decompresses two to three times faster than zlib, in its own thread.
        text: BinaryIO = igzip_threaded.open(raw, "rb", threads=1) if compressed else raw
        carry = b""
        line = 1
        while True:
            block = text.read(chunk_bytes)
            at_end = not block
            data = carry + block
            cut = len(data) if at_end else _last_line_end(data)
            if cut == 0 and len(data) > max_record_bytes:  # one line longer than the limit
                length, rest = _skip_line(text, data, chunk_bytes)
                yield Oversized(line, length, data[:PREFIX_BYTES], raw.tell())
                line += 1
                carry = rest
                continue
            body, carry = data[:cut], data[cut:]
            if body:
                joined: tuple[tuple[int, int], ...] = ()
                if csv_width is not None and b'"' in body:
                    joined, kept = _join_quoted(body, csv_width, max_record_bytes, at_end)
                    body, carry = body[:kept], body[kept:] + carry
                if body:
                    lines = count_lines(body)
                    yield Chunk(line, body, raw.tell(), lines, joined)
                    line += lines
            if at_end:
                raw.read()  # whatever follows the compressed data, for the fingerprint
                return


class _Fingerprinted(io.RawIOBase):
    """A binary file that feeds what is read from it to a hash."""

    def __init__(self, handle: BinaryIO, fingerprint: "hashlib._Hash") -> None:
        self._handle, self._fingerprint = handle, fingerprint

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = self._handle.readinto(buffer)
        if count:
            self._fingerprint.update(memoryview(buffer)[:count])
        return count

    def tell(self) -> int:
        return self._handle.tell()


def _last_line_end(data: bytes) -> int:
    """Where the last complete line of ``data`` ends (0: none). A final ``\\r`` may be
    the first half of ``\\r\\n``, so it does not end a line yet."""
    newline = data.rfind(b"\n") + 1
    carriage = data.rfind(b"\r", newline, len(data) - 1) + 1
    return max(newline, carriage)


def _skip_line(text: BinaryIO, data: bytes, chunk_bytes: int) -> tuple[int, bytes]:
    """Read past the rest of an over-long line: (its length, what follows its terminator)."""
    length = 0
    while (end := first_line_end(data)) is None:
        length += len(data)
        data = text.read(chunk_bytes)
        if not data:
            return length, b""
    length += end
    rest = data[end + 1 :]
    if data[end] == _CARRIAGE_RETURN:  # a \n right after it belongs to it
        rest = rest or text.read(chunk_bytes)
        rest = rest[1:] if rest.startswith(b"\n") else rest
    return length, rest


def first_line_end(data: bytes) -> int | None:
    """Where the first line of ``data`` ends (its terminator's first byte), if it does."""
    ends = [i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0]
    return min(ends) if ends else None


def count_lines(body: bytes) -> int:
    """Lines in ``body``: its terminators, plus a last line without one."""
    count = body.count(b"\n")
    if b"\r" in body:
        count += body.count(b"\r") - body.count(b"\r\n")
    if body and body[-1] not in b"\r\n":
        count += 1
    return count


def line_bounds(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each line of ``data``: (start, end) offsets without its terminator, and the
    terminator's length (0 for a last line without one)."""
    ends = np.flatnonzero(data == _NEWLINE)
    crlf = np.zeros(len(ends), bool)
    if np.any(data == _CARRIAGE_RETURN):
        returns = np.flatnonzero(data == _CARRIAGE_RETURN)
        after = np.minimum(returns + 1, len(data) - 1)
        lone = returns[(returns + 1 == len(data)) | (data[after] != _NEWLINE)]
        ends = np.sort(np.concatenate([ends, lone]))
        before = np.maximum(ends - 1, 0)
        crlf = (ends > 0) & (data[ends] == _NEWLINE) & (data[before] == _CARRIAGE_RETURN)
    starts = np.concatenate([[0], ends + 1])
    stops = np.concatenate([ends - crlf, [len(data)]])
    terminators = np.concatenate([1 + crlf, [0]])
    if starts[-1] == len(data):  # the last line has a terminator: nothing follows it
        starts, stops, terminators = starts[:-1], stops[:-1], terminators[:-1]
    return starts, stops, terminators


def _join_quoted(
    body: bytes, width: int, max_record_bytes: int, at_end: bool
) -> tuple[tuple[tuple[int, int], ...], int]:
    """Records of ``body`` that span lines, and how much of ``body`` ends in whole records
    (an open quote near the end waits for the next chunk)."""
    data = np.frombuffer(body, np.uint8)
    starts, stops, _ = line_bounds(data)
    quotes = np.flatnonzero(data == _QUOTE)
    per_line = np.searchsorted(quotes, stops) - np.searchsorted(quotes, starts)
    open_lines = np.flatnonzero(per_line % 2 == 1)
    joined = []
    index = 0
    while index < len(open_lines):
        first = int(open_lines[index])
        if index + 1 == len(open_lines):  # nothing in this chunk closes it
            if not at_end and len(body) - starts[first] <= max_record_bytes:
                return tuple(joined), int(starts[first])
            break
        last = int(open_lines[index + 1])
        text = body[starts[first] : stops[last]]
        if len(text) <= max_record_bytes and _one_record(text, width):
            joined.append((first, last))
            index += 2
        else:
            index += 1
    return tuple(joined), len(body)


def _one_record(text: bytes, width: int) -> bool:
    """Whether ``text`` is exactly one well-formed CSV record of ``width`` fields."""
    try:
        rows = list(csv.reader(io.StringIO(text.decode("utf-8"), newline=""), strict=True))
    except (UnicodeDecodeError, csv.Error):
        return False
    return len(rows) == 1 and len(rows[0]) == width


def record_table(chunk: Chunk) -> pa.Table:
    """The chunk's records: line number, raw text and, for text that is not valid UTF-8,
    a problem (the bad bytes are written as ``\\xNN`` escapes)."""
    data = np.frombuffer(chunk.data, np.uint8)
    starts, stops, terminators = line_bounds(data)
    numbers = np.arange(chunk.first_line, chunk.first_line + len(starts), dtype=np.int64)
    record = np.ones(len(starts), bool)  # whether a line starts a record
    between = terminators.astype(bool)  # whether a line's terminator lies between two records
    for first, last in chunk.joined:  # a record spanning lines keeps the terminators inside it
        stops[first] = stops[last]
        record[first + 1 : last + 1] = False
        between[first:last] = False
    keep = np.ones(len(data), bool)
    for width in (1, 2):
        ends = stops[between & (terminators == width)]
        keep[np.concatenate([ends + i for i in range(width)])] = False
    text = data[keep]
    lengths = (stops - starts)[record]
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    count = len(lengths)
    raw = pa.Array.from_buffers(pa.large_binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(text)])
    bad = _invalid_utf8(text, offsets)
    problem = pa.nulls(count, pa.string())
    if bad.size:
        raw, problem = _with_escaped(raw, bad)
    batch = pa.record_batch(
        [pa.array(numbers[record]), raw.cast(pa.large_string()).cast(pa.string()), problem],
        schema=RECORD_SCHEMA,
    )
    step = max(1, -(-count // _PARALLEL_SLICES))
    return pa.Table.from_batches(
        [batch.slice(i, step) for i in range(0, count, step)] or [batch], RECORD_SCHEMA
    )


def oversized_table(record: Oversized, max_record_bytes: int) -> pa.Table:
    """An over-long record as a record with its problem: its length, and its first bytes as text."""
    prefix = record.prefix.decode("utf-8", "backslashreplace")
    problem = (
        f"record: {record.length:,} bytes, longer than max_record_bytes ({max_record_bytes:,}); "
        f"raw_record holds its first {len(record.prefix):,} bytes"
    )
    return pa.table(
        {"_source_line": [record.line], "raw_record": [prefix], "problem": [problem]}, schema=RECORD_SCHEMA
    )


def _invalid_utf8(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Indices of records that fail UTF-8 decoding; only records with non-ASCII bytes are checked."""
    high = np.flatnonzero(data >= 0x80)
    if not high.size:
        return np.zeros(0, np.int64)
    candidates = np.unique(np.searchsorted(offsets, high, side="right") - 1)
    bad = []
    for index in candidates:
        try:
            data[offsets[index] : offsets[index + 1]].tobytes().decode("utf-8")
        except UnicodeDecodeError:
            bad.append(index)
    return np.array(bad, dtype=np.int64)


def _with_escaped(raw: pa.Array, bad: np.ndarray) -> tuple[pa.Array, pa.Array]:
    count = len(raw)
    replacement: list[str | None] = [None] * count
    problems: list[str | None] = [None] * count
    for index in bad:
        replacement[index] = raw[int(index)].as_py().decode("utf-8", "backslashreplace")
        problems[index] = _INVALID_UTF8
    is_bad = np.zeros(count, bool)
    is_bad[bad] = True
    escaped = pa.array(replacement, pa.large_string()).cast(pa.large_binary())
    return pc.if_else(pa.array(is_bad), escaped, raw), pa.array(problems, pa.string())
