#!/usr/bin/env python3
"""Peer baselines for medvec's search benchmark: hnswlib, faiss-cpu (IndexHNSWFlat) and usearch (f32);
on request also the int8 peers usearch_i8 and faiss_sq8.

Run by `cargo bench --bench search` (benches/search.rs), which writes the data set first:

    target/bench-data/base.npy     float32 (n, d), unit rows
    target/bench-data/queries.npy  float32 (q, d), unit rows
    target/bench-data/truth.npy    int32 (q, 10), exact top-10 by inner product

For each peer: build time (median of --repeats builds, wall and CPU); after every build,
recall@10 and QPS (batch query of all queries, median of >= 5 runs) over the ef sweep, reported
as medians over the builds (multi-threaded builds are not deterministic); then, for an index
saved to disk (the last build),
load-to-first-query time (median of 7 fresh processes, page cache warm) and peak RSS (VmHWM)
of a fresh process that loads the index and searches every query at the peer's smallest ef
reaching recall 0.95, with its RssAnon and RssFile at the end of that search. Writes a JSON list
to --out.

Same parameters as medvec: M=16, ef_construction=200, inner product on unit vectors, 2 threads
for build and search (hnswlib set_num_threads(2), faiss omp_set_num_threads(2)).

usearch: connectivity=M (2M on layer 0, as the others), expansion_add=ef_construction,
expansion_search=ef, f32 vectors, metric "ip".

Quantised peers (int8 codes; not run unless --peers or MEDVEC_BENCH_PEERS names them, e.g.
--peers hnswlib,faiss,usearch,usearch_i8,faiss_sq8):
- usearch_i8: usearch as above but dtype "i8" and metric "cos" (usearch's recommended metric for
  i8; the same ranking as "ip" on unit vectors). usearch casts each f32 component to i8 itself:
  x * 127 truncated toward zero, no training, so on unit vectors (components ~ 1/sqrt(d)) only a
  few levels are used and recall plateaus below the f32 peers' (no exact re-rank).
- faiss_sq8: IndexHNSWSQ(d, ScalarQuantizer.QT_8bit, M, METRIC_INNER_PRODUCT) on the unit vectors
  (as the faiss peer), efConstruction=ef_construction; trained on the base vectors (per-dimension
  min/max), the training counted in the build time. Results are scored on the decoded codes
  (no exact re-rank either).

Default peers: $MEDVEC_BENCH_PEERS if set, else hnswlib,faiss,usearch.

Child modes (used on itself): --child PEER --mode {first-query,rss} INDEX QUERIES EF
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

K = 10
M = 16
EF_CONSTRUCTION = 200
TARGET_RECALL = 0.95


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def status_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


# --------------------------------------------------------------------------------------------
# Children: a fresh process that imports only its own library.


def child(args):
    import numpy as np

    queries = np.load(args.paths[1])
    ef = int(args.paths[2])
    index_path = args.paths[0]
    baseline = status_kib("VmRSS:")
    library = CHILD_LIBRARY[args.child]
    if library == "hnswlib":
        import hnswlib

        baseline = status_kib("VmRSS:")
        t = time.perf_counter()
        index = hnswlib.Index(space="ip", dim=queries.shape[1])
        index.load_index(index_path)
        index.set_num_threads(args.threads)
        index.set_ef(ef)
        if args.mode == "first-query":
            labels, _ = index.knn_query(queries[:1], k=K)
        else:
            for _ in range(3):
                index.knn_query(queries, k=K)
    elif library == "usearch":
        from usearch.index import Index

        baseline = status_kib("VmRSS:")
        t = time.perf_counter()
        index = Index.restore(index_path)
        index.expansion_search = ef
        if args.mode == "first-query":
            # usearch returns one query's keys as a flat (K,) array.
            labels = index.search(queries[:1], K, threads=args.threads).keys.reshape(1, -1)
        else:
            for _ in range(3):
                index.search(queries, K, threads=args.threads)
    else:
        assert library == "faiss", library
        import faiss

        faiss.omp_set_num_threads(args.threads)
        baseline = status_kib("VmRSS:")
        t = time.perf_counter()
        index = faiss.read_index(index_path)
        index.hnsw.efSearch = ef
        if args.mode == "first-query":
            _, labels = index.search(queries[:1], K)
        else:
            for _ in range(3):
                index.search(queries, K)
    elapsed_ms = (time.perf_counter() - t) * 1e3
    if args.mode == "first-query":
        assert labels.shape == (1, K)
        print(json.dumps({"first_query_ms": elapsed_ms}))
    else:
        print(
            json.dumps(
                {
                    "vm_hwm_kib": status_kib("VmHWM:"),
                    "baseline_kib": baseline,
                    # At the end of the search (VmHWM is the peak): the process's own memory,
                    # and the file-backed pages mapped into it (libraries, mmapped indexes).
                    "rss_anon_kib": status_kib("RssAnon:"),
                    "rss_file_kib": status_kib("RssFile:"),
                }
            )
        )


def run_child(args, name, mode, index_path, queries_path, ef):
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        name,
        "--mode",
        mode,
        "--threads",
        str(args.threads),
        index_path,
        queries_path,
        str(ef),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


# --------------------------------------------------------------------------------------------
# Peers


class Hnswlib:
    name = "hnswlib"

    def __init__(self, threads):
        import hnswlib

        self.lib = hnswlib
        self.threads = threads
        self.index = None

    def build(self, base):
        index = self.lib.Index(space="ip", dim=base.shape[1])
        index.init_index(max_elements=base.shape[0], ef_construction=EF_CONSTRUCTION, M=M)
        index.set_num_threads(self.threads)
        index.add_items(base, num_threads=self.threads)
        self.index = index

    def search(self, queries, ef):
        self.index.set_ef(ef)
        labels, _ = self.index.knn_query(queries, k=K, num_threads=self.threads)
        return labels

    def save(self, path):
        self.index.save_index(path)


class Faiss:
    name = "faiss"

    def __init__(self, threads):
        import faiss

        self.lib = faiss
        faiss.omp_set_num_threads(threads)
        self.index = None

    def build(self, base):
        index = self.lib.IndexHNSWFlat(base.shape[1], M, self.lib.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = EF_CONSTRUCTION
        index.add(base)
        self.index = index

    def search(self, queries, ef):
        self.index.hnsw.efSearch = ef
        _, labels = self.index.search(queries, K)
        return labels

    def save(self, path):
        self.lib.write_index(self.index, path)


class FaissSq8(Faiss):
    """IndexHNSWSQ with 8-bit codes: graph walks and results on the decoded codes."""

    name = "faiss_sq8"

    def build(self, base):
        lib = self.lib
        index = lib.IndexHNSWSQ(base.shape[1], lib.ScalarQuantizer.QT_8bit, M, lib.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = EF_CONSTRUCTION
        index.train(base)  # per-dimension ranges; part of the build time
        index.add(base)
        self.index = index


class Usearch:
    name = "usearch"
    dtype = "f32"
    metric = "ip"

    def __init__(self, threads):
        from usearch.index import Index

        self.Index = Index
        self.threads = threads
        self.index = None

    def new_index(self, dim):
        return self.Index(
            ndim=dim,
            metric=self.metric,
            dtype=self.dtype,
            connectivity=M,
            expansion_add=EF_CONSTRUCTION,
        )

    def build(self, base):
        import numpy as np

        index = self.new_index(base.shape[1])
        index.add(np.arange(base.shape[0], dtype=np.uint64), base, threads=self.threads)
        self.index = index

    def build_in_chunks(self, base, partial, chunk_rows):
        """Adds the rows `chunk_rows` at a time and saves the index after each chunk, so a
        build longer than a session (usearch at 10M: about 3.5 hours on 2 cores) resumes
        where it stopped. Each insertion still searches the graph of all rows added before it,
        as in one `add`.

        `partial`.json is the commit point: it names the last saved index
        (`partial`.<rows>.index) and carries the running cost and the build's configuration;
        a run with another configuration (rows, dim, threads, M, ef_construction, dtype,
        usearch version) refuses to resume. Returns (wall, CPU, notes): seconds summed over
        the chunks, saves and restores excluded; the wall time also counts any time the
        process was stopped (SIGSTOP), so report the CPU time."""
        import numpy as np
        import usearch

        config = {
            "rows": base.shape[0],
            "dim": base.shape[1],
            "threads": self.threads,
            "connectivity": M,
            "expansion_add": EF_CONSTRUCTION,
            "dtype": self.dtype,
            "metric": self.metric,
            "usearch": usearch.__version__,
        }
        folder, state_path = os.path.dirname(partial), partial + ".json"
        state = {"config": config, "rows": 0, "index": None, "wall_s": 0.0, "cpu_s": 0.0,
                 "chunks": 0, "resumed_at": []}
        if os.path.exists(state_path):
            with open(state_path) as f:
                state = json.load(f)
            if state.get("config") != config:
                sys.exit(f"{state_path} is a build of {state.get('config')}, this run is "
                         f"{config}: delete {partial}.* to build again")
            self.index = self.restore_partial(os.path.join(folder, state["index"]), state["rows"])
            state["resumed_at"].append(state["rows"])
            log(f"{self.name} resuming at row {state['rows']} ({state['cpu_s']:.0f} CPU-s so far)")
        else:
            self.index = self.new_index(base.shape[1])
        while state["rows"] < base.shape[0]:
            start, end = state["rows"], min(base.shape[0], state["rows"] + chunk_rows)
            rows = np.ascontiguousarray(base[start:end])
            c, t = cpu_seconds(), time.perf_counter()
            self.index.add(np.arange(start, end, dtype=np.uint64), rows, threads=self.threads)
            state["wall_s"] += time.perf_counter() - t
            state["cpu_s"] += cpu_seconds() - c
            state["rows"], state["chunks"] = end, state["chunks"] + 1
            saved = f"{os.path.basename(partial)}.{end}.index"
            self.index.save(os.path.join(folder, saved))
            previous, state["index"] = state["index"], saved
            with open(state_path + ".tmp", "w") as f:
                json.dump(state, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(state_path + ".tmp", state_path)
            if previous:
                os.remove(os.path.join(folder, previous))
            log(f"{self.name} rows {end}: {state['wall_s']:.0f} s, {state['cpu_s']:.0f} CPU-s so far")
        notes = {k: state[k] for k in ("chunks", "resumed_at")}
        return state["wall_s"], state["cpu_s"], dict(notes, chunk_rows=chunk_rows)

    def restore_partial(self, path, rows):
        # `restore` builds the Index from the file's metadata and the arguments given: the
        # insertion beam is not in the file, and would fall back to usearch's default (128).
        index = self.Index.restore(path, connectivity=M, expansion_add=EF_CONSTRUCTION)
        if index is None or len(index) != rows or index.expansion_add != EF_CONSTRUCTION:
            found = "unreadable" if index is None else f"{len(index)} rows, expansion_add {index.expansion_add}"
            sys.exit(f"{path}: {found}, expected {rows} rows and expansion_add {EF_CONSTRUCTION}")
        return index

    def search(self, queries, ef):
        self.index.expansion_search = ef
        keys = self.index.search(queries, K, threads=self.threads).keys
        return keys.reshape(len(queries), K)

    def save(self, path):
        self.index.save(path)


class UsearchI8(Usearch):
    """usearch storing i8 vectors (it casts the f32 input itself); "cos", as usearch advises for i8."""

    name = "usearch_i8"
    dtype = "i8"
    metric = "cos"


PEERS = {p.name: p for p in (Hnswlib, Faiss, Usearch, UsearchI8, FaissSq8)}
DEFAULT_PEERS = "hnswlib,faiss,usearch"
# The library a child process imports for each peer (save/load and search are the same calls).
CHILD_LIBRARY = {
    "hnswlib": "hnswlib",
    "faiss": "faiss",
    "faiss_sq8": "faiss",
    "usearch": "usearch",
    "usearch_i8": "usearch",
}


def recall(labels, truth):
    found = sum(len(set(row.tolist()) & set(want.tolist())) for row, want in zip(labels, truth))
    return found / (truth.shape[0] * K)


def sweep_once(peer, args, queries, truth):
    sweep = []
    for ef in args.efs:
        labels = peer.search(queries, ef)  # warm-up
        r = recall(labels, truth)
        times, cpus = [], []
        for _ in range(max(5, args.repeats)):
            t, c = time.perf_counter(), cpu_seconds()
            peer.search(queries, ef)
            times.append(time.perf_counter() - t)
            cpus.append(cpu_seconds() - c)
        qps = len(queries) / statistics.median(times)
        qps_cpu = len(queries) / statistics.median(cpus)
        log(f"{peer.name} ef={ef:<4} recall@{K}={r:.4f} QPS={qps:.0f} queries/CPU-s={qps_cpu:.0f}")
        sweep.append({"ef": ef, "recall": r, "qps": qps, "qps_cpu": qps_cpu})
    return sweep


def combine(sweeps):
    """Per ef: median recall and QPS over the builds, and the recall range."""
    out = []
    for i, point in enumerate(sweeps[0]):
        recalls = [s[i]["recall"] for s in sweeps]
        out.append(
            {
                "ef": point["ef"],
                "recall": statistics.median(recalls),
                "recall_min": min(recalls),
                "recall_max": max(recalls),
                "qps": statistics.median(s[i]["qps"] for s in sweeps),
                "qps_cpu": statistics.median(s[i]["qps_cpu"] for s in sweeps),
            }
        )
    return out


def measure(peer, args, base, queries, truth, queries_path):
    builds, cpus, sweeps, chunked = [], [], [], None
    for i in range(args.repeats):
        peer.index = None
        if args.chunk_rows:
            partial = os.path.join(args.data, f"{peer.name}.partial")
            wall, cpu, chunked = peer.build_in_chunks(base, partial, args.chunk_rows)
        else:
            c, t = cpu_seconds(), time.perf_counter()
            peer.build(base)
            wall, cpu = time.perf_counter() - t, cpu_seconds() - c
        builds.append(wall)
        cpus.append(cpu)
        log(f"{peer.name} build {i + 1}/{args.repeats}: {wall:.1f} s, {cpu:.1f} CPU-s")
        # Multi-threaded builds are not deterministic: sweep every build, report medians.
        sweeps.append(sweep_once(peer, args, queries, truth))
    sweep = combine(sweeps)
    ef_target = next((p["ef"] for p in sweep if p["recall"] >= TARGET_RECALL), args.efs[-1])
    index_path = os.path.join(args.data, f"{peer.name}.index")
    peer.save(index_path)
    peer.index = None
    run_child(args, peer.name, "first-query", index_path, queries_path, ef_target)  # warm cache
    first = [
        run_child(args, peer.name, "first-query", index_path, queries_path, ef_target)[
            "first_query_ms"
        ]
        for _ in range(7)
    ]
    rss = [run_child(args, peer.name, "rss", index_path, queries_path, ef_target) for _ in range(3)]
    result = {
        "name": peer.name,
        "build_s": statistics.median(builds),
        "build_runs_s": builds,
        "build_cpu_s": statistics.median(cpus),
        "sweep": sweep,
        "ef_target": ef_target,
        "first_query_ms": statistics.median(first),
        "vm_hwm_kib": statistics.median(r["vm_hwm_kib"] for r in rss),
        "baseline_kib": statistics.median(r["baseline_kib"] for r in rss),
        "rss_anon_kib": statistics.median(r["rss_anon_kib"] for r in rss),
        "rss_file_kib": statistics.median(r["rss_file_kib"] for r in rss),
        "index_bytes": os.path.getsize(index_path),
    }
    if chunked:
        result["chunked_build"] = chunked
    log(
        f"{peer.name} load-to-first-query {result['first_query_ms']:.1f} ms, "
        f"VmHWM {result['vm_hwm_kib'] / 1024:.0f} MiB, at the end RssAnon "
        f"{result['rss_anon_kib'] / 1024:.0f} MiB + RssFile {result['rss_file_kib'] / 1024:.0f} MiB "
        f"(ef={ef_target})"
    )
    return result


def log(msg):
    print(f"bench_peers: {msg}", file=sys.stderr, flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "target", "bench-data"))
    p.add_argument("--efs", default="16,32,64,128,256")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--peers",
        default=os.environ.get("MEDVEC_BENCH_PEERS") or DEFAULT_PEERS,
        help=f"comma-separated, of {', '.join(PEERS)} (default $MEDVEC_BENCH_PEERS or {DEFAULT_PEERS})",
    )
    p.add_argument(
        "--chunk-rows",
        type=int,
        default=0,
        help="usearch only: build in chunks of this many rows, saving after each, and resume "
        "from $DATA/<peer>.partial.* when present (the build's wall time then counts only the "
        "adds; report its CPU time)",
    )
    p.add_argument("--out")
    p.add_argument("--child", choices=list(PEERS))
    p.add_argument("--mode", choices=["first-query", "rss"])
    p.add_argument("paths", nargs="*")
    args = p.parse_args()
    if args.child:
        return child(args)
    args.efs = [int(x) for x in args.efs.split(",") if x.strip()]
    names = [x.strip() for x in args.peers.split(",") if x.strip()]
    unknown = [x for x in names if x not in PEERS]
    if unknown:
        p.error(f"unknown peer(s) {', '.join(unknown)}; known: {', '.join(PEERS)}")

    if args.chunk_rows and (args.repeats != 1 or any(not n.startswith("usearch") for n in names)):
        p.error("--chunk-rows needs --repeats 1 and usearch peers only")

    import numpy as np

    base = np.load(os.path.join(args.data, "base.npy"))
    queries_path = os.path.join(args.data, "queries.npy")
    queries = np.load(queries_path)
    truth = np.load(os.path.join(args.data, "truth.npy"))
    assert base.dtype == np.float32 and queries.dtype == np.float32
    assert truth.shape == (queries.shape[0], K)
    log(f"{base.shape[0]} x {base.shape[1]} base, {queries.shape[0]} queries, threads={args.threads}")
    results = []
    for name in names:
        peer = PEERS[name](args.threads)
        results.append(measure(peer, args, base, queries, truth, queries_path))
        del peer
    text = json.dumps(results, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    sys.exit(main())
