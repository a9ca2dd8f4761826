"""Store and record calls: create, upsert from every payload form, get, delete, compact, verify,
stats, and the errors bad input gets (with nothing stored)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import medvec
from conftest import cli, cli_json


def make(store, dim=3):
    return store.create_collection("c", vectors={"v": dim, "w": (2, "l2")}, payload={"dx": str, "age": int, "score": float, "ok": bool})


def test_create_open_and_schema(empty_store):
    c = make(empty_store)
    assert empty_store.collections() == ["c"]
    schema = c.schema
    assert [(f["name"], f["dim"], f["metric"]) for f in schema["vectors"]] == [("v", 3, "cosine"), ("w", 2, "l2")]
    assert [(f["name"], f["type"]) for f in schema["payload"]] == [("dx", "string"), ("age", "int"), ("score", "float"), ("ok", "bool")]
    assert empty_store["c"].name == "c"
    with pytest.raises(medvec.StoreError, match="nope"):
        empty_store.collection("nope")


@pytest.mark.parametrize("form", ["dict", "pandas", "arrow"])
def test_upsert_payload_forms_round_trip(empty_store, form):
    c = make(empty_store)
    columns = {"dx": ["nv", None], "age": [40, None], "score": [0.5, float("nan")], "ok": [True, False]}
    payload = {"dict": columns, "pandas": pd.DataFrame(columns), "arrow": pa.table(columns)}[form]
    v = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float64)
    c.upsert(["a", "b"], vectors={"v": v, "w": np.ones((2, 2), np.float32)}, payload=payload)
    a, b, none = c.get(["a", "b", "zzz"])
    assert none is None
    assert a["payload"] == {"dx": "nv", "age": 40, "score": 0.5, "ok": True}
    assert b["payload"].get("dx") is None and b["payload"].get("age") is None and b["payload"].get("score") is None
    assert a["vectors"]["v"].dtype == np.float32
    np.testing.assert_array_equal(b["vectors"]["v"], np.float32([4, 5, 6]))
    assert c.get("a", with_vectors=False) == {"id": "a", "payload": a["payload"]}


def test_fortran_order_and_float64_store_the_same_vectors(empty_store):
    c = make(empty_store)
    v = np.arange(12, dtype=np.float64).reshape(4, 3) + 1
    c.upsert(list("abcd"), vectors={"v": np.asfortranarray(v)})
    got = np.stack([r["vectors"]["v"] for r in c.get(list("abcd"))])
    np.testing.assert_array_equal(got, v.astype(np.float32))


def test_delete_compact_verify_stats_match_the_cli(tmp_path):
    path = tmp_path / "s"
    with medvec.open(path) as store:
        c = make(store)
        c.upsert([f"r{i}" for i in range(50)], vectors={"v": np.random.default_rng(0).random((50, 3))})
        c.flush()
        assert c.delete(["r1", "r2", "missing"]) == 2
        assert len(c) == 48
        report = c.compact()
        assert report["bytes_after"] <= report["bytes_before"]
        assert c.verify()["files_checked"] > 0
        ours = store.stats()
    theirs = cli_json("stats", path)[0]["collections"]
    assert [(s["name"], s["count"]) for s in ours] == [(s["name"], s["count"]) for s in theirs]
    assert ours[0]["count"] == 48


def test_files_are_private(tmp_path):
    with medvec.open(tmp_path / "s") as store:
        make(store).upsert(["a"], vectors={"v": np.ones((1, 3))}, payload={"dx": ["nv"]})
    for root, dirs, files in os.walk(tmp_path / "s"):
        for d in dirs:
            assert stat.S_IMODE(os.stat(os.path.join(root, d)).st_mode) == 0o700, d
        for f in files:
            assert stat.S_IMODE(os.stat(os.path.join(root, f)).st_mode) & 0o077 == 0, f


@pytest.mark.parametrize(
    "vectors, payload, message",
    [
        ({"v": np.ones((2, 4))}, None, r"vectors\[\"v\"\]: vectors have dimension 4, field `v` has 3"),
        ({"v": np.array([[1, 2, np.nan], [1, 1, 1]])}, None, r"vectors\[\"v\"\]: row 0 has a NaN"),
        ({"v": np.ones((3, 3))}, None, r"vectors\[\"v\"\]: 3 rows for 2 ids"),
        ({"v": [[1, 2, 3], [1, 2, 3]]}, None, r"vectors\[\"v\"\]: expected a numpy array"),
        ({"nope": np.ones((2, 3))}, None, r"nope"),
        ({"v": np.ones((2, 3))}, {"age": ["forty", 3]}, r"age"),
        ({"v": np.ones((2, 3))}, {"dx": ["a"]}, r"payload\[\"dx\"\]: 1 values for 2 ids"),
        ({"v": np.ones((2, 3))}, {"dx": ["a", object()]}, r"payload\[\"dx\"\]: record `b`"),
    ],
)
def test_bad_input_is_refused_naming_the_argument_and_nothing_is_stored(empty_store, vectors, payload, message):
    c = make(empty_store)
    c.upsert(["keep"], vectors={"v": np.ones((1, 3))})
    with pytest.raises(medvec.InvalidInput, match=message) as raised:
        c.upsert(["a", "b"], vectors=vectors, payload=payload)
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, medvec.Error)
    assert "\n" not in str(raised.value)
    assert len(c) == 1 and c.get("a") is None and c.get("keep") is not None


def test_payload_values_are_hidden_in_errors_unless_verbose(empty_store):
    c = make(empty_store)
    secret = "Jane-Doe-1970"
    try:
        for verbose in (False, True):
            medvec.set_verbose(verbose)
            with pytest.raises(medvec.InvalidInput, match="filter: field `age` is int") as raised:
                c.search("v", np.ones(3), filter=f'age = "{secret}"')
            assert (secret in str(raised.value)) == verbose, str(raised.value)
            assert str(raised.value).count("is int") == 1, str(raised.value)
    finally:
        medvec.set_verbose(False)


def test_a_second_writer_is_locked_out_and_a_reader_cannot_write(tmp_path):
    path = tmp_path / "s"
    with medvec.open(path) as writer:
        make(writer).upsert(["a"], vectors={"v": np.ones((1, 3))})
        writer.flush()
        with pytest.raises(medvec.LockedError):
            medvec.open(path)
        with pytest.raises(medvec.LockedError):
            cli("delete", path, "c", "a", check=True) if False else _cli_locked(path)
        reader = medvec.open(path, read_only=True)
        assert len(reader["c"]) == 1
        with pytest.raises(medvec.StoreError):
            reader["c"].upsert(["b"], vectors={"v": np.ones((1, 3))})
        reader.close()
    with pytest.raises(medvec.StoreError, match="closed"):
        writer.collections()


def _cli_locked(path):
    done = cli("delete", path, "c", "a", check=False)
    assert done.returncode != 0 and "lock" in done.stderr.lower(), done.stderr
    raise medvec.LockedError(done.stderr)


def test_a_corrupt_file_raises_corrupt_file_naming_it(tmp_path):
    path = tmp_path / "s"
    with medvec.open(path) as store:
        make(store).upsert([f"r{i}" for i in range(20)], vectors={"v": np.random.default_rng(1).random((20, 3))})
    segments = [os.path.join(r, f) for r, _, fs in os.walk(path) for f in fs if "seg" in f or f.endswith(".col")]
    victim = max(segments or [os.path.join(r, f) for r, _, fs in os.walk(path) for f in fs], key=os.path.getsize)
    with open(victim, "r+b") as f:
        f.seek(os.path.getsize(victim) // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(medvec.CorruptFile, match=os.path.basename(victim)):
        medvec.open(path, read_only=True).verify()


def test_drop_collection_removes_it_and_its_files(tmp_path):
    path = tmp_path / "s"
    with medvec.open(path) as store:
        make(store).upsert(["a"], vectors={"v": np.ones((1, 3))})
        store.create_collection("keep", vectors={"v": 2})
        store.flush()
        store.drop_collection("c")
        assert store.collections() == ["keep"]
        with pytest.raises(medvec.StoreError, match="`c`|c"):
            store.collection("c")
    assert [c["name"] for c in cli_json("stats", path)[0]["collections"]] == ["keep"]
    assert not any("c" == os.path.basename(r) for r, _, _ in os.walk(path))
