#!/usr/bin/env python3
"""Benchmark of the medvec Python package (issue 13), all in one run on the same data:

1. single-query latency: `coll.search(field, one_vector, k=10)` against hnswlib's
   `knn_query(one_vector, k=10)`, same index parameters (M 16, ef_construction 200, ef 64),
   median per-call wall and CPU time over the same queries, plus recall@10 of both against exact
   numpy search;
2. batch search: `coll.search(field, Q, k=10)` of all queries in one call (in-process) against
   `medvec search --queries Q.npy -k 10 --json` (whole process: open, search, print);
3. `coll.to_arrow()` of the whole collection: median wall time.

    .venv/bin/python tools/bench_python.py [--n 100000] [--dim 512] [--queries 1000] [--repeats 3]

The data are clustered unit vectors (100 Gaussian clusters, spread 0.6; data and queries share
the centres), written with
`coll.upsert` and compacted into one segment (one graph), as `medvec compact` leaves a store.
Prints one JSON object with every number; benches/README.md has the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def clustered(n: int, centres: np.ndarray, seed: int) -> np.ndarray:
    """`n` unit vectors around the given cluster centres (the data and the queries share them)."""
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, len(centres), n)] + rng.normal(scale=0.6, size=(n, centres.shape[1]))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def per_call(search, queries):
    walls, cpus, ids = [], [], []
    for q in queries:
        out, w, c = timed(lambda: search(q))
        walls.append(w)
        cpus.append(c)
        ids.append(out)
    return statistics.median(walls), statistics.median(cpus), ids


def recall(found, truth):
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import hnswlib
    import pyarrow  # noqa: F401  (imported before timing: its first import takes ~0.4 s)

    import medvec

    centres = np.random.default_rng(0).normal(size=(100, args.dim))
    data = clustered(args.n, centres, 1)
    queries = clustered(args.queries, centres, 2)
    truth = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    ids = [f"r{i}" for i in range(args.n)]
    out: dict = {"n": args.n, "dim": args.dim, "queries": args.queries, "threads": args.threads}

    tmp = Path(tempfile.mkdtemp(prefix="medvec-bench-python-"))
    store = medvec.open(tmp / "store")
    coll = store.create_collection("c", vectors={"v": (args.dim, "cosine")}, m=16, ef_construction=200, ef_search=64)
    _, out["medvec_build_s"], _ = timed(lambda: (coll.upsert(ids, vectors={"v": data}), coll.compact()))
    store.close()

    index = hnswlib.Index("cosine", args.dim)
    index.init_index(args.n, M=16, ef_construction=200, random_seed=0)
    index.set_num_threads(args.threads)
    _, out["hnswlib_build_s"], _ = timed(lambda: index.add_items(data, np.arange(args.n)))
    index.set_ef(64)

    reader = medvec.open(tmp / "store", read_only=True)
    coll = reader["c"]
    coll.search("v", queries[0], k=10, ef=64)  # first search maps the segment and checks its CRC
    index.set_num_threads(1)
    rows = {f"r{i}": i for i in range(args.n)}
    medvec_runs, hnsw_runs = [], []
    for _ in range(args.repeats):  # interleaved, so machine load hits both alike
        w, c, found = per_call(lambda q: coll.search("v", q, k=10, ef=64).ids[0], queries)
        medvec_runs.append((w, c, recall([[rows[i] for i in f] for f in found], truth)))
        w, c, found = per_call(lambda q: index.knn_query(q, k=10)[0][0], queries)
        hnsw_runs.append((w, c, recall(found, truth)))
    med = lambda runs, i: statistics.median(r[i] for r in runs)  # noqa: E731
    out["single"] = {
        "medvec_us": med(medvec_runs, 0) * 1e6,
        "medvec_cpu_us": med(medvec_runs, 1) * 1e6,
        "medvec_recall": med(medvec_runs, 2),
        "hnswlib_us": med(hnsw_runs, 0) * 1e6,
        "hnswlib_cpu_us": med(hnsw_runs, 1) * 1e6,
        "hnswlib_recall": med(hnsw_runs, 2),
    }
    out["single"]["ratio_medvec_over_hnswlib"] = out["single"]["medvec_us"] / out["single"]["hnswlib_us"]

    q_path = tmp / "q.npy"
    np.save(q_path, queries)
    binary = os.environ.get("MEDVEC_BIN", str(ROOT / "target" / "release" / "medvec"))
    py_runs, cli_runs = [], []
    for _ in range(args.repeats):
        _, w, _ = timed(lambda: coll.search("v", queries, k=10, ef=64))
        py_runs.append(w)
        _, w, _ = timed(
            lambda: subprocess.run(
                [binary, "search", str(tmp / "store"), "c", "--field", "v", "--queries", str(q_path), "-k", "10", "--json"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        )
        cli_runs.append(w)
    out["batch"] = {
        "python_qps": args.queries / statistics.median(py_runs),
        "cli_qps": args.queries / statistics.median(cli_runs),
    }
    out["batch"]["ratio_python_over_cli"] = out["batch"]["python_qps"] / out["batch"]["cli_qps"]

    arrow_runs = []
    for _ in range(args.repeats):
        table, w, c = timed(coll.to_arrow)
        arrow_runs.append((w, c))
    out["to_arrow"] = {
        "wall_ms": statistics.median(r[0] for r in arrow_runs) * 1e3,
        "cpu_ms": statistics.median(r[1] for r in arrow_runs) * 1e3,
        "rows": table.num_rows,
    }
    reader.close()
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
