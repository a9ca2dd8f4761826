"""Heads over any number of vector fields: one field (the single-modality baselines the paper
compares against), two, or three of different widths. Early fusion concatenates the fields, late
fusion has one branch per field, a kNN head sums their cosines, and `--shift-pair` / `shift_pair`
names the two fields the alignment shift moves. Checked against numpy (the kNN and Δ), against
onnxruntime on the exported graph, and the CLI against Python."""

from __future__ import annotations

import csv

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import medvec
from conftest import cli, cli_json, make_cases

CLIN = 12  # width of the third field
FIELDS = ["image", "text", "clinical"]
TRAIN = dict(split_column="split", epochs=6, seed=3)
TRAIN_FLAGS = ["--split-column", "split", "--epochs", "6", "--seed", "3"]
LACKING = 10  # labelled records without the third field


def clinical_of(image: np.ndarray, seed: int) -> np.ndarray:
    """A third, narrower modality: a noisy view of part of the image signal."""
    rng = np.random.default_rng(seed)
    return (image[:, :CLIN] * 0.5 + rng.normal(size=(len(image), CLIN))).astype(np.float32)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    ids, image, text, payload = make_cases(n=520, seed=21)
    clinical = clinical_of(image, 5)
    path = tmp_path_factory.mktemp("fields") / "store"
    whole = slice(LACKING, None)
    with medvec.open(path) as s:
        c = s.create_collection(
            "cases", vectors={"image": 32, "text": 32, "clinical": CLIN}, payload={"dx": str, "age": int, "split": str}
        )
        vectors = {"image": image[whole], "text": text[whole], "clinical": clinical[whole]}
        c.upsert(ids[whole], vectors=vectors, payload={k: v[whole] for k, v in payload.items()})
        part = {k: v[:LACKING] for k, v in payload.items()}
        c.upsert(ids[:LACKING], vectors={"image": image[:LACKING], "text": text[:LACKING]}, payload=part)
    return path, ids, {"image": image, "text": text, "clinical": clinical}, payload


def unit(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)


def hidden_params(d: int, h: int) -> int:
    """Linear(d, h) weight and bias, BatchNorm γ and β."""
    return d * h + h + 2 * h


def test_early_concatenates_and_late_has_a_branch_per_field(store):
    path, _, _, _ = store
    with medvec.open(path) as s:
        c = s["cases"]
        early = c.train("dx", "e3", head="early", fields=FIELDS, **TRAIN)["meta"]
        late = c.train("dx", "l3", head="late", fields=FIELDS, **TRAIN)["meta"]
        image_only = c.train("dx", "e1", head="early", fields="image", **TRAIN)["meta"]
    classes = 3
    assert early["fields"] == FIELDS and late["fields"] == FIELDS
    assert "shift_pair" not in early, "three fields and no pair given: no pair"
    assert early["params"] == hidden_params(32 + 32 + CLIN, 128) + 128 * classes + classes
    assert late["params"] == sum(hidden_params(d, 64) for d in (32, 32, CLIN)) + 3 * 64 * classes + classes
    assert image_only["fields"] == ["image"]
    assert image_only["params"] == hidden_params(32, 128) + 128 * classes + classes
    # Records lacking the third field are left out of three-field training only, and counted.
    assert early["missing_field_rows"] == LACKING and image_only["missing_field_rows"] == 0
    assert sum(early["rows"]) + LACKING == sum(image_only["rows"])
    # Every head learns the class signal the fields carry (3 classes: chance is about 0.33).
    for meta in (early, late, image_only):
        assert meta["test"]["macro_f1"] > 0.5, meta


