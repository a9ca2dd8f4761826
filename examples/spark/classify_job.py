"""Batch classification on Spark with a head saved in a medvec store.

Two inputs, one output. The output is Parquet with the columns of ``medvec classify``: ``id``,
``predicted`` and ``p_<class>`` (float32) for each class of the head. Rows come out in no
particular order.

* ``--input VECTORS``: a Parquet folder or file (or an Arrow/Feather file, read on the driver)
  with an ``id`` column and one ``array<float>`` column per field of the head, for example
  ``medvec export --parquet`` output or vectors computed elsewhere. Every executor classifies
  its Arrow batches with ``Collection.classify(head, data, ids=...)``, the same code and numbers
  as ``medvec classify --input-npy``.
* no ``--input``: the records stored in the collection that match ``--filter``, as
  ``medvec classify --filter`` does. The driver splits the sorted record ids into ranges; each
  task classifies one range (``FILTER and id >= LO and id < HI``) straight from the store, so
  the store must be on storage every executor can read.

Run it from the repository root (see README.md)::

    .venv/bin/python examples/spark/classify_job.py --store STORE --collection cases \\
        --head dx-late --input vectors.parquet --output preds.parquet
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import medvec
import sparkjob


@dataclass(frozen=True)
class HeadRef:
    """Which head to use; small and picklable, so Spark sends it to the executors."""

    store: str
    collection: str
    head: str


@dataclass
class LoadedHead:
    collection: medvec.Collection
    name: str
    head: medvec.Head
    fields: tuple
    classes: list


# Heads loaded in this Python process, by (store, collection, head). Spark reuses a Python
# worker for task after task (spark.python.worker.reuse, on by default), and this dict lives as
# long as the worker, so each worker opens the store and reads the head's metadata once, not
# once per task or per Arrow batch. The functions below are shipped by module name
# (sparkjob.ship), never pickled by value: a by-value copy would carry its own empty dict into
# every task and the cache would never hit. The cache lives as long as the Spark application:
# to use a head retrained while it runs, save it under a new name.
# What is cached is the open store and the loaded head (`Collection.head`): its weights, or a
# kNN head's training vectors, are read once per worker, not once per Arrow batch.
_HEADS: dict = {}


def load_head(ref: HeadRef) -> LoadedHead:
    """The head ``ref`` names, from this process's cache, opening the store (read-only: any
    number of executors read one store without locks) on first use."""
    key = (ref.store, ref.collection, ref.head)
    if key not in _HEADS:
        collection = medvec.open(ref.store, read_only=True)[ref.collection]
        head_meta(collection, ref.head)  # a clear error naming the saved heads
        head = collection.head(ref.head)
        fields = tuple(head.meta["fields"])
        _HEADS[key] = LoadedHead(collection, ref.head, head, fields, list(head.classes))
    return _HEADS[key]


def head_meta(collection: medvec.Collection, name: str) -> dict:
    heads = {h["name"]: h["meta"] for h in collection.heads()}
    if name not in heads:
        raise medvec.InvalidInput(f"{collection.name}: no head named {name!r} (saved: {sorted(heads)})")
    return heads[name]


def prediction_schema(classes: Sequence[str]) -> pa.Schema:
    """The Arrow schema of one prediction row: the CLI's columns, probabilities as float32."""
    columns = [("id", pa.string()), ("predicted", pa.string())]
    return pa.schema(columns + [(f"p_{c}", pa.float32()) for c in classes])


