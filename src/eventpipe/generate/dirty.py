"""What real logs contain: duplicates, misspellings, late rows and broken records.

:func:`make_dirty` adds rows and marks which rows to break; the renderer in
:mod:`eventpipe.generate.output` writes each kind the way it shows up in the
wild, and the generator reports every broken line so tests can check that the
pipeline caught each one.
"""

from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import numpy as np
import pyarrow as pa


class DirtyKind(IntEnum):
    """How a generated row was broken; ``clean`` rows are left alone."""

    clean = 0
    exact_duplicate = 1
    spelling_duplicate = 2
    out_of_order = 3
    missing_user_id = 4
    unknown_event_type = 5
    bad_timestamp = 6
    wrong_field_count = 7
    broken_quoting = 8
    negative_price = 9
    utc_offset = 10
    bad_number = 11
    invalid_utf8 = 12


DUPLICATE_KINDS = (DirtyKind.exact_duplicate, DirtyKind.spelling_duplicate)
ROW_KINDS = tuple(k for k in DirtyKind if k is not DirtyKind.clean and k not in DUPLICATE_KINDS)


@dataclass(frozen=True)
class Corruption:
    """One generated line that is not a clean, unique, in-order event."""

    file: Path
    line: int
    kind: DirtyKind


def make_dirty(clean: pa.Table, events: int, rate: float, seed: int) -> pa.Table:
    """Add duplicate rows and mark rows to break, so the result has ``events`` rows.

    ``clean`` must hold at least ``events`` rows; only its first rows are used,
    as many as needed so that clean rows plus duplicates make ``events``.
    Adds columns ``kind`` (a :class:`DirtyKind`), ``variant`` (which spelling of
    that kind to write) and ``arrival_us`` (when the row reaches the log: late
    rows arrive minutes to hours after their event time).
    """
    rng = np.random.default_rng(seed + 1)
    duplicates = rng.binomial(events, rate * len(DUPLICATE_KINDS))
    base = clean.slice(0, events - duplicates)
    n = base.num_rows

    kind = np.zeros(n, dtype=np.int8)
    # Rows to break are disjoint from the rows that get duplicated, so a
    # duplicate always has an intact original to be recognised against.
    picked = rng.permutation(n)
    sources, rest = picked[:duplicates], picked[duplicates:]
    per_kind = rng.binomial(n, rate, len(ROW_KINDS))
    start = 0
    for k, count in zip(ROW_KINDS, per_kind, strict=True):
        kind[rest[start : start + count]] = k
        start += count

    event_us = base["event_time"].cast(pa.int64()).to_numpy()
    arrival = event_us.copy()
    late = kind == DirtyKind.out_of_order
    arrival[late] += rng.integers(60, 3 * 3600, int(late.sum())) * 1_000_000

    dup_kind = rng.choice(np.array(DUPLICATE_KINDS, dtype=np.int8), duplicates)
    dup_arrival = event_us[sources] + rng.integers(0, 120, duplicates) * 1_000_000
    everything = pa.concat_tables([base, base.take(sources)])
    return (
        everything.append_column("kind", pa.array(np.concatenate([kind, dup_kind])))
        .append_column("variant", pa.array(rng.integers(0, 12, everything.num_rows, dtype=np.int8)))
        .append_column("arrival_us", pa.array(np.concatenate([arrival, dup_arrival])))
    )