def test_a_shift_needs_a_pair_of_equal_width(store):
    path, _, _, _ = store
    with medvec.open(path) as s:
        c = s["cases"]
        for fields, pair, why in [
            ("image", None, "needs a pair of fields"),
            (FIELDS, None, "needs a pair of fields"),
            (FIELDS, ("image", "clinical"), "equal dimension"),
            (FIELDS, ("image", "age"), "not one of the head's fields"),
            (["image", "image"], None, "named twice"),
        ]:
            with pytest.raises(medvec.InvalidInput, match=why):
                c.train("dx", "bad", head="early", shift=0.5, fields=fields, shift_pair=pair, **TRAIN)
        assert "bad" not in [h["name"] for h in c.heads()]
    done = cli("train", path, "cases", "--head", "early", "--label", "dx", "--name", "bad", "--fields", "image,text,clinical",
               "--shift", "0.5", *TRAIN_FLAGS, check=False)
    assert done.returncode != 0 and "--shift-pair" in done.stderr


def test_knn_sums_cosines_over_the_fields_as_numpy_does(store):
    """The kNN head against a numpy kNN: Δ from the training rows of the pair, the shift, each
    field's unit vectors, similarity = the mean of the three cosines, 5 uniform votes."""
    path, ids, vectors, payload = store
    lam, k = 0.6, 5
    order = ["clinical", "text", "image"]  # the pair sits at positions 2 and 1
    with medvec.open(path) as s:
        c = s["cases"]
        meta = c.train("dx", "knn3", head="knn", k=k, shift=lam, fields=order, shift_pair=("image", "text"), **TRAIN)["meta"]
        parts = c.split("dx", fields=order, split_column="split")
        got = c.classify("knn3", filter='split = "test"').set_index("id")
    got = got[got["error"].isna()]  # the test records lacking `clinical` get error rows
    assert meta["fields"] == order and meta["shift_pair"] == ["image", "text"]
    row = {i: r for r, i in enumerate(ids)}
    train_ids = list(parts[parts["part"] == "train"]["id"])
    test_ids = list(got.index)
    rows = lambda chosen: [row[i] for i in chosen]  # noqa: E731
    tr, te = rows(train_ids), rows(test_ids)
    delta = unit(vectors["image"][tr]).mean(axis=0) - unit(vectors["text"][tr]).mean(axis=0)
    assert np.abs(np.array(meta["delta"]) - delta).max() < 1e-6

    def prepared(r):
        image = unit(unit(vectors["image"][r]) - lam / 2 * delta)
        text = unit(unit(vectors["text"][r]) + lam / 2 * delta)
        return [image, text, unit(vectors["clinical"][r])]

    sims = sum(q @ t.T for q, t in zip(prepared(te), prepared(tr))) / 3
    classes = sorted(set(payload["dx"]))
    labels = np.array([classes.index(payload["dx"][r]) for r in tr])
    # Most similar first; equal similarities go to the earlier training row (a stable sort).
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    want = np.stack([np.bincount(labels[o], minlength=len(classes)) / k for o in order])
    theirs = got[[f"p_{c}" for c in classes]].to_numpy(dtype=float)
    assert np.abs(theirs - want).max() < 1e-6
    assert list(got["predicted"]) == [classes[i] for i in want.argmax(axis=1)]


@pytest.mark.parametrize("head", ["early", "late"])
def test_three_field_heads_export_to_onnx_with_the_cli_probabilities(store, tmp_path, head):
    path, _, vectors, _ = store
    name = f"{head}-pair"
    order = ["text", "clinical", "image"]  # the pair sits at positions 2 and 0
    cli("train", path, "cases", "--head", head, "--label", "dx", "--name", name, "--fields", ",".join(order),
        "--shift-pair", "image,text", "--shift", "0.7", *TRAIN_FLAGS)
    onnx_path = tmp_path / f"{name}.onnx"
    cli("export-head", path, "cases", "--head", name, "--onnx", onnx_path)
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["fields"] == ",".join(order) and meta["shift_pair"] == "image,text"
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    widths = {"image": 32, "text": 32, "clinical": CLIN}
    assert [(i.name, i.shape[1]) for i in session.get_inputs()] == [(f, widths[f]) for f in order]
    rng = np.random.default_rng(1)
    # Raw vectors at other scales than stored ones, and a zero row: the graph normalises.
    new = {f: np.vstack([v[:40] * (1 + i), rng.normal(size=(1, v.shape[1])), np.zeros((1, v.shape[1]))]).astype(np.float32)
           for i, (f, v) in enumerate(vectors.items())}
    (ours,) = session.run(None, new)
    specs = []
    for field, matrix in new.items():
        np.save(tmp_path / f"{field}.npy", matrix)
        specs.append(f"{field}={tmp_path / f'{field}.npy'}")
    out = tmp_path / "p.csv"
    cli("classify", path, "cases", "--head", name, "--input-npy", ",".join(specs), "--out", out)
    with open(out) as f:
        rows = list(csv.DictReader(f))
    classes = meta["classes"].split(",")
    theirs = np.array([[float(r[f"p_{c}"]) for c in classes] for r in rows])
    assert ours.shape == theirs.shape == (42, 3)
    assert np.abs(ours - theirs).max() <= 1e-5


