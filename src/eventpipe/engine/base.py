"""What every engine provides."""

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import pyarrow as pa
from deltalake import DeltaTable

from eventpipe.engine.delta import Staged


class Relation(ABC):
    """The result of a query, not computed yet: written where it is computed, never collected."""

    @property
    @abstractmethod
    def schema(self) -> pa.Schema:
        """The columns the query gives."""

    @abstractmethod
    def stage(self, table: DeltaTable, schema: pa.Schema, partition_by: tuple[str, ...]) -> Staged:
        """Write the rows, cast to ``schema``, as files of ``table`` (hive partitions), not committed."""


class Engine(ABC):
    """Runs SQL over named relations and reads and writes Delta tables."""

    #: whether a window without PARTITION BY reads rows in the order of the query below it
    #: (DuckDB streams them so): silver's SQL then sorts once, not once per window
    ordered_windows: ClassVar[bool] = False
    #: whether ingest reads each new file in a task of the engine's (``read_in_tasks``), away
    #: from this process, rather than here
    reads_files_in_tasks: ClassVar[bool] = False
    #: whether queries may run from several threads at once
    concurrent_queries: ClassVar[bool] = False
    #: whether the engine works within this process's memory_limit (DuckDB): a grouping too
    #: large for it is then faster split into several queries than spilled
    bounded_memory: ClassVar[bool] = False

    @abstractmethod
    def register(self, name: str, data: pa.Table | pa.RecordBatchReader) -> None:
        """Expose in-memory Arrow data to SQL as ``name``."""

    @abstractmethod
    def unregister(self, name: str) -> None:
        """Forget ``name``, releasing the data registered under it."""

    @abstractmethod
    def expose_table(self, name: str, table: DeltaTable) -> None:
        """Expose ``table``'s snapshot (as loaded: the caller keeps it current) as ``name``."""

    @abstractmethod
    def expose_added(self, name: str, table: DeltaTable, since_version: int) -> bool:
        """Expose as ``name`` only the rows added to ``table`` since ``since_version``.

        Returns False, exposing nothing, when the engine cannot tell those rows apart.
        """

    @abstractmethod
    def expose_version(self, name: str, table: DeltaTable, version: int) -> bool:
        """Expose as ``name`` ``table`` as it was at ``version``.

        Returns False, exposing nothing, when the engine cannot read that version
        (its files were vacuumed, say).
        """

    @abstractmethod
    def stream(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None, batch_rows: int = 122_880
    ) -> pa.RecordBatchReader:
        """Run ``sql`` and stream its result as Arrow record batches."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Relation:
        """``sql``'s rows, to be written to a table (see ``Warehouse.replace``)."""

    def stream_in_turn(
        self, statements: list[str], params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> pa.RecordBatchReader:
        """The rows of ``statements`` (of one schema) as one stream: each statement runs once the
        one before it is drained (one result at a time), the first one now."""
        first = self.stream(statements[0], params)

        def in_turn() -> Iterator[pa.RecordBatch]:
            yield from first
            for statement in statements[1:]:
                yield from self.stream(statement, params)

        return pa.RecordBatchReader.from_batches(first.schema, in_turn())

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> None:
        """Run a statement for its effect (creating a temporary table, say)."""
        self.stream(sql, params).read_all()

    def table(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pa.Table:
        """Run ``sql`` and return the whole (small) result."""
        return self.stream(sql, params).read_all()

    def scalar(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Any:
        """Run ``sql`` and return the first column of its first row."""
        return self.table(sql, params).column(0)[0].as_py()

    @contextmanager
    def translated_errors(self) -> Iterator[None]:
        """Errors of the engine that a user can act on become eventpipe errors."""
        yield

    @abstractmethod
    def close(self) -> None:
        """Release the engine's resources."""

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
