"""Write generated events as REES46-style CSV files, plain or gzip, optionally one per day."""

import itertools
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import duckdb
import numpy as np
import pyarrow as pa
from isal import igzip_threaded

from eventpipe.fields import EVENT_FIELDS
from eventpipe.generate.clean import START, clean_events
from eventpipe.generate.dirty import Corruption, DirtyKind, make_dirty

HEADER = (",".join(EVENT_FIELDS) + "\n").encode()
# The renderer cannot put raw invalid UTF-8 into a SQL string, so it writes this
# placeholder byte and the writer swaps it for a byte that is never valid UTF-8.
_BAD_BYTE_PLACEHOLDER, _BAD_BYTE = b"\x01", b"\xff"

# One CASE per field: clean rows print as the public data does, broken rows as
# the DirtyKind says. ``variant`` picks among several real-world spellings.
_RENDER_SQL = f"""
SELECT
    day,
    kind,
    CASE kind
        WHEN {DirtyKind.bad_timestamp:d} THEN
            ['not a timestamp', '2020-02-30 25:61:00 UTC', '', '24/09/2020 11:57'][variant % 4 + 1]
        WHEN {DirtyKind.utc_offset:d} THEN
            strftime(make_timestamp(event_us + [7200, -18000, 19800][variant % 3 + 1]::BIGINT * 1000000),
                     '%Y-%m-%dT%H:%M:%S') || ['+02:00', '-05:00', '+05:30'][variant % 3 + 1]
        ELSE strftime(make_timestamp(event_us), '%Y-%m-%d %H:%M:%S') || ' UTC'
    END
    || ',' || CASE
        WHEN kind = {DirtyKind.spelling_duplicate:d} THEN CASE event_type
            WHEN 'view' THEN [' View', 'VIEW', 'product_view', 'page_view'][variant % 4 + 1]
            WHEN 'cart' THEN ['add_to_cart', ' Cart', 'add-cart'][variant % 3 + 1]
            ELSE ['Purchase ', 'buy', 'order'][variant % 3 + 1] END
        WHEN kind = {DirtyKind.unknown_event_type:d} THEN
            ['wishlist', 'click', 'share'][variant % 3 + 1]
        ELSE event_type
    END
    || ',' || product_id::VARCHAR
    || CASE WHEN kind = {DirtyKind.bad_number:d} AND variant % 2 = 1 THEN 'x' ELSE '' END
    || ',' || category_id::VARCHAR
    || ',' || coalesce(category_code, '')
    || ',' || CASE kind
        WHEN {DirtyKind.broken_quoting:d} THEN '"' || coalesce(brand, 'acme')
        WHEN {DirtyKind.invalid_utf8:d} THEN coalesce(brand, '') || chr(1)
        ELSE coalesce(brand, '')
    END
    || ',' || CASE
        WHEN kind = {DirtyKind.negative_price:d} THEN '-' || price::VARCHAR
        WHEN kind = {DirtyKind.bad_number:d} AND variant % 2 = 0 THEN '12.5.3'
        ELSE price::VARCHAR
    END
    || ',' || CASE kind WHEN {DirtyKind.missing_user_id:d} THEN '' ELSE user_id::VARCHAR END
    || CASE
        WHEN kind = {DirtyKind.wrong_field_count:d} AND variant % 2 = 0 THEN ''
        WHEN kind = {DirtyKind.wrong_field_count:d} THEN ',' || coalesce(user_session, '') || ',extra'
        ELSE ',' || coalesce(user_session, '')
    END
    || chr(10) AS line
FROM rows
"""


@dataclass(frozen=True)
class GeneratedFiles:
    """What ``generate_files`` wrote."""

    files: list[Path]
    events: int
    seconds: float
    corruptions: list[Corruption] = field(default_factory=list)


