"""JSON text of results that hold dates, times and decimals."""

import json
from datetime import date, datetime
from decimal import Decimal


def dumps(payload: object, indent: int | None = 2) -> str:
    """JSON text; ``indent=None`` for one line (a table cell, a CSV field)."""
    return json.dumps(payload, indent=indent, default=_jsonable)


def _jsonable(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)
