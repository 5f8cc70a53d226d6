"""The seam between pipeline logic (SQL over named relations) and the machine that runs it.

Layers ask an :class:`Engine` to expose tables under names, run SQL and write
results as Delta tables. :class:`DuckDBEngine` runs on one machine; a Spark
engine can implement the same interface later.
"""

from eventpipe.engine.base import Engine
from eventpipe.engine.duckdb import DuckDBEngine

__all__ = ["DuckDBEngine", "Engine"]
