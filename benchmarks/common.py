"""Helpers for benchmarks: run a command in a child process, report wall time, CPU time and peak memory."""

import argparse
import os
import re
import resource
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
    stdout: str = ""
    # with measure_tree: the peaks of the command's own process and of the processes it started
    own_peak_mib: float = 0.0
    children_peak_mib: float = 0.0
    # user + system seconds of every thread of the command (and of the processes it waited for):
    # on two cores, a run whose CPU seconds are twice its wall seconds can only get faster by doing less
    cpu_seconds: float = 0.0


def measure(command: list[str]) -> Measured:
    """Run ``command``; its wall time, CPU time and the peak resident memory of the child process."""
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command)} failed:\n{process.stderr.read().decode()}")
    return Measured(seconds, usage.ru_maxrss / 1024, cpu_seconds=_cpu_seconds(usage))


def measure_tree(command: list[str]) -> Measured:
    """Run ``command``; its wall time, CPU time, standard output and the peak resident memory of its
    whole process tree (sampled every 20 ms, and never below the main process's own peak)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err)
        peak = own_peak = children_peak = 0
        while True:
            done, status, usage = os.wait4(process.pid, os.WNOHANG)
            if done == process.pid:
                break
            own, tree = _rss(process.pid), _tree_rss(process.pid)
            peak, own_peak = max(peak, tree), max(own_peak, own)
            children_peak = max(children_peak, tree - own)
            time.sleep(0.02)
        seconds = time.perf_counter() - began
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            sys.exit(f"{' '.join(command)} failed:\n{err.read().decode()}")
        return Measured(
            seconds,
            max(peak, usage.ru_maxrss) / 1024,
            out.read().decode(),
            max(own_peak, usage.ru_maxrss) / 1024,
            children_peak / 1024,
            _cpu_seconds(usage),
        )


def _cpu_seconds(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def _tree_rss(root: int) -> int:
    """Resident KiB of ``root`` and its descendants, from /proc (0 where it cannot be read)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        total += _rss(pid)
    return total


def _rss(pid: int) -> int:
    """Resident KiB of process ``pid`` (0 where it cannot be read)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found[1]) if found else 0


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
