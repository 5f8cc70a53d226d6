"""``eventpipe report`` on warehouses of several sizes.

    python benchmarks/report_bench.py [--sizes 1000000 10000000] [--workdir DIR]

For each size: generate a month of events, build the warehouse (``run
--no-report``), then time the HTML report and, as the baseline in the same
run, the cheapest look at the same warehouse (one ``eventpipe query``).
"""

import shutil

from common import arguments, eventpipe, measure, month_of_events, report


def main() -> None:
    args = arguments(__doc__)
    workdir = args.workdir
    rows, sizes = [], []
    for size in args.sizes:
        source, _ = month_of_events(workdir, size)
        warehouse = workdir / f"warehouse-{size}"
        shutil.rmtree(warehouse, ignore_errors=True)
        measure(eventpipe("run", "-q", "--no-report", "-s", str(source), "-w", str(warehouse)))
        page = workdir / f"report-{size}.html"
        rows.append(
            ("eventpipe report", size, measure(eventpipe("report", "-w", str(warehouse), "-o", str(page))))
        )
        baseline = measure(eventpipe("query", "-w", str(warehouse), "SELECT count(*) FROM silver_events"))
        rows.append(("baseline: one query on the warehouse", size, baseline))
        sizes.append((size, page.stat().st_size))
        shutil.rmtree(warehouse, ignore_errors=True)
    report(rows)
    for size, page_bytes in sizes:
        print(f"report for {size:,} events: {page_bytes / 1024:,.0f} KiB")


if __name__ == "__main__":
    main()
