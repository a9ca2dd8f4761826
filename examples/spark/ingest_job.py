"""Distributed ingest into shards with Spark, and searching the shards as one collection.

Spark reads the manifest (CSV: ``id``, ``path`` and payload columns, what
``medvec ingest --manifest`` takes) and hash-partitions its rows by id over ``--partitions``
tasks. Task ``p`` writes its rows to a partition manifest and runs the ``medvec`` binary::

    medvec ingest SHARDS/shard-p COLLECTION --manifest part.csv --root ROOT --image-model ...

so each shard is a store folder of its own with one writer, and the tasks never coordinate. A
collection is self-contained, so the shards are then searched as one collection:
``medvec.search_shards([...])`` in Python, ``medvec search SHARDS/shard-0 COLLECTION --store
SHARDS/shard-1 ...`` on the command line; with ``exact`` the merged top-k equals an exact
search of one unsharded collection.

Rows ``medvec ingest`` cannot use go to ``SHARDS/rejects-p.csv`` (id, path, reason, detail)
and the rest is stored, as without Spark. Run it from the repository root (see README.md)::

    .venv/bin/python examples/spark/ingest_job.py --manifest fixtures/archive/manifest.csv \\
        --root fixtures/images --image-model fixtures/models/tiny-image \\
        --collection ham10000 --shards /tmp/shards --partitions 4 --like ISIC_0027419
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Sequence

import medvec
import sparkjob

DEFAULT_BIN = sparkjob.REPO / "target" / "release" / "medvec"
PARTIAL = 3  # medvec ingest's exit status when some rows were rejected and the rest stored


@dataclass(frozen=True)
class IngestPlan:
    """What every task needs to run ``medvec ingest``; absolute paths, since executors do not
    run in the driver's working directory (on a cluster they must exist on every node)."""

    medvec_bin: str
    shards: str
    collection: str
    root: str
    image_model: str
    text_model: Optional[str] = None
    template: Optional[str] = None
    threads: int = 1

    def shard(self, partition: int) -> str:
        return os.path.join(self.shards, f"shard-{partition}")

    def command(self, partition: int, manifest: str) -> list:
        command = [
            self.medvec_bin, "ingest", self.shard(partition), self.collection,
            "--manifest", manifest, "--root", self.root, "--image-model", self.image_model,
            "--rejects", os.path.join(self.shards, f"rejects-{partition}.csv"),
            "--threads", str(self.threads), "--json",
        ]
        if self.text_model:
            command += ["--text-model", self.text_model]
        if self.template:
            command += ["--template", self.template]
        return command


# --- executor side -----------------------------------------------------------------------


def write_manifest(path: str, columns: Sequence[str], rows: Iterable) -> int:
    """Writes ``rows`` as a CSV manifest with header ``columns``; returns the row count. Spark
    reads empty cells as null, which the csv module writes back empty."""
    count = 0
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def ingest_partition(plan: IngestPlan, columns: Sequence[str], partition: int, rows: Iterable) -> Iterator[dict]:
    """mapPartitionsWithIndex: ingests this partition's rows into shard ``partition``.

    Runs for empty partitions too, which leaves an empty shard with the collection's schema,
    so every shard path the job returns can be opened and searched."""
    os.makedirs(plan.shards, exist_ok=True)  # on this node: shards may go to executor-local disks
    with tempfile.TemporaryDirectory(prefix="medvec-part-") as tmp:
        manifest = os.path.join(tmp, "part.csv")
        count = write_manifest(manifest, columns, rows)
        done = subprocess.run(plan.command(partition, manifest), capture_output=True, text=True)
    if done.returncode not in (0, PARTIAL):
        # Failing the task lets Spark retry it; a rerun skips the ids already stored.
        raise RuntimeError(f"medvec ingest into {plan.shard(partition)} failed (exit {done.returncode}): {done.stderr.strip()}")
    report = json.loads(done.stdout.splitlines()[-1])
    yield {
        "partition": partition,
        "shard": plan.shard(partition),
        "rows": count,
        "ingested": report["ingested"],
        "skipped": report["skipped"],
        "rejected": report["rejected"],
        "rejects": report["rejects_file"],
    }


# --- driver side -------------------------------------------------------------------------


def read_manifest(spark, path: str):
    """The manifest as a DataFrame of strings, exactly as written: no type inference (an age
    of ``80.0`` stays ``80.0``), RFC 4180 quoting (a quote inside a value is doubled), values
    may span lines."""
    frame = spark.read.csv(path, header=True, inferSchema=False, escape='"', multiLine=True, mode="FAILFAST")
    if "id" not in frame.columns or "path" not in frame.columns:
        raise ValueError(f"{path}: a manifest needs `id` and `path` columns, found {frame.columns}")
    return frame


