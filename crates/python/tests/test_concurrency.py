"""Threads and processes: calls release the GIL, threads searching one collection get the
sequential results, and a read-only handle reads while a `medvec` CLI writer imports."""

from __future__ import annotations

import subprocess
import threading
import time

import numpy as np

import medvec
from conftest import medvec_bin


def big_collection(tmp_path, n=20000, dim=64):
    rng = np.random.default_rng(7)
    store = medvec.open(tmp_path / "big")
    c = store.create_collection("c", vectors={"v": dim})
    c.upsert([f"r{i}" for i in range(n)], vectors={"v": rng.normal(size=(n, dim)).astype(np.float32)})
    c.flush()
    return store, c, rng


def test_search_releases_the_gil(tmp_path):
    store, c, rng = big_collection(tmp_path)
    queries = rng.normal(size=(3000, 64)).astype(np.float32)
    started, done = threading.Event(), threading.Event()

    def search():
        started.set()
        c.search("v", queries, k=10, exact=True)
        done.set()

    worker = threading.Thread(target=search)
    t0 = time.process_time()
    worker.start()
    started.wait()
    # While the worker is inside one native call, this thread can only count if the GIL is free.
    count = 0
    while not done.is_set():
        count += 1
    worker.join()
    assert time.process_time() - t0 > 0.05, "the search was too short to tell"
    assert count > 10000, f"the main thread ran {count} loop steps during the search: the GIL was held"
    store.close()


def test_threads_searching_one_collection_get_the_sequential_results(tmp_path):
    store, c, rng = big_collection(tmp_path, n=5000, dim=32)
    batches = [rng.normal(size=(200, 32)).astype(np.float32) for _ in range(8)]
    expected = [c.search("v", q, k=10, exact=bool(i % 2)).ids.tolist() for i, q in enumerate(batches)]
    got: dict[int, list] = {}

    def run(i):
        got[i] = c.search("v", batches[i], k=10, exact=bool(i % 2)).ids.tolist()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [got[i] for i in range(len(batches))] == expected
    store.close()


def test_a_reader_reads_while_the_cli_writes(tmp_path):
    path = tmp_path / "s"
    with medvec.open(path) as store:
        c = store.create_collection("c", vectors={"v": 16}, payload={"n": int})
        c.upsert(["seed"], vectors={"v": np.ones((1, 16))}, payload={"n": [0]})
    rng = np.random.default_rng(3)
    n = 60000
    np.save(tmp_path / "v.npy", rng.normal(size=(n, 16)).astype(np.float32))
    with open(tmp_path / "t.csv", "w") as f:
        f.write("id,n\n" + "".join(f"w{i},{i}\n" for i in range(n)))
    writer = subprocess.Popen(
        [medvec_bin(), "import", str(path), "c", "--npy", f"v={tmp_path / 'v.npy'}", "--table", str(tmp_path / "t.csv"), "--batch", "500"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    reads = 0
    seen = set()
    while writer.poll() is None or reads == 0:
        reader = medvec.open(path, read_only=True)  # a fresh handle sees the latest commit
        c = reader["c"]
        seen.add(len(c))
        hits = c.search("v", np.ones(16), k=1)
        assert hits.ids[0, 0] != ""
        assert c.get("seed")["payload"] == {"n": 0}
        reader.close()
        reads += 1
    assert writer.wait() == 0, writer.stderr.read()
    final = medvec.open(path, read_only=True)["c"]
    assert len(final) == n + 1
    assert final.get("w59999", with_vectors=False)["payload"] == {"n": 59999}
    assert reads >= 1 and max(seen) <= n + 1
