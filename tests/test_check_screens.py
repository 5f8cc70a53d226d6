"""A check's screen may only say "nothing to find" when its own SQL finds nothing.

The screens (cheaper first looks over whole tables) run here against the tables of
a real run, corrupted at random in memory, next to the checks' own SQL, on the
same engine. A screen that hides an offending row fails the property; a screen
that never passes a sound warehouse would make it useless, and is a failure too.
"""

from collections.abc import Iterator

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventpipe.engine import Engine, create_engine
from eventpipe.generate import generate_files
from eventpipe.quality import BUILT_IN_CHECKS, Check
from eventpipe.quality.runner import bind
from eventpipe.settings import Settings
from eventpipe.warehouse import SESSIONS, SILVER_EVENTS, USER_FUNNEL

from .steps import run

TABLES = {t.view: t for t in (SILVER_EVENTS, SESSIONS, USER_FUNNEL)}
# the screened checks of the tables above (the other screened tables are small gold tables)
SCREENED = [c for c in BUILT_IN_CHECKS if c.screen and c.table in TABLES]

Rows = dict[str, list[dict]]


@pytest.fixture(scope="module")
def sound(tmp_path_factory) -> dict[str, pa.Table]:
    root = tmp_path_factory.mktemp("screens")
    source = generate_files(root / "events.csv", 600, seed=11, days=2).files[0]
    built = Settings.load(warehouse=root / "warehouse")
    assert run(built, [str(source)]).gold is not None
    return {view: DeltaTable(str(built.warehouse / t.path)).to_pyarrow_table() for view, t in TABLES.items()}


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Iterator[Engine]:
    with create_engine(Settings.load(warehouse=tmp_path_factory.mktemp("engine"))) as made:
        yield made


def rows_of(sound: dict[str, pa.Table]) -> Rows:
    return {view: table.to_pylist() for view, table in sound.items()}


def found(engine: Engine, sound: dict[str, pa.Table], rows: Rows, check: Check) -> tuple[int, int]:
    """(rows the screen returns, rows the check's SQL returns) over ``rows``, typed as ``sound``."""
    for view, table in sound.items():
        engine.register(view, pa.Table.from_pylist(rows[view], schema=table.schema))
    screened = engine.scalar(f"SELECT count(*) FROM ({bind(check, {}, check.screen)})")
    offending = engine.scalar(f"SELECT count(*) FROM ({bind(check, {})})")
    return screened, offending


def test_every_screen_passes_a_sound_warehouse(sound, engine):
    assert {c.name for c in SCREENED} >= {"event_id_unique", "event_in_session", "user_funnel_covers_users"}
    rows = rows_of(sound)
    assert {c.name: found(engine, sound, rows, c) for c in SCREENED} == {c.name: (0, 0) for c in SCREENED}


# A corruption: which table, which row (an index taken modulo its rows), what is done to it,
# and a number choosing the column (and the other row) it is done to.
Corruption = tuple[str, int, str, int]
CHANGES = [
    "delete", "duplicate", "null", "other_row", "new_value", "count_up", "count_down",
    # the row's session or user changed wherever it appears, in every table: sums over keys agree
    "null_everywhere", "new_everywhere",
]  # fmt: skip
COLUMNS = {
    "silver_events": ["event_id", "session_id", "user_id"],
    "sessions": ["session_id", "user_id", "events_count"],
    "user_funnel": ["user_id", "views", "revenue"],
}
COUNTED = {"sessions": "events_count", "user_funnel": "views"}


def corrupt(tables: Rows, corruption: Corruption) -> None:
    view, index, change, other = corruption
    rows = tables[view]
    if not rows:
        return
    row = rows[index % len(rows)]
    column = COLUMNS[view][other % len(COLUMNS[view])]
    if change == "delete":
        rows.remove(row)
    elif change == "duplicate":
        rows.append(dict(row))
    elif change == "null":
        row[column] = None
    elif change == "other_row":  # a value another row has: an existing session, user or id
        row[column] = rows[other % len(rows)][column]
    elif change == "new_value":
        row[column] = -1 if isinstance(row[column], int | float) else "no-such-key"
    elif change.endswith("_everywhere"):
        key = "user_id" if view == "user_funnel" else ("session_id", "user_id")[other % 2]
        was, becomes = row[key], None if change == "null_everywhere" else (-1 if key == "user_id" else "new")
        for each in (r for rows_ in tables.values() for r in rows_ if key in r and r[key] == was):
            each[key] = becomes
    elif (counted := COUNTED.get(view)) and row[counted] is not None:
        row[counted] += 1 if change == "count_up" else -1


corruptions = st.lists(
    st.tuples(
        st.sampled_from(list(COLUMNS)), st.integers(0, 10_000), st.sampled_from(CHANGES), st.integers(0, 50)
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(corruptions)
def test_a_screen_passes_only_what_its_check_passes(sound, engine, corruptions):
    rows = rows_of(sound)
    for corruption in corruptions:
        corrupt(rows, corruption)
    for check in SCREENED:
        screened, offending = found(engine, sound, rows, check)
        assert screened or not offending, (check.name, corruptions)


@pytest.mark.parametrize("key", [0, 1], ids=["session_id", "user_id"])
def test_a_screen_does_not_pass_a_key_missing_everywhere(sound, engine, key):
    """Sums over hashes agree when a key is NULL on both sides; a join never matches NULL."""
    rows = rows_of(sound)
    corrupt(rows, ("silver_events", 0, "null_everywhere", key))
    results = {c.name: found(engine, sound, rows, c) for c in SCREENED}
    assert any(offending for _, offending in results.values())
    assert all(screened or not offending for screened, offending in results.values()), results
