"""`rebuild --from --to` recomputes the dates asked for, and gives the tables of a full rebuild.

To see that the range really is recomputed, silver is first damaged on some
dates the way a bug in an earlier build would have left it (rows dropped,
session ids wrong, with silver's own record, so that nothing notices): a range
rebuild over those dates must give back the tables of a full build, sessions
that reach into the range from outside included; one elsewhere must not touch them.
"""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from eventpipe.builds import built_from, marked
from eventpipe.engine.delta import changed_partitions
from eventpipe.settings import Settings
from eventpipe.warehouse import GOLD_TABLES, QUARANTINE, SESSIONS, SILVER_EVENTS, TableSpec, Warehouse

from .conftest import run_cli
from .steps import run
from .tables import warehouse_rows
from .test_incremental import HEADER

DAY_ONE = datetime(2020, 10, 1, tzinfo=UTC)
NOW = datetime(2020, 10, 9, tzinfo=UTC)
DERIVED = (SILVER_EVENTS, SESSIONS, *GOLD_TABLES)
DAYS = [(DAY_ONE + timedelta(days=d)).date() for d in range(5)]


def line(at: datetime, kind: str = "view", user: str = "1", price: str = "5") -> str:
    return f"{at:%Y-%m-%d %H:%M:%S} UTC,{kind},{user},7,,acme,{price},{user},s"


def build(folder: Path, lines: list[str], name: str, **settings) -> Settings:
    """A warehouse ``folder / name`` from one file of ``lines`` (the same file for every name)."""
    source = folder / "events.csv"
    if not source.exists():
        source.write_text("\n".join([HEADER, *lines]) + "\n")
    built = Settings.load(warehouse=folder / name, **settings)
    run(built, [str(source)], now=NOW)
    return built


def damage(settings: Settings, table: TableSpec, partition: str, day: date) -> None:
    """Drop every other row of ``day``'s partition and give the rest a wrong session id, under
    silver's record: what a bug would leave, and what no later run would notice."""
    warehouse = Warehouse.open(settings.warehouse, create=False)
    delta = warehouse.table(table)
    rows = delta.to_pyarrow_table(filters=[(partition, "=", day)])
    rows = rows.take(pa.array(range(0, len(rows), 2), pa.int64()))
    rows = rows.set_column(
        rows.column_names.index("session_id"), "session_id", pa.array(["wrong"] * len(rows), pa.string())
    )
    warehouse.replace(
        table,
        pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches()),
        where=[(partition, "=", day.isoformat())],
        commit=marked(built_from(delta)),
    )


def damage_silver(settings: Settings, day: date) -> None:
    damage(settings, SILVER_EVENTS, "event_date", day)
    damage(settings, SESSIONS, "session_date", day)


def expected_tables(tmp: Path, lines: list[str], **settings) -> dict:
    return warehouse_rows(build(tmp, lines, "full", **settings).warehouse)


def versions(settings: Settings) -> dict[TableSpec, int]:
    return {t: DeltaTable(str(settings.warehouse / t.path)).version() for t in (*DERIVED, QUARANTINE)}


def one_commit_each(before: dict[TableSpec, int], after: dict[TableSpec, int]) -> bool:
    """Whether every silver and gold table changed in one commit: a reader saw the old table or the new."""
    return all(after[t] == before[t] + 1 for t in DERIVED) and after[QUARANTINE] <= before[QUARANTINE] + 1


# Minutes from the first day's midnight: five days, sessions across midnights,
# gaps on both sides of the 30-minute timeout; a "bot" user every 20 minutes
# whose one chain of events spans days, so the range has to be read far beyond its ends.
moments = st.integers(0, 5 * 24 * 60 - 1).map(lambda m: DAY_ONE + timedelta(minutes=m))
event_lines = st.builds(
    line,
    at=moments,
    kind=st.sampled_from(["view", "view", "cart", "purchase", "add_to_cart", "bogus"]),
    user=st.sampled_from(["1", "2", "3", ""]),
    price=st.sampled_from(["1.5", "20", "-1"]),
)
bot_lines = st.tuples(st.integers(0, 3 * 24 * 3), st.integers(1, 4 * 24 * 3)).map(
    lambda span: [
        line(DAY_ONE + timedelta(minutes=20 * i), user="9") for i in range(span[0], span[0] + span[1])
    ]
)


# the bot's one chain from the first day to the last, the range on the fourth: read back to day one
a_chain_across_every_day = [line(DAY_ONE + timedelta(minutes=20 * i), user="9") for i in range(5 * 24 * 3)]


