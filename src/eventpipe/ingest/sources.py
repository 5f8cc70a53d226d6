"""Find the files a ``--source`` names and fingerprint their content."""

import glob
import hashlib
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from eventpipe.errors import SourceError
from eventpipe.warehouse import LEGACY_FINGERPRINT, MARKER


class SourceFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"
    parquet = "parquet"


_SUFFIXES: dict[str, tuple[SourceFormat, bool]] = {
    ".csv": (SourceFormat.csv, False),
    ".csv.gz": (SourceFormat.csv, True),
    ".jsonl": (SourceFormat.jsonl, False),
    ".jsonl.gz": (SourceFormat.jsonl, True),
    ".ndjson": (SourceFormat.jsonl, False),
    ".ndjson.gz": (SourceFormat.jsonl, True),
    ".json": (SourceFormat.jsonl, False),
    ".json.gz": (SourceFormat.jsonl, True),
    ".parquet": (SourceFormat.parquet, False),
}


@dataclass(frozen=True)
class SourceFile:
    """One input file, as found on disk now."""

    path: Path
    format: SourceFormat
    compressed: bool
    size: int
    mtime_ns: int

    @property
    def name(self) -> str:
        """The path recorded in ``_source_file``: absolute, so it is unambiguous."""
        return str(self.path)

    def fingerprint(self, algorithm: str) -> str:
        """A hash of the file's bytes; equal content gives an equal fingerprint."""
        digest = new_fingerprint(algorithm)
        with open(self.path, "rb") as handle:
            while chunk := handle.read(8 * 1024 * 1024):
                digest.update(chunk)
        return digest.hexdigest()


def new_fingerprint(algorithm: str) -> "hashlib._Hash":
    """An empty fingerprint, to be fed a file's bytes in order (``hexdigest`` gives the result).

    ``algorithm``: the warehouse's (``Warehouse.fingerprint``)."""
    if algorithm == LEGACY_FINGERPRINT:
        return hashlib.blake2b(digest_size=20)
    return hashlib.new(algorithm)


def format_of(path: Path) -> tuple[SourceFormat, bool] | None:
    """The format and compression a file name says, or None for files we do not read."""
    name = path.name.lower()
    for suffix, kind in sorted(_SUFFIXES.items(), key=lambda item: -len(item[0])):
        if name.endswith(suffix):
            return kind
    return None


def discover(
    sources: list[str], allow_empty: bool = False, warehouse: Path | None = None
) -> list[SourceFile]:
    """Every readable event file that ``sources`` (files, folders, globs) names, sorted by path.

    A folder contributes its supported files, recursively, skipping hidden ones
    and warehouses (folders with a warehouse marker): a warehouse inside the
    landing folder would otherwise ingest its own files. A source inside
    ``warehouse`` is refused. With ``allow_empty``, a folder or pattern with no
    event files yet is not an error.
    """
    if not sources:
        raise SourceError("no source given; pass --source PATH (a file, folder or glob)")
    found: dict[Path, SourceFile] = {}
    for source in sources:
        if warehouse is not None and _inside(Path(source), warehouse):
            raise SourceError(
                f"source {source} is inside the warehouse {warehouse}; point --source at the landing folder"
            )
        for path in _expand(source, allow_empty):
            kind = format_of(path)
            if kind is None:
                raise SourceError(
                    f"{path}: unsupported file type; use .csv, .csv.gz, .jsonl(.gz), .json(.gz) or .parquet"
                )
            found[path] = _describe(path, *kind)
    return [found[p] for p in sorted(found)]


def _expand(source: str, allow_empty: bool) -> list[Path]:
    path = Path(source)
    if glob.has_magic(source) and not path.exists():  # a file named 'brack[1].csv' is that file
        matches = [Path(p).resolve() for p in glob.glob(source, recursive=True)]
        files = [p for p in matches if p.is_file() and format_of(p)]
        if not files and not allow_empty:
            raise SourceError(f"source {source}: the pattern matches no event files")
        return files
    if not path.exists():
        raise SourceError(f"source {source} does not exist; check the path")
    if path.is_dir():
        files = [p.resolve() for p in _walk(path) if format_of(p)]
        if not files and not allow_empty:
            raise SourceError(
                f"source folder {source} holds no event files (.csv, .csv.gz, .jsonl, .parquet)"
            )
        return files
    return [path.resolve()]


def _walk(folder: Path) -> list[Path]:
    """The files under ``folder``, skipping names starting with '.' or '_', and warehouses."""
    found = []
    for root, folders, files in os.walk(folder):
        if MARKER in files:  # a warehouse: its files are its own
            folders.clear()
            continue
        folders[:] = [f for f in folders if not f.startswith((".", "_"))]
        found.extend(Path(root) / f for f in files if not f.startswith((".", "_")))
    return found


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def _describe(path: Path, fmt: SourceFormat, compressed: bool) -> SourceFile:
    try:
        stat = path.stat()
        with open(path, "rb"):
            pass
    except OSError as error:
        raise SourceError(f"source {path} cannot be read: {error.strerror}") from None
    return SourceFile(path, fmt, compressed, stat.st_size, stat.st_mtime_ns)
