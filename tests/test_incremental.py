"""Runs over files as they arrive give the tables of one run over everything.

Files arrive in any order and any grouping: duplicates across files, late
events, sessions across file boundaries and midnight. Tables are compared as
multisets of rows, without the time each row was processed.
"""

import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from deltalake import DeltaTable
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from eventpipe.settings import Settings
from eventpipe.silver import increment as silver_increment

from .processes import kill_while_running
from .steps import run
from .tables import warehouse_rows

HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
START = datetime(2020, 10, 1, 22, tzinfo=UTC)  # two hours before midnight
NOW = datetime(2020, 10, 4, tzinfo=UTC)

event_lines = st.builds(
    lambda minute, kind, user, price: (
        f"{START + timedelta(minutes=minute):%Y-%m-%d %H:%M:%S} UTC,{kind},{user},7,,acme,{price},{user},s"
    ),
    minute=st.integers(0, 240),  # across midnight; gaps around the 30-minute timeout
    kind=st.sampled_from(["view", "view", "cart", "purchase", "add_to_cart", " VIEW ", "bogus"]),
    user=st.sampled_from(["1", "2", "3", ""]),  # "" is a missing user: quarantined in silver
    price=st.sampled_from(["1.5", "20", "-1"]),
) | st.sampled_from(["not,a,record", "2020-13-45 99:00:00 UTC,view,1,7,,acme,1,1,s"])


def write_files(folder: Path, files: list[list[str]], distinct: bool = False) -> list[str]:
    """One CSV per list of lines; ``distinct`` ends each with a (broken) line of its own, since
    bronze takes a file with the same bytes as one it holds for that file, whatever its name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, lines in enumerate(files):
        path = folder / f"part-{i:03d}.csv"
        path.write_text("\n".join([HEADER, *lines, *([f"file {i}"] if distinct else [])]) + "\n")
        paths.append(str(path))
    return paths


def one_run(tmp: Path, paths: list[str]) -> dict:
    settings = Settings.load(warehouse=tmp / "full")
    run(settings, paths, now=NOW)
    return warehouse_rows(settings.warehouse)


# a Spark run of a few events takes seconds, not tens of milliseconds
EXAMPLES = {"duckdb": 8, "spark": 2}


def test_runs_over_files_in_any_order_equal_one_run(engine, tmp_path_factory):
    @hypothesis_settings(max_examples=EXAMPLES[engine], deadline=None)
    @given(
        files=st.lists(st.lists(event_lines, min_size=1, max_size=15), min_size=2, max_size=5),
        order=st.randoms(use_true_random=False),
        duplicated=st.booleans(),
    )
    def runs_equal_one_run(files, order, duplicated):
        if duplicated:  # the same events again in a later file
            files = [*files, files[0][: max(1, len(files[0]) // 2)]]
        tmp = tmp_path_factory.mktemp("incremental")
        paths = write_files(tmp / "landing", files, distinct=True)
        expected = one_run(tmp, paths)

        settings = Settings.load(warehouse=tmp / "incremental")
        arrival = paths[:]
        order.shuffle(arrival)
        cuts = sorted(order.sample(range(1, len(arrival)), order.randint(0, len(arrival) - 1)))
        results = [
            run(settings, batch, now=NOW)
            for batch in (arrival[a:b] for a, b in zip([0, *cuts], [*cuts, len(arrival)], strict=True))
        ]
        assert warehouse_rows(settings.warehouse) == expected
        assert all(r.gold.incremental for r in results[1:])  # later runs recomputed only what changed

    runs_equal_one_run()


@pytest.mark.slow
def test_the_real_sample_day_by_day_in_shuffled_order(tmp_path, sample_dir):
    import gzip

    by_day: dict[str, list[str]] = {}
    with gzip.open(sample_dir / "events_raw.csv.gz", "rt", newline="") as handle:
        header = next(handle).rstrip("\n")
        for line in handle:
            by_day.setdefault(line[:10], []).append(line.rstrip("\n"))
    assert header == HEADER
    paths = write_files(tmp_path / "days", list(by_day.values()))
    expected = one_run(tmp_path, paths)
    assert sum(expected["bronze_events"].values()) == 100_000

    settings = Settings.load(warehouse=tmp_path / "daily")
    random.Random(7).shuffle(paths)
    # the day files in shuffled order, four per run
    results = [run(settings, paths[batch : batch + 4], now=NOW) for batch in range(0, len(paths), 4)]
    assert warehouse_rows(settings.warehouse) == expected
    assert all(r.gold.incremental for r in results[1:])


def partition_files(warehouse: Path, table: str, partition: str) -> set[str]:
    """The files of one partition of a table's snapshot."""
    return {f for f in DeltaTable(str(warehouse / table)).file_uris() if f"/{partition}/" in f}


