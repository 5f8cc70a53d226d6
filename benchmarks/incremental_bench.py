"""An incremental run against a full rebuild of the same events, and watch mode's latency.

    python benchmarks/incremental_bench.py [--sizes 1000000 10000000] [--workdir DIR]

For each size: a warehouse built from a month of events (daily gzip files),
then one new file of 1% more events, 5% of them late (from the month's last
day). Times ``eventpipe run`` on the new file (``--repeat`` times, each on a
fresh copy of the warehouse; the median counts), and, as the baseline in the
same run, ``eventpipe rebuild`` of a copy holding the same bronze rows.

Then ``eventpipe run --watch`` on a copy of the warehouse, with ``--landings``
files of 10,000 events landed one by one (written hidden, then renamed, each
0-2 s after the last one showed in gold): the seconds from each rename until
gold's ``events_by_type`` counts its events, as p50, p95 and max.
"""

import gzip
import random
import shutil
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

from common import arguments, eventpipe, measure, python, report
from deltalake import DeltaTable

from eventpipe.generate import generate_files
from eventpipe.generate.output import START


def new_file(workdir: Path, events: int) -> Path:
    """``events`` events after the month, 5% of them from its last day instead."""
    late = max(1, events // 20)
    # the month's sessions run into day 31: start after them, so only the 5% are late
    on_time = generate_files(workdir / "on-time", events - late, seed=2, start=START + timedelta(days=31))
    late_ones = generate_files(workdir / "late", late, seed=3, start=START + timedelta(days=29))
    path = workdir / "new" / "next-day.csv.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as out:
        for i, part in enumerate([*on_time.files, *late_ones.files]):
            lines = Path(part).read_text().splitlines(keepends=True)
            out.writelines(lines if i == 0 else lines[1:])  # one header
    return path


def watch_latencies(built: Path, workdir: Path, landings: int, events: int = 10_000) -> list[float]:
    """Seconds from each landed file's rename until gold counts its events, under ``run --watch``."""
    warehouse, landing, staged = workdir / "watched", workdir / "landing", workdir / "staged"
    shutil.copytree(built, warehouse)
    landing.mkdir()
    # a day of events per file, each starting an hour after the last: the stream after the month
    starts = [START + timedelta(days=31, hours=i) for i in range(landings)]
    files = [
        generate_files(staged / f"batch-{i:02}.csv", events, seed=100 + i, start=start).files[0]
        for i, start in enumerate(starts)
    ]
    counted = _gold_events(warehouse)
    log = workdir / "watch.log"  # a file, not a pipe: a pipe nobody reads fills and stalls the watcher
    with log.open("wb") as out:
        watcher = subprocess.Popen(
            eventpipe("run", "--watch", "-q", "-s", str(landing), "-w", str(warehouse)),
            stdout=out,
            stderr=out,
        )
    latencies = []
    try:
        for path in files:
            time.sleep(random.uniform(0, 2))  # land at any moment of the poll interval
            hidden = landing / f".{Path(path).name}"
            shutil.copy(path, hidden)
            landed = time.perf_counter()
            hidden.rename(landing / Path(path).name)
            counted += events
            while _gold_events(warehouse) < counted:
                if watcher.poll() is not None or time.perf_counter() - landed > 120:
                    raise SystemExit(f"the watcher did not bring {path} to gold; see {log}")
                time.sleep(0.05)
            latencies.append(time.perf_counter() - landed)
    finally:
        watcher.send_signal(signal.SIGTERM)
        watcher.wait(timeout=300)
    return latencies


def _gold_events(warehouse: Path) -> int:
    table = DeltaTable(str(warehouse / "gold" / "events_by_type")).to_pyarrow_table(columns=["events_count"])
    return sum(table.column(0).to_pylist())


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    args = arguments(
        __doc__,
        **{
            "--repeat": {"type": int, "default": 3, "help": "incremental runs timed"},
            "--landings": {"type": int, "default": 20, "help": "files landed under --watch"},
        },
    )
    rows = []
    for size in args.sizes:
        workdir = args.workdir / f"incremental-{size}"
        shutil.rmtree(workdir, ignore_errors=True)
        history = workdir / "history"
        # in a child process: the generator's memory would otherwise count in every measured child's
        # peak (a forked child starts with its parent's resident size)
        measure(
            python(
                "from pathlib import Path; from eventpipe.generate import generate_files; "
                f"generate_files(Path({str(history)!r}), {size}, seed=1, days=30, per_day=True, "
                "compress=True)"
            )
        )
        latest = new_file(workdir, size // 100)
        built, incremental, full = workdir / "built", workdir / "incremental", workdir / "full"
        measure(eventpipe("run", "-q", "--no-report", "-s", str(history), "-w", str(built)))
        shutil.copytree(built, full)
        measure(eventpipe("ingest", "-q", "-s", str(latest), "-w", str(full)))
        runs = []
        for _ in range(args.repeat):
            shutil.rmtree(incremental, ignore_errors=True)
            shutil.copytree(built, incremental)
            runs.append(
                measure(eventpipe("run", "-q", "--no-report", "-s", str(latest), "-w", str(incremental)))
            )
        took = sorted(runs, key=lambda m: m.seconds)[len(runs) // 2]
        rebuilt = measure(eventpipe("rebuild", "--no-report", "-w", str(full)))
        rows.append((f"incremental run (+{size // 100:,} new events), median", size + size // 100, took))
        rows.append(("baseline: full rebuild", size + size // 100, rebuilt))
        each = ", ".join(f"{m.seconds:.2f}" for m in runs)
        print(
            f"{size:,} + {size // 100:,}: incremental runs {each} s (median {took.seconds:.2f}); "
            f"full rebuild {rebuilt.seconds:.2f} s; incremental / full = {took.seconds / rebuilt.seconds:.1%}"
        )
        if args.landings:
            waited = watch_latencies(built, workdir, args.landings)
            print(
                f"{size:,}: run --watch, {len(waited)} files of 10,000 events landed one by one, seconds "
                f"until gold counts them: p50 {_percentile(waited, 0.5):.2f}, "
                f"p95 {_percentile(waited, 0.95):.2f}, max {max(waited):.2f}"
            )
        shutil.rmtree(workdir, ignore_errors=True)
    report(rows)


if __name__ == "__main__":
    main()
