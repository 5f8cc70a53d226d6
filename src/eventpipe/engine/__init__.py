"""The seam between pipeline logic (SQL over named relations) and the machine that runs it.

Layers ask an :class:`Engine` to expose tables under names, run SQL and write
results as Delta tables. :class:`DuckDBEngine` runs on one machine; a Spark
engine can implement the same interface later. Engines are made by
:func:`create_engine` only.
"""

from eventpipe.engine.base import Engine
from eventpipe.engine.duckdb import DuckDBEngine
from eventpipe.engine.factory import create_engine

__all__ = ["DuckDBEngine", "Engine", "create_engine"]
