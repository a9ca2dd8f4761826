"""Grouped splits (`group_column`, `--group-column`): no group (lesion, patient) in two parts,
and class proportions within a stated tolerance of a scikit-learn StratifiedGroupKFold reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import StratifiedGroupKFold

import medvec
from conftest import ROOT, cli_json

TOLERANCE = 0.05  # absolute, on each class's share of each part


def lesion_store(path, seed=0):
    """HAM10000-like: lesions with 1–6 images each, one diagnosis per lesion, unequal classes."""
    rng = np.random.default_rng(seed)
    rows = []
    for lesion in range(400):
        dx = rng.choice(["nv", "mel", "bkl", "bcc"], p=[0.6, 0.2, 0.15, 0.05])
        for image in range(int(rng.integers(1, 7))):
            rows.append((f"img{len(rows):05d}", f"HAM_{lesion:05d}", dx))
    meta = pd.DataFrame(rows, columns=["id", "lesion_id", "dx"])
    centres = {d: rng.normal(size=16) for d in ["nv", "mel", "bkl", "bcc"]}
    signal = np.stack([centres[d] for d in meta["dx"]]) + rng.normal(scale=1.5, size=(len(meta), 16))
    with medvec.open(path) as store:
        c = store.create_collection("cases", vectors={"image": 16, "text": 16}, payload={"lesion_id": str, "dx": str})
        c.upsert(meta["id"], vectors={"image": signal, "text": signal + 0.3}, payload=meta[["lesion_id", "dx"]])
    return meta


def reference_shares(meta, seed):
    """Class shares per part of a 70/15/15 split made of StratifiedGroupKFold folds: one fold of
    7 as test, then one fold of the rest's 6 (about 15% of the whole) as validation."""
    y, groups = meta["dx"].to_numpy(), meta["lesion_id"].to_numpy()
    rest, test = next(StratifiedGroupKFold(n_splits=7, shuffle=True, random_state=seed).split(y, y, groups))
    train, val = next(StratifiedGroupKFold(n_splits=6, shuffle=True, random_state=seed).split(y[rest], y[rest], groups[rest]))
    parts = {"train": rest[train], "val": rest[val], "test": test}
    return {p: meta.iloc[rows]["dx"].value_counts(normalize=True) for p, rows in parts.items()}, parts


def test_no_lesion_in_two_parts_and_shares_match_the_reference(tmp_path):
    meta = lesion_store(tmp_path / "s")
    cases = medvec.open(tmp_path / "s", read_only=True)["cases"]
    for seed in (0, 1, 2):
        split = cases.split("dx", group_column="lesion_id", seed=seed).merge(meta, on="id")
        assert len(split) == len(meta)
        assert split.groupby("lesion_id")["part"].nunique().max() == 1
        reference, ref_parts = reference_shares(meta, seed)
        sizes = split["part"].value_counts(normalize=True)
        for part, share in {"train": 0.7, "val": 0.15, "test": 0.15}.items():
            assert abs(sizes[part] - share) < TOLERANCE, (part, sizes[part])
            ref_size = len(ref_parts[part]) / len(meta)
            assert abs(sizes[part] - ref_size) < TOLERANCE, (part, sizes[part], ref_size)
            ours = split[split["part"] == part]["dx"].value_counts(normalize=True)
            for dx in ["nv", "mel", "bkl", "bcc"]:
                assert abs(ours.get(dx, 0) - reference[part].get(dx, 0)) < TOLERANCE, (seed, part, dx)


def test_an_image_level_split_leaks_lesions_and_a_grouped_one_does_not(tmp_path):
    meta = lesion_store(tmp_path / "s", seed=4)
    cases = medvec.open(tmp_path / "s", read_only=True)["cases"]
    plain = cases.split("dx", seed=0).merge(meta, on="id")
    assert plain.groupby("lesion_id")["part"].nunique().max() > 1  # the leakage grouping removes
    grouped = cases.split("dx", group_column="lesion_id", seed=0).merge(meta, on="id")
    assert grouped.groupby("lesion_id")["part"].nunique().max() == 1


