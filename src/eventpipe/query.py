"""Read-only SQL over the warehouse: every Delta table is a view named after it."""

import duckdb
import pyarrow as pa

from eventpipe.engine import DuckDBEngine
from eventpipe.errors import QueryError
from eventpipe.settings import Settings
from eventpipe.warehouse import Warehouse


def run_query(settings: Settings, sql: str) -> pa.Table:
    """Run ``sql`` against the views of the warehouse; nothing on disk can change."""
    warehouse = Warehouse.open(settings.warehouse, create=False)
    with DuckDBEngine() as engine:
        engine.forbid_external_access()
        warehouse.expose(engine)
        try:
            return engine.table(sql)
        except duckdb.Error as error:
            views = ", ".join(t.view for t in warehouse.existing_tables())
            first_line = str(error).splitlines()[0]
            raise QueryError(f"query failed: {first_line} (views: {views})") from None
