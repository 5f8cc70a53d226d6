"""Find where each pipeline field is in a source, from its header, keys or schema."""

import csv
import gzip
import json

import pyarrow.parquet as pq

from eventpipe.errors import SourceError
from eventpipe.fields import EVENT_FIELDS, REQUIRED_FIELDS
from eventpipe.ingest.parse import Layout
from eventpipe.ingest.sources import SourceFile, SourceFormat

_JSON_LINES_SAMPLED = 1000


def detect_layout(source: SourceFile, columns: dict[str, str]) -> Layout:
    """The layout of ``source``; ``columns`` maps source column names to fields."""
    names = _column_names(source)
    by_field: dict[str, str] = {}
    positions: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        field = columns.get(name, name if name in EVENT_FIELDS else None)
        if field is not None and field not in by_field:
            by_field[field] = name
            positions[field] = position
    missing = [f for f in REQUIRED_FIELDS if f not in by_field]
    if missing:
        raise SourceError(
            f"{source.path}: required column(s) {', '.join(missing)} not found; "
            f"the file has columns: {', '.join(names) or '(none)'}. If they go by other names, "
            'map them in eventpipe.toml, e.g. [columns] timestamp = "event_time"'
        )
    return Layout(positions=positions, names=by_field, width=len(names), source_columns=tuple(names))


def _column_names(source: SourceFile) -> list[str]:
    try:
        if source.format is SourceFormat.parquet:
            return pq.read_schema(source.path).names
        opener = gzip.open if source.compressed else open
        with opener(source.path, "rt", encoding="utf-8", errors="replace", newline="") as handle:
            if source.format is SourceFormat.csv:
                header = next(csv.reader([handle.readline()]), [])
                return [name.strip().lstrip("\ufeff") for name in header]
            return _json_keys(handle)
    except (OSError, EOFError, ValueError) as error:
        raise SourceError(f"{source.path}: cannot read the file's columns: {error}") from None


def _json_keys(handle) -> list[str]:
    keys: dict[str, None] = {}
    for _, line in zip(range(_JSON_LINES_SAMPLED), handle, strict=False):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            keys.update(dict.fromkeys(record))
    return list(keys)
