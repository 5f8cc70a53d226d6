"""The one place an engine is built: every command and stage asks here, none constructs one."""

from pathlib import Path

from eventpipe.engine.base import Engine
from eventpipe.engine.duckdb import DuckDBEngine


def create_engine(memory_limit: str, spill_to: Path | None = None, *, sealed: bool = False) -> Engine:
    """An engine for SQL over a warehouse, within ``memory_limit``, spilling into ``spill_to``.

    ``sealed``: for user SQL (``eventpipe query``, user checks): it can read no file by
    name and write none; tables must be exposed after the engine is made.
    """
    if sealed:
        engine = DuckDBEngine(memory_limit=memory_limit)
        engine.forbid_external_access()
        return engine
    return DuckDBEngine(memory_limit=memory_limit, spill_to=spill_to, keep_order=False)