def _to_batch(frame, schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


# --- executor side -----------------------------------------------------------------------


def vector_matrix(batch: pa.RecordBatch, field: str) -> np.ndarray:
    """Column ``field`` of ``batch`` (a list of floats per row) as a rows × dim matrix.

    >>> batch = pa.RecordBatch.from_pydict({"image": [[1.0, 2.0], [3.0, 4.0]]})
    >>> vector_matrix(batch, "image").tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    """
    column = batch.column(field)
    if column.null_count:
        raise ValueError(f"{field}: {column.null_count} rows have no vector; the head needs every one of its fields")
    dims = pc.unique(pc.list_value_length(column)).to_pylist()
    if len(dims) > 1:
        raise ValueError(f"{field}: vectors of different lengths {sorted(dims)}")
    # flatten(), unlike .values, honours the offsets of a sliced batch.
    values = column.flatten().to_numpy(zero_copy_only=False)  # a null element becomes NaN: refused
    return values.reshape(len(column), dims[0] if dims else 0)


def classify_batches(ref: HeadRef, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow over new vectors: one ``Collection.classify`` call per Arrow batch."""
    head = load_head(ref)
    schema = prediction_schema(head.classes)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        data = {field: vector_matrix(batch, field) for field in head.fields}
        ids = batch.column("id").to_pylist()
        yield _to_batch(head.head.classify(data, ids=ids), schema)


def classify_ranges(ref: HeadRef, filter: Optional[str], batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow over id ranges: the stored records of each range that match ``filter``."""
    head = load_head(ref)
    schema = prediction_schema(head.classes)
    for batch in batches:
        for lo, hi in zip(batch.column("lo").to_pylist(), batch.column("hi").to_pylist()):
            frame = head.collection.classify(head.name, filter=range_filter(filter, lo, hi))
            yield _to_batch(frame, schema)


# --- driver side -------------------------------------------------------------------------


def quote(value: str) -> str:
    """A string literal of medvec's filter language.

    >>> print(quote('a "b" \\\\ c'))
    "a \\"b\\" \\\\ c"
    """
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def range_filter(filter: Optional[str], lo: Optional[str], hi: Optional[str]) -> Optional[str]:
    """``filter`` restricted to ids in [lo, hi) (``None``: unbounded).

    >>> range_filter('split = "test"', "case0100", None)
    '(split = "test") and id >= "case0100"'
    >>> print(range_filter(None, None, None))
    None
    """
    parts = [f"({filter})"] if filter else []
    if lo is not None:
        parts.append(f"id >= {quote(lo)}")
    if hi is not None:
        parts.append(f"id < {quote(hi)}")
    return " and ".join(parts) or None


def id_ranges(ids: Sequence[str], parts: int) -> list:
    """Up to ``parts`` ranges [lo, hi) that cover every id, with about as many ids in each.

    Arrow sorts strings by their UTF-8 bytes, which is how medvec's filters compare them, so
    the ranges are disjoint and cover everything under the filter too.

    >>> id_ranges(["d", "a", "c", "b"], 2)
    [(None, 'c'), ('c', None)]
    >>> id_ranges([], 3)
    [(None, None)]
    """
    ordered = pc.unique(pa.array(ids, type=pa.string())).sort()
    n = len(ordered)
    cuts = sorted({ordered[n * i // parts].as_py() for i in range(1, parts)}) if n else []
    bounds = [None, *cuts, None]
    return list(zip(bounds[:-1], bounds[1:]))


def spark_schema(classes: Sequence[str]):
    from pyspark.sql.types import FloatType, StringType, StructField, StructType

    fields = [StructField("id", StringType()), StructField("predicted", StringType())]
    return StructType(fields + [StructField(f"p_{c}", FloatType()) for c in classes])


def read_vectors(spark, path: str, fields: Sequence[str]):
    """The ``id`` and ``fields`` columns of a Parquet or Arrow/Feather input as a DataFrame."""
    if path.endswith((".arrow", ".feather", ".ipc")):
        import pyarrow.feather

        # Spark has no Arrow IPC reader: this reads the file on the driver, so keep big inputs
        # in Parquet. Spark does not take FixedSizeList columns; plain lists hold the same.
        table = pyarrow.feather.read_table(path, columns=["id", *fields])
        table = table.cast(pa.schema([_variable_list(f) for f in table.schema]))
        frame = spark.createDataFrame(table)
    else:
        frame = spark.read.parquet(path)
    return frame.select(frame["id"].cast("string").alias("id"), *fields)


def _variable_list(field: pa.Field) -> pa.Field:
    if pa.types.is_fixed_size_list(field.type):
        return pa.field(field.name, pa.list_(field.type.value_type), field.nullable)
    return field


def classify_vectors(spark, ref: HeadRef, path: str):
    """Predictions (a lazy DataFrame) for the vectors in ``path``."""
    head = load_head(ref)  # on the driver too: fails early on a missing head, gives the schema
    frame = read_vectors(spark, path, head.fields)
    task = functools.partial(classify_batches, ref)
    return frame.mapInArrow(task, spark_schema(head.classes))


def classify_stored(spark, ref: HeadRef, filter: Optional[str], partitions: int):
    """Predictions (a lazy DataFrame) for the stored records matching ``filter``."""
    head = load_head(ref)
    ids = head.collection.to_arrow(fields=[]).column("id")
    ranges = id_ranges(ids, partitions)
    # One range per partition, so `partitions` tasks share the work.
    frame = spark.createDataFrame(spark.sparkContext.parallelize(ranges, len(ranges)), "lo string, hi string")
    task = functools.partial(classify_ranges, ref, filter)
    return frame.mapInArrow(task, spark_schema(head.classes))


def run(spark, store: str, collection: str, head: str, output: str, input: Optional[str] = None,
        filter: Optional[str] = None, partitions: Optional[int] = None, overwrite: bool = False) -> int:
    """Classifies ``input`` (or the stored records matching ``filter``), writes Parquet to
    ``output`` and returns the number of predictions."""
    if input is not None and filter is not None:
        raise ValueError("--filter selects stored records; it does not apply to --input")
    sparkjob.ship(spark, "sparkjob", "classify_job")
    ref = HeadRef(os.path.abspath(store), collection, head)  # executors do not share our cwd
    if input is not None:
        predictions = classify_vectors(spark, ref, str(input))
    else:
        predictions = classify_stored(spark, ref, filter, partitions or spark.sparkContext.defaultParallelism)
    predictions.write.mode("overwrite" if overwrite else "errorifexists").parquet(str(output))
    return spark.read.parquet(str(output)).count()


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, help="medvec store folder (read-only; shared storage on a cluster)")
    parser.add_argument("--collection", required=True)
    parser.add_argument("--head", required=True, help="name of a head saved with `medvec train` or coll.train")
    parser.add_argument("--input", help="Parquet (or .arrow/.feather) of id + one list<float> column per head field")
    parser.add_argument("--filter", help="without --input: classify the stored records matching this filter")
    parser.add_argument("--output", required=True, help="Parquet folder for the predictions")
    parser.add_argument("--partitions", type=int, help="without --input: tasks to split the records over")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    parser.add_argument("--master", help="Spark master (default: spark-submit's --master, else local[2])")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    spark = sparkjob.session(args.master, "medvec-classify")
    try:
        count = run(spark, args.store, args.collection, args.head, args.output, args.input,
                    args.filter, args.partitions, args.overwrite)
    finally:
        spark.stop()
    print(f"{count} predictions written to {args.output}")
    return 0


if __name__ == "__main__":
    # Run the copy imported as `classify_job`, not this `__main__`: Spark pickles functions of
    # `__main__` by value, which would give each task a fresh _HEADS (see above).
    import classify_job

    sys.exit(classify_job.main())
