"""SQL that turns raw records into typed bronze rows, or into a reason they cannot be.

Parsing is two steps. A format step (CSV line, JSON line or Parquet row) yields
one text cell per pipeline field (``c_<field>``) and a structural ``problem``
when the record cannot even be split. The typing step, shared by all formats,
parses each cell and names the first column that fails.
"""

from dataclasses import dataclass

from eventpipe.fields import EVENT_FIELDS
from eventpipe.sql import ident

# The REES46 spelling '2020-09-24 11:57:06 UTC' and ISO 8601 with an offset
# both cast to TIMESTAMPTZ; a value without an offset is read as UTC. A time of
# day is required: a bare date is more likely a broken record than midnight.
_HAS_TIME_OF_DAY = r"\d:\d\d"
_INTEGER = r"[+-]?\d+"

_INTEGER_FIELDS = ("product_id", "category_id", "user_id")
_TEXT_FIELDS = ("event_type", "category_code", "brand", "user_session")


@dataclass(frozen=True)
class Layout:
    """Where each pipeline field is in a source: a CSV column position or a JSON/Parquet name."""

    positions: dict[str, int]  # field -> 1-based CSV column position
    names: dict[str, str]  # field -> key or column name in the source
    width: int  # how many columns a CSV line must have
    source_columns: tuple[str, ...] = ()  # every column of the source, in its order


def csv_cells(layout: Layout) -> str:
    """Cells of CSV lines from the relation ``raw_lines`` (see :mod:`eventpipe.ingest.lines`)."""
    cells = ",\n    ".join(
        f"cells[{layout.positions[f]}] AS c_{f}" if f in layout.positions else f"NULL::VARCHAR AS c_{f}"
        for f in EVENT_FIELDS
    )
    return f"""
WITH lines AS (
    SELECT _source_line, raw_record, utf8_ok
    FROM raw_lines
    WHERE _source_line > 1  -- line 1 is the header
), tokens AS (
    SELECT *,
        CASE
            WHEN NOT utf8_ok THEN NULL
            WHEN NOT contains(raw_record, '"') THEN string_split(raw_record, ',')
            -- quoted fields: a field is "..." (with "" for a quote) or has no quote at all
            ELSE regexp_extract_all(raw_record || ',', '("(?:[^"]|"")*"|[^,"]*),', 1)
        END AS parts
    FROM lines
    WHERE raw_record <> ''
), split AS (
    SELECT *,
        contains(raw_record, '"') AND array_to_string(parts, ',') <> raw_record AS broken_quotes,
        CASE WHEN contains(raw_record, '"') THEN list_transform(
            parts, lambda p: CASE WHEN starts_with(p, '"') THEN replace(p[2:-2], '""', '"') ELSE p END
        ) ELSE parts END AS cells
    FROM tokens
)
SELECT
    _source_line,
    raw_record,
    CASE
        WHEN NOT utf8_ok THEN 'encoding: the line is not valid UTF-8'
        WHEN broken_quotes THEN 'quoting: a double quote is unbalanced or inside an unquoted field'
        WHEN len(cells) <> {layout.width:d}
            THEN 'fields: expected {layout.width:d} fields, found ' || len(cells)
    END AS problem,
    {cells}
FROM split
"""


def jsonl_cells(layout: Layout) -> str:
    """Cells of JSON-lines records from the relation ``raw_lines``.

    Parameters: ``$key_<field>``, from :func:`json_paths`.
    """
    cells = ",\n    ".join(
        f"CASE WHEN valid THEN json_extract_string(raw_record, $key_{f}) END AS c_{f}"
        if f in layout.names
        else f"NULL::VARCHAR AS c_{f}"
        for f in EVENT_FIELDS
    )
    return f"""
WITH lines AS (
    SELECT _source_line, raw_record, utf8_ok
    FROM raw_lines
), checked AS (
    -- CASE, not AND: json_type raises on text that is not JSON
    SELECT *, CASE WHEN utf8_ok AND json_valid(raw_record)
        THEN json_type(raw_record) = 'OBJECT' ELSE false END AS valid
    FROM lines
    WHERE trim(raw_record) <> ''
)
SELECT
    _source_line,
    raw_record,
    CASE
        WHEN NOT utf8_ok THEN 'encoding: the line is not valid UTF-8'
        WHEN NOT valid THEN 'json: the line is not a JSON object'
    END AS problem,
    {cells}
FROM checked
"""


