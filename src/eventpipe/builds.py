"""What a derived table was built from, kept in its last commit.

Silver and gold record their inputs (table versions, the settings their SQL
depends on) in the commit that completes them; a later build with the same
inputs has nothing to do and commits nothing, so a rerun changes no table.
"""

import json

from deltalake import CommitProperties, DeltaTable, Transaction

_KEY = "eventpipe.built_from"
#: In a silver record: the dates a range rebuild recomputed (gold then recomputes their users).
REBUILT = "rebuilt"


def built_from(table: DeltaTable) -> dict | None:
    """The record committed with the table's latest version, if that version has one."""
    latest = table.history(1)
    if latest and _KEY in latest[0]:
        return json.loads(latest[0][_KEY])
    return None


def records_since(table: DeltaTable, version: int) -> list[dict]:
    """The records committed with the versions after ``version``, newest first."""
    commits = table.history(table.version() - version) if table.version() > version else []
    return [json.loads(c[_KEY]) for c in commits if _KEY in c]


def marked(record: dict) -> CommitProperties:
    """Commit properties that record ``record`` with the commit."""
    return CommitProperties(custom_metadata={_KEY: json.dumps(record, sort_keys=True, default=str)})


def applying(app_id: str, version: int) -> CommitProperties:
    """Commit properties recording the app transaction ``app_id`` at ``version``."""
    return CommitProperties(app_transactions=[Transaction(app_id, version)])