def test_cli_and_python_train_on_the_same_grouped_split(tmp_path):
    lesion_store(tmp_path / "s")
    path = tmp_path / "s"
    theirs = cli_json("train", path, "cases", "--head", "late", "--label", "dx", "--group-column", "lesion_id",
                      "--seed", "5", "--epochs", "5", "--name", "grouped")[0]
    cases = medvec.open(path, read_only=True)["cases"]
    split = cases.split("dx", group_column="lesion_id", seed=5)
    assert theirs["meta"]["rows"] == [int((split["part"] == p).sum()) for p in ("train", "val", "test")]
    ours = cases.sweep("dx", head="late", lambdas=(0.0, 0.0, 1.0), group_column="lesion_id", seed=5, epochs=5)
    assert ours["test_macro_f1"].iloc[0] == theirs["curve"][0]["test_macro_f1"]


def test_the_real_ham10000_rows_keep_lesions_together(tmp_path):
    meta = pd.read_csv(ROOT / "fixtures" / "demo" / "meta.csv")
    rng = np.random.default_rng(0)
    with medvec.open(tmp_path / "s") as store:
        c = store.create_collection("cases", vectors={"image": 8, "text": 8}, payload={"lesion_id": str, "dx": str})
        c.upsert(meta["id"], vectors={"image": rng.normal(size=(len(meta), 8)), "text": rng.normal(size=(len(meta), 8))},
                 payload=meta[["lesion_id", "dx"]])
        split = c.split("dx", group_column="lesion_id", seed=0).merge(meta, on="id")
    assert split.groupby("lesion_id")["part"].nunique().max() == 1
    assert meta["lesion_id"].duplicated().any()  # the fixture has lesions with several images


def test_bad_group_arguments(tmp_path):
    lesion_store(tmp_path / "s")
    cases = medvec.open(tmp_path / "s", read_only=True)["cases"]
    with pytest.raises(medvec.InvalidInput, match="unknown split or group field `patient`"):
        cases.split("dx", group_column="patient")
    with pytest.raises(medvec.InvalidInput, match="give one of them"):
        cases.split("dx", group_column="lesion_id", split_column="lesion_id")


def test_cross_validation_folds_partition_the_rows_and_keep_lesions_whole(tmp_path):
    meta = lesion_store(tmp_path / "s", seed=2)
    cases = medvec.open(tmp_path / "s", read_only=True)["cases"]
    folds = [cases.split("dx", group_column="lesion_id", cv=5, fold=f, seed=1).merge(meta, on="id") for f in range(5)]
    tests = [set(f[f["part"] == "test"]["id"]) for f in folds]
    assert set().union(*tests) == set(meta["id"]) and sum(map(len, tests)) == len(meta)  # each row tested once
    y, groups = meta["dx"].to_numpy(), meta["lesion_id"].to_numpy()
    reference = [meta.iloc[t]["dx"].value_counts(normalize=True)
                 for _, t in StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=1).split(y, y, groups)]
    overall = meta["dx"].value_counts(normalize=True)
    for fold, split in enumerate(folds):
        assert split.groupby("lesion_id")["part"].nunique().max() == 1
        assert abs((split["part"] == "test").mean() - 0.2) < TOLERANCE
        shares = split[split["part"] == "test"]["dx"].value_counts(normalize=True)
        for dx in overall.index:
            assert abs(shares.get(dx, 0) - overall[dx]) < TOLERANCE, (fold, dx)
            assert abs(shares.get(dx, 0) - reference[fold].get(dx, 0)) < 2 * TOLERANCE, (fold, dx)


def test_cv_training_reports_every_fold_as_the_cli_does(tmp_path):
    meta = lesion_store(tmp_path / "s", seed=3)
    path = tmp_path / "s"
    cases = medvec.open(path, read_only=True)["cases"]
    frame = cases.sweep("dx", head="early", lambdas=(0.0, 1.0, 1.0), cv=4, group_column="lesion_id", seed=2, epochs=4)
    report = frame.attrs["repeated"]
    assert [r["fold"] for r in report["runs"]] == [0, 1, 2, 3]
    sizes = [int((cases.split("dx", cv=4, fold=f, group_column="lesion_id", seed=2)["part"] == "test").sum()) for f in range(4)]
    assert [r["test_rows"] for r in report["runs"]] == sizes and sum(sizes) == len(meta)
    assert report["macro_f1"]["mean"] == pytest.approx(np.mean([r["macro_f1"] for r in report["runs"]]), abs=1e-12)
    theirs = cli_json("sweep", path, "cases", "--head", "early", "--label", "dx", "--from", "0", "--to", "1", "--step", "1",
                      "--cv", "4", "--group-column", "lesion_id", "--seed", "2", "--epochs", "4")[0]
    assert theirs["repeated"] == report
    with pytest.raises(medvec.InvalidInput, match="cv, split_column"):
        cases.sweep("dx", cv=3, split_column="lesion_id")


