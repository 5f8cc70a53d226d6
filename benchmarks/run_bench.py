"""``eventpipe run`` (raw to gold) at several sizes, next to the old pandas scripts' logic.

    python benchmarks/run_bench.py [--sizes 1000000 10000000] [--workdir DIR] [--skip-pandas-above N]

For each size: generate one gzip CSV of a month of events, run the whole
pipeline on it in a child process, then the pandas baseline on the same
file, and report events/second, peak memory and the speed-up.
"""

import argparse
import shutil
import tempfile
from pathlib import Path

from common import eventpipe, measure, report

BASELINE = str(Path(__file__).with_name("pandas_baseline.py"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--workdir", type=Path, default=None, help="where to put data (default: a temp dir)")
    parser.add_argument("--skip-pandas-above", type=int, default=10_000_000, help="pandas needs ~50x RAM")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="eventpipe-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    speedups = []
    for size in args.sizes:
        source = workdir / f"events-{size}.csv.gz"
        if not source.exists():
            measure(eventpipe("generate", "--events", str(size), "--days", "30", "--out", str(source)))
        warehouse = workdir / f"warehouse-{size}"
        shutil.rmtree(warehouse, ignore_errors=True)
        ours = measure(eventpipe("run", "-q", "-s", str(source), "-w", str(warehouse)))
        rows.append(("eventpipe run (raw to gold)", size, ours))
        if size <= args.skip_pandas_above:
            import sys

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
