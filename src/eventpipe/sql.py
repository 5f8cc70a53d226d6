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


def date_literal(value: str) -> str:
    """An ISO date as a SQL date literal; anything else is refused rather than put in SQL."""
    return f"DATE '{date.fromisoformat(value).isoformat()}'"
