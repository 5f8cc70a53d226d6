"""The distributed engine: Apache Spark runs the SQL, ``deltalake`` commits the files it writes.

Tables are read through their Delta snapshot's file list (a folder read as
Parquet would also hold files a commit removed), and written by the executors
as Parquet into a staging folder of the table, moved into the partition
folders, then added to the table in one Delta commit made here with
``deltalake``, so a table gets the same commits, app transactions and
build records as with DuckDB, and no rows pass through the driver.

Spark and Java load only when this engine is made (``pip install 'eventpipe[spark]'``).
"""

import json
import logging
import os
import re
import shutil
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from eventpipe.engine.base import Engine, Relation
from eventpipe.engine.delta import Staged, added_files, plain_parquet, readable_version, table_root
from eventpipe.engine.spark_sql import to_spark
from eventpipe.errors import ConfigError, WarehouseError
from eventpipe.pandas_import import let_pandas_in

# What every session needs for the tables to be those DuckDB writes; the user's [spark] table
# adds to these (and may override the ones that are only defaults).
_REQUIRED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    # INT96, Spark's default, is read back by delta-rs as nanoseconds and refused
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}
_DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
_CREATE = re.compile(r"\s*CREATE\s+OR\s+REPLACE\s+(TEMP\s+TABLE|VIEW)\s+(\w+)\s+AS\s+(.*)", re.I | re.S)
_DROP = re.compile(r"\s*DROP\s+(?:TABLE|VIEW)\s+(?:IF\s+EXISTS\s+)?(\w+)\s*", re.I)
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


