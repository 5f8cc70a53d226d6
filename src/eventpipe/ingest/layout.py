"""Find where each pipeline field is in a source, from its header, keys or schema.

Names match without regard to case (``Event_Time`` is ``event_time``), as do
the source names in ``[columns]``. A problem here is the file's alone: the
message says what is wrong with it and what to do, and the caller names the file.
"""

import csv
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq

from eventpipe.errors import SourceError
from eventpipe.fields import EVENT_FIELDS, REQUIRED_FIELDS
from eventpipe.ingest.parse import Layout
from eventpipe.ingest.sources import SourceFile, SourceFormat

_JSON_LINES_SAMPLED = 1000


def detect_layout(source: SourceFile, columns: dict[str, str]) -> Layout:
    """The layout of ``source``; ``columns`` maps source column names to fields."""
    if source.size == 0:
        raise SourceError("the file is empty; it is read again once it has content")
    names = _column_names(source)
    mapped = {name.lower(): field for name, field in columns.items()}
    by_field: dict[str, str] = {}
    positions: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        field = mapped.get(name.lower(), name.lower() if name.lower() in EVENT_FIELDS else None)
        if field is None:
            continue
        if field in by_field:
            raise SourceError(
                f"columns {positions[field]} ({by_field[field]}) and {position} ({name}) both give "
                f"{field}; rename or remove one, or map them in eventpipe.toml [columns]"
            )
        by_field[field] = name
        positions[field] = position
    if source.format is SourceFormat.jsonl:
        # a key may first appear after the lines sampled: every field is looked up by its key
        for field in EVENT_FIELDS:
            by_field.setdefault(field, next((k for k, f in columns.items() if f == field), field))
    missing = [f for f in REQUIRED_FIELDS if f not in by_field]
    if missing:
        raise SourceError(
            f"required column(s) {', '.join(missing)} not found; "
            f"the file has columns: {', '.join(names) or '(none)'}. If they go by other names, "
            'map them in eventpipe.toml, e.g. [columns] timestamp = "event_time"'
        )
    return Layout(
        positions=positions,
        names=by_field,
        width=len(names),
        source_columns=tuple(names),
        types=_parquet_types(source, by_field) if source.format is SourceFormat.parquet else {},
    )


def _column_names(source: SourceFile) -> list[str]:
    try:
        if source.format is SourceFormat.parquet:
            return pq.read_schema(source.path).names
        opener = gzip.open if source.compressed else open
        with opener(source.path, "rt", encoding="utf-8", errors="replace", newline="") as handle:
            if source.format is SourceFormat.csv:
                header = next(csv.reader([handle.readline().rstrip("\r\n")]), [])
                return [name.strip().lstrip("\ufeff") for name in header]
            return _json_keys(handle)
    except (ValueError, pa.ArrowException) as error:  # I/O errors go up, to be told as such
        raise SourceError(f"cannot read the file's columns ({error}); write the file again") from None


def _json_keys(handle) -> list[str]:
    """The keys of the first lines' objects (what is recorded as the file's columns)."""
    keys: dict[str, None] = {}
    for number, line in enumerate(handle):
        if number >= _JSON_LINES_SAMPLED:
            break
        if number == 0 and line.lstrip("\ufeff \t").startswith("["):
            raise SourceError(
                "it holds a JSON array; eventpipe reads JSON lines (one object per line): "
                "convert it, e.g. jq -c '.[]' FILE.json > FILE.jsonl"
            )
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            keys.update(dict.fromkeys(record))
    return list(keys)


def _parquet_types(source: SourceFile, by_field: dict[str, str]) -> dict[str, str]:
    """Each field's Parquet column type, where a field needs its type to be read right."""
    schema = pq.read_schema(source.path)
    return {field: str(schema.field(name).type) for field, name in by_field.items()}