def test_rows_only_added_to_a_day_keep_its_files_until_they_pile_up(tmp_path, monkeypatch):
    """A late event that changes no event already there is written beside the day's files; a day
    that gains rows this way in more runs than it may have files is written whole again."""
    monkeypatch.setattr(silver_increment, "_MOST_FILES", 3)
    # user 1 on the first of October; then, late, users 2 to 5 on that day, one a file; then user 1
    # again within the session timeout of its last event, which changes that session's events
    first = [f"2020-10-01 10:{m:02d}:00 UTC,view,1,7,,acme,1.5,1,s" for m in (0, 5, 10)]
    late = [[f"2020-10-01 12:00:00 UTC,view,{u},7,,acme,2,{u},s"] for u in range(2, 6)]
    joining = ["2020-10-01 10:30:00 UTC,cart,1,7,,acme,1.5,1,s"]
    paths = write_files(tmp_path / "landing", [first, *late, joining])
    settings = Settings.load(warehouse=tmp_path / "incremental")
    day = {"silver/events": "event_date=2020-10-01", "silver/sessions": "session_date=2020-10-01"}
    files = []
    for path in paths:
        run(settings, [path], now=NOW)
        files.append({t: partition_files(settings.warehouse, t, p) for t, p in day.items()})
    for table in day:
        counts = [len(f[table]) for f in files]
        # a file more per late run, and written whole again once three were there
        assert counts[:5] == [1, 2, 3, 1, 2], (table, counts)
        assert files[0][table] < files[1][table] < files[2][table]  # only added to
        assert not files[2][table] & files[3][table]  # rewritten
        # the joining event changes a session of the day: its files are replaced (two, not too many)
        assert not files[4][table] & files[5][table]
    assert warehouse_rows(settings.warehouse) == one_run(tmp_path, paths)


def eventpipe(*args: str) -> list[str]:
    return [sys.executable, "-m", "eventpipe", *args]


@pytest.mark.slow
def test_killed_runs_then_rerun_give_the_undisturbed_tables(tmp_path, capsys):
    """Each trial starts from a warehouse holding the first day and kills the run that adds the second."""
    from eventpipe.generate import generate_files

    landing = tmp_path / "landing"
    generated = generate_files(landing, 12_000, seed=5, days=2, dirty=True, per_day=True, compress=True)
    first_day = sorted(generated.files)[0]
    base = tmp_path / "base"
    subprocess.run(eventpipe("run", "-q", "--no-report", "-s", str(first_day), "-w", str(base)), check=True)
    command = ["run", "-q", "--no-report", "-s", str(landing)]
    subprocess.run(eventpipe(*command, "-w", str(tmp_path / "full")), check=True, capture_output=True)
    expected = warehouse_rows(tmp_path / "full")
    shutil.copytree(base, tmp_path / "undisturbed")
    began = time.perf_counter()
    subprocess.run(eventpipe(*command, "-w", str(tmp_path / "undisturbed")), check=True, capture_output=True)
    undisturbed = time.perf_counter() - began
    assert warehouse_rows(tmp_path / "undisturbed") == expected

    chance = random.Random(11)
    before, after = table_versions(base), table_versions(tmp_path / "undisturbed")
    landed = {"before any commit": 0, "between commits": 0, "after every commit": 0}
    for trial in range(20):
        warehouse = tmp_path / f"trial-{trial}"
        killed = kill_while_running(
            eventpipe(*command, "-w", str(warehouse)),
            chance.uniform(0.1, undisturbed),
            fresh=lambda w=warehouse: (shutil.rmtree(w, ignore_errors=True), shutil.copytree(base, w)),
        )
        assert killed, f"trial {trial}: every attempt had ended before its kill"
        left = table_versions(warehouse)
        landed[
            "before any commit"
            if left == before
            else "after every commit"
            if left == after
            else "between commits"
        ] += 1
        # the rerun in this process: the same code as the command, without starting Python twenty times
        rerun = run(Settings.load(warehouse=warehouse), [str(landing)])
        assert not rerun.failed, f"trial {trial}: {[c.name for c in rerun.quality.failures]}"
        assert warehouse_rows(warehouse) == expected, f"trial {trial}"
        shutil.rmtree(warehouse)
    with capsys.disabled():
        print(f"\n20 killed runs: {landed}")
    assert landed["between commits"] >= 5, landed  # the kills are not all before the first commit


