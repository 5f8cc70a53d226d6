"""Sessions of a full silver build, grouped a few days of events at a time.

One GROUP BY of every session holds all of them at once: at 40M events (21M sessions)
it spilled 2.6 GB past memory_limit 1GB and took 14.6-17.5 s (rows drained, nothing
written); a day of events at a time, 9.3-9.5 s. A session lies within one range of days
unless it has an event within the session timeout of the range's first or last midnight,
since its consecutive events are never further apart than the timeout (a longer gap starts
a new visit, and a maximum length only cuts visits shorter). Those sessions' rows from each
range (1.5% of them at 40M, a day a range) are held back as parts, and merged at the end.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from eventpipe.engine import Engine
from eventpipe.silver import sql
from eventpipe.silver.dates import midnight
from eventpipe.sql import date_ranges, dated_rows

# the first and last ranges have no neighbour before and after them
_NEVER_BEFORE, _NEVER_AFTER = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
# what a range's rows carry beyond a sessions row: what a held part needs to be merged, and whether
# it is held
_PART_COLUMNS, _FLAG = ("exact_revenue", "orders"), "crossing"


def sessions_by_dates(
    engine: Engine, event_types: list[str], revenue_type: str, timeout_us: int, events_per_query: int
) -> pa.RecordBatchReader | None:
    """The sessions of ``silver_events`` (exposed), grouped a range of days of about
    ``events_per_query`` events at a time (or of one day); None when the events fit one range."""
    counts = engine.table("SELECT event_date, count(*) AS n FROM silver_events GROUP BY 1 ORDER BY 1")
    ranges = date_ranges(counts.column(0).to_pylist(), counts.column(1).to_pylist(), events_per_query)
    if len(ranges) <= 1:
        return None
    reaches_out = "session_start < $reaches_before OR session_end >= $reaches_after"
    carried = ", ".join([*_PART_COLUMNS, f"{reaches_out} AS {_FLAG}"])
    merged = sql.finished_sessions(event_types, sql.merged_session_parts(event_types, "crossing_parts"))
    timeout = timedelta(microseconds=timeout_us)

    def range_rows(index: int) -> pa.RecordBatchReader:
        first, last = ranges[index]
        parts, params = sql.session_parts(
            event_types, revenue_type, dated_rows("silver_events", "event_date", first, last)
        )
        in_range = sql.finished_sessions(event_types, parts, carried)
        before = midnight(first) + timeout if index else _NEVER_BEFORE
        after = midnight(last + timedelta(days=1)) - timeout if index < len(ranges) - 1 else _NEVER_AFTER
        return engine.stream(in_range, params | {"reaches_before": before, "reaches_after": after})

    first_rows = range_rows(0)
    columns = [name for name in first_rows.schema.names if name not in (*_PART_COLUMNS, _FLAG)]

    def in_turn() -> Iterator[pa.RecordBatch]:
        held = False
        for index in range(len(ranges)):
            rows = first_rows if index == 0 else range_rows(index)
            reaching = []  # rows of sessions that may reach past the range
            for batch in rows:  # drained before the next statement runs: one result at a time
                flags = batch.column(_FLAG)
                if pc.any(flags).as_py():
                    reaching.append(batch.filter(flags))
                    batch = batch.filter(pc.invert(flags))
                yield batch.select(columns)
            if reaching:
                engine.register("held_parts", pa.Table.from_batches(reaching))
                if held:
                    engine.execute("INSERT INTO crossing_parts SELECT * FROM held_parts")
                else:
                    engine.execute("CREATE OR REPLACE TEMP TABLE crossing_parts AS SELECT * FROM held_parts")
                engine.unregister("held_parts")
                held = True
        if held:
            yield from engine.stream(merged)
            engine.execute("DROP TABLE crossing_parts")

    schema = pa.schema([first_rows.schema.field(c) for c in columns])
    return pa.RecordBatchReader.from_batches(schema, in_turn())
