"""Bronze ingestion: raw files in, typed Delta rows (and a quarantine) out, each record exactly once."""

from eventpipe.ingest.bronze import FileResult, FileStatus, IngestResult, Progress, ingest

__all__ = ["FileResult", "FileStatus", "IngestResult", "Progress", "ingest"]