def table_versions(warehouse: Path) -> dict[str, int]:
    """Each Delta table's version."""
    return {
        str(log.parent.relative_to(warehouse)): DeltaTable(str(log.parent)).version()
        for log in warehouse.glob("*/*/_delta_log")
    }


@pytest.mark.slow
def test_watch_processes_files_as_they_land_and_stops_cleanly_on_sigterm(tmp_path):
    from eventpipe.generate import generate_files

    source = tmp_path / "generated"
    generated = generate_files(source, 12_000, seed=9, days=3, dirty=True, per_day=True)
    landing = tmp_path / "landing"
    landing.mkdir()
    warehouse = tmp_path / "watched"
    watcher = subprocess.Popen(
        eventpipe(
            "run", "--watch", "--interval", "0.3", "--no-report", "-s", str(landing), "-w", str(warehouse)
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for i, path in enumerate(sorted(generated.files)):
            hidden = landing / f".{Path(path).name}"  # written under a hidden name, then renamed
            shutil.copy(path, hidden)
            hidden.rename(landing / Path(path).name)
            _wait_for_runs(warehouse, i + 1)
    finally:
        watcher.send_signal(signal.SIGTERM)
        _, stderr = watcher.communicate(timeout=120)
    assert watcher.returncode == 0, stderr
    assert "SIGTERM: stopping after the batch in flight" in stderr

    subprocess.run(
        eventpipe("run", "-q", "--no-report", "-s", str(landing), "-w", str(tmp_path / "full")), check=True
    )
    assert warehouse_rows(warehouse) == warehouse_rows(tmp_path / "full")


@pytest.mark.slow
def test_watch_writes_each_batchs_report_once_the_folder_is_quiet(tmp_path):
    from eventpipe.generate import generate_files

    landing = tmp_path / "landing"
    generate_files(landing / "day.csv", 2_000, seed=4)
    warehouse = tmp_path / "watched"
    watcher = subprocess.Popen(
        eventpipe("run", "--watch", "--interval", "0.3", "-s", str(landing), "-w", str(warehouse)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_runs(warehouse, 1)
        run_id = DeltaTable(str(warehouse / "meta/runs")).to_pyarrow_table().column("run_id")[0].as_py()
        page = warehouse / "_reports" / f"{run_id}.html"
        deadline = time.monotonic() + 60
        while not page.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        watcher.send_signal(signal.SIGTERM)
        _, stderr = watcher.communicate(timeout=120)
    assert watcher.returncode == 0, stderr
    assert page.exists(), "no report was written while the folder stayed quiet"
    assert "<h2>Funnel</h2>" in page.read_text() and run_id in page.read_text()
    assert str(page) in " ".join(stderr.split())  # the watcher says where the report is


def _wait_for_runs(warehouse: Path, runs: int, timeout: float = 90) -> None:
    from deltalake import DeltaTable

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = str(warehouse / "meta/runs")
        if DeltaTable.is_deltatable(path) and DeltaTable(path).to_pyarrow_dataset().count_rows() >= runs:
            return
        time.sleep(0.2)
    raise AssertionError(f"the watcher did not finish run {runs} within {timeout} s")
