"""Read-only SQL over the warehouse: every Delta table is a view named after it."""

from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from eventpipe.context import open_reader
from eventpipe.engine.delta import row_count
from eventpipe.errors import QueryError
from eventpipe.settings import Settings
from eventpipe.warehouse import RUNS, Warehouse


def run_query(settings: Settings, sql: str) -> pa.Table:
    """Run ``sql`` against the views of the warehouse; nothing on disk can change."""
    with open_reader(settings, sealed=True) as (warehouse, engine):
        warehouse.expose(engine)
        try:
            return engine.table(sql)
        except duckdb.Error as error:
            views = ", ".join(t.view for t in warehouse.existing_tables())
            first_line = str(error).splitlines()[0]
            raise QueryError(f"query failed: {first_line} (views: {views})") from None


RECENT_RUNS = """
SELECT run_id, started_at, round(seconds, 1) AS seconds, len(files) AS new_files, records_read,
    late_events, duplicates_removed, quarantined_in_bronze + quarantined_in_silver AS quarantined,
    silver_events, sessions, gold_published, array_to_string(failed_checks, ', ') AS failed_checks
FROM runs
ORDER BY run_id DESC
LIMIT $limit
"""


def recent_runs(settings: Settings, limit: int) -> pa.Table | None:
    """The newest ``limit`` runs of the runs table; None before the first ``eventpipe run``."""
    with open_reader(settings) as (warehouse, engine):
        if not warehouse.exists(RUNS):
            return None
        warehouse.expose(engine, (RUNS,))
        return engine.table(RECENT_RUNS, {"limit": limit})


def table_status(settings: Settings) -> pa.Table:
    """Each table of the warehouse: its version, rows and when it last changed."""
    warehouse = Warehouse.open(settings.warehouse, create=False)
    rows = []
    for table in warehouse.existing_tables():
        delta = warehouse.table(table)
        rows.append(
            {
                "table": table.view,
                "path": table.path,
                "version": delta.version(),
                "rows": row_count(delta),
                "changed_at": datetime.fromtimestamp(delta.history(1)[0]["timestamp"] / 1000, UTC),
            }
        )
    return pa.Table.from_pylist(rows)
