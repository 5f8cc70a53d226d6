"""Raw lines of a text file (plain or gzip) as Arrow batches, with exact line numbers.

Reading lines ourselves, rather than through a CSV parser, is what lets every
record keep its physical line number and its raw text, including records a
parser would reject: those are exactly the ones the quarantine needs.
"""

import queue
import threading
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from isal import igzip_threaded

LINE_SCHEMA = pa.schema([("_source_line", pa.int64()), ("raw_record", pa.string()), ("utf8_ok", pa.bool_())])
_NEWLINE, _CARRIAGE_RETURN = 10, 13
_PARALLEL_SLICES = 8  # DuckDB scans the slices of a chunk in parallel


def read_lines(path: str, compressed: bool, chunk_bytes: int) -> Iterator[tuple[pa.Table, int]]:
    """Yield (lines, bytes of the file read so far) per chunk of about ``chunk_bytes`` of text.

    Lines lose their terminator (``\n`` or ``\r\n``); a last line may lack one.
    Lines that are not valid UTF-8 are returned with their bad bytes written
    as ``\\xNN`` escapes and ``utf8_ok`` false.
    """
    with open(path, "rb") as raw:
        # ISA-L decompresses two to three times faster than zlib, in its own thread.
        text: BinaryIO = igzip_threaded.open(raw, "rb", threads=1) if compressed else raw
        carry = b""
        line = 1
        while block := text.read(chunk_bytes):
            data = carry + block
            cut = data.rfind(b"\n") + 1
            carry, body = data[cut:], data[:cut]
            if body:
                table = _line_table(body, line)
                line += table.num_rows
                yield table, raw.tell()
        if carry:
            yield _line_table(carry + b"\n", line), raw.tell()


def prefetched(items: Iterator, depth: int = 2) -> Iterator:
    """``items``, produced in a background thread up to ``depth`` ahead.

    Reading and splitting lines (I/O, decompression, numpy) then overlaps with
    parsing the previous chunk, which DuckDB does on its own threads.
    """
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                handoff.put(item)
            handoff.put(done)
        except BaseException as error:  # handed to the consumer, raised there
            handoff.put(error)

    worker = threading.Thread(target=produce, name="eventpipe-read", daemon=True)
    worker.start()
    try:
        while (item := handoff.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                handoff.get_nowait()
            except queue.Empty:
                worker.join(0.01)


def _line_table(body: bytes, first_line: int) -> pa.Table:
    """The lines of ``body`` (which ends with a newline) without their terminators."""
    data = np.frombuffer(body, np.uint8)
    ends = np.flatnonzero(data == _NEWLINE)
    count = len(ends)
    is_crlf = (ends > 0) & (data[np.maximum(ends - 1, 0)] == _CARRIAGE_RETURN)
    keep = np.ones(len(data), bool)
    keep[ends] = False
    keep[ends[is_crlf] - 1] = False
    text = data[keep]
    # A line's end in ``text``: its newline's position, less the terminators up to it.
    removed = np.arange(1, count + 1) + np.cumsum(is_crlf)
    offsets = np.zeros(count + 1, np.int64)
    offsets[1:] = ends + 1 - removed
    raw = pa.Array.from_buffers(pa.large_binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(text)])
    bad = _invalid_utf8_lines(text, offsets)
    if bad.size:
        lines, ok = _with_escaped(raw, bad, count)
    else:
        lines, ok = raw.cast(pa.large_string()), pa.array(np.ones(count, bool))
    numbers = pa.array(np.arange(first_line, first_line + count, dtype=np.int64))
    batch = pa.record_batch([numbers, lines.cast(pa.string()), ok], schema=LINE_SCHEMA)
    step = max(1, -(-count // _PARALLEL_SLICES))
    return pa.Table.from_batches(
        [batch.slice(i, step) for i in range(0, count, step)] or [batch], LINE_SCHEMA
    )


def _invalid_utf8_lines(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Indices of lines that fail UTF-8 decoding; only lines with non-ASCII bytes are checked."""
    high = np.flatnonzero(data >= 0x80)
    if not high.size:
        return np.zeros(0, np.int64)
    candidates = np.unique(np.searchsorted(offsets, high, side="right") - 1)
    if not candidates.size:
        return candidates
    bad = []
    for index in candidates:
        try:
            data[offsets[index] : offsets[index + 1]].tobytes().decode("utf-8")
        except UnicodeDecodeError:
            bad.append(index)
    return np.array(bad, dtype=np.int64)


def _with_escaped(raw: pa.Array, bad: np.ndarray, count: int) -> tuple[pa.Array, pa.Array]:
    ok = np.ones(count, bool)
    ok[bad] = False
    replacement: list[str | None] = [None] * count
    for index in bad:
        replacement[index] = raw[int(index)].as_py().decode("utf-8", "backslashreplace")
    escaped = pa.array(replacement, pa.large_string()).cast(pa.large_binary())
    text = pc.if_else(pa.array(~ok), escaped, raw)
    return text.cast(pa.large_string()), pa.array(ok)
