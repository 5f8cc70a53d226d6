"""SIGKILL soak: runs killed at random moments, then run again, give the tables of a clean run.

    python benchmarks/kill_soak.py [--trials 200] [--events 50000] [--workdir DIR] [--seed 7]

Half the trials kill a full run (a new warehouse, a few days of dirty events in
daily files), half an incremental one (a warehouse holding the first days, the
run adding the last). Each trial starts ``eventpipe run``, kills it with
SIGKILL after a random time within an undisturbed run's duration, notes where
the kill landed (which step had committed last, from the tables' versions),
runs again, and compares every data table with a clean run's: its rows as a
multiset and a content hash. Prints the trials, where the kills landed, and
the mismatches (which must be 0).
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from deltalake import DeltaTable

from eventpipe.generate import generate_files
from eventpipe.warehouse import LOGS, TABLES

# The order in which a run commits, by the tables each step writes.
STEPS = (
    ("ingest", {"bronze/events", "quarantine/events"}),
    ("silver", {"silver/events", "silver/sessions"}),
    ("checks after silver", {"quality/results"}),
    ("gold", {t.path for t in TABLES if t.layer == "gold"}),
    ("checks after gold", {"quality/results"}),
    ("the run's record", {"meta/runs"}),
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="eventpipe-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    landing = work / "landing"
    if not landing.exists():
        generate_files(landing, args.events, seed=args.seed, days=4, dirty=True, per_day=True, compress=True)
    days = sorted(landing.iterdir())
    first_days = work / "first-days"
    first_days.mkdir(exist_ok=True)
    for day in days[:-1]:
        shutil.copy2(day, first_days / day.name)

    empty, base = work / "empty", work / "base"
    for folder in (empty, base):
        shutil.rmtree(folder, ignore_errors=True)
    _run(["-s", str(first_days)], base)
    kinds = {}
    for kind, start in (("full", None), ("incremental", base)):
        clean = work / f"clean-{kind}"
        shutil.rmtree(clean, ignore_errors=True)
        if start is not None:
            shutil.copytree(start, clean)
        began = time.perf_counter()
        # the last day is new to the incremental run; the full run sees all days at once
        _run(["-s", str(landing)], clean)
        kinds[kind] = (start, time.perf_counter() - began, _contents(clean))

    chance = random.Random(args.seed)
    landed: Counter = Counter()
    mismatches = []
    for trial in range(args.trials):
        kind = "full" if trial % 2 == 0 else "incremental"
        start, took, expected = kinds[kind]
        warehouse = work / "trial"
        shutil.rmtree(warehouse, ignore_errors=True)
        if start is not None:
            shutil.copytree(start, warehouse)
        before = _versions(warehouse)
        process = subprocess.Popen(_command(["-s", str(landing)], warehouse), stderr=subprocess.DEVNULL)
        time.sleep(chance.uniform(0.05, took))
        if process.poll() is not None:
            landed[(kind, "after the run ended")] += 1
        else:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            landed[(kind, _where(before, _versions(warehouse)))] += 1
        _run(["-s", str(landing)], warehouse)
        found = _contents(warehouse)
        if found != expected:
            mismatches.append((trial, kind, [t for t in expected if found.get(t) != expected[t]]))
        print(
            f"trial {trial + 1}/{args.trials} ({kind}): {'ok' if found == expected else 'MISMATCH'}",
            flush=True,
        )

    print(f"\n{args.trials} trials, {args.events:,} events over {len(days)} daily files ({work})")
    for (kind, where), count in sorted(landed.items()):
        print(f"  {kind:<12} killed {where:<40} {count:>4}")
    print(f"mismatches: {len(mismatches)}")
    for trial, kind, tables in mismatches:
        print(f"  trial {trial} ({kind}): {', '.join(tables)}")
    sys.exit(1 if mismatches else 0)


def _command(args: list[str], warehouse: Path) -> list[str]:
    return [sys.executable, "-m", "eventpipe", "run", "-q", "--no-report", *args, "-w", str(warehouse)]


def _run(args: list[str], warehouse: Path) -> None:
    subprocess.run(_command(args, warehouse), check=True, capture_output=True)


def _versions(warehouse: Path) -> dict[str, int]:
    found = {}
    for table in TABLES:
        path = warehouse / table.path
        if DeltaTable.is_deltatable(str(path)):
            found[table.path] = DeltaTable(str(path)).version()
    return found


def _where(before: dict[str, int], after: dict[str, int]) -> str:
    """The last step of the run whose tables the kill found changed."""
    changed = {t for t, v in after.items() if before.get(t) != v}
    if not changed:
        return "before the first commit"
    last = "ingest"
    checks_seen = 0
    for step, tables in STEPS:
        if step.startswith("checks"):
            grew = after.get("quality/results", -1) - before.get("quality/results", -1)
            checks_seen += 1
            if grew >= checks_seen:
                last = step
        elif changed & tables:
            last = step
    return f"during or after {last}"


def _contents(warehouse: Path) -> dict[str, tuple[Counter, str]]:
    """Every data table's rows (without ingestion times) as a multiset, and a hash of them."""
    found = {}
    for table in TABLES:
        path = warehouse / table.path
        if table in LOGS or not DeltaTable.is_deltatable(str(path)):
            continue
        rows = DeltaTable(str(path)).to_pyarrow_table()
        if "_ingested_at" in rows.column_names:
            rows = rows.drop_columns(["_ingested_at"])
        lines = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows.to_pylist())
        found[table.path] = (Counter(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest())
    return found


if __name__ == "__main__":
    main()