def generate_files(
    out: Path,
    events: int,
    *,
    seed: int = 0,
    days: int = 1,
    dirty: bool = False,
    dirty_rate: float = 0.002,
    per_day: bool = False,
    compress: bool | None = None,
    start: datetime = START,
) -> GeneratedFiles:
    """Write ``events`` lines of events (plus a header per file).

    ``out`` is a file, or with ``per_day`` a folder that receives one
    ``events_YYYY-MM-DD.csv[.gz]`` per arrival day. ``compress`` defaults to
    whether ``out`` ends in ``.gz``. With ``dirty``, about ``dirty_rate`` of the
    lines are broken in each way :class:`DirtyKind` lists.
    """
    began = time.perf_counter()
    clean = clean_events(events, days=days, seed=seed, start=start)
    rows = (
        make_dirty(clean, events, dirty_rate, seed)
        if dirty
        else clean.append_column("kind", pa.array(np.zeros(events, np.int8)))
        .append_column("variant", pa.array(np.zeros(events, np.int8)))
        .append_column("arrival_us", clean["event_time"].cast(pa.int64()))
    )
    arrival = rows["arrival_us"].to_numpy()
    order = np.argsort(arrival, kind="stable")
    rows = rows.take(order).append_column(
        "day", pa.array(arrival[order] // 86_400_000_000 if per_day else np.zeros(events, np.int64))
    )
    rows = rows.append_column("event_us", rows["event_time"].cast(pa.int64()))

    if compress is None:
        compress = out.name.endswith(".gz")
    writer = _Writer(out, per_day, compress, dirty)
    try:
        with duckdb.connect() as con:
            con.register("rows", rows)
            for batch in con.sql(_RENDER_SQL).to_arrow_reader(1_000_000):
                writer.write(batch)
    finally:
        writer.close()
    return GeneratedFiles(writer.files, events, time.perf_counter() - began, writer.corruptions)


class _Writer:
    """Appends rendered lines to the right file and records every broken line."""

    def __init__(self, out: Path, per_day: bool, compress: bool, swap_bad_bytes: bool) -> None:
        self.out, self.per_day, self.compress = out, per_day, compress
        self.swap_bad_bytes = swap_bad_bytes
        self.files: list[Path] = []
        self.corruptions: list[Corruption] = []
        self._day: int | None = None
        self._handle: BinaryIO | None = None
        self._lines = 0
        (out if per_day else out.parent).mkdir(parents=True, exist_ok=True)

    def write(self, batch: pa.RecordBatch) -> None:
        days = batch.column("day").to_numpy()
        cuts = [0, *(np.flatnonzero(np.diff(days)) + 1).tolist(), len(days)]
        for lo, hi in itertools.pairwise(cuts):
            self._switch_to(int(days[lo]))
            part = batch.slice(lo, hi - lo)
            self._record_corruptions(part.column("kind").to_numpy())
            self._handle.write(self._text_of(part.column("line")))
            self._lines += hi - lo

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _switch_to(self, day: int) -> None:
        if day == self._day:
            return
        self.close()
        suffix = ".csv.gz" if self.compress else ".csv"
        if self.per_day:
            name = f"events_{date(1970, 1, 1) + timedelta(days=day)}{suffix}"
            path = self.out / name
        else:
            path = self.out
        # Fast compression in a background thread: generation speed matters more
        # than a few percent of size. The handle stays open across batches.
        self._handle = (
            igzip_threaded.open(path, "wb", compresslevel=1, threads=1) if self.compress else open(path, "wb")  # noqa: SIM115
        )
        self._handle.write(HEADER)
        self.files.append(path)
        self._day, self._lines = day, 0

    def _record_corruptions(self, kinds: np.ndarray) -> None:
        for index in np.flatnonzero(kinds):
            # line 1 is the header
            line = self._lines + int(index) + 2
            self.corruptions.append(Corruption(self.files[-1], line, DirtyKind(int(kinds[index]))))

    def _text_of(self, lines: pa.Array) -> bytes:
        """The concatenated UTF-8 bytes of a string array, without copying row by row."""
        offsets = np.frombuffer(lines.buffers()[1], dtype=_offset_type(lines.type))
        first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
        text = lines.buffers()[2].to_pybytes()[first:last]
        return text.replace(_BAD_BYTE_PLACEHOLDER, _BAD_BYTE) if self.swap_bad_bytes else text


def _offset_type(kind: pa.DataType) -> type:
    return np.int64 if pa.types.is_large_string(kind) else np.int32
