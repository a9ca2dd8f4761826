"""Search from Python equals `medvec search` on the same store (ids, scores within 1e-6), its
exact mode equals numpy's exact ranking, and its results come back as numpy, pandas and Arrow."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import medvec
from conftest import cli_json


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def cli_hits(path, queries, tmp_path, *flags):
    q = tmp_path / "q.npy"
    np.save(q, queries.astype(np.float32))
    out = cli_json("search", path, "cases", "--queries", q, *flags)
    return [[h["id"] for h in row["hits"]] for row in out], [[h["score"] for h in row["hits"]] for row in out]


def assert_same(result, ids, scores):
    assert result.ids.tolist() == ids
    np.testing.assert_allclose(result.scores, np.array(scores, dtype=np.float32), atol=1e-6)


QUERY_FLAGS = [
    (dict(), []),
    (dict(exact=True), ["--exact"]),
    (dict(filter='dx = "mel" and age >= 50'), ["--filter", 'dx = "mel" and age >= 50']),
    (dict(ef=16, k=5), ["--ef", "16", "-k", "5"]),
    (dict(shift=0.5), ["--shift", "0.5"]),
    (dict(shift=1.0, query_modality="text"), ["--shift", "1.0", "--query-modality", "text"]),
    (dict(shift=0.8, fit_filter='split = "train"'), ["--shift", "0.8", "--fit-filter", 'split = "train"']),
]


@pytest.mark.parametrize("kwargs, flags", QUERY_FLAGS, ids=[" ".join(f) or "plain" for _, f in QUERY_FLAGS])
def test_search_equals_the_cli(clinic, cases_data, tmp_path, kwargs, flags):
    _, image, text, _ = cases_data
    queries = (text if kwargs.get("query_modality") == "text" else image)[:20] + 0.01
    k = kwargs.pop("k", 10)
    reader = medvec.open(clinic, read_only=True)
    result = reader["cases"].search("image", queries, k=k, **kwargs)
    ids, scores = cli_hits(clinic, queries, tmp_path, "--field", "image", *(flags if "-k" in flags else flags + ["-k", str(k)]))
    assert result.ids.shape == (20, k)
    assert_same(result, ids, scores)


def test_exact_search_equals_numpy_and_graph_recall_is_high(clinic, cases_data):
    ids, image, _, _ = cases_data
    rng = np.random.default_rng(5)
    queries = image[rng.choice(len(image), 50, replace=False)] + rng.normal(scale=0.3, size=(50, 32))
    cases = medvec.open(clinic, read_only=True)["cases"]
    truth = np.argsort(-(unit(queries) @ unit(image).T), axis=1, kind="stable")[:, :10]
    exact = cases.search("image", queries, k=10, exact=True)
    assert exact.ids.tolist() == [[ids[j] for j in row] for row in truth]
    np.testing.assert_allclose(exact.scores, np.take_along_axis(unit(queries) @ unit(image).T, truth, 1), atol=1e-5)
    graph = cases.search("image", queries, k=10)
    recall = np.mean([len(set(g) & set(e)) / 10 for g, e in zip(graph.ids.tolist(), exact.ids.tolist())])
    assert recall >= 0.95, recall


def test_query_forms_give_the_same_hits(clinic, cases_data):
    _, image, _, _ = cases_data
    cases = medvec.open(clinic, read_only=True)["cases"]
    q = image[:4].astype(np.float64) + 0.1
    base = cases.search("image", q.astype(np.float32), k=5)
    for form in (q, np.asfortranarray(q), q.astype(np.float32)[:, :][::1]):
        again = cases.search("image", form, k=5)
        assert again.ids.tolist() == base.ids.tolist()
        np.testing.assert_allclose(again.scores, base.scores, atol=1e-6)
    one = cases.search("image", q[0], k=5)
    assert one.ids.shape == (1, 5) and one.scores.shape == (1, 5) and one.scores.dtype == np.float32
    ids, scores = one
    assert ids[0].tolist() == base.ids[0].tolist()


@pytest.mark.parametrize(
    "queries, kwargs, message",
    [
        (np.ones((2, 31)), {}, r"queries: vectors have dimension 31, field `image` has 32"),
        (np.full(32, np.nan), {}, r"queries: row 0 has a NaN"),
        (np.ones((2, 2, 32)), {}, r"queries: expected a 1-d vector or a 2-d array"),
        (np.ones(32, dtype=np.int64), {}, r"queries: expected a numpy array of float32 or float64, got int64"),
        (np.ones(32), {"filter": "dx = "}, r"filter: "),
        (np.ones(32), {"k": 0}, r"k: must be at least 1"),
        (np.ones(32), {"shift": float("nan")}, r"shift"),
    ],
)
def test_bad_queries_raise_invalid_input(clinic, queries, kwargs, message):
    cases = medvec.open(clinic, read_only=True)["cases"]
    with pytest.raises(medvec.InvalidInput, match=message):
        cases.search("image", queries, **kwargs)
    with pytest.raises(medvec.InvalidInput, match="nope"):
        cases.search("nope", np.ones(32))


def test_fewer_hits_than_k_are_padded(clinic, cases_data):
    cases = medvec.open(clinic, read_only=True)["cases"]
    result = cases.search("image", cases_data[1][0], k=5, filter='id = "case0003"', exact=True)
    assert result.ids.tolist() == [["case0003", "", "", "", ""]]
    assert np.isnan(result.scores[0, 1:]).all()
    assert result.to_pandas()["id"].tolist() == ["case0003"]


def test_to_pandas_joins_the_payload(clinic, cases_data):
    ids, image, _, payload = cases_data
    cases = medvec.open(clinic, read_only=True)["cases"]
    frame = cases.search("image", image[:3], k=4).to_pandas()
    assert list(frame.columns) == ["query", "rank", "id", "score", "dx", "age", "split"]
    assert len(frame) == 12
    by_id = {i: n for n, i in enumerate(ids)}
    for row in frame.itertuples():
        n = by_id[row.id]
        assert row.dx == payload["dx"][n] and row.split == payload["split"][n]
    only = cases.search("image", image[:1], k=2).to_pandas(payload=["dx"])
    assert list(only.columns) == ["query", "rank", "id", "score", "dx"]


def test_to_arrow_and_to_pandas_hold_every_record(clinic, cases_data):
    ids, image, text, payload = cases_data
    cases = medvec.open(clinic, read_only=True)["cases"]
    table = cases.to_arrow()
    assert table.column_names == ["id", "dx", "age", "split", "image", "text"]
    assert table.schema.field("image").type == pa.list_(pa.float32(), 32)
    assert table.schema.field("age").type == pa.int64()
    order = np.argsort(table.column("id").to_pylist())
    assert sorted(table.column("id").to_pylist()) == ids
    stored = np.asarray(table.column("image").combine_chunks().flatten()).reshape(-1, 32)[order]
    np.testing.assert_array_equal(stored, image)
    assert [table.column("age").to_pylist()[i] for i in order] == payload["age"]
    some = cases.to_arrow(fields=["text", "dx"])
    assert some.column_names == ["id", "text", "dx"]
    frame = cases.to_pandas(fields=["dx", "text"])
    assert list(frame.columns) == ["id", "dx", "text"]
    row = frame.set_index("id").loc["case0007"]
    np.testing.assert_array_equal(row["text"], text[7])


def test_to_arrow_of_a_compacted_collection_wraps_the_mapped_column(tmp_path, cases_data):
    ids, image, text, payload = cases_data
    path = tmp_path / "s"
    with medvec.open(path) as store:
        c = store.create_collection("cases", vectors={"image": 32, "text": 32}, payload={"dx": str})
        c.upsert(ids, vectors={"image": image, "text": text}, payload={"dx": payload["dx"]})
        c.compact()
    reader = medvec.open(path, read_only=True)
    cases = reader["cases"]
    _, _, vectors = cases._native.columns(["image"], [])
    mapped = vectors["image"]
    assert not mapped.flags.writeable and not mapped.flags.owndata  # a view of the mapping
    with pytest.raises(ValueError):
        mapped[0, 0] = 1.0
    table = cases.to_arrow(fields=["image", "dx"])
    values = table.column("image").chunk(0).values
    # Arrow's buffer is the mapped column itself: the same address as the mapped view's.
    assert values.buffers()[1].address == mapped.__array_interface__["data"][0]
    reader.close()
    # The mapping outlives the store handle and a compaction that replaces the files.
    with medvec.open(path) as writer:
        writer["cases"].delete(ids[:10])
        writer["cases"].compact()
    np.testing.assert_array_equal(values.to_numpy().reshape(-1, 32), image)
    np.testing.assert_array_equal(mapped, image)


def test_to_arrow_with_deletes_and_unflushed_rows_copies(tmp_path, cases_data):
    ids, image, text, payload = cases_data
    with medvec.open(tmp_path / "s") as store:
        c = store.create_collection("cases", vectors={"image": 32, "text": 32})
        c.upsert(ids[:100], vectors={"image": image[:100], "text": text[:100]})
        c.flush()
        c.delete(ids[:5])
        c.upsert(ids[100:110], vectors={"image": image[100:110]})  # no text: a null
        table = c.to_arrow()
    assert table.column("id").to_pylist() == ids[5:110]
    got = table.column("image").to_pylist()
    np.testing.assert_array_equal(np.array(got, dtype=np.float32), image[5:110])
    assert table.column("text").null_count == 10
