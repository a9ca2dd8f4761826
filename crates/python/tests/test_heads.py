"""The gap and fusion heads from Python: the same numbers as `medvec gap`, `train`, `sweep`,
`classify` and `eval` on the same store, and metrics equal to scikit-learn's."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

import medvec
from conftest import cli, cli_json

TRAIN = dict(split_column="split", epochs=8, seed=3)
TRAIN_FLAGS = ["--split-column", "split", "--epochs", "8", "--seed", "3"]


@pytest.fixture(scope="module")
def writable(clinic, tmp_path_factory):
    path = tmp_path_factory.mktemp("heads") / "store"
    shutil.copytree(clinic, path)
    return path


def test_gap_equals_the_cli(clinic):
    cases = medvec.open(clinic, read_only=True)["cases"]
    ours = cases.gap(filter='split = "train"', shift=0.7)
    plain, shifted = cli_json("gap", clinic, "cases", "--filter", 'split = "train"', "--shift", "0.7")
    assert ours.pop("shifted") == shifted
    assert ours == plain
    assert shifted["delta_norm"] < plain["delta_norm"]


@pytest.mark.parametrize("head", ["early", "late", "knn"])
def test_train_classify_and_evaluate_equal_the_cli(writable, tmp_path, head):
    with medvec.open(writable) as store:
        trained = store["cases"].train("dx", f"py-{head}", head=head, shift=[0.0, 0.5], **TRAIN)
    theirs = cli_json("train", writable, "cases", "--head", head, "--label", "dx", "--shift", "0.5", "--name", f"cli-{head}", *TRAIN_FLAGS)[0]
    # The CLI trained λ = 0.5 only; ours chose between 0 and 0.5 on validation: compare the curve point.
    point = next(p for p in trained["curve"] if p["lambda"] == 0.5)
    assert point == theirs["curve"][0]
    assert trained["meta"]["classes"] == theirs["meta"]["classes"] == ["bkl", "mel", "nv"]

    reader = medvec.open(writable, read_only=True)
    cases = reader["cases"]
    assert {h["name"] for h in cases.heads()} >= {f"py-{head}", f"cli-{head}"}
    predictions = cases.classify(f"cli-{head}", filter='split = "test"')
    out = tmp_path / "preds.csv"
    cli("classify", writable, "cases", "--head", f"cli-{head}", "--filter", 'split = "test"', "--out", out)
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert predictions["id"].tolist() == [r["id"] for r in rows]
    assert predictions["predicted"].tolist() == [r["predicted"] for r in rows]
    for c in ["bkl", "mel", "nv"]:
        np.testing.assert_allclose(predictions[f"p_{c}"], [float(r[f"p_{c}"]) for r in rows], atol=1e-6)

    report = cases.evaluate(f"cli-{head}", filter='split = "test"')
    assert report == (cli_json("eval", writable, "cases", "--head", f"cli-{head}", "--filter", 'split = "test"')[0])
    truth, predicted = predictions["truth"], predictions["predicted"]
    assert report["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert report["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert report["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(truth, predicted))
    assert report["accuracy"] > 0.6  # the classes are separable: a head that learnt nothing fails


def test_classify_new_vectors_equals_stored_records(writable, cases_data):
    ids, image, text, _ = cases_data
    with medvec.open(writable) as store:
        store["cases"].train("dx", "late-auto", head="late", shift="auto", **TRAIN)
    cases = medvec.open(writable, read_only=True)["cases"]
    stored = cases.classify("late-auto", filter='split = "val"').set_index("id")
    chosen = stored.index[:25]
    rows = [ids.index(i) for i in chosen]
    import pandas as pd

    frame = pd.DataFrame({"id": list(chosen), "image": list(image[rows]), "text": list(text[rows])})
    new = cases.classify("late-auto", frame).set_index("id")
    assert new["predicted"].tolist() == stored.loc[chosen, "predicted"].tolist()
    np.testing.assert_allclose(new.filter(like="p_").values, stored.loc[chosen].filter(like="p_").values, atol=1e-6)
    arrays = cases.classify("late-auto", {"image": image[rows], "text": text[rows].astype(np.float64)}, ids=list(chosen))
    assert arrays["predicted"].tolist() == new["predicted"].tolist()
    head = cases.head("late-auto")  # loaded once, classifies batch after batch
    assert head.classes == ["bkl", "mel", "nv"] and head.meta["fusion"] == "late"
    for start in (0, 10, 20):
        part = head.classify({"image": image[rows][start:start + 5], "text": text[rows][start:start + 5]}, ids=list(chosen[start:start + 5]))
        np.testing.assert_allclose(part.filter(like="p_").values, new.iloc[start:start + 5].filter(like="p_").values, atol=1e-6)
    with pytest.raises(medvec.InvalidInput, match="text"):
        cases.classify("late-auto", {"image": image[rows]})
    with pytest.raises(medvec.InvalidInput, match="dimension 31"):
        cases.classify("late-auto", {"image": image[rows, :31], "text": text[rows]})
    with pytest.raises(medvec.Error, match="no-such-head"):
        cases.classify("no-such-head")


def test_sweep_equals_the_cli(clinic):
    cases = medvec.open(clinic, read_only=True)["cases"]
    frame = cases.sweep("dx", head="early", lambdas=(0.0, 1.0, 0.5), **TRAIN)
    theirs = cli_json("sweep", clinic, "cases", "--head", "early", "--label", "dx", "--from", "0", "--to", "1", "--step", "0.5", *TRAIN_FLAGS)[0]
    assert frame["lambda"].tolist() == [0.0, 0.5, 1.0]
    assert frame.attrs["chosen_lambda"] == theirs["chosen_lambda"]
    for row, point in zip(frame.to_dict("records"), theirs["curve"]):
        assert row["val_macro_f1"] == pytest.approx(point["val_macro_f1"])
        assert row["test_macro_f1"] == pytest.approx(point["test_macro_f1"])
    assert frame["chosen"].sum() == 1


def test_bad_training_arguments(clinic):
    cases = medvec.open(clinic, read_only=True)["cases"]
    with pytest.raises(medvec.InvalidInput, match="head: `deep`"):
        cases.sweep("dx", head="deep")
    with pytest.raises(medvec.InvalidInput, match="shift"):
        cases.train("dx", "x", shift="sometimes")
    with pytest.raises(medvec.Error, match="nope"):
        cases.sweep("nope", **TRAIN)


def test_records_lacking_a_field_are_left_out_and_counted(tmp_path, cases_data):
    ids, image, text, payload = cases_data
    path = tmp_path / "s"
    with medvec.open(path) as store:
        c = store.create_collection("cases", vectors={"image": 32, "text": 32}, payload={"dx": str, "age": int, "split": str})
        c.upsert(ids[:500], vectors={"image": image[:500], "text": text[:500]}, payload={k: v[:500] for k, v in payload.items()})
        c.upsert(ids[500:520], vectors={"image": image[500:520]}, payload={k: v[500:520] for k, v in payload.items()})
        c.upsert(ids[520:530], vectors={"text": text[520:530]}, payload={k: v[520:530] for k, v in payload.items()})
        c.upsert(ids[530:540], vectors={"image": image[530:540], "text": text[530:540]})  # no label: not counted
        out = c.train("dx", "h", head="early", **TRAIN)
    assert out["meta"]["missing_field_rows"] == 30
    assert sum(out["meta"]["rows"]) == 500
    text_out = cli("train", path, "cases", "--head", "early", "--label", "dx", "--name", "h2", *TRAIN_FLAGS).stdout
    assert "30 labelled records left out: they lack `image` or `text`" in text_out
