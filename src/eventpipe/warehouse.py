"""The warehouse folder: where each table lives, the marker that says it is ours, and the lock."""

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import ClassVar

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable

from eventpipe.engine import Engine
from eventpipe.engine.base import Relation
from eventpipe.engine.delta import Staged, Written, stage, write
from eventpipe.errors import MissingTableError, WarehouseError, WarehouseLockedError
from eventpipe.fields import BRONZE_SCHEMA, QUALITY_RESULTS_SCHEMA, QUARANTINE_SCHEMA, RUNS_SCHEMA

MARKER = "_eventpipe.json"
LOCK = "_eventpipe.lock"
FORMAT_VERSION = 1
# The hash that identifies an ingested file's content, named in the marker of each new warehouse.
# SHA-256 runs on the CPU's hash instructions: 1.4 GB/s here, against 0.34 GB/s for BLAKE2b,
# which spent 3.5 CPU-s reading a 1.2 GB CSV; warehouses made before the marker named it use BLAKE2b.
FINGERPRINT = "sha256"
LEGACY_FINGERPRINT = "blake2b-160"


@dataclass(frozen=True)
class TableSpec:
    """A Delta table of the warehouse: where it lives and the SQL view name it gets.

    Tables built by SQL have no fixed schema here; their first write sets it.
    """

    path: str
    view: str
    layer: str
    schema: pa.Schema | None = None
    partition_by: tuple[str, ...] = ()
    # the column whose ranges a file's row groups hold apart (see PartitionedFiles), where eventpipe's
    # writer writes Arrow rows (ingest, Warehouse.append/replace of them); an engine's query results
    # are written as they come
    cluster_by: str | None = None


# Silver reads bronze a range of users at a time: with a file's row groups each holding a narrow
# range of users, a range's scan skips most of them (at 40M events a range's query took 5.1 s
# against 6.6 with every row group read)
BRONZE_EVENTS = TableSpec(
    "bronze/events", "bronze_events", "bronze", BRONZE_SCHEMA, ("event_date",), cluster_by="user_id"
)
QUARANTINE = TableSpec("quarantine/events", "quarantine", "bronze", QUARANTINE_SCHEMA, ("stage",))
SILVER_EVENTS = TableSpec("silver/events", "silver_events", "silver", partition_by=("event_date",))
SESSIONS = TableSpec("silver/sessions", "sessions", "silver", partition_by=("session_date",))
EVENTS_BY_MINUTE = TableSpec("gold/events_by_minute", "events_by_minute", "gold")
EVENTS_BY_TYPE = TableSpec("gold/events_by_type", "events_by_type", "gold")
USER_FUNNEL = TableSpec("gold/user_funnel", "user_funnel", "gold")
# When each session entered each funnel step (user_funnel has the same per user):
# what the funnel's medians are computed from, kept so that a run recomputes only what changed.
FUNNEL_SESSIONS = TableSpec("gold/funnel_sessions", "funnel_sessions", "gold", partition_by=("session_date",))
FUNNEL = TableSpec("gold/funnel", "funnel", "gold")
SESSIONS_DAILY = TableSpec("gold/sessions_daily", "sessions_daily", "gold")
DAILY_METRICS = TableSpec("gold/daily_metrics", "daily_metrics", "gold")
QUALITY_RESULTS = TableSpec("quality/results", "quality_results", "quality", QUALITY_RESULTS_SCHEMA)
RUNS = TableSpec("meta/runs", "runs", "meta", RUNS_SCHEMA)

LAYERS = ("bronze", "silver", "gold")

GOLD_TABLES: tuple[TableSpec, ...] = (
    EVENTS_BY_MINUTE,
    EVENTS_BY_TYPE,
    USER_FUNNEL,
    FUNNEL_SESSIONS,
    FUNNEL,
    SESSIONS_DAILY,
    DAILY_METRICS,
)
TABLES: tuple[TableSpec, ...] = (
    BRONZE_EVENTS,
    QUARANTINE,
    SILVER_EVENTS,
    SESSIONS,
    *GOLD_TABLES,
    QUALITY_RESULTS,
    RUNS,
)
#: Tables that every run appends to, as logs; the others change only when their data does.
LOGS: tuple[TableSpec, ...] = (QUALITY_RESULTS, RUNS)

# Commit metadata is how bronze remembers which files it holds; keep the log.
_TABLE_CONFIGURATION = {"delta.enableExpiredLogCleanup": "false"}


