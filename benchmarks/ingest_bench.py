"""Bronze ingestion throughput and peak memory at several sizes, next to DuckDB's own CSV loader.

    python benchmarks/ingest_bench.py [--sizes 1000000 10000000] [--workdir DIR]

For each size: generate one gzip CSV of a month of events, ingest it with
``eventpipe ingest`` in a child process, and, as the baseline measured in the
same run, load the same file with DuckDB's native CSV reader into date-
partitioned Parquet (no line numbers, no quarantine, no exactly-once ledger).
"""

import shutil

from common import arguments, eventpipe, measure, month_of_events, python, report

BASELINE = """
import duckdb, sys
duckdb.sql(f'''
    COPY (
        SELECT *, CAST(event_time AS DATE) AS event_date
        FROM read_csv('{sys.argv[1]}', timestampformat = '%Y-%m-%d %H:%M:%S UTC')
    ) TO '{sys.argv[2]}' (FORMAT parquet, PARTITION_BY (event_date))
''')
"""


def main() -> None:
    args = arguments(__doc__)
    workdir = args.workdir
    rows = []
    for size in args.sizes:
        source, generated = month_of_events(workdir, size)
        if generated:
            rows.append(("generate (gzip CSV)", size, generated))
        warehouse = workdir / f"warehouse-{size}"
        shutil.rmtree(warehouse, ignore_errors=True)
        rows.append(
            (
                "eventpipe ingest",
                size,
                measure(eventpipe("ingest", "-q", "-s", str(source), "-w", str(warehouse))),
            )
        )
        baseline_out = workdir / f"baseline-{size}"
        shutil.rmtree(baseline_out, ignore_errors=True)
        baseline = measure([*python(BASELINE), str(source), str(baseline_out)])
        rows.append(("baseline: DuckDB read_csv -> Parquet", size, baseline))
        shutil.rmtree(warehouse, ignore_errors=True)
        shutil.rmtree(baseline_out, ignore_errors=True)
        source.unlink()
    report(rows)


if __name__ == "__main__":
    main()