class SparkEngine(Engine):
    """A Spark session on ``master`` (``local[*]``, ``spark://host:port``, ...) with ``conf``.

    The session outlives the engine, for the next run of the process (``--watch``, Airflow
    workers, tests): it takes seconds to start. Spark keeps its scratch files where
    ``spark.local.dir`` says (the system's temporary folder by default), not in a
    warehouse: a session serves runs on several warehouses.
    """

    reads_files_in_tasks = True
    concurrent_queries = True

    def __init__(self, master: str, conf: Mapping[str, str] | None = None) -> None:
        let_pandas_in()  # PySpark converts through pandas
        # PySpark warns, whenever it loads pandas, that it does not test pandas 3; eventpipe gives
        # it Arrow data only
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise ConfigError(
                "engine = \"spark\" needs PySpark: pip install 'eventpipe[spark]' (and Java 17 or later)"
            ) from None
        # executors run Python for the canonical number text: this interpreter has what they need
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        if master.startswith("local"):  # one machine: listen on loopback only
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = SparkSession.builder.master(master).appName("eventpipe")
        quiet_log = f"-Dlog4j2.configurationFile=file:{Path(__file__).with_name('spark-log4j2.properties')}"
        defaults = {**_DEFAULT_CONF, "spark.driver.extraJavaOptions": quiet_log, **_local_conf(master)}
        settings = {**defaults, **(conf or {}), **_REQUIRED_CONF}
        for key, value in settings.items():
            builder = builder.config(key, value)
        self.spark = builder.getOrCreate()
        # PySpark logs each failed query as a page of JSON before raising it; the error is enough
        for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        self._register_functions()
        self._cached: dict[str, Any] = {}

    def _register_functions(self) -> None:
        from pyspark.sql.functions import arrow_udf

        @arrow_udf("string")
        def canonical_double(values: pa.Array) -> pa.Array:
            # Python's shortest round-trip text of a double, which is DuckDB's too (1e-07, 100.0)
            return pa.array([None if v is None else repr(v) for v in values.to_pylist()], pa.string())

        self.spark.udf.register("canonical_double", canonical_double)

    # --- reading ---------------------------------------------------------------------------

    def register(self, name: str, data: pa.Table | pa.RecordBatchReader) -> None:
        table = data.read_all() if isinstance(data, pa.RecordBatchReader) else data
        self._view(name, self.spark.createDataFrame(table, schema=spark_schema(table.schema)))

    def unregister(self, name: str) -> None:
        self._drop(name)

    def expose_table(self, name: str, table: DeltaTable) -> None:
        self._read_files(name, table, table.file_uris())

    def expose_added(self, name: str, table: DeltaTable, since_version: int) -> bool:
        self._read_files(name, table, added_files(table, since_version))
        return True

    def expose_version(self, name: str, table: DeltaTable, version: int) -> bool:
        table = readable_version(table, version)
        if table is None:
            return False
        self._read_files(name, table, table.file_uris())
        return True

    def _read_files(self, name: str, table: DeltaTable, files: list[str]) -> None:
        if not plain_parquet(table):  # eventpipe writes none such; another writer may have
            raise WarehouseError(
                f"{table.table_uri} uses deletion vectors or column mapping, which the spark engine "
                'cannot read through its file list; run with engine = "duckdb"'
            )
        schema = spark_schema(pa.schema(table.schema().to_arrow()))
        if files:
            root = table.table_uri
            frame = self.spark.read.schema(schema).option("basePath", root).parquet(*files)
            # the partition columns come last from the reader: put them where the table has them
            frame = frame.select(*schema.fieldNames())
        else:
            frame = self.spark.createDataFrame([], schema)
        self._view(name, frame)

    # --- running ---------------------------------------------------------------------------

    def frame(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None):
        """``sql`` (DuckDB SQL) as a Spark DataFrame."""
        return self.spark.sql(to_spark(sql, params))

    def stream(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None, batch_rows: int = 122_880
    ) -> pa.RecordBatchReader:
        # for small results only (figures, lists of dates): tables are written with ``query``
        result = self.frame(sql, params).toArrow()
        return pa.RecordBatchReader.from_batches(result.schema, result.to_batches(batch_rows))

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> None:
        if created := _CREATE.fullmatch(sql):
            kind, name, body = created.groups()
            frame = self.frame(body, params)
            if kind.upper().startswith("TEMP"):  # a table is a snapshot: computed once, kept on the executors
                frame = frame.localCheckpoint(eager=True)
                self._cached[name] = frame
            self._view(name, frame)
        elif dropped := _DROP.fullmatch(sql):
            self._drop(dropped[1])
        else:
            self.frame(sql, params).collect()

    def read_in_tasks(self, name: str, tasks: list[dict], read: Callable, schema: pa.Schema) -> None:
        """Expose as ``name`` the rows ``read`` gives on the executors, one task per item of ``tasks``
        (``read`` gets Arrow batches of a column ``task``, each a JSON text, and yields ``schema``).

        The rows are computed once and kept on the executors, for several queries to read.
        """
        from pyspark.sql.types import StringType, StructField, StructType

        items = self.spark.sparkContext.parallelize([(json.dumps(t),) for t in tasks], max(len(tasks), 1))
        frame = self.spark.createDataFrame(items, StructType([StructField("task", StringType())]))
        rows = frame.mapInArrow(read, spark_schema(schema)).localCheckpoint(eager=True)
        self._cached[name] = rows
        self._view(name, rows)

    def query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Relation:
        return _SparkRelation(self.frame(sql, params))

    def _view(self, name: str, frame) -> None:
        self._drop(name)
        frame.createOrReplaceTempView(name)

    def _drop(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)
        if (cached := self._cached.pop(name, None)) is not None:
            cached.unpersist()

    @contextmanager
    def translated_errors(self) -> Iterator[None]:
        yield

    def close(self) -> None:
        for name in list(self._cached):
            self._drop(name)
        # the session stays for the next engine of this process (starting one takes seconds)


