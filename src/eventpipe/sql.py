"""Small helpers for writing SQL that reads well: identifiers go through one quoting helper."""

from datetime import date


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def date_in(expression: str, dates: set[str]) -> str:
    """SQL that ``expression`` is one of ``dates`` (ISO dates, checked; FALSE when there are none)."""
    if not dates:
        return "FALSE"
    return f"{expression} IN ({', '.join(date_literal(d) for d in sorted(dates))})"


def dated_rows(relation: str, column: str, first: date, last: date) -> str:
    """The rows of ``relation`` whose date ``column`` is from ``first`` to ``last``, as a subquery."""
    return (
        f"(SELECT * FROM {relation} WHERE {column} "
        f"BETWEEN {date_literal(first.isoformat())} AND {date_literal(last.isoformat())})"
    )


def date_literal(value: str) -> str:
    """An ISO date as a SQL date literal; anything else is refused rather than put in SQL."""
    return f"DATE '{date.fromisoformat(value).isoformat()}'"


_DAY_US, _MINUTE_US = 86_400_000_000, 60_000_000


def utc_date(instant: str) -> str:
    """SQL for the UTC date of the TIMESTAMPTZ ``instant``.

    Worked out from its microseconds since the epoch: casting a TIMESTAMPTZ goes through
    the time-zone calendar, several times slower on millions of rows.
    """
    return f"(DATE '1970-01-01' + CAST({_floor_div(f'epoch_us({instant})', _DAY_US)} AS INTEGER))"


def utc_minute_number(instant: str) -> str:
    """SQL for the minutes since the epoch of the TIMESTAMPTZ ``instant`` (group by this, then
    turn the minutes into a time with ``to_timestamp(minutes * 60)``: see ``utc_date``)."""
    return _floor_div(f"epoch_us({instant})", _MINUTE_US)


def _floor_div(value: str, divisor: int) -> str:
    """Integer division rounding down, for times before 1970 too (``//`` rounds toward zero)."""
    return f"(({value}) - ((({value}) % {divisor}) + {divisor}) % {divisor}) // {divisor}"


def revenue(event_type: str = "$revenue_type") -> str:
    """SQL for the sum of the prices of ``event_type`` events (a parameter, by default).

    Summed as decimals, then made a double: the total does not depend on the order rows are
    added in. Prices are below 10^12 (bronze refuses larger ones), so DECIMAL(18, 6) holds them.
    """
    return f"CAST({exact_revenue(event_type)} AS DOUBLE)"


def exact_revenue(event_type: str = "$revenue_type") -> str:
    """``revenue`` as the exact decimal sum: sums of it (of parts of the rows) are exact too."""
    return f"sum(CAST(price AS DECIMAL(18, 6))) FILTER (WHERE event_type = {event_type})"


def date_ranges(dates: list[date], rows: list[int], most: int) -> list[tuple[date, date]]:
    """Consecutive ``dates`` (in order, with their rows) as (first, last) ranges of up to
    ``most`` rows, or of one date: what one query reads when a table is read a range at a time."""
    ranges: list[tuple[date, date]] = []
    total = 0
    for day, count in zip(dates, rows, strict=True):
        if ranges and total + count <= most:
            ranges[-1] = (ranges[-1][0], day)
            total += count
        else:
            ranges.append((day, day))
            total = count
    return ranges
