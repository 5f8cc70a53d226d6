"""A check's screen may only say "nothing to find" when its own SQL finds nothing.

The screens (cheaper first looks over whole tables) run here against the tables of
a real run, corrupted at random in memory, next to the checks' own SQL, on the
same engine. A screen that hides an offending row fails the property; a screen
that never passes a sound warehouse would make it useless, and is a failure too.
"""


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

SCREENED = [c for c in BUILT_IN_CHECKS if c.screen]
TABLES = {t.view: t for t in (SILVER_EVENTS, SESSIONS, USER_FUNNEL)}


@pytest.fixture(scope="module")
def sound_tables(tmp_path_factory) -> dict[str, list[dict]]:
    root = tmp_path_factory.mktemp("screens")
    source = generate_files(root / "events.csv", 600, seed=11, days=2).files[0]
    settings_ = Settings.load(warehouse=root / "warehouse")
    assert run(settings_, [str(source)]).gold is not None
    return {
        view: DeltaTable(str(settings_.warehouse / table.path)).to_pyarrow_table().to_pylist()
        for view, table in TABLES.items()
    }


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    with create_engine(Settings.load(warehouse=tmp_path_factory.mktemp("engine"))) as made:
        yield made


def found(engine: Engine, tables: dict[str, list[dict]], schemas: dict[str, pa.Schema], check: Check):
    """(rows the screen returns, rows the check's SQL returns) over ``tables``."""
    for view, rows in tables.items():
        engine.register(view, pa.Table.from_pylist(rows, schema=schemas[view]))
    screened = engine.scalar(f"SELECT count(*) FROM ({bind(check, {}, check.screen)})")
    offending = engine.scalar(f"SELECT count(*) FROM ({bind(check, {})})")
    return screened, offending


def schemas_of(tables: dict[str, list[dict]], sound: dict[str, list[dict]]) -> dict[str, pa.Schema]:
    return {view: pa.Table.from_pylist(sound[view]).schema for view in tables}


def test_every_screen_passes_a_sound_warehouse(sound_tables, engine):
    schemas = schemas_of(sound_tables, sound_tables)
    assert {c.name for c in SCREENED} >= {"event_id_unique", "event_in_session", "user_funnel_covers_users"}
    for check in SCREENED:
        if check.table not in TABLES:
            continue
        assert found(engine, sound_tables, schemas, check) == (0, 0), check.name


# A corruption: which table, which row (an index taken modulo its rows), what is done to it,
# and a number choosing the column (and the other row) it is done to.
Corruption = tuple[str, int, str, int]
CHANGES = [
    "delete", "duplicate", "null", "other_row", "new_value", "count_up", "count_down",
    # the row's key changed wherever it appears, in every table: sums over keys still agree
    "null_everywhere", "new_everywhere",
]  # fmt: skip
COLUMNS = {
    "silver_events": ["event_id", "session_id", "user_id"],
    "sessions": ["session_id", "user_id", "events_count"],
    "user_funnel": ["user_id", "views", "revenue"],
}
COUNTED = {"sessions": "events_count", "user_funnel": "views"}


def corrupt(tables: dict[str, list[dict]], corruption: Corruption) -> None:
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
        key = "user_id" if view == "user_funnel" else COLUMNS[view][other % 2]
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
def test_a_screen_passes_only_what_its_check_passes(sound_tables, engine, corruptions):
    tables = {view: [dict(r) for r in rows] for view, rows in sound_tables.items()}
    for corruption in corruptions:
        corrupt(tables, corruption)
    schemas = schemas_of(tables, sound_tables)
    for check in SCREENED:
        if check.table in TABLES:
            screened, offending = found(engine, tables, schemas, check)
            assert screened or not offending, (check.name, corruptions)


def _null_everywhere(key: str, tables: dict[str, list[dict]]) -> None:
    """The key of the first event's session (user) made NULL in every table."""
    was = tables["silver_events"][0][key]
    for row in (r for rows in tables.values() for r in rows if r.get(key) == was):
        row[key] = None


@pytest.mark.parametrize("key", ["user_id", "session_id"])
def test_a_screen_does_not_pass_a_key_missing_everywhere(sound_tables, engine, key):
    """Sums over hashes agree when a key is NULL on both sides; a join never matches NULL."""
    tables = {view: [dict(r) for r in rows] for view, rows in sound_tables.items()}
    _null_everywhere(key, tables)
    schemas = schemas_of(tables, sound_tables)
    results = {c.name: found(engine, tables, schemas, c) for c in SCREENED if c.table in TABLES}
    assert any(offending for _, offending in results.values())
    assert all(screened or not offending for screened, offending in results.values()), results