class _SparkRelation(Relation):
    def __init__(self, frame) -> None:
        self.frame = frame

    @property
    def schema(self) -> pa.Schema:
        return arrow_schema(self.frame.schema)

    def stage(self, table: DeltaTable, schema: pa.Schema, partition_by: tuple[str, ...]) -> Staged:
        from pyspark.sql.functions import col

        target = spark_schema(schema)
        frame = self.frame.select(*(col(f.name).cast(f.dataType).alias(f.name) for f in target.fields))
        root = table_root(table)
        # a staging folder inside the table, emptied into the partition folders right after:
        # files left in it by a killed run are not in any partition, so vacuum removes them
        staging = root / f"_staging-{uuid.uuid4().hex}"
        writer = frame.write.mode("errorifexists")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        try:
            writer.parquet(str(staging))
            files = []
            for written in sorted(staging.rglob("*.parquet")):
                metadata = pq.read_metadata(written)
                if metadata.num_rows == 0:  # Spark writes a file even for no rows
                    continue
                relative = written.relative_to(staging)
                values = dict(_partition_value(part) for part in relative.parts[:-1])
                moved = root / relative
                moved.parent.mkdir(parents=True, exist_ok=True)
                os.replace(written, moved)
                files.append((moved, values, metadata))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return Staged(table, schema, partition_by, files)


def _local_conf(master: str) -> dict[str, str]:
    """On one machine, as many shuffle partitions as cores: Spark's 200 suit a cluster, and
    cost a task each on every shuffle of a small batch."""
    found = re.fullmatch(r"local\[(\d+|\*)(?:,\s*\d+)?\]|local", master)
    if not found:
        return {}
    cores = (os.cpu_count() or 1) if found[1] in (None, "*") else int(found[1])
    return {"spark.sql.shuffle.partitions": str(cores)}


def _partition_value(folder: str) -> tuple[str, str | None]:
    column, value = folder.split("=", 1)
    return unquote(column), None if value == _HIVE_NULL else unquote(value)


# --- types ---------------------------------------------------------------------------------


def spark_schema(schema: pa.Schema):
    from pyspark.sql.types import StructField, StructType

    return StructType([StructField(f.name, spark_type(f.type), f.nullable) for f in schema])


def spark_type(kind: pa.DataType):
    from pyspark.sql import types as t

    if pa.types.is_timestamp(kind):
        return t.TimestampType() if kind.tz else t.TimestampNTZType()
    if pa.types.is_decimal(kind):
        return t.DecimalType(kind.precision, kind.scale)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return t.ArrayType(spark_type(kind.value_type))
    simple = {
        pa.int64(): t.LongType(),
        pa.int32(): t.IntegerType(),
        pa.int16(): t.ShortType(),
        pa.int8(): t.ByteType(),
        pa.float64(): t.DoubleType(),
        pa.float32(): t.FloatType(),
        pa.string(): t.StringType(),
        pa.large_string(): t.StringType(),
        pa.bool_(): t.BooleanType(),
        pa.date32(): t.DateType(),
        pa.binary(): t.BinaryType(),
    }
    if kind in simple:
        return simple[kind]
    raise TypeError(f"no Spark type for {kind}")


def arrow_schema(schema) -> pa.Schema:
    # every column nullable, as DuckDB gives them: the same Delta schema whichever engine wrote first
    return pa.schema([pa.field(f.name, arrow_type(f.dataType)) for f in schema.fields])


def arrow_type(kind) -> pa.DataType:
    from pyspark.sql import types as t

    if isinstance(kind, t.DecimalType):
        return pa.decimal128(kind.precision, kind.scale)
    if isinstance(kind, t.ArrayType):
        return pa.list_(arrow_type(kind.elementType))
    simple = {
        t.TimestampType: pa.timestamp("us", tz="UTC"),
        t.TimestampNTZType: pa.timestamp("us"),
        t.LongType: pa.int64(),
        t.IntegerType: pa.int32(),
        t.ShortType: pa.int16(),
        t.ByteType: pa.int8(),
        t.DoubleType: pa.float64(),
        t.FloatType: pa.float32(),
        t.StringType: pa.string(),
        t.BooleanType: pa.bool_(),
        t.DateType: pa.date32(),
        t.BinaryType: pa.binary(),
    }
    if type(kind) in simple:
        return simple[type(kind)]
    raise TypeError(f"no Arrow type for Spark's {kind}")