class Warehouse:
    """A folder of Delta tables. ``open`` checks it; ``lock`` guards writers.

    It keeps each table it has loaded: a table's log is read once per command
    (the writes of this process keep the loaded table current).
    """

    #: warehouses opened by this process (a run opens one; tests and logs count them)
    opened: ClassVar[int] = 0

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tables: dict[str, DeltaTable] = {}

    @classmethod
    def open(cls, root: Path, *, create: bool) -> "Warehouse":
        """Open ``root``; with ``create``, make it (or adopt an empty folder)."""
        if root.exists() and not root.is_dir():
            raise WarehouseError(f"warehouse {root} is a file, not a folder; choose another --warehouse")
        if root.is_dir() and not os.access(root, os.R_OK | os.X_OK):
            raise WarehouseError(f"warehouse {root} is not readable; check its permissions")
        cls.opened += 1
        marker = root / MARKER
        if marker.is_file():
            return cls(root)
        if root.is_dir() and any(root.iterdir()):
            raise WarehouseError(
                f"{root} is not an eventpipe warehouse (it has files but no {MARKER}); "
                "point --warehouse at a new or empty folder"
            )
        if not create:
            raise WarehouseError(
                f"no warehouse at {root}; run `eventpipe ingest --warehouse {root} --source ...` first"
            )
        try:
            root.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({"format": FORMAT_VERSION, "fingerprint": FINGERPRINT}) + "\n")
        except OSError as error:
            raise WarehouseError(f"cannot create warehouse {root}: {error.strerror}") from None
        return cls(root)

    def path(self, table: TableSpec) -> Path:
        return self.root / table.path

    @property
    def fingerprint(self) -> str:
        """The hash this warehouse's ledger identifies files' content by (named in its marker)."""
        try:
            return json.loads((self.root / MARKER).read_text()).get("fingerprint", LEGACY_FINGERPRINT)
        except (OSError, ValueError, AttributeError):
            raise WarehouseError(
                f"{self.root / MARKER} cannot be read as this warehouse's marker; restore it from a backup"
            ) from None

    def exists(self, table: TableSpec) -> bool:
        return table.path in self._tables or DeltaTable.is_deltatable(str(self.path(table)))

    def table(self, table: TableSpec, schema: pa.Schema | None = None) -> DeltaTable:
        """The Delta table, created empty on first use with its schema (or ``schema``)."""
        if table.path in self._tables:
            return self._tables[table.path]
        path = str(self.path(table))
        if DeltaTable.is_deltatable(path):
            loaded = DeltaTable(path)
        else:
            loaded = DeltaTable.create(
                path,
                schema=table.schema or schema,
                partition_by=list(table.partition_by) or None,
                configuration=_TABLE_CONFIGURATION,
            )
        self._tables[table.path] = loaded
        return loaded

    def existing_tables(self) -> list[TableSpec]:
        return [t for t in TABLES if self.exists(t)]

    def expose(self, engine: Engine, tables: tuple[TableSpec, ...] = TABLES) -> None:
        """Make each existing table of ``tables`` a view of ``engine``, named ``table.view``."""
        for table in tables:
            if self.exists(table):
                engine.expose_table(table.view, self.table(table))

    def require(self, tables: tuple[TableSpec, ...], built_by: str) -> None:
        """Fail with a clear message unless every table of ``tables`` exists."""
        missing = [t.view for t in tables if not self.exists(t)]
        if missing:
            raise MissingTableError(
                f"warehouse {self.root} has no {', '.join(missing)} yet; run `eventpipe {built_by}` first"
            )

    def replace(
        self,
        table: TableSpec,
        rows: Relation | pa.RecordBatchReader,
        where: list[tuple[str, str, str]] | None = None,
        commit: CommitProperties | None = None,
    ) -> Written:
        """Replace the table's rows (those in the partitions ``where`` names) in one commit."""
        return self._staged(table, rows).commit(commit, replace=where or [])

    def append(
        self,
        table: TableSpec,
        rows: Relation | pa.Table | pa.RecordBatchReader,
        commit: CommitProperties | None = None,
    ) -> Written:
        """Add ``rows`` to the table in one commit (made even with no rows, for ``commit``)."""
        if isinstance(rows, pa.Table) and rows.num_columns == 0:  # only the commit, on the table as it is
            target = self.table(table)
            return write(target, pa.schema(target.schema().to_arrow()), [], table.partition_by, commit)
        return self._staged(table, rows).commit(commit)

    def _staged(self, table: TableSpec, rows: Relation | pa.Table | pa.RecordBatchReader) -> Staged:
        """``rows`` written as files of ``table`` (made with their schema if new), not yet committed."""
        schema = table.schema or rows.schema
        target = self.table(table, schema)
        if isinstance(rows, Relation):  # written by the engine, where the rows are
            return rows.stage(target, schema, table.partition_by)
        batches = rows.cast(schema).to_batches() if isinstance(rows, pa.Table) else rows.cast(schema)
        return stage(target, schema, batches, table.partition_by, table.cluster_by)

    def reports(self) -> Path:
        """The folder of per-run JSON reports."""
        return self.root / "_reports"

    def scratch(self) -> Path:
        """A folder for DuckDB to spill to; it holds nothing between runs."""
        return self.root / "_tmp"

    def lock(self) -> "WarehouseLock":
        return WarehouseLock(self.root / LOCK)


class WarehouseLock:
    """An exclusive, non-blocking lock on the warehouse; released when the process ends."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        self._fd: int | None = None

    def __enter__(self) -> "WarehouseLock":
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise WarehouseError(f"cannot write to warehouse {self.path.parent}: {error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise WarehouseLockedError(
                f"warehouse {self.path.parent} is in use by another eventpipe run (pid {holder}); "
                "wait for it to finish, then run again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
