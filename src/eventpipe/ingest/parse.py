"""SQL that turns raw records into typed bronze rows, or into a reason they cannot be.

Parsing is two steps. A format step (CSV line, JSON line or Parquet row) yields
one text cell per pipeline field (``c_<field>``) and a structural ``problem``
when the record cannot even be split. The typing step, shared by all formats,
parses each cell and names the first column that fails.
"""

from dataclasses import dataclass, field

from eventpipe.fields import EVENT_FIELDS
from eventpipe.ingest.lines import PREFIX_BYTES
from eventpipe.sql import ident

# The REES46 spelling '2020-09-24 11:57:06 UTC' and ISO 8601 with an offset
# both cast to TIMESTAMPTZ; a value without an offset is read as UTC. A time of
# day is required: a bare date is more likely a broken record than midnight.
_HAS_TIME_OF_DAY = r"\d:\d\d"
_STARTS_WITH_DIGIT = r"^\s*\d"  # the parsers also read words such as 'epoch' and 'infinity'
# An offset beyond 18 hours (ISO 8601 readers accept up to that) is a broken value.
_OFFSET_OUT_OF_RANGE = r"[+-](19|[2-9]\d|\d{3,}):?\d\d\s*$"
# Event times outside these years are broken values (an 'epoch' default, a year typo);
# they would also break the charts and date arithmetic downstream.
_YEARS = (1970, 9999)
# A price at or above this is a broken value, and money sums as DECIMAL(18, 6) below it.
_PRICE_LIMIT = 10**12
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
    types: dict[str, str] = field(default_factory=dict)  # field -> Parquet column type


def csv_cells(layout: Layout) -> str:
    """Cells of CSV records from the relation ``raw_records`` (see :mod:`eventpipe.ingest.lines`)."""
    cells = ",\n    ".join(
        f"cells[{layout.positions[f]}] AS c_{f}" if f in layout.positions else f"NULL::VARCHAR AS c_{f}"
        for f in EVENT_FIELDS
    )
    return f"""
WITH records AS (
    SELECT _source_line, raw_record, {_record_problem()} AS problem
    FROM raw_records
    WHERE _source_line > 1  -- line 1 is the header
), tokens AS (
    SELECT *,
        CASE
            WHEN problem IS NOT NULL THEN NULL
            WHEN NOT contains(raw_record, '"') THEN string_split(raw_record, ',')
            -- quoted fields: a field is "..." (with "" for a quote) or has no quote at all
            ELSE regexp_extract_all(raw_record || ',', '("(?:[^"]|"")*"|[^,"]*),', 1)
        END AS parts
    FROM records
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
    {_kept_raw()} AS raw_record,
    CASE
        WHEN problem IS NOT NULL THEN problem
        WHEN broken_quotes THEN 'quoting: a double quote is unbalanced or inside an unquoted field'
        WHEN len(cells) <> {layout.width:d}
            THEN 'fields: expected {layout.width:d} fields, found ' || len(cells)
    END AS problem,
    {cells}
FROM split
"""


def csv_field_cells(layout: Layout) -> tuple[str, str]:
    """Cells of CSV records already split into fields, and the SQL of a record's raw text.

    The relation ``csv_fields`` has ``_source_line`` and one text column per field
    of the file (``f1``, ``f2``, ...). These records hold no quote, so a record's
    text is its fields joined by commas: worked out only for rejected records.
    """
    fields = [f"f{i}" for i in range(1, layout.width + 1)]
    cells = ",\n    ".join(
        f"f{layout.positions[f]} AS c_{f}" if f in layout.positions else f"NULL::VARCHAR AS c_{f}"
        for f in EVENT_FIELDS
    )
    statement = f"""
SELECT
    _source_line,
    NULL::VARCHAR AS problem,
    {", ".join(fields)},
    {cells}
FROM csv_fields
"""
    return statement, f"concat_ws(',', {', '.join(fields)})"


def _record_problem() -> str:
    """A record's problem known before it is parsed: bad encoding (from the reader) or its size."""
    return """CASE
        WHEN problem IS NOT NULL THEN problem
        WHEN strlen(raw_record) > $max_record_bytes THEN 'record: ' || strlen(raw_record)
            || ' bytes, longer than max_record_bytes (' || $max_record_bytes || ')'
    END"""


def _kept_raw() -> str:
    """The raw text kept for a record: all of it, but the first bytes of an over-long one."""
    return (
        f"CASE WHEN strlen(raw_record) > $max_record_bytes THEN left(raw_record, {PREFIX_BYTES}) "
        "ELSE raw_record END"
    )


