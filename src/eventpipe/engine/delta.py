"""Appending to a Delta table with bounded memory and one atomic commit.

``deltalake.write_deltalake`` keeps each partition's Parquet file in memory
until it reaches the target size, so a month of events across thirty daily
partitions held gigabytes. Here pyarrow streams row groups to files on disk
(memory bounded by open files x rows per group), and one Delta
transaction then adds every file, with the caller's commit properties.
"""

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake.transaction import AddAction

# A partition's rows wait in memory until there are this many, so the bound on
# buffered rows is max_open_files x _MIN_ROWS_PER_GROUP; time-ordered input
# fills one partition at a time and gets row groups near the maximum.
_MIN_ROWS_PER_GROUP = 32 * 1024
_MAX_ROWS_PER_GROUP = 256 * 1024
_MAX_OPEN_FILES = 64


@dataclass(frozen=True)
class Written:
    rows: int
    files: int
    version: int


def write(
    table: DeltaTable,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    partition_by: tuple[str, ...],
    commit: CommitProperties | None = None,
    *,
    replace: list[tuple[str, str, str]] | None = None,
) -> Written:
    """Write ``batches`` as new files of ``table`` and commit them in one transaction.

    With ``replace`` (partition filters such as ``[("stage", "=", "silver")]``,
    or ``[]`` for the whole table) the same commit removes the files it
    replaces, so readers see the old rows or the new ones, never a mix.
    The commit happens even with no rows, so that ``commit`` (its app
    transactions) is recorded either way. Files of a run killed before the
    commit are not part of the table; ``vacuum`` removes them.
    """
    root = Path(table.table_uri.removeprefix("file://"))
    written: list[ds.WrittenFile] = []
    ds.write_dataset(
        pa.RecordBatchReader.from_batches(schema, iter(batches)),
        root,
        format="parquet",
        partitioning=ds.partitioning(schema=pa.schema([schema.field(c) for c in partition_by]), flavor="hive")
        if partition_by
        else None,
        basename_template=f"part-{uuid.uuid4().hex}-{{i}}.parquet",
        existing_data_behavior="overwrite_or_ignore",
        min_rows_per_group=_MIN_ROWS_PER_GROUP,
        max_rows_per_group=_MAX_ROWS_PER_GROUP,
        max_open_files=_MAX_OPEN_FILES,
        file_visitor=written.append,
        create_dir=True,
    )
    table.create_write_transaction(
        [_add_action(root, f, partition_by) for f in written],
        # overwrite removes the files of the partitions the filters select (all, without filters)
        mode="append" if replace is None else "overwrite",
        schema=schema,
        partition_by=list(partition_by) or None,
        partition_filters=replace or None,
        commit_properties=commit,
    )
    table.update_incremental()
    return Written(sum(f.metadata.num_rows for f in written), len(written), table.version())


def _add_action(root: Path, written: ds.WrittenFile, partition_by: tuple[str, ...]) -> AddAction:
    path = Path(written.path)
    relative = path.relative_to(root)
    partition_values = dict(part.split("=", 1) for part in relative.parts[:-1])
    return AddAction(
        path=str(relative),
        size=path.stat().st_size,
        partition_values={c: partition_values.get(c) for c in partition_by},
        modification_time=int(time.time() * 1000),
        data_change=True,
        stats=json.dumps(_stats(written.metadata)),
    )


def _stats(metadata: pq.FileMetaData) -> dict:
    """Delta file statistics (row count, null counts, min and max) from the Parquet footer.

    Readers prune files with these, and ``deltalake`` turns a column with no
    minimum into a filter that matches nothing, so a file gets bounds for
    every column or no column statistics at all.
    """
    schema = metadata.schema.to_arrow_schema()
    nulls: dict[str, int] = {}
    lows: dict[str, object] = {}
    highs: dict[str, object] = {}
    for index, field in enumerate(schema):
        column_nulls, low, high = 0, None, None
        for group in range(metadata.num_row_groups):
            stats = metadata.row_group(group).column(index).statistics
            if stats is None or not stats.has_null_count:
                return {"numRecords": metadata.num_rows}
            column_nulls += stats.null_count
            if stats.has_min_max:
                low = stats.min if low is None else min(low, stats.min)
                high = stats.max if high is None else max(high, stats.max)
            elif stats.null_count < metadata.row_group(group).num_rows:
                return {"numRecords": metadata.num_rows}
        nulls[field.name] = column_nulls
        if low is not None:
            lows[field.name], highs[field.name] = _json_value(low), _json_value(high)
    return {"numRecords": metadata.num_rows, "nullCount": nulls, "minValues": lows, "maxValues": highs}


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value
