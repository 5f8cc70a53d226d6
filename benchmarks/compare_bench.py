"""Raw events to gold: eventpipe next to the scripts a data engineer would otherwise write.

    python benchmarks/compare_bench.py [--sizes 1000000 10000000] [--large] [--pairs N] [--workdir DIR]

For each size, the same generated REES46-shaped events as one plain CSV and as
daily gzip files, run through: the old pandas scripts (up to 10M events), a
DuckDB script, the same script with memory_limit='2GB', a Polars script
(``benchmarks/peers/``) and ``eventpipe run --no-report`` on a new warehouse.
Each figure is the wall time, the CPU seconds (user and system, every thread),
events per second and the peak resident memory of the command's whole process
tree, measured in this run; eventpipe's line adds its seconds per stage. A
peer's figure is printed only when its silver event and session counts equal
eventpipe's on the same input. ``--large`` adds 40M events. Every library is
imported once before the first measurement, so that no command pays for
reading them from disk.

The machine's speed may drift by a fifth within an hour, more than the
difference between eventpipe and the DuckDB script. With ``--pairs N`` the two
are timed N times per input, each pair one right after the other in
alternating order (the table's own run counts as the first pair), and the
ratio printed is the median of the pairs' ratios.
"""

import json
import re
import shutil
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from common import Measured, arguments, eventpipe, measure_tree, python

PEERS = Path(__file__).with_name("peers")
LARGE = 40_000_000
PANDAS_UP_TO = 10_000_000


@dataclass(frozen=True)
class Line:
    what: str
    events: int
    measured: Measured
    counts: tuple[int, int] | None
    note: str = ""


def inputs(workdir: Path, size: int) -> dict[str, list[str]]:
    """The size's events as one plain CSV and as daily gzip files (generated once, kept)."""
    plain, daily = workdir / f"events-{size}.csv", workdir / f"daily-{size}"
    for out, per_day in ((plain, False), (daily, True)):
        if not out.exists():
            # in a child process, so that the generator's memory counts in no measured peak
            measure_tree(
                python(
                    "from pathlib import Path; from eventpipe.generate import generate_files; "
                    f"generate_files(Path({str(out)!r}), {size}, seed=11, days=30, per_day={per_day}, "
                    f"compress={per_day})"
                )
            )
    return {"one plain CSV": [str(plain)], "daily gzip files": sorted(str(p) for p in daily.iterdir())}


DUCKDB_SCRIPT = "DuckDB script"  # the peer the targets are ratios to
PANDAS_SCRIPTS = "pandas (the old scripts)"  # the 1M target's baseline, run up to PANDAS_UP_TO events
# each peer: its script in peers/ and the options after its input and output; the DuckDB
# script first, right after eventpipe, so that the two are timed in the same minute
PEER_SCRIPTS = {
    DUCKDB_SCRIPT: ("duckdb_script.py", []),
    PANDAS_SCRIPTS: ("pandas_script.py", []),
    "DuckDB script, memory_limit 2GB": ("duckdb_script.py", ["--memory-limit", "2GB"]),
    "Polars script": ("polars_script.py", []),
}


def run_peers(size: int, files: list[str], scratch: Path) -> list[Line]:
    peers = [p for p in PEER_SCRIPTS if size <= PANDAS_UP_TO or p != PANDAS_SCRIPTS]
    return [run_peer(what, size, files, scratch) for what in peers]


def run_peer(what: str, size: int, files: list[str], scratch: Path) -> Line:
    script, options = PEER_SCRIPTS[what]
    out = scratch / "peer"
    shutil.rmtree(out, ignore_errors=True)
    measured = measure_tree([sys.executable, str(PEERS / script), *files, str(out), *options])
    shutil.rmtree(out, ignore_errors=True)
    return Line(what, size, measured, _counts(measured.stdout))


def run_eventpipe(size: int, files: list[str], scratch: Path) -> Line:
    warehouse = scratch / "warehouse"
    shutil.rmtree(warehouse, ignore_errors=True)
    sources = (
        [arg for f in files for arg in ("-s", f)] if len(files) == 1 else ["-s", str(Path(files[0]).parent)]
    )
    measured = measure_tree(eventpipe("run", "-q", "--no-report", "--json", *sources, "-w", str(warehouse)))
    summary = json.loads(measured.stdout)
    stages = ", ".join(f"{name} {seconds:.1f}" for name, seconds in summary["stage_seconds"].items())
    counts = (summary["rows"]["silver_events"], summary["rows"]["sessions"])
    shutil.rmtree(warehouse, ignore_errors=True)
    return Line("eventpipe run", size, measured, counts, note=f"stages (s): {stages}")