def parquet_cells(layout: Layout) -> str:
    """Cells of the Parquet file named by parameter ``$path``; row numbers count from 1."""
    cells = ",\n    ".join(
        f"CAST(source.{ident(layout.names[f])} AS VARCHAR) AS c_{f}"
        if f in layout.names
        else f"NULL::VARCHAR AS c_{f}"
        for f in EVENT_FIELDS
    )
    return f"""
SELECT
    file_row_number + 1 AS _source_line,
    to_json(source)::VARCHAR AS raw_record,
    NULL::VARCHAR AS problem,
    {cells}
FROM read_parquet($path, file_row_number = true) AS source
"""


def typed(cells_sql: str) -> str:
    """Typed bronze columns plus ``reason`` and ``raw_record`` (both NULL for a good row).

    ``event_time`` comes out as a UTC TIMESTAMP without zone: labelling it UTC
    in Arrow is free, converting it in SQL is not.

    Parameters: ``$source_file`` and ``$ingested_at``.
    """
    integers = ",\n        ".join(f"{_integer(f)} AS {f}" for f in _INTEGER_FIELDS)
    texts = ",\n        ".join(f"nullif(c_{f}, '') AS {f}" for f in _TEXT_FIELDS)
    number_checks = "\n            ".join(
        f"WHEN {_present(f)} AND {f} IS NULL THEN '{f}: not an integer: ' || {_shown(f)}"
        for f in _INTEGER_FIELDS
    )
    return f"""
WITH cells AS ({cells_sql}
), parsed AS (
    SELECT *,
        -- UTC wall-clock time (TIMESTAMP); the caller labels it UTC without converting
        coalesce(
            -- the REES46 spelling, fast; then any spelling DuckDB reads that has a time of day
            try_strptime(c_event_time, '%Y-%m-%d %H:%M:%S UTC'),
            CASE WHEN regexp_matches(c_event_time, '{_HAS_TIME_OF_DAY}')
                THEN timezone('UTC', TRY_CAST(c_event_time AS TIMESTAMPTZ)) END
        ) AS event_time,
        {integers},
        CASE WHEN isfinite(TRY_CAST(c_price AS DOUBLE)) THEN TRY_CAST(c_price AS DOUBLE) END AS price,
        {texts}
    FROM cells
), judged AS (
    SELECT *,
        CASE
            WHEN problem IS NOT NULL THEN problem
            WHEN NOT {_present("event_time")} THEN 'event_time: missing'
            WHEN event_time IS NULL THEN 'event_time: not a timestamp: ' || {_shown("event_time")}
            {number_checks}
            WHEN {_present("price")} AND price IS NULL THEN 'price: not a number: ' || {_shown("price")}
        END AS reason
    FROM parsed
)
SELECT
    event_time, event_type, product_id, category_id, category_code, brand, price, user_id,
    user_session,
    CAST(event_time AS DATE) AS event_date,
    $source_file AS _source_file,
    _source_line,
    $ingested_at::TIMESTAMPTZ AS _ingested_at,
    reason,
    CASE WHEN reason IS NOT NULL THEN raw_record END AS raw_record
FROM judged
"""


def _integer(field: str) -> str:
    """An integer cell, refusing what a cast would round ('12.5') or reinterpret ('1e3')."""
    cell = f"c_{field}"
    return f"""CASE
            WHEN TRY_CAST({cell} AS BIGINT)::VARCHAR = {cell} THEN TRY_CAST({cell} AS BIGINT)
            WHEN regexp_full_match(trim({cell}), '{_INTEGER}') THEN TRY_CAST(trim({cell}) AS BIGINT)
        END"""


def _present(field: str) -> str:
    return f"coalesce(c_{field}, '') <> ''"


def _shown(field: str) -> str:
    """The offending value, quoted and cut short, for a reason message."""
    return f"'\"' || left(c_{field}, 40) || '\"'"


def json_paths(layout: Layout) -> dict[str, str]:
    """The JSON path of each field's key, as parameters for :func:`jsonl_cells`."""
    return {f"key_{f}": json_path(name) for f, name in layout.names.items()}


def json_path(key: str) -> str:
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'$."{escaped}"'
