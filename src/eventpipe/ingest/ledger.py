"""Which files bronze holds, committed atomically with the data itself.

Each file is committed twice, bronze first, then quarantine. Both commits carry
a Delta *app transaction* keyed by the file's content fingerprint, so a table
knows by itself whether it already holds a file's rows. The quarantine commit
comes last, always (even with no bad rows), and carries the file's record:
path, size, modification time, fingerprint and counts. A run killed between
the two commits leaves bronze done and quarantine not, and the next run
finishes only the quarantine.
"""

import json
from dataclasses import asdict, dataclass, field

from deltalake import CommitProperties, DeltaTable, Transaction

_RECORD_KEY = "eventpipe.source"


@dataclass(frozen=True)
class FileRecord:
    """What bronze remembers of an ingested file."""

    path: str
    size: int
    mtime_ns: int
    fingerprint: str
    records: int
    bronze_rows: int
    quarantined: int
    # absent from records written before they were kept
    ingested_at: str | None = None
    columns: list[str] = field(default_factory=list)


class Ledger:
    """The ingested files, read from the bronze and quarantine tables."""

    def __init__(self, bronze: DeltaTable, quarantine: DeltaTable, fingerprint: str) -> None:
        self._bronze, self._quarantine = bronze, quarantine
        self.fingerprint = fingerprint  # the hash of files' content (``Warehouse.fingerprint``)
        self.by_path = records_by_path(quarantine)

    def in_bronze(self, fingerprint: str) -> bool:
        return self._bronze.transaction_version(_app_id("bronze", fingerprint)) is not None

    def complete(self, fingerprint: str) -> bool:
        return self._quarantine.transaction_version(_app_id("quarantine", fingerprint)) is not None

    def path_of(self, fingerprint: str) -> str | None:
        return next((r.path for r in self.by_path.values() if r.fingerprint == fingerprint), None)


def records_by_path(quarantine: DeltaTable) -> dict[str, FileRecord]:
    """The record of each ingested file by its path (of two for one path, the later)."""
    return {record.path: record for record in file_records(quarantine)}  # oldest first


def file_records(quarantine: DeltaTable) -> list[FileRecord]:
    """The record of every ingested file, in the order the files were ingested."""
    return [
        FileRecord(**json.loads(commit[_RECORD_KEY]))
        for commit in reversed(quarantine.history())
        if _RECORD_KEY in commit
    ]


def bronze_commit(fingerprint: str, path: str) -> CommitProperties:
    return CommitProperties(
        custom_metadata={"eventpipe.file": path},
        app_transactions=[Transaction(_app_id("bronze", fingerprint), 1)],
    )


def quarantine_commit(record: FileRecord) -> CommitProperties:
    return CommitProperties(
        custom_metadata={_RECORD_KEY: json.dumps(asdict(record))},
        app_transactions=[Transaction(_app_id("quarantine", record.fingerprint), 1)],
    )


def _app_id(table: str, fingerprint: str) -> str:
    return f"eventpipe.ingest.{table}:{fingerprint}"
