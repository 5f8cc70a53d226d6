"""Where Arrow's memory comes from in a command's process.

pyarrow allocates from mimalloc by default. With jemalloc, a 10M-event run (one CSV)
peaked at 1.55 GiB of resident memory against 1.78-1.81 GiB, in 32.9-33.5 s against
33.9-35.7 s and with less system time: the memory Arrow freed (the writer's row groups,
ordered copies of bronze's) stayed less with the process while DuckDB's queries that
came next allocated their own.
"""

import contextlib

import pyarrow as pa


def arrow_memory_from_jemalloc() -> None:
    """Make jemalloc Arrow's default pool, where pyarrow was built with it (else no change)."""
    with contextlib.suppress(NotImplementedError):
        pa.set_memory_pool(pa.jemalloc_memory_pool())