def _counts(stdout: str) -> tuple[int, int] | None:
    found = re.search(r"events=(\d+) sessions=(\d+)", stdout)
    return (int(found[1]), int(found[2])) if found else None


def main() -> None:
    args = arguments(
        __doc__,
        **{
            "--large": {"action": "store_true", "help": f"add {LARGE:,} events"},
            "--pairs": {"type": int, "default": 1, "help": "eventpipe and the DuckDB script timed N times"},
        },
    )
    sizes = [*args.sizes, LARGE] if args.large else args.sizes
    # the first command measured would otherwise be the one that reads the libraries from disk
    measure_tree(python("import deltalake, duckdb, pandas, polars, pyarrow, eventpipe.cli.main"))
    print(_row("input", "what", "events", ("seconds", "CPU s", "events/s", "peak MiB"), "note"))
    for size in sizes:
        for shape, files in inputs(args.workdir, size).items():
            ours = run_eventpipe(size, files, args.workdir)
            peers = run_peers(size, files, args.workdir)
            for line in [ours, *peers]:
                m = line.measured
                figures = (f"{m.seconds:.1f}", f"{m.cpu_seconds:.1f}", f"{size / m.seconds:,.0f}")
                figures += (f"{m.peak_mib:,.0f}",)
                note = line.note
                if line is not ours and line.counts != ours.counts:
                    note = f"counts {line.counts} differ from eventpipe's {ours.counts}: figure withheld"
                    figures = ("-",) * len(figures)
                print(_row(shape, line.what, f"{size:,}", figures, note), flush=True)
            _ratios(shape, size, ours, peers)
            if args.pairs > 1:
                _paired_ratios(shape, size, files, args.workdir, args.pairs, ours, peers)


def _row(shape: str, what: str, events: str, figures: tuple[str, ...], note: str) -> str:
    """One line of the table: seconds, CPU seconds, events/s and peak MiB, then the note."""
    cells = " ".join(f"{f:>{w}}" for f, w in zip(figures, (8, 7, 11, 9), strict=True))
    return f"{shape:<18} {what:<34} {events:>11} {cells}  {note}"


def _ratios(shape: str, size: int, ours: Line, peers: list[Line]) -> None:
    by_name = {p.what: p for p in peers}
    duckdb, pandas = by_name[DUCKDB_SCRIPT], by_name.get(PANDAS_SCRIPTS)
    parts = [
        f"eventpipe / DuckDB script = {ours.measured.seconds / duckdb.measured.seconds:.2f}",
        f"in CPU seconds {ours.measured.cpu_seconds / duckdb.measured.cpu_seconds:.2f}",
    ]
    if pandas is not None:
        parts.append(f"pandas / eventpipe = {pandas.measured.seconds / ours.measured.seconds:.1f}x")
    parts.append(f"eventpipe peak {ours.measured.peak_mib / 1024:.2f} GiB")
    print(f"{shape:<18} {'ratios':<34} {size:>11,}  " + "; ".join(parts), flush=True)


def _paired_ratios(
    shape: str, size: int, files: list[str], scratch: Path, pairs: int, ours: Line, peers: list[Line]
) -> None:
    """eventpipe's time over the DuckDB script's, per pair and their median: the table's own
    pair (eventpipe first), then ``pairs - 1`` more, the script first in every other one."""
    script = next(p for p in peers if p.what == DUCKDB_SCRIPT)
    timed = [(ours.measured.seconds, script.measured.seconds)]
    for pair in range(1, pairs):
        if pair % 2:
            script = run_peer(DUCKDB_SCRIPT, size, files, scratch)
            again = run_eventpipe(size, files, scratch)
        else:
            again = run_eventpipe(size, files, scratch)
            script = run_peer(DUCKDB_SCRIPT, size, files, scratch)
        if script.counts != again.counts:
            sys.exit(f"counts of the DuckDB script {script.counts} differ from eventpipe's {again.counts}")
        timed.append((again.measured.seconds, script.measured.seconds))
    ratios = sorted(mine / theirs for mine, theirs in timed)
    each = ", ".join(f"{mine:.1f}/{theirs:.1f}" for mine, theirs in timed)
    print(
        f"{shape:<18} {'paired ratios':<34} {size:>11,}  eventpipe / DuckDB script over {pairs} pairs "
        f"(seconds: {each}): median {statistics.median(ratios):.2f}, range {ratios[0]:.2f}-{ratios[-1]:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
