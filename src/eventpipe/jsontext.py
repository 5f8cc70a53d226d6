"""JSON text of results that hold dates, times and decimals."""

import json
from datetime import date, datetime
from decimal import Decimal


def dumps(payload: object) -> str:
    return json.dumps(payload, indent=2, default=_jsonable)


def _jsonable(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)