@example(
    lines=[line(DAY_ONE)], bot=a_chain_across_every_day, damaged={DAYS[3]}, around=(0, 0), max_session=None
)
@example(
    lines=[line(DAY_ONE)], bot=a_chain_across_every_day, damaged={DAYS[1]}, around=(0, 0), max_session=45
)
@hypothesis_settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(event_lines, min_size=1, max_size=40),
    bot=bot_lines,
    damaged=st.sets(st.sampled_from(DAYS), min_size=1, max_size=2),
    around=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    max_session=st.sampled_from([None, 45]),
)
def test_a_range_rebuild_gives_back_the_tables_of_a_full_build(
    tmp_path_factory, lines, bot, damaged, around, max_session
):
    tmp = tmp_path_factory.mktemp("range")
    lines = [*lines, *bot]
    expected = expected_tables(tmp, lines, max_session_minutes=max_session)
    settings = build(tmp, lines, "ranged", max_session_minutes=max_session)
    for day in damaged:
        damage_silver(settings, day)
    first, last = min(damaged) - timedelta(days=around[0]), max(damaged) + timedelta(days=around[1])

    result = run(settings, rebuild=True, dates=(first, last), now=NOW)

    assert not result.failed
    assert result.silver.incremental and result.gold.incremental
    assert warehouse_rows(settings.warehouse) == expected


def test_a_range_rebuild_rewrites_only_the_range_and_the_sessions_reaching_into_it(tmp_path):
    lines = [
        line(DAY_ONE + timedelta(hours=10)),  # day one
        line(DAY_ONE + timedelta(days=1, hours=23, minutes=50)),  # a session across the second midnight
        line(DAY_ONE + timedelta(days=2, minutes=5), kind="cart"),
        line(DAY_ONE + timedelta(days=2, hours=12), user="2"),  # day three
        line(DAY_ONE + timedelta(days=4, hours=8), user="2"),  # day five
    ]
    expected = expected_tables(tmp_path, lines)
    settings = build(tmp_path, lines, "ranged")
    damage_silver(settings, DAYS[0])
    damage_silver(settings, DAYS[1])
    before = versions(settings)

    run(settings, rebuild=True, dates=(DAYS[2], DAYS[2]), now=NOW)

    assert one_commit_each(before, versions(settings))

    rewritten = {
        t.view: changed_partitions(DeltaTable(str(settings.warehouse / t.path)), before[t], column)
        for t, column in ((SILVER_EVENTS, "event_date"), (SESSIONS, "session_date"))
    }
    # the session across midnight starts on day two: its events and its row there are rewritten too
    both = {"2020-10-02", "2020-10-03"}
    assert rewritten == {"silver_events": both, "sessions": both}
    assert warehouse_rows(settings.warehouse) != expected  # day one is outside: still damaged

    run(settings, rebuild=True, dates=(DAYS[0], DAYS[0]), now=NOW)
    assert warehouse_rows(settings.warehouse) == expected


def test_rebuild_from_and_to_on_the_command_line(tmp_path):
    settings = build(tmp_path, [line(DAY_ONE + timedelta(days=d, hours=1)) for d in range(3)], "warehouse")
    warehouse = str(settings.warehouse)

    done = run_cli("rebuild", "-w", warehouse, "--from", "2020-10-02", "--to", "2020-10-02", "--json")
    assert done.returncode == 0, done.stderr
    assert '"bronze": 3,' in done.stdout and '"silver_events": 3,' in done.stdout
    assert "rebuilt silver and gold for events dated 2020-10-02 to 2020-10-02\n" in done.stderr

    backwards = run_cli("rebuild", "-w", warehouse, "--from", "2020-10-03", "--to", "2020-10-02")
    assert backwards.returncode == 2
    assert "2020-10-03 is after --to 2020-10-02" in backwards.stderr
    assert "Traceback" not in backwards.stderr

    not_a_date = run_cli("rebuild", "-w", warehouse, "--from", "October")
    assert not_a_date.returncode == 2
    assert "'October' does not match the formats '%Y-%m-%d'" in not_a_date.stderr


def test_a_range_holding_more_rows_than_a_bucket_is_rebuilt_in_full(tmp_path):
    lines = [line(DAY_ONE + timedelta(days=d, hours=h)) for d in range(3) for h in (1, 2)]
    expected = expected_tables(tmp_path, lines)
    settings = build(tmp_path, lines, "ranged", rows_per_bucket=3)
    damage_silver(settings, DAYS[2])

    before = versions(settings)

    result = run(settings, rebuild=True, dates=(DAYS[1], DAYS[2]), now=NOW)

    assert not result.silver.incremental and not result.gold.incremental
    assert one_commit_each(before, versions(settings))
    assert warehouse_rows(settings.warehouse) == expected
