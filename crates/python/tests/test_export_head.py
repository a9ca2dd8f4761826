"""`medvec export-head --onnx`: onnxruntime on the exported graph gives `medvec classify`'s
probabilities (max abs diff <= 1e-5) from raw, unnormalised vectors."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import medvec
from conftest import cli, make_cases

TRAIN = dict(epochs=6, split_column="split")


@pytest.fixture(scope="module")
def store(clinic, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "store"
    shutil.copytree(clinic, path)
    with medvec.open(path) as s:
        cases = s["cases"]
        cases.train("dx", "early", head="early", shift=0.7, **TRAIN)
        cases.train("dx", "late", head="late", shift=-0.4, dropout=0.2, **TRAIN)
        cases.train("dx", "knn", head="knn", **TRAIN)
    return path


def cli_probabilities(store, head, image, text, tmp_path):
    np.save(tmp_path / "i.npy", image.astype(np.float32))
    np.save(tmp_path / "t.npy", text.astype(np.float32))
    out = tmp_path / "p.csv"
    cli("classify", store, "cases", "--head", head, "--input-npy", f"image={tmp_path / 'i.npy'},text={tmp_path / 't.npy'}", "--out", out)
    with open(out) as f:
        rows = list(csv.DictReader(f))
    classes = [c[2:] for c in rows[0] if c.startswith("p_")]
    return classes, np.array([[float(r[f"p_{c}"]) for c in classes] for r in rows])


@pytest.mark.parametrize("head", ["early", "late"])
def test_onnxruntime_gives_the_cli_probabilities(store, tmp_path, head, cases_data):
    path = tmp_path / f"{head}.onnx"
    cli("export-head", store, "cases", "--head", head, "--onnx", path)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 17
    meta = {p.key: p.value for p in model.metadata_props}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert sorted(i.name for i in session.get_inputs()) == ["image", "text"]
    assert [o.name for o in session.get_outputs()] == ["probabilities"]
    rng = np.random.default_rng(9)
    _, image, text, _ = cases_data
    # Raw vectors at other scales than stored ones, plus a zero vector: the graph normalises.
    new_image = np.vstack([image[:50] * 3.0, rng.normal(size=(9, 32)), np.zeros((1, 32))]).astype(np.float32)
    new_text = np.vstack([text[:50] * 0.2, rng.normal(size=(10, 32))]).astype(np.float32)
    (ours,) = session.run(None, {"image": new_image, "text": new_text})
    classes, theirs = cli_probabilities(store, head, new_image, new_text, tmp_path)
    assert meta["classes"].split(",") == classes
    assert ours.shape == (60, 3)
    assert np.abs(ours - theirs).max() <= 1e-5
    assert np.abs(ours.sum(axis=1) - 1).max() < 1e-5


def test_a_knn_head_is_refused_with_a_reason(store, tmp_path):
    done = cli("export-head", store, "cases", "--head", "knn", "--onnx", tmp_path / "k.onnx", check=False)
    assert done.returncode != 0 and "kNN head cannot be a small ONNX graph" in done.stderr
    assert not (tmp_path / "k.onnx").exists()


def test_a_binary_head_has_both_columns(tmp_path):
    ids, image, text, payload = make_cases(n=300, seed=4)
    payload = dict(payload, mel=["yes" if d == "mel" else "no" for d in payload["dx"]])
    path = tmp_path / "s"
    with medvec.open(path) as s:
        c = s.create_collection("cases", vectors={"image": 32, "text": 32}, payload={"dx": str, "age": int, "split": str, "mel": str})
        c.upsert(ids, vectors={"image": image, "text": text}, payload=payload)
        trained = c.train("mel", "mel", head="early", shift=0.5, threshold="youden", **TRAIN)
    onnx_path = tmp_path / "mel.onnx"
    cli("export-head", path, "cases", "--head", "mel", "--onnx", onnx_path)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (ours,) = session.run(None, {"image": image[:40], "text": text[:40]})
    classes, theirs = cli_probabilities(path, "mel", image[:40], text[:40], tmp_path)
    assert classes == ["no", "yes"] and ours.shape == (40, 2)
    assert np.abs(ours - theirs).max() <= 1e-5
    # The saved threshold travels in the metadata; applied to the graph's output it gives
    # classify's decisions.
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    saved = trained["meta"]["threshold"]
    assert (float(meta["threshold"]), meta["positive_class"], meta["threshold_rule"]) == (saved["value"], "yes", "youden")
    with open(tmp_path / "p.csv") as f:
        decided = [r["predicted"] for r in csv.DictReader(f)]
    assert np.where(ours[:, 1] >= float(meta["threshold"]), "yes", "no").tolist() == decided