def run(spark, manifest: str, shards: str, collection: str, root: str, image_model: str,
        text_model: Optional[str] = None, template: Optional[str] = None, partitions: int = 4,
        medvec_bin: str = str(DEFAULT_BIN), threads: Optional[int] = None) -> list:
    """Ingests ``manifest`` into ``partitions`` shards under ``shards``; returns one report per
    shard (partition, shard, rows, ingested, skipped, rejected, rejects), in partition order."""
    sparkjob.ship(spark, "sparkjob", "ingest_job")
    absolute = lambda p: os.path.abspath(p) if p else None  # noqa: E731
    plan = IngestPlan(
        medvec_bin=absolute(medvec_bin), shards=absolute(shards), collection=collection,
        root=absolute(root), image_model=absolute(image_model), text_model=absolute(text_model),
        template=template,
        # Each task runs with the cores Spark gave it, so concurrent tasks do not oversubscribe.
        threads=threads or int(spark.conf.get("spark.task.cpus", "1")),
    )
    # A URI (hdfs://, s3a://) is Spark's to resolve; a plain path is the driver's.
    frame = read_manifest(spark, str(manifest) if "://" in str(manifest) else absolute(manifest))
    # By the hash of the id: a rerun (or a retried task) sends every id to the same shard, where
    # `medvec ingest` skips it if stored, so no id ends up in two shards.
    parts = frame.repartition(partitions, "id").rdd
    task = functools.partial(ingest_partition, plan, frame.columns)
    return sorted(parts.mapPartitionsWithIndex(task).collect(), key=lambda r: r["partition"])


def open_shards(paths: Sequence[str], collection: str) -> list:
    """Read-only handles on ``collection`` in each shard store."""
    return [medvec.open(path, read_only=True)[collection] for path in paths]


def search_like(paths: Sequence[str], collection: str, field: str, record_id: str, k: int = 5, exact: bool = False):
    """The ``k`` records of all shards nearest to the stored record ``record_id`` (whichever
    shard holds it), leaving the record itself out as ``medvec search --like`` does: a
    DataFrame of rank, id, score and payload."""
    shards = open_shards(paths, collection)
    vector = next((r["vectors"][field] for r in (s.get(record_id) for s in shards) if r), None)
    if vector is None:
        raise medvec.InvalidInput(f"--like {record_id}: no shard holds a record with a `{field}` vector")
    hits = medvec.search_shards(shards, field, vector, k=k + 1, exact=exact).to_pandas()
    hits = hits[hits["id"] != record_id].head(k).reset_index(drop=True)
    hits["rank"] = range(1, len(hits) + 1)
    return hits.drop(columns="query")


def cli_search(medvec_bin: str, paths: Sequence[str], collection: str, field: str, record_id: str, k: int = 5) -> list:
    """The same search on the command line: ``medvec search SHARD0 COLL --store SHARD1 ...``."""
    first, *rest = paths
    stores = [arg for path in rest for arg in ("--store", path)]
    return [medvec_bin, "search", first, collection, *stores, "--field", field, "--like", record_id, "-k", str(k)]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", required=True, help="CSV manifest: id, path and payload columns")
    parser.add_argument("--root", required=True, help="folder the manifest's image paths are relative to")
    parser.add_argument("--collection", required=True)
    parser.add_argument("--shards", required=True, help="folder for the shard stores shard-0, shard-1, ...")
    parser.add_argument("--partitions", type=int, default=4, help="tasks, hence shards (default 4)")
    parser.add_argument("--image-model", required=True, help="ONNX image model folder (Hugging Face layout)")
    parser.add_argument("--text-model", help="ONNX text model folder; the text comes from --template")
    parser.add_argument("--template", help="text template or preset (ham10000, brset, dicom)")
    parser.add_argument("--medvec-bin", default=str(DEFAULT_BIN), help="the medvec binary (on every node)")
    parser.add_argument("--threads", type=int, help="threads per medvec ingest (default spark.task.cpus)")
    parser.add_argument("--like", help="afterwards, search the shards for the records nearest to this one")
    parser.add_argument("--field", default="image", help="vector field of the --like search (default image)")
    parser.add_argument("--master", help="Spark master (default: spark-submit's --master, else local[2])")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    spark = sparkjob.session(args.master, "medvec-ingest")
    try:
        reports = run(spark, args.manifest, args.shards, args.collection, args.root, args.image_model,
                      args.text_model, args.template, args.partitions, args.medvec_bin, args.threads)
    finally:
        spark.stop()
    for r in reports:
        rejects = f", rejects in {r['rejects']}" if r["rejects"] else ""
        counts = f"{r['rows']} rows, {r['ingested']} ingested, {r['skipped']} already stored, {r['rejected']} rejected"
        print(f"{r['shard']}: {counts}{rejects}")
    if args.like:
        paths = [r["shard"] for r in reports]
        print(f"== medvec.search_shards: the 5 records nearest to {args.like}")
        print(search_like(paths, args.collection, args.field, args.like).to_string(index=False))
        command = cli_search(args.medvec_bin, paths, args.collection, args.field, args.like)
        print("== the same on the command line:\n" + shlex.join(command))
        subprocess.run(command, check=True)
    return 0


if __name__ == "__main__":
    # Run the copy imported as `ingest_job`, not this `__main__`, so that Spark pickles the
    # task function by reference (see sparkjob.ship).
    import ingest_job

    sys.exit(ingest_job.main())
