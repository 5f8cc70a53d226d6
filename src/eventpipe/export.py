"""CSV copies of silver and gold in the layout and column names of the old pandas scripts.

Text cells that a spreadsheet would run as a formula (starting with ``=``,
``+``, ``-`` or ``@``, also after blanks or invisible characters, or with a tab
or carriage return) get a leading apostrophe; number columns are written as
numbers.
"""

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from eventpipe.context import open_reader
from eventpipe.fields import EVENT_FIELDS, count_column
from eventpipe.settings import Settings
from eventpipe.sql import ident
from eventpipe.warehouse import (
    EVENTS_BY_MINUTE,
    EVENTS_BY_TYPE,
    SESSIONS,
    SILVER_EVENTS,
    USER_FUNNEL,
)

# A cell a spreadsheet would run: a formula sign, after any run of blanks or invisible
# characters (spaces, NBSP, zero-width space, BOM, control characters), or a leading
# tab or carriage return.
_FORMULA = r"^[\s\x{00A0}\x{200B}\x{FEFF}\x{00}-\x{1F}]*[=+\-@]|^[\t\r]"

# The old scripts wrote pandas' spelling of UTC timestamps.
_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S+00:00"

#: file -> (view, columns in the old scripts' order)
EXPORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "silver/events_silver.csv": (SILVER_EVENTS.view, (*EVENT_FIELDS, "session_id", "event_id")),
    "silver/sessions.csv": (
        SESSIONS.view,
        (
            "session_id",
            "user_id",
            "session_start",
            "session_end",
            "events_count",
            "unique_event_types",
            "session_length_minutes",
        ),
    ),
    "gold/events_by_minute.csv": (EVENTS_BY_MINUTE.view, ("minute", "events_count")),
    "gold/events_by_type.csv": (EVENTS_BY_TYPE.view, ("event_type", "events_count")),
    # the old scripts' pivot: a count per funnel step, in alphabetical order (carts, purchases, views);
    # filled in from the settings by ``exports``
    "gold/user_funnel.csv": (USER_FUNNEL.view, ("user_id",)),
}


def exports(settings: Settings) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The files to write and their columns, for the funnel steps of ``settings``."""
    steps = sorted(count_column(step) for step in settings.funnel_steps)
    return {**EXPORTS, "gold/user_funnel.csv": (USER_FUNNEL.view, ("user_id", *steps))}


_ORDER = {
    "silver/events_silver.csv": "event_time, event_id",
    "silver/sessions.csv": "session_start, session_id",
    "gold/events_by_minute.csv": "minute",
    "gold/events_by_type.csv": "events_count DESC, event_type",
    "gold/user_funnel.csv": "user_id",
}


@dataclass(frozen=True)
class ExportResult:
    files: dict[str, int]  # path -> rows


def export(settings: Settings, out: Path) -> ExportResult:
    """Write every export file under ``out``; returns the rows written per file."""
    written = {}
    with open_reader(settings) as (warehouse, engine):
        warehouse.expose(engine)
        for name, (view, columns) in exports(settings).items():
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            types = engine.table(f"SELECT * FROM {ident(view)} LIMIT 0").schema
            cells = ", ".join(_cell(c, types.field(c).type) for c in columns)
            query = f"SELECT {cells} FROM {ident(view)} ORDER BY {_ORDER[name]}"
            # COPY answers with the number of rows it wrote
            written[str(path)] = engine.scalar(
                f"COPY ({query}) TO '{_literal(path)}' (HEADER, DELIMITER ',')"
            )
    return ExportResult(written)


def _cell(column: str, kind: pa.DataType) -> str:
    name = ident(column)
    if pa.types.is_timestamp(kind):
        return f"strftime({name}, '{_TIMESTAMP_FORMAT}') AS {name}"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        formula = f"regexp_matches({name}, '{_FORMULA}')"
        return f"CASE WHEN {formula} THEN '''' || {name} ELSE {name} END AS {name}"
    return name


def _literal(path: Path) -> str:
    return str(path).replace("'", "''")
