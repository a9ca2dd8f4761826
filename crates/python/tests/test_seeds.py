"""Training repeated over seeds (`seeds=N`, `--seeds N`): every number of the report is checked
against numpy from the per-seed runs and against single runs of the same seeds."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import medvec
from conftest import cli_json

TRAIN = dict(epochs=6, split=(0.6, 0.2, 0.2))


@pytest.fixture(scope="module")
def store(clinic, tmp_path_factory):
    path = tmp_path_factory.mktemp("seeds") / "store"
    shutil.copytree(clinic, path)
    return path


def numpy_bootstrap(values, resamples=20000, seed=0):
    rng = np.random.default_rng(seed)
    values = np.asarray(values)
    means = values[rng.integers(0, len(values), (resamples, len(values)))].mean(axis=1)
    return np.percentile(means, [2.5, 97.5])


def test_repeated_training_report(store):
    with medvec.open(store) as s:
        out = s["cases"].train("dx", "rep", head="early", shift=[0.0, 0.5, 1.0], seed=10, seeds=6, **TRAIN)
        single = s["cases"].train("dx", "one", head="early", shift=[0.0, 0.5, 1.0], seed=10, **TRAIN)
    rep = out["repeated"]
    runs = rep["runs"]
    assert [r["seed"] for r in runs] == list(range(10, 16))
    # The saved head is the first seed's (inference speed aside, which is timed).
    strip = lambda test: {k: v for k, v in test.items() if k != "rows_per_second"}  # noqa: E731
    assert strip(out["meta"]["test"]) == strip(single["meta"]["test"])
    assert single["repeated"] is None
    for metric in ("macro_f1", "accuracy", "balanced_accuracy"):
        values = [r[metric] for r in runs]
        spread = rep[metric]
        assert spread["mean"] == pytest.approx(np.mean(values), abs=1e-12)
        assert spread["sd"] == pytest.approx(np.std(values, ddof=1), abs=1e-12)
        assert spread["low"] <= spread["mean"] <= spread["high"]
        low, high = numpy_bootstrap(values)
        assert spread["low"] == pytest.approx(low, abs=0.01) and spread["high"] == pytest.approx(high, abs=0.01)
    assert len({r["macro_f1"] for r in runs}) > 1  # seeds differ: the spread is real
    gains = [r["macro_f1"] - r["unshifted_macro_f1"] for r in runs]
    assert rep["gain_over_unshifted"]["mean"] == pytest.approx(np.mean(gains), abs=1e-12)
    assert rep["shift_beats_unshifted"] == (rep["gain_over_unshifted"]["low"] > 0)


def test_each_seed_equals_a_single_run_with_that_seed(store):
    cases = medvec.open(store, read_only=True)["cases"]
    frame = cases.sweep("dx", head="late", lambdas=(0.0, 1.0, 0.5), seed=3, seeds=3, **TRAIN)
    singles = [cases.sweep("dx", head="late", lambdas=(0.0, 1.0, 0.5), seed=s, **TRAIN) for s in (3, 4, 5)]
    for i, row in frame.iterrows():
        val = [single["val_macro_f1"].iloc[i] for single in singles]
        test = [single["test_macro_f1"].iloc[i] for single in singles]
        assert row["val_macro_f1"] == pytest.approx(np.mean(val), abs=1e-12)
        assert row["val_sd"] == pytest.approx(np.std(val, ddof=1), abs=1e-12)
        assert row["test_macro_f1"] == pytest.approx(np.mean(test), abs=1e-12)
        assert row["test_low"] <= row["test_macro_f1"] <= row["test_high"]
    runs = frame.attrs["repeated"]["runs"]
    assert [r["lambda"] for r in runs] == [s.attrs["chosen_lambda"] for s in singles]


def test_cli_seeds_equals_python(store):
    theirs = cli_json("sweep", store, "cases", "--head", "early", "--label", "dx", "--from", "0", "--to", "1",
                      "--step", "0.5", "--epochs", "6", "--split", "0.6,0.2,0.2", "--seed", "7", "--seeds", "3")[0]
    ours = medvec.open(store, read_only=True)["cases"].sweep("dx", head="early", lambdas=(0.0, 1.0, 0.5), seed=7, seeds=3, **TRAIN)
    assert theirs["repeated"] == ours.attrs["repeated"]


def test_seeds_need_a_test_split(store):
    cases = medvec.open(store, read_only=True)["cases"]
    with pytest.raises(medvec.InvalidInput, match="no test rows"):
        cases.sweep("dx", head="early", lambdas=(0.0, 0.0, 1.0), seeds=2, epochs=2, split=(0.8, 0.2, 0.0))