def numpy_bootstrap_metrics(truth, predicted, units, resamples, seed):
    """Percentile bootstrap of accuracy and macro-F1 over resampled units, in plain numpy."""
    rng = np.random.default_rng(seed)
    acc, f1 = [], []
    for _ in range(resamples):
        rows = np.concatenate([units[i] for i in rng.integers(0, len(units), len(units))])
        t, p = truth[rows], predicted[rows]
        acc.append(np.mean(t == p))
        scores = []
        for c in np.union1d(np.unique(t), np.unique(p)):
            tp, fp, fn = np.sum((p == c) & (t == c)), np.sum((p == c) & (t != c)), np.sum((p != c) & (t == c))
            scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
        f1.append(np.mean(scores))
    return np.percentile(acc, [2.5, 97.5]), np.percentile(f1, [2.5, 97.5])


def correlated_lesions(path):
    """Lesions whose images share most of their noise: a lesion is one case seen several times."""
    rng = np.random.default_rng(8)
    rows, vectors = [], []
    centres = {d: rng.normal(size=16) for d in ["nv", "mel", "bkl"]}
    for lesion in range(150):
        dx = rng.choice(["nv", "mel", "bkl"], p=[0.5, 0.3, 0.2])
        lesion_noise = rng.normal(scale=2.0, size=16)
        for _ in range(int(rng.integers(2, 7))):
            rows.append((f"img{len(rows):05d}", f"HAM_{lesion:05d}", dx))
            vectors.append(centres[dx] + lesion_noise + rng.normal(scale=0.2, size=16))
    meta = pd.DataFrame(rows, columns=["id", "lesion_id", "dx"])
    v = np.array(vectors)
    with medvec.open(path) as store:
        c = store.create_collection("cases", vectors={"image": 16, "text": 16}, payload={"lesion_id": str, "dx": str})
        c.upsert(meta["id"], vectors={"image": v, "text": v + 0.3}, payload=meta[["lesion_id", "dx"]])
        c.train("dx", "late", head="late", group_column="lesion_id", epochs=5, seed=1)
    return meta


def test_eval_bootstrap_intervals_resample_records_or_whole_lesions(tmp_path):
    path = tmp_path / "s"
    meta = correlated_lesions(path)
    cases = medvec.open(path, read_only=True)["cases"]
    plain = cases.evaluate("late", seeds=800, seed=3)
    grouped = cases.evaluate("late", seeds=800, group_column="lesion_id", seed=3)
    predictions = cases.classify("late").merge(meta, on="id")
    truth, predicted = predictions["truth"].to_numpy(), predictions["predicted"].to_numpy()
    rows = [np.array([i]) for i in range(len(predictions))]
    lesions = [np.array(ix) for ix in predictions.groupby("lesion_id", sort=False).indices.values()]
    assert grouped["intervals"]["units"] == len(lesions) and plain["intervals"]["units"] == len(rows)
    for report, units in ((plain, rows), (grouped, lesions)):
        acc, f1 = numpy_bootstrap_metrics(truth, predicted, units, 4000, 0)
        assert np.abs(np.array(report["intervals"]["accuracy"]) - acc).max() < 0.02
        assert np.abs(np.array(report["intervals"]["macro_f1"]) - f1).max() < 0.025
        assert report["intervals"]["accuracy"][0] <= report["accuracy"] <= report["intervals"]["accuracy"][1]
    width = lambda r: r["intervals"]["accuracy"][1] - r["intervals"]["accuracy"][0]  # noqa: E731
    assert width(grouped) > 1.3 * width(plain)  # a lesion's images are not independent cases
    theirs = cli_json("eval", path, "cases", "--head", "late", "--seeds", "800", "--group-column", "lesion_id", "--seed", "3")[0]
    assert theirs == grouped
    with pytest.raises(medvec.InvalidInput, match="needs seeds"):
        cases.evaluate("late", group_column="lesion_id")
