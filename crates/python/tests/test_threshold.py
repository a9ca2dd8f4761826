"""Binary heads: the decision threshold chosen on validation (`youden`, `sensitivity=X`), applied
by `classify`, and `eval`'s ROC-AUC, PR-AUC, calibration error, sensitivity and specificity;
each checked against scikit-learn and numpy on the same predictions, and Python against the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score, roc_curve

import medvec
from conftest import cli, cli_json

TRAIN = dict(head="late", split_column="split", epochs=8, seed=3)


@pytest.fixture(scope="module")
def binary_store(tmp_path_factory, cases_data):
    """The shared cases with a two-class label: `referable` is yes for melanoma (a third)."""
    ids, image, text, payload = cases_data
    path = tmp_path_factory.mktemp("binary") / "store"
    with medvec.open(path) as store:
        cases = store.create_collection(
            "cases", vectors={"image": 32, "text": 32}, payload={"referable": str, "dx": str, "split": str}
        )
        referable = ["yes" if d == "mel" else "no" for d in payload["dx"]]
        cases.upsert(
            ids,
            vectors={"image": image, "text": text},
            payload={"referable": referable, "dx": payload["dx"], "split": payload["split"]},
        )
    return path


def reference_threshold(rule: str, truth, p) -> float:
    fpr, tpr, thresholds = roc_curve(truth, p, drop_intermediate=False)
    if rule == "youden":
        return thresholds[np.argmax(tpr - fpr)]
    wanted = float(rule.split("=")[1])
    return thresholds[np.argmax(tpr >= wanted)]


def rates(truth, p, threshold):
    called = p >= threshold
    return called[truth].mean(), (~called[~truth]).mean()


def truth_and_score(predictions):
    return (predictions["truth"] == "yes").to_numpy(), predictions["p_yes"].to_numpy(dtype=np.float64)


@pytest.mark.parametrize("rule", ["youden", "sensitivity=0.9"])
def test_the_threshold_is_chosen_on_validation_as_scikit_learn_would(binary_store, rule):
    name = rule.replace("=", "-")
    with medvec.open(binary_store) as store:
        trained = store["cases"].train("referable", f"py-{name}", threshold=rule, **TRAIN)
    saved = trained["meta"]["threshold"]
    assert (saved["rule"], saved["positive"]) == (rule, "yes")
    cases = medvec.open(binary_store, read_only=True)["cases"]
    val = cases.classify(f"py-{name}", filter='split = "val"')
    truth, p = truth_and_score(val)
    assert saved["value"] == reference_threshold(rule, truth, p)
    sensitivity, specificity = rates(truth, p, saved["value"])
    assert (saved["val_sensitivity"], saved["val_specificity"]) == pytest.approx((sensitivity, specificity), abs=1e-12)
    if rule.startswith("sensitivity"):
        assert sensitivity >= 0.9
    # classify decides by the threshold, not by the larger probability...
    every = cases.classify(f"py-{name}")
    expected = np.where(every["p_yes"] >= saved["value"], "yes", "no")
    assert every["predicted"].tolist() == expected.tolist()
    # ...and the test report is at the threshold.
    test = every[every["id"].isin(cases.classify(f"py-{name}", filter='split = "test"')["id"])]
    assert trained["test_report"]["accuracy"] == pytest.approx(accuracy_score(test["truth"], test["predicted"]))
    # The CLI chooses the same threshold from the same split and seed.
    flags = ["--split-column", "split", "--epochs", "8", "--seed", "3", "--head", "late"]
    theirs = cli_json("train", binary_store, "cases", "--label", "referable", "--threshold", rule, "--name", f"cli-{name}", *flags)[0]
    assert theirs["meta"]["threshold"] == saved


def test_eval_reports_what_scikit_learn_computes(binary_store):
    with medvec.open(binary_store) as store:
        store["cases"].train("referable", "youden", threshold="youden", **TRAIN)
        store["cases"].train("referable", "plain", **TRAIN)
    cases = medvec.open(binary_store, read_only=True)["cases"]
    test_filter = 'split = "test"'
    report = cases.evaluate("youden", filter=test_filter)
    assert report == cli_json("eval", binary_store, "cases", "--head", "youden", "--filter", test_filter)[0]
    truth, p = truth_and_score(cases.classify("youden", filter=test_filter))
    binary = report["binary"]
    assert binary["positive"] == "yes"
    assert binary["roc_auc"] == pytest.approx(roc_auc_score(truth, p), abs=1e-12)
    assert binary["pr_auc"] == pytest.approx(average_precision_score(truth, p), abs=1e-12)
    prob_true, prob_pred = calibration_curve(truth, p, n_bins=10, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], p), minlength=10)
    ece = np.sum(counts[counts > 0] / len(p) * np.abs(prob_true - prob_pred))
    assert binary["calibration_error"] == pytest.approx(ece, abs=1e-12)
    saved = cases.head("youden").meta["threshold"]["value"]
    assert (binary["threshold"], binary["threshold_source"]) == (saved, "youden")
    assert (binary["sensitivity"], binary["specificity"]) == pytest.approx(rates(truth, p, saved), abs=1e-12)
    assert 0.6 < binary["roc_auc"] <= 1.0  # a head that learnt nothing fails
    # A given threshold, and a head without one (0.5, the larger probability).
    given = cases.evaluate("youden", filter=test_filter, threshold=0.3)["binary"]
    assert given["threshold_source"] == "given"
    assert (given["sensitivity"], given["specificity"]) == pytest.approx(rates(truth, p, 0.3), abs=1e-12)
    plain = cases.evaluate("plain", filter=test_filter)["binary"]
    assert (plain["threshold"], plain["threshold_source"]) == (0.5, "argmax")
    text = cli("eval", binary_store, "cases", "--head", "youden", "--filter", test_filter).stdout
    assert "ROC-AUC" in text and "sensitivity" in text


def test_a_threshold_needs_two_classes_and_a_known_positive(binary_store):
    failed = cli("train", binary_store, "cases", "--label", "dx", "--threshold", "youden", "--name", "x", "--split-column", "split", "--head", "late", check=False)
    assert failed.returncode != 0 and "two-class" in failed.stderr
    failed = cli("train", binary_store, "cases", "--label", "referable", "--threshold", "youden", "--positive", "maybe", "--name", "x", "--split-column", "split", "--head", "late", check=False)
    assert failed.returncode != 0 and "positive class `maybe`" in failed.stderr
    failed = cli("train", binary_store, "cases", "--label", "referable", "--threshold", "sensitivity=2", "--name", "x", "--split-column", "split", "--head", "late", check=False)
    assert failed.returncode != 0 and "sensitivity=X" in failed.stderr
    with medvec.open(binary_store) as store, pytest.raises(medvec.InvalidInput, match="two-class"):
        store["cases"].train("dx", "x", threshold="youden", **TRAIN)
    assert "x" not in {h["name"] for h in medvec.open(binary_store, read_only=True)["cases"].heads()}
