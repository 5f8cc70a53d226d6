"""Run identifiers: sortable by time, unique across processes."""

import secrets
from datetime import UTC, datetime


def new_run_id(now: datetime | None = None) -> str:
    """E.g. ``20261128T023000Z-1a2b3c``: the UTC start time, then random hex."""
    now = now or datetime.now(UTC)
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
