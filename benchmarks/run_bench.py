"""``eventpipe run`` (raw to gold) at several sizes, next to the old pandas scripts' logic.

    python benchmarks/run_bench.py [--sizes 1000000 10000000] [--workdir DIR] [--skip-pandas-above N]

For each size: generate one gzip CSV of a month of events, run the whole
pipeline on it in a child process, then the pandas baseline on the same
file, and report events/second, peak memory and the speed-up.
"""

import shutil
import sys
from pathlib import Path

from common import arguments, eventpipe, measure, month_of_events, report

BASELINE = str(Path(__file__).with_name("pandas_baseline.py"))


def main() -> None:
    args = arguments(
        __doc__,
        **{"--skip-pandas-above": {"type": int, "default": 10_000_000, "help": "pandas needs ~50x RAM"}},
    )
    workdir = args.workdir
    rows = []
    speedups = []
    for size in args.sizes:
        source, _ = month_of_events(workdir, size)
        warehouse = workdir / f"warehouse-{size}"
        shutil.rmtree(warehouse, ignore_errors=True)
        ours = measure(eventpipe("run", "-q", "-s", str(source), "-w", str(warehouse)))
        rows.append(("eventpipe run (raw to gold)", size, ours))
        if size <= args.skip_pandas_above:
            baseline = measure([sys.executable, BASELINE, str(source), str(workdir / f"pandas-{size}")])
            rows.append(("baseline: pandas scripts", size, baseline))
            speedups.append((size, baseline.seconds / ours.seconds))
        shutil.rmtree(warehouse, ignore_errors=True)
        shutil.rmtree(workdir / f"pandas-{size}", ignore_errors=True)
    report(rows)
    for size, speedup in speedups:
        print(f"speed-up over pandas at {size:,} events: {speedup:.1f}x")


if __name__ == "__main__":
    main()
