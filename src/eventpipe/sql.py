"""Small helpers for writing SQL that reads well: identifiers go through one quoting helper."""


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
