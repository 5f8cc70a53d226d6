"""Helpers for benchmarks: run a command in a child process, report wall time and peak memory."""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_mib: float


def measure(command: list[str]) -> Measured:
    """Run ``command``; its wall time and the peak resident memory of the child process."""
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command)} failed:\n{process.stderr.read().decode()}")
    return Measured(seconds, usage.ru_maxrss / 1024)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def eventpipe(*args: str) -> list[str]:
    return [sys.executable, "-m", "eventpipe", *args]


def report(rows: list[tuple[str, int, Measured]]) -> None:
    print(f"{'what':<40} {'events':>12} {'seconds':>9} {'events/s':>12} {'peak MiB':>9}")
    for what, events, m in rows:
        print(f"{what:<40} {events:>12,} {m.seconds:>9.2f} {events / m.seconds:>12,.0f} {m.peak_mib:>9,.0f}")


def arguments(doc: str, **extra: dict) -> argparse.Namespace:
    """``--sizes`` and ``--workdir`` (made if missing; a temp dir by default), plus ``extra`` options."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--workdir", type=Path, default=None, help="where to put data (default: a temp dir)")
    for flag, options in extra.items():
        parser.add_argument(flag, **options)
    args = parser.parse_args()
    args.workdir = args.workdir or Path(tempfile.mkdtemp(prefix="eventpipe-bench-"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    return args


def month_of_events(workdir: Path, size: int) -> tuple[Path, Measured | None]:
    """One gzip CSV of ``size`` events over 30 days, generated unless already there."""
    source = workdir / f"events-{size}.csv.gz"
    if source.exists():
        return source, None
    return source, measure(eventpipe("generate", "--events", str(size), "--days", "30", "--out", str(source)))
