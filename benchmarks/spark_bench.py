"""The Spark engine next to the DuckDB engine: the same run, the same input, one machine.

    python benchmarks/spark_bench.py [--sizes 10000000] [--master 'local[2]'] [--workdir DIR]

For each size, the events of ``compare_bench`` as 30 daily gzip files (Spark reads a
file per task, so daily files are its natural input), run through ``eventpipe run
--no-report`` on a new warehouse with ``--engine duckdb`` and with ``--engine spark``
on ``--master``. Printed per engine: wall time, events per second, the peak resident
memory of the driver (the eventpipe process) and of everything it started (Spark's
JVM and its Python workers), and the seconds per stage. The Spark figure is printed
only when its silver event and session counts equal DuckDB's. Spark is not expected
to win on one machine: this measures what its overhead costs.
"""

import json
import os
import shutil

from common import arguments, eventpipe, measure_tree
from compare_bench import inputs


def main() -> None:
    args = arguments(
        __doc__, **{"--master": {"default": "local[2]", "help": "the Spark master (default local[2])"}}
    )
    if args.sizes == [1_000_000, 10_000_000]:  # the common default: this one is about 10M
        args.sizes = [10_000_000]
    print(
        f"{'engine':<8} {'events':>11} {'seconds':>8} {'events/s':>10} {'driver MiB':>11} "
        f"{'JVM+workers MiB':>16}  stages (s)"
    )
    for size in args.sizes:
        files = inputs(args.workdir, size)["daily gzip files"]
        counts = {}
        for engine in ("duckdb", "spark"):
            warehouse = args.workdir / f"warehouse-{engine}"
            shutil.rmtree(warehouse, ignore_errors=True)
            command = eventpipe(
                "run", "-q", "--no-report", "--json", "--engine", engine, "-w", str(warehouse),
                "-s", str(files[0].rsplit("/", 1)[0]),
            )  # fmt: skip
            measured = measure_tree(command) if engine == "duckdb" else _on_spark(command, args.master)
            summary = json.loads(measured.stdout)
            counts[engine] = (summary["rows"]["silver_events"], summary["rows"]["sessions"])
            shutil.rmtree(warehouse, ignore_errors=True)
            stages = ", ".join(f"{name} {seconds:.1f}" for name, seconds in summary["stage_seconds"].items())
            if counts[engine] != counts["duckdb"]:
                print(f"{engine:<8} {size:>11,}  counts {counts[engine]} differ from DuckDB's: withheld")
                continue
            print(
                f"{engine:<8} {size:>11,} {measured.seconds:>8.1f} {size / measured.seconds:>10,.0f} "
                f"{measured.own_peak_mib:>11,.0f} {measured.children_peak_mib:>16,.0f}  {stages}",
                flush=True,
            )


def _on_spark(command: list[str], master: str):
    os.environ["EVENTPIPE_SPARK_MASTER"] = master
    try:
        return measure_tree(command)
    finally:
        del os.environ["EVENTPIPE_SPARK_MASTER"]


if __name__ == "__main__":
    main()
