"""One run's context: what every stage of a run works with, made once and handed down.

``open_run`` opens the warehouse, takes its lock, makes the run's one engine
connection and notes the run's identity and where the tables stood before it.
Stages read from the context and return typed results; the runner, not the
stages, puts into the context what later stages need (what silver changed).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from eventpipe.changes import Changes, Versions
from eventpipe.engine import Engine, create_engine
from eventpipe.runs import new_run_id, newest_event
from eventpipe.settings import Settings
from eventpipe.warehouse import Warehouse


@dataclass
class RunContext:
    """The warehouse (locked), the engine, the run's id and clock, and the tables before it."""

    settings: Settings
    warehouse: Warehouse
    engine: Engine
    run_id: str
    now: datetime
    before: Versions
    newest_before: datetime | None  # the newest bronze event before the run
    changes: Changes | None = field(default=None)  # what silver's increment changed, once it ran


@contextmanager
def open_run(
    settings: Settings,
    *,
    create: bool = True,
    now: datetime | None = None,
    run_id: str | None = None,
    before: Versions | None = None,
    newest_before: datetime | None = None,
) -> Iterator[RunContext]:
    """A run's context for the ``with`` block; the lock and the engine are released after it.

    A step of a run started elsewhere (an Airflow task) passes the run's ``now``,
    ``run_id``, ``before`` and ``newest_before`` on.
    """
    warehouse = Warehouse.open(settings.warehouse, create=create)
    now = now or datetime.now(UTC)
    with (
        warehouse.lock(),
        create_engine(settings, warehouse.scratch()) as engine,
        engine.translated_errors(),
    ):
        continuing = before is not None
        yield RunContext(
            settings=settings,
            warehouse=warehouse,
            engine=engine,
            run_id=run_id or new_run_id(now),
            now=now,
            before=before if continuing else Versions.of(warehouse),
            newest_before=newest_before if continuing else newest_event(warehouse),
        )


@contextmanager
def open_reader(settings: Settings, *, sealed: bool = False) -> Iterator[tuple[Warehouse, Engine]]:
    """The warehouse and an engine for a command that only reads (query, export, report, status);
    no lock is taken. ``sealed``: the engine can read no file by name (for user SQL)."""
    warehouse = Warehouse.open(settings.warehouse, create=False)
    with create_engine(settings, warehouse.scratch(), sealed=sealed, local=True) as engine:
        yield warehouse, engine
