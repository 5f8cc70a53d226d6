"""The single-machine engine: DuckDB for SQL, ``deltalake`` for table reads."""

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from eventpipe.engine.base import Engine, Relation
from eventpipe.engine.delta import Staged, added_files, plain_parquet, readable_version, snapshot_key, stage
from eventpipe.errors import ResourceError


class DuckDBEngine(Engine):
    """An in-memory DuckDB connection whose time zone is UTC.

    ``threads`` and ``memory_limit`` bound what one run may take of the machine;
    past the memory limit, DuckDB spills to ``spill_to``. ``keep_order`` keeps
    the order of rows through a query.
    """

    ordered_windows = True
    bounded_memory = True

    #: connections opened by this process (a run opens one; tests and logs count them)
    opened: ClassVar[int] = 0

    def __init__(
        self,
        threads: int | None = None,
        memory_limit: str | None = None,
        spill_to: Path | None = None,
        keep_order: bool = True,
    ) -> None:
        self.memory_limit = memory_limit or "80% of RAM"
        self.sealed = False
        self.exposed: dict[str, tuple] = {}  # per name, the snapshot its view reads (expose_table)
        self.con = duckdb.connect()
        DuckDBEngine.opened += 1
        # After connecting: the time-zone setting needs the ICU extension loaded first.
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET enable_progress_bar = false")  # progress is the CLI's to show, on stderr
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute("SET memory_limit = ?", [memory_limit])
        if spill_to is not None:
            self.con.execute("SET temp_directory = ?", [str(spill_to)])
        # Ingestion relies on scan order (line numbers stay with their rows);
        # transformations do not, and without it DuckDB needs far less memory.
        self.con.execute(f"SET preserve_insertion_order = {str(keep_order).lower()}")
        # freed memory is returned to the system by a thread of its own, not by the query's
        # threads: silver's 10M-event query took 0.2-1.2 s less in each of six paired runs
        self.con.execute("SET allocator_background_threads = true")
        # A table's files are read by many statements of a run (the checks alone scan silver's a
        # dozen times), and each statement parsed every footer again. A table's files are never
        # changed once written (a write adds new names), so a footer read once stays true; a
        # source file is read once a run, and a run has a connection of its own.
        self.con.execute("SET parquet_metadata_cache = true")
        # a double's shortest round-trip text (1e-07, 100.0); the Spark engine defines the same
        self.con.execute("CREATE TEMP MACRO canonical_double(x) AS CAST(CAST(x AS DOUBLE) AS VARCHAR)")

    def register(self, name: str, data: pa.Table | pa.RecordBatchReader) -> None:
        self.exposed.pop(name, None)
        self.con.register(name, data)

    def unregister(self, name: str) -> None:
        self.exposed.pop(name, None)
        self.con.unregister(name)

    def expose_table(self, name: str, table: DeltaTable) -> None:
        # Each stage exposes the tables it reads, most often as the stage before it left them: the
        # view made then still reads that snapshot (an increment made 48 views, half of them again,
        # at 1-3 ms each).
        snapshot = snapshot_key(table)
        if self.exposed.get(name) == snapshot:
            return
        files = table.file_uris()
        if files and plain_parquet(table) and not self.sealed:
            # DuckDB's own Parquet reader on the snapshot's files: several times
            # faster than scanning through Arrow, and the files are the whole truth.
            self._read_files(name, table, files)
        else:
            self.register(name, table.to_pyarrow_dataset())
        self.exposed[name] = snapshot

    def expose_added(self, name: str, table: DeltaTable, since_version: int) -> bool:
        if not plain_parquet(table) or self.sealed:
            return False
        added = added_files(table, since_version)
        if added:
            self._read_files(name, table, added)
        else:  # no new rows: an empty relation with the table's columns
            self.register(name, pa.schema(table.schema().to_arrow()).empty_table())
        return True

    def expose_version(self, name: str, table: DeltaTable, version: int) -> bool:
        table = readable_version(table, version)
        if table is None or self.sealed:
            return False
        if files := table.file_uris():
            self._read_files(name, table, files)
        else:
            self.register(name, pa.schema(table.schema().to_arrow()).empty_table())
        return True

    def _read_files(self, name: str, table: DeltaTable, files: list[str]) -> None:
        self.exposed.pop(name, None)
        partitioned = bool(table.metadata().partition_columns)
        self.con.unregister(name)  # Arrow data registered under the name would hide the view
        self.con.read_parquet(files, hive_partitioning=partitioned).create_view(name, replace=True)

    def stream(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None, batch_rows: int = 122_880
    ) -> pa.RecordBatchReader:
        # One result at a time per connection: the caller drains a stream before
        # running the next statement (DuckDB refuses otherwise).
        return self.con.sql(sql, params=_referenced(sql, params)).to_arrow_reader(batch_rows)

    def query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Relation:
        return _Streamed(self.stream(sql, params))

    @contextmanager
    def translated_errors(self) -> Iterator[None]:
        """Turn DuckDB running out of memory (however it surfaces) into a ResourceError."""
        try:
            yield
        except Exception as error:
            if "Out of Memory Error" in str(error):
                raise ResourceError(
                    f"the engine ran out of memory (memory_limit {self.memory_limit}); raise memory_limit "
                    "in eventpipe.toml or EVENTPIPE_MEMORY_LIMIT"
                ) from None
            raise

    def forbid_external_access(self) -> None:
        """Make the connection read-only towards the file system (for user SQL).

        Tables exposed afterwards are scanned through Arrow, which needs no file
        access from SQL, so a query cannot read or write files by name. There is
        no spill folder either: DuckDB lets SQL use the one it spills to.
        """
        self.exposed.clear()  # views made so far read files: exposed again, tables are read through Arrow
        self.con.execute("SET temp_directory = ''")
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET lock_configuration = true")
        self.sealed = True

    def close(self) -> None:
        self.con.close()


class _Streamed(Relation):
    """A DuckDB result streamed through this process into Parquet files as it is computed."""

    def __init__(self, rows: pa.RecordBatchReader) -> None:
        self.rows = rows

    @property
    def schema(self) -> pa.Schema:
        return self.rows.schema

    def stage(self, table: DeltaTable, schema: pa.Schema, partition_by: tuple[str, ...]) -> Staged:
        return stage(table, schema, self.rows.cast(schema), partition_by)


def _referenced(sql: str, params: Sequence[Any] | Mapping[str, Any] | None):
    """The named parameters ``sql`` uses: a stage passes one set to several statements,
    and DuckDB refuses a named parameter a statement does not use."""
    if not isinstance(params, Mapping):
        return params
    used = {name: value for name, value in params.items() if re.search(rf"\${name}\b", sql)}
    return used or None
