"""Stored records that lack one of a head's two fields: `classify` gives them error rows, or with
`--missing zero` classifies them with a zero vector for that field (as the head does for a zero
input); `eval` leaves them out and counts them. Python and the CLI agree."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import medvec
from conftest import cli, cli_json, make_cases

LACK_TEXT, LACK_IMAGE, LACK_BOTH = range(0, 10), range(10, 15), range(15, 18)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    ids, image, text, payload = make_cases(n=400, seed=11)
    path = tmp_path_factory.mktemp("missing") / "store"
    with medvec.open(path) as s:
        cases = s.create_collection("cases", vectors={"image": 32, "text": 32}, payload={"dx": str, "age": int, "split": str})
        whole = range(18, len(ids))
        cases.upsert([ids[i] for i in whole], vectors={"image": image[18:], "text": text[18:]}, payload={k: v[18:] for k, v in payload.items()})
        part = lambda rows: {k: [v[i] for i in rows] for k, v in payload.items()}  # noqa: E731
        cases.upsert([ids[i] for i in LACK_TEXT], vectors={"image": image[:10]}, payload=part(LACK_TEXT))
        cases.upsert([ids[i] for i in LACK_IMAGE], vectors={"text": text[10:15]}, payload=part(LACK_IMAGE))
        cases.upsert([ids[i] for i in LACK_BOTH], payload=part(LACK_BOTH))
        trained = cases.train("dx", "late", head="late", shift=0.5, split_column="split", epochs=6, seed=2)
    assert trained["meta"]["missing_field_rows"] == 18
    return path, ids, image, text


def test_records_lacking_a_field_get_error_rows(store, tmp_path):
    path, ids, _, _ = store
    cases = medvec.open(path, read_only=True)["cases"]
    out = cases.classify("late").set_index("id")
    assert len(out) == len(ids), "every record has a row"
    errors = out["error"].dropna()
    assert sorted(errors.index) == sorted(ids[:18])
    assert all(errors[ids[i]] == "lacks the `text` vector" for i in LACK_TEXT)
    assert all(errors[ids[i]] == "lacks the `image` vector" for i in LACK_IMAGE)
    assert all(errors[ids[i]] == "lacks the `image` and `text` vectors" for i in LACK_BOTH)
    assert out.loc[errors.index, "predicted"].isna().all()
    assert np.isnan(out.loc[errors.index, "p_mel"].to_numpy(dtype=float)).all()
    assert out.drop(index=errors.index)["predicted"].notna().all()

    csv_path, jsonl_path = tmp_path / "p.csv", tmp_path / "p.jsonl"
    done = cli("classify", path, "cases", "--head", "late", "--out", csv_path)
    assert "18 records lack a field of the head" in done.stderr
    with open(csv_path) as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert {i for i, r in rows.items() if r["error"]} == set(errors.index)
    assert rows[ids[0]]["error"] == "lacks the `text` vector" and rows[ids[0]]["predicted"] == ""
    cli("classify", path, "cases", "--head", "late", "--out", jsonl_path)
    lines = [json.loads(line) for line in open(jsonl_path)]
    assert {r["id"] for r in lines if "error" in r} == set(errors.index)


def test_missing_zero_classifies_with_a_zero_vector(store):
    path, ids, image, text = store
    cases = medvec.open(path, read_only=True)["cases"]
    zero = cases.classify("late", missing="zero").set_index("id")
    assert sorted(zero["error"].dropna().index) == sorted(ids[i] for i in LACK_BOTH)
    one_missing = [*LACK_TEXT, *LACK_IMAGE]
    new = {
        "image": np.vstack([image[i] if i in LACK_TEXT else np.zeros(32, np.float32) for i in one_missing]),
        "text": np.vstack([text[i] if i in LACK_IMAGE else np.zeros(32, np.float32) for i in one_missing]),
    }
    direct = cases.head("late").classify(new, ids=[ids[i] for i in one_missing]).set_index("id")
    for c in ["bkl", "mel", "nv"]:
        np.testing.assert_allclose(zero.loc[direct.index, f"p_{c}"], direct[f"p_{c}"], atol=1e-6)
    assert zero.loc[direct.index, "predicted"].tolist() == direct["predicted"].tolist()
    done = cli("classify", path, "cases", "--head", "late", "--missing", "zero")
    assert "3 records lack a field" in done.stderr
    with pytest.raises(medvec.InvalidInput, match="missing"):
        cases.classify("late", missing="maybe")
    assert cli("classify", path, "cases", "--head", "late", "--missing", "maybe", check=False).returncode != 0


def test_eval_leaves_them_out_and_counts_them(store):
    path, ids, _, _ = store
    cases = medvec.open(path, read_only=True)["cases"]
    report = cases.evaluate("late")
    assert report["missing_field_rows"] == 18
    assert report["rows"] == len(ids) - 18
    assert report == cli_json("eval", path, "cases", "--head", "late")[0]