def jsonl_cells(layout: Layout) -> str:
    """Cells of JSON-lines records from the relation ``raw_records``.

    Parameters: ``$key_<field>``, from :func:`json_paths`.
    """
    cells = ",\n    ".join(
        f"CASE WHEN valid THEN json_extract_string(raw_record, $key_{f}) END AS c_{f}"
        if f in layout.names
        else f"NULL::VARCHAR AS c_{f}"
        for f in EVENT_FIELDS
    )
    return f"""
WITH records AS (
    SELECT _source_line, raw_record, {_record_problem()} AS problem
    FROM raw_records
), checked AS (
    -- CASE, not AND: json_type raises on text that is not JSON
    SELECT *, CASE WHEN problem IS NULL AND json_valid(raw_record)
        THEN json_type(raw_record) = 'OBJECT' ELSE false END AS valid
    FROM records
    WHERE trim(raw_record) <> ''
)
SELECT
    _source_line,
    {_kept_raw()} AS raw_record,
    CASE
        WHEN problem IS NOT NULL THEN problem
        WHEN NOT valid THEN 'json: the line is not a JSON object'
    END AS problem,
    {cells}
FROM checked
"""


def parquet_cells(layout: Layout) -> str:
    """Cells of the Parquet file named by parameter ``$path``; row numbers count from 1."""
    cells = ",\n    ".join(
        f"{_parquet_cell(layout, f)} AS c_{f}" if f in layout.names else f"NULL::VARCHAR AS c_{f}"
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


def _parquet_cell(layout: Layout, event_field: str) -> str:
    column = f"source.{ident(layout.names[event_field])}"
    if event_field in _INTEGER_FIELDS and layout.types.get(event_field) in ("float", "double", "halffloat"):
        # as pandas writes an integer column with gaps: whole values are integers
        return (
            f"CASE WHEN isfinite({column}) AND {column} = trunc({column}) AND abs({column}) < 9.2e18 "
            f"THEN CAST(CAST({column} AS BIGINT) AS VARCHAR) ELSE CAST({column} AS VARCHAR) END"
        )
    return f"CAST({column} AS VARCHAR)"


def typed(cells_sql: str, raw: str = "raw_record") -> str:
    """Typed bronze columns plus ``reason`` and ``raw_record`` (both NULL for a good row).

    ``raw`` is the SQL of a record's raw text over the cells' columns.

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
    first_year, last_year = _YEARS
    return f"""
WITH cells AS ({cells_sql}
), parsed AS (
    SELECT *,
        -- UTC wall-clock time (TIMESTAMP); the caller labels it UTC without converting.
        coalesce(
            -- the REES46 spelling, fast (a digit first: strptime also reads words such as 'epoch')
            CASE WHEN ascii(c_event_time) BETWEEN 48 AND 57
                THEN try_strptime(c_event_time, '%Y-%m-%d %H:%M:%S UTC') END,
            -- then any spelling DuckDB reads that has a time of day
            CASE WHEN regexp_matches(c_event_time, '{_STARTS_WITH_DIGIT}')
                AND regexp_matches(c_event_time, '{_HAS_TIME_OF_DAY}')
                AND NOT regexp_matches(c_event_time, '{_OFFSET_OUT_OF_RANGE}')
                THEN timezone('UTC', TRY_CAST(c_event_time AS TIMESTAMPTZ)) END
        ) AS event_time,
        {integers},
        -- DuckDB also reads '1_000' as a number; adding 0.0 turns -0.0 into 0.0
        CASE WHEN NOT contains(c_price, '_') THEN TRY_CAST(c_price AS DOUBLE) + 0.0 END AS price,
        {texts}
    FROM cells
), judged AS (
    SELECT *,
        CASE
            WHEN problem IS NOT NULL THEN problem
            WHEN NOT {_present("event_time")} THEN 'event_time: missing'
            WHEN event_time IS NULL THEN 'event_time: not a timestamp: ' || {_shown("event_time")}
            WHEN NOT isfinite(event_time) OR year(event_time) NOT BETWEEN {first_year} AND {last_year}
                THEN 'event_time: not in the years {first_year} to {last_year}: ' || {_shown("event_time")}
            {number_checks}
            WHEN {_present("price")} AND (price IS NULL OR NOT isfinite(price))
                THEN 'price: not a number: ' || {_shown("price")}
            WHEN abs(price) >= {_PRICE_LIMIT} THEN 'price: not below {_PRICE_LIMIT:,}: ' || {_shown("price")}
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
    CASE WHEN reason IS NOT NULL THEN {raw} END AS raw_record
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
