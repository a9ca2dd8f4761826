"""`medvec.open(path, bulk=True)`: a load from Python defers HNSW graphs as `medvec import` does.
Its flushes write rows only (searched exactly meanwhile), and `close()` builds one graph over the
whole load, which then finds numpy's nearest neighbours."""

from __future__ import annotations

import numpy as np
import pytest

import medvec


def clustered(n, dim, rng):
    centres = rng.normal(size=(30, dim))
    x = centres[rng.integers(0, 30, n)] + rng.normal(scale=0.5, size=(n, dim))
    return x.astype(np.float32)


def test_a_bulk_load_builds_one_graph_at_close(tmp_path, monkeypatch):
    # 1 MiB tails: each flush holds about 3,000 of these 64-d records, so the load flushes a few
    # times before it closes.
    monkeypatch.setenv("MEDVEC_FLUSH_MIB", "1")
    rng = np.random.default_rng(5)
    base = clustered(12_000, 64, rng)
    ids = [f"r{i}" for i in range(len(base))]
    store = medvec.open(tmp_path / "s", bulk=True)
    cases = store.create_collection("cases", vectors={"v": 64})
    for start in range(0, len(base), 1_000):
        cases.upsert(ids[start : start + 1_000], vectors={"v": base[start : start + 1_000]})
    during = cases.stats()
    assert during["segments"] >= 2, during
    assert during["segments_awaiting_graphs"] == during["segments"], during
    assert not list((tmp_path / "s/collections/cases").glob("seg-*/v.hnsw"))
    store.close()

    with medvec.open(tmp_path / "s", read_only=True) as store:
        cases = store["cases"]
        after = cases.stats()
        assert (after["segments"], after["segments_awaiting_graphs"]) == (1, 0), after
        assert len(list((tmp_path / "s/collections/cases").glob("seg-*/v.hnsw"))) == 1
        queries = base[::100]
        unit = base / np.linalg.norm(base, axis=1, keepdims=True)
        truth = np.argsort(-(queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T, axis=1)[:, :10]
        result = cases.search("v", queries, k=10, ef=64)
        found = sum(len({int(i[1:]) for i in row} & set(t.tolist())) for row, t in zip(result.ids, truth))
        assert found / truth.size >= 0.95


def test_bulk_and_read_only_are_refused_together(tmp_path):
    medvec.open(tmp_path / "s").close()
    with pytest.raises(medvec.InvalidInput, match="bulk"):
        medvec.open(tmp_path / "s", read_only=True, bulk=True)