def test_the_cli_and_python_train_the_same_three_field_head(store):
    path, _, _, _ = store
    (cli_out,) = cli_json("train", path, "cases", "--head", "late", "--label", "dx", "--name", "cli3",
                          "--fields", "clinical,image,text", "--shift-pair", "text,image", "--shift", "auto", *TRAIN_FLAGS)
    with medvec.open(path) as s:
        py_out = s["cases"].train("dx", "py3", head="late", shift="auto", fields=("clinical", "image", "text"),
                                  shift_pair=("text", "image"), **TRAIN)
    for key in ("fields", "shift_pair", "lambda", "delta", "val_macro_f1", "test", "params", "rows", "best_epoch"):
        cli_value, py_value = cli_out["meta"][key], py_out["meta"][key]
        if key == "test":
            cli_value = {k: v for k, v in cli_value.items() if k != "rows_per_second"}
            py_value = {k: v for k, v in py_value.items() if k != "rows_per_second"}
        assert cli_value == py_value, key
    assert cli_out["meta"]["fields"] == ["clinical", "image", "text"]


def test_a_record_lacking_the_third_field_gets_an_error_row_or_a_zero_vector(store):
    path, ids, vectors, _ = store
    with medvec.open(path) as s:
        c = s["cases"]
        c.train("dx", "miss3", head="early", fields=FIELDS, shift_pair=("image", "text"), shift=0.4, **TRAIN)
        errors = c.classify("miss3").set_index("id")["error"].dropna()
        assert sorted(errors.index) == sorted(ids[:LACKING])
        assert set(errors) == {"lacks the `clinical` vector"}
        zero = c.classify("miss3", missing="zero").set_index("id").loc[ids[:LACKING]]
        direct = c.head("miss3").classify(
            {"image": vectors["image"][:LACKING], "text": vectors["text"][:LACKING], "clinical": np.zeros((LACKING, CLIN))},
            ids=ids[:LACKING],
        ).set_index("id")
    columns = [col for col in direct.columns if col.startswith("p_")]
    assert zero["error"].isna().all()
    assert np.abs(zero[columns].to_numpy(dtype=float) - direct[columns].to_numpy(dtype=float)).max() == 0
    assert list(zero["predicted"]) == list(direct["predicted"])


def test_eval_states_what_it_did_with_records_lacking_a_field(store):
    path, _, _, _ = store
    with medvec.open(path) as s:
        c = s["cases"]
        c.train("dx", "eval3", head="late", fields=FIELDS, **TRAIN)
        left_out = c.evaluate("eval3")
        filled = c.evaluate("eval3", missing="zero")
        predictions = c.classify("eval3", missing="zero")
    assert (left_out["missing"], left_out["missing_field_rows"], left_out["zero_filled_rows"]) == ("error", LACKING, 0)
    assert (filled["missing"], filled["missing_field_rows"], filled["zero_filled_rows"]) == ("zero", 0, LACKING)
    assert filled["rows"] == left_out["rows"] + LACKING
    # The zero-filled evaluation is the accuracy of `classify --missing zero` on every record.
    accuracy = float((predictions["predicted"] == predictions["truth"]).mean())
    assert abs(filled["accuracy"] - accuracy) < 1e-12
    text = cli("eval", path, "cases", "--head", "eval3", "--missing", "zero").stdout
    assert f"{LACKING} labelled records evaluated with zero vectors" in text
