"""medvec.search_shards: one collection split over 4 stores, merged exactly as one collection
and as `medvec search STORE COLL --store B --store C --store D`."""

from __future__ import annotations

import numpy as np
import pytest

import medvec
from conftest import cli_json, make_cases


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    ids, image, text, payload = make_cases(n=800, seed=11)
    schema = dict(vectors={"image": 32, "text": 32}, payload={"dx": str, "age": int, "split": str})
    whole = medvec.open(root / "whole")
    whole.create_collection("cases", **schema).upsert(ids, vectors={"image": image, "text": text}, payload=payload)
    whole.close()
    paths = []
    for s in range(4):
        rows = list(range(s, len(ids), 4))
        with medvec.open(root / f"shard{s}") as store:
            store.create_collection("cases", **schema).upsert(
                [ids[i] for i in rows],
                vectors={"image": image[rows], "text": text[rows]},
                payload={k: [v[i] for i in rows] for k, v in payload.items()},
            )
        paths.append(root / f"shard{s}")
    return root / "whole", paths, image


@pytest.mark.parametrize("filter", [None, 'dx = "mel"'])
def test_merged_exact_top_k_equals_one_collection(sharded, filter, tmp_path):
    whole, paths, image = sharded
    queries = image[::40] + 0.05
    shards = [medvec.open(p, read_only=True)["cases"] for p in paths]
    merged = medvec.search_shards(shards, "image", queries, k=10, exact=True, filter=filter)
    one = medvec.open(whole, read_only=True)["cases"].search("image", queries, k=10, exact=True, filter=filter)
    assert merged.ids.tolist() == one.ids.tolist()
    np.testing.assert_allclose(merged.scores, one.scores, atol=1e-6)
    np.save(tmp_path / "q.npy", queries.astype(np.float32))
    flags = ["--filter", filter] if filter else []
    stores = [x for p in paths[1:] for x in ("--store", p)]
    theirs = cli_json("search", paths[0], "cases", "--field", "image", "--queries", tmp_path / "q.npy", "--exact", "-k", "10", *stores, *flags)
    assert merged.ids.tolist() == [[h["id"] for h in row["hits"]] for row in theirs]
    frame = merged.to_pandas()
    assert frame["dx"].notna().all()  # payload found in whichever shard holds the hit


def test_graph_search_over_shards_has_high_recall(sharded):
    _, paths, image = sharded
    shards = [medvec.open(p, read_only=True)["cases"] for p in paths]
    queries = image[::25] + 0.05
    graph = medvec.search_shards(shards, "image", queries, k=10)
    exact = medvec.search_shards(shards, "image", queries, k=10, exact=True)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(graph.ids.tolist(), exact.ids.tolist())])
    assert recall >= 0.95


def test_shards_must_share_the_schema(tmp_path, sharded):
    _, paths, _ = sharded
    other = medvec.open(tmp_path / "other").create_collection("cases", vectors={"image": 16})
    with pytest.raises(medvec.InvalidInput, match="shards of one collection must share its schema"):
        medvec.search_shards([medvec.open(paths[0], read_only=True)["cases"], other], "image", np.ones(32), k=3)
    with pytest.raises(medvec.InvalidInput, match="no collection"):
        medvec.search_shards([], "image", np.ones(32))
