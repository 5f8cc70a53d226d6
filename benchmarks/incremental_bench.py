"""An incremental run against a full rebuild of the same events.

    python benchmarks/incremental_bench.py [--sizes 1000000 10000000] [--workdir DIR]

For each size: a warehouse built from a month of events (daily gzip files),
then one new file of 1% more events, 5% of them late (from the month's last
day). Times ``eventpipe run`` on the new file, and, as the baseline in the same
run, ``eventpipe rebuild`` of a copy holding the same bronze rows.
"""

import gzip
import shutil
from datetime import timedelta
from pathlib import Path

from common import arguments, eventpipe, measure, report

from eventpipe.generate import generate_files
from eventpipe.generate.output import START


def new_file(workdir: Path, events: int) -> Path:
    """``events`` events of the day after the month, 5% of them from its last day instead."""
    late = max(1, events // 20)
    on_time = generate_files(workdir / "on-time", events - late, seed=2, start=START + timedelta(days=30))
    late_ones = generate_files(workdir / "late", late, seed=3, start=START + timedelta(days=29))
    path = workdir / "new" / "next-day.csv.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as out:
        for i, part in enumerate([*on_time.files, *late_ones.files]):
            lines = Path(part).read_text().splitlines(keepends=True)
            out.writelines(lines if i == 0 else lines[1:])  # one header
    return path


def main() -> None:
    args = arguments(__doc__)
    rows = []
    for size in args.sizes:
        workdir = args.workdir / f"incremental-{size}"
        shutil.rmtree(workdir, ignore_errors=True)
        history = workdir / "history"
        generate_files(history, size, seed=1, days=30, per_day=True, compress=True)
        latest = new_file(workdir, size // 100)
        incremental, full = workdir / "incremental", workdir / "full"
        measure(eventpipe("run", "-q", "--no-report", "-s", str(history), "-w", str(incremental)))
        shutil.copytree(incremental, full)
        measure(eventpipe("ingest", "-q", "-s", str(latest), "-w", str(full)))
        took = measure(eventpipe("run", "-q", "--no-report", "-s", str(latest), "-w", str(incremental)))
        rebuilt = measure(eventpipe("rebuild", "--no-report", "-w", str(full)))
        rows.append((f"incremental run (+{size // 100:,} new events)", size + size // 100, took))
        rows.append(("baseline: full rebuild", size + size // 100, rebuilt))
        print(f"{size:,} + {size // 100:,}: incremental / full = {took.seconds / rebuilt.seconds:.0%}")
        shutil.rmtree(workdir, ignore_errors=True)
    report(rows)


if __name__ == "__main__":
    main()
