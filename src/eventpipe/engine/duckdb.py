"""The single-machine engine: DuckDB for SQL, ``deltalake`` for table reads."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from eventpipe.engine.base import Engine


class DuckDBEngine(Engine):
    """An in-memory DuckDB connection whose time zone is UTC.

    ``threads`` and ``memory_limit`` bound what one run may take of the machine;
    past the memory limit, DuckDB spills to ``spill_to``.
    """

    def __init__(
        self, threads: int | None = None, memory_limit: str | None = None, spill_to: Path | None = None
    ) -> None:
        self.con = duckdb.connect()
        # After connecting: the time-zone setting needs the ICU extension loaded first.
        self.con.execute("SET TimeZone = 'UTC'")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute("SET memory_limit = ?", [memory_limit])
        if spill_to is not None:
            self.con.execute("SET temp_directory = ?", [str(spill_to)])
        # Keeps the scan order of a source, so line numbers stay with their rows.
        self.con.execute("SET preserve_insertion_order = true")

    def register(self, name: str, data: pa.Table | pa.RecordBatchReader) -> None:
        self.con.register(name, data)

    def expose_table(self, name: str, table_path: Path) -> None:
        # DuckDB scans the Arrow dataset lazily, pushing filters and projections down.
        self.con.register(name, DeltaTable(str(table_path)).to_pyarrow_dataset())

    def stream(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None, batch_rows: int = 122_880
    ) -> pa.RecordBatchReader:
        # One result at a time per connection: the caller drains a stream before
        # running the next statement (DuckDB refuses otherwise).
        return self.con.sql(sql, params=params).to_arrow_reader(batch_rows)

    def forbid_external_access(self) -> None:
        """Make the connection read-only towards the file system (for user SQL)."""
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET lock_configuration = true")

    def close(self) -> None:
        self.con.close()
