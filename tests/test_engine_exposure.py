"""Exposing a table again keeps the view of the same snapshot, and only that: a name whose
relation changed since (rows registered over it, a newer version, a table made again at the
same path, a sealed engine) is exposed anew."""

import shutil

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from eventpipe.engine.delta import added_files
from eventpipe.engine.duckdb import DuckDBEngine


def values(engine: DuckDBEngine, name: str = "t") -> list[int]:
    return sorted(engine.table(f"SELECT a FROM {name}").column(0).to_pylist())


def test_a_table_exposed_again_reads_its_snapshot_and_no_other(tmp_path):
    path = tmp_path / "t"
    write_deltalake(path, pa.table({"a": [1, 2]}))
    with DuckDBEngine() as engine:
        engine.expose_table("t", DeltaTable(path))
        engine.register("t", pa.table({"a": [9]}))
        assert values(engine) == [9]
        engine.expose_table("t", DeltaTable(path))  # the same snapshot, but rows registered over it
        assert values(engine) == [1, 2]

        write_deltalake(path, pa.table({"a": [3]}), mode="append")
        engine.expose_table("t", DeltaTable(path))
        assert values(engine) == [1, 2, 3]

        # made again at the same path, with as many versions: another table
        shutil.rmtree(path)
        write_deltalake(path, pa.table({"a": [7]}))
        write_deltalake(path, pa.table({"a": [8]}), mode="append")
        engine.expose_table("t", DeltaTable(path))
        assert values(engine) == [7, 8]

        # sealed, the engine reads no file by name: a view made before would fail
        engine.forbid_external_access()
        engine.expose_table("t", DeltaTable(path))
        assert values(engine) == [7, 8]


def test_rows_added_since_a_version_are_those_of_the_table_at_that_path_now(tmp_path):
    path = tmp_path / "t"
    for rows in ([1], [2], [3]):
        write_deltalake(path, pa.table({"a": rows}), mode="append")
    with DuckDBEngine() as engine:
        assert engine.expose_added("added", DeltaTable(path), 0)
        assert values(engine, "added") == [2, 3]
        assert engine.expose_added("added", DeltaTable(path), 2)  # nothing added: no rows
        assert values(engine, "added") == []

        shutil.rmtree(path)
        for rows in ([4], [5], [6]):
            write_deltalake(path, pa.table({"a": rows}), mode="append")
        table = DeltaTable(path)
        assert len(added_files(table, 0)) == 2
        assert engine.expose_added("added", table, 0)
        assert values(engine, "added") == [5, 6]
