"""The one place an engine is built: every command and stage asks here, none constructs one."""

from pathlib import Path

from eventpipe.engine.base import Engine
from eventpipe.engine.duckdb import DuckDBEngine
from eventpipe.settings import Settings


def create_engine(
    settings: Settings, spill_to: Path | None = None, *, sealed: bool = False, local: bool = False
) -> Engine:
    """The engine of ``settings`` (DuckDB within ``memory_limit``, spilling into ``spill_to``,
    or Spark on ``spark_master``).

    ``sealed``: for user SQL (``eventpipe query``, user checks): it can read no file by
    name and write none; tables must be exposed after the engine is made. ``local``: for
    commands that read what a run built (export, report, status). Both are DuckDB
    whichever engine built the tables: they read small results, on this machine.
    """
    if sealed:
        engine = DuckDBEngine(memory_limit=settings.memory_limit)
        engine.forbid_external_access()
        return engine
    if settings.engine == "spark" and not local:
        from eventpipe.engine.spark import SparkEngine  # loads Spark and starts Java: only when asked

        return SparkEngine(settings.spark_master, settings.spark)
    return DuckDBEngine(memory_limit=settings.memory_limit, spill_to=spill_to, keep_order=False)
