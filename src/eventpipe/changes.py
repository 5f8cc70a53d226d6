"""What a run changed: the bronze rows it added and the silver partitions it rewrote.

Checks after an incremental run look at these rather than at all of history.
"""

from dataclasses import dataclass
from datetime import datetime

from eventpipe.engine.delta import changed_partitions
from eventpipe.warehouse import BRONZE_EVENTS, SESSIONS, SILVER_EVENTS, Warehouse


@dataclass(frozen=True)
class Versions:
    """Versions of the tables a run changes, taken before it starts (None: no table yet)."""

    bronze: int | None
    silver_events: int | None
    sessions: int | None

    @classmethod
    def of(cls, warehouse: Warehouse) -> "Versions":
        found = [
            warehouse.table(t).version() if warehouse.exists(t) else None
            for t in (BRONZE_EVENTS, SILVER_EVENTS, SESSIONS)
        ]
        return cls(*found)


@dataclass(frozen=True)
class Changes:
    """Bronze rows added since version ``bronze_since``; silver partitions rewritten since the run began."""

    bronze_since: int
    event_dates: frozenset[str]
    session_dates: frozenset[str]
    newest_before: datetime | None  # the newest bronze event before the run


def changes_since(warehouse: Warehouse, before: Versions, newest_before: datetime | None) -> Changes | None:
    """What changed since ``before``; None when it cannot be told (a table is new, say)."""
    if None in (before.bronze, before.silver_events, before.sessions):
        return None
    event_dates = changed_partitions(warehouse.table(SILVER_EVENTS), before.silver_events, "event_date")
    session_dates = changed_partitions(warehouse.table(SESSIONS), before.sessions, "session_date")
    if event_dates is None or session_dates is None:
        return None
    return Changes(before.bronze, frozenset(event_dates), frozenset(session_dates), newest_before)
