#!/usr/bin/env python3
"""Load test of `medvec serve` beside Chroma's server on the same vectors (issue 14).

Both servers run on loopback with the same clustered vectors, HNSW M 16, ef_construction 200
and search ef 64, cosine. CLIENTS threads each keep one HTTP connection and send k-NN queries
for SECONDS: the query vectors are held-out points, sent as vectors to both servers, and to
medvec also as a stored id (`like`, the server looks the vector up). Reported per server:
queries/s, p50/p99 latency and recall@k against numpy's exact cosine top-k. The clients run
on the same 2-core machine as the server, for both servers alike.

Not part of the test suite: it needs Chroma (`pip install chromadb`, with its `chroma` command),
which `tools/requirements.txt` does not install. Run it with the Python that has chromadb:

    python -m venv target/chroma-venv && target/chroma-venv/bin/pip install chromadb
    target/chroma-venv/bin/python tools/bench_serve.py --medvec target/release/medvec \\
        --chroma target/chroma-venv/bin/chroma
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def clustered(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + rng.normal(scale=0.6, size=(n, dim))
    return x.astype(np.float32)


def exact_top(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    b = base / np.linalg.norm(base, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    return np.argsort(-(q @ b.T), axis=1)[:, :k]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_medvec(binary: str, store: Path):
    proc = subprocess.Popen([binary, "serve", str(store), "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    url = line.removeprefix("medvec serve: http://")
    addr, token = url.split("/?token=")
    host, port = addr.split(":")
    return proc, host, int(port), token


def build_medvec(binary: str, work: Path, base: np.ndarray) -> Path:
    store = work / "medvec-store"
    np.save(work / "v.npy", base)
    (work / "ids.csv").write_text("id\n" + "".join(f"r{i}\n" for i in range(len(base))))
    dim = base.shape[1]
    run = lambda *a: subprocess.run([binary, *a], check=True, capture_output=True)  # noqa: E731
    run("create", str(store), "c", "--vector", f"v:{dim}:cosine", "--m", "16", "--ef-construction", "200", "--ef-search", "64")
    run("import", str(store), "c", "--npy", f"v={work / 'v.npy'}", "--table", str(work / "ids.csv"))
    run("compact", str(store), "c")
    return store


def start_chroma(binary: str, path: Path, port: int):
    proc = subprocess.Popen([binary, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("chroma did not start")


def build_chroma(port: int, base: np.ndarray):
    import chromadb

    client = chromadb.HttpClient(host="127.0.0.1", port=port)
    meta = {"hnsw:space": "cosine", "hnsw:M": 16, "hnsw:construction_ef": 200, "hnsw:search_ef": 64}
    collection = client.create_collection("cases", metadata=meta)
    for start in range(0, len(base), 4000):
        chunk = base[start:start + 4000]
        collection.add(ids=[f"r{i}" for i in range(start, start + len(chunk))], embeddings=chunk.tolist())
    return collection


class MedvecClient:
    def __init__(self, host, port, token):
        self.conn = http.client.HTTPConnection(host, port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def query(self, body: dict) -> list:
        self.conn.request("POST", "/api/v1/collections/c/search", json.dumps(body), self.headers)
        reply = self.conn.getresponse()
        data = reply.read()
        if reply.status != 200:
            raise RuntimeError(f"medvec {reply.status}: {data[:200]!r}")
        return [int(h["id"][1:]) for h in json.loads(data)["hits"]]


def run_load(make_client, ask, n_queries: int, clients: int, seconds: float) -> dict:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    cpu0, wall0 = os.times(), time.perf_counter()
    deadline = wall0 + seconds
    errors = []

    def worker(t: int):
        try:
            client = make_client()
            i = t
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                ask(client, i % n_queries)
                latencies[t].append(time.perf_counter() - t0)
                i += clients
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - wall0
    if errors:
        raise RuntimeError(errors[0])
    all_ms = np.array([x for per in latencies for x in per]) * 1000
    return {"queries": int(all_ms.size), "seconds": wall, "qps": all_ms.size / wall,
            "p50_ms": float(np.percentile(all_ms, 50)), "p99_ms": float(np.percentile(all_ms, 99)),
            "client_cpu_s": (os.times().user - cpu0.user) + (os.times().system - cpu0.system)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--medvec", default="target/release/medvec")
    p.add_argument("--chroma", default="chroma")
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=30.0)
    args = p.parse_args()

    data = clustered(args.n + args.queries, args.dim, 50, 7)
    base, queries = data[: args.n], data[args.n:]
    truth = exact_top(base, queries, args.k)
    recall_of = lambda got: float(np.mean([len(set(g) & set(t)) / args.k for g, t in zip(got, truth)]))  # noqa: E731
    out = {"n": args.n, "dim": args.dim, "k": args.k, "clients": args.clients, "seconds": args.seconds}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = build_medvec(args.medvec, work, base)
        proc, host, port, token = start_medvec(args.medvec, store)
        try:
            one = MedvecClient(host, port, token)
            vector_body = lambda i: {"field": "v", "vector": queries[i].tolist(), "k": args.k, "ef": 64}  # noqa: E731
            out["medvec_recall"] = recall_of([one.query(vector_body(i)) for i in range(args.queries)])
            out["medvec_vector"] = run_load(lambda: MedvecClient(host, port, token),
                                            lambda c, i: c.query(vector_body(i)), args.queries, args.clients, args.seconds)
            like_body = lambda i: {"field": "v", "like": f"r{(i * 7919) % args.n}", "k": args.k, "ef": 64}  # noqa: E731
            out["medvec_like"] = run_load(lambda: MedvecClient(host, port, token),
                                          lambda c, i: c.query(like_body(i)), args.queries, args.clients, args.seconds)
        finally:
            proc.kill()
        print(json.dumps(out), file=sys.stderr, flush=True)
        cport = free_port()
        chroma = start_chroma(args.chroma, work / "chroma", cport)
        try:
            collection = build_chroma(cport, base)
            ask = lambda c, i: [int(x[1:]) for x in c.query(query_embeddings=[queries[i].tolist()], n_results=args.k)["ids"][0]]  # noqa: E731
            out["chroma_recall"] = recall_of([ask(collection, i) for i in range(args.queries)])
            # What Chroma made of the HNSW settings (its configuration, as the server reports it).
            out["chroma_configuration"] = json.loads(json.dumps(getattr(collection, "configuration_json", None) or collection.metadata, default=str))

            def chroma_client():
                import chromadb

                return chromadb.HttpClient(host="127.0.0.1", port=cport).get_collection("cases")

            out["chroma_vector"] = run_load(chroma_client, ask, args.queries, args.clients, args.seconds)
        finally:
            chroma.kill()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
