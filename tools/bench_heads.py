#!/usr/bin/env python3
"""scikit-learn peer of the fusion-head benchmark (driven by `cargo bench --bench heads`).

Reads the .npy files the Rust driver wrote (DIR/{name}_{train,test}_{text,image,labels}.npy),
trains scikit-learn MLPClassifier on the concatenated [text, image] features with the settings
of medvec's heads (adam, learning rate 1e-3, batch 64, shuffled, float32 inputs), and writes one
JSON list of results to --out:

  early  MLPClassifier((128,))  -- the same network as medvec's early fusion, minus BatchNorm.
  late   MLPClassifier((64,))   -- scikit-learn has no per-modality branches; a 64-unit layer on
                                   the concatenation does the same first-layer multiply-adds as
                                   late fusion's two 64-unit branches ((d_t + d_i) x 64).

Per repeat: seconds per epoch = fit wall time / n_iter_ (max_iter epochs, no early stopping,
tol disabled), process CPU seconds likewise; then the median over `--infer-repeats` calls of
predict_proba on the test set. Medians over repeats are reported, with every run listed.
"""
import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import numpy as np


def load(data: Path, name: str, part: str):
    text = np.load(data / f"{name}_{part}_text.npy")
    image = np.load(data / f"{name}_{part}_image.npy")
    labels = np.load(data / f"{name}_{part}_labels.npy")
    return np.ascontiguousarray(np.concatenate([text, image], axis=1), dtype=np.float32), labels


def run(x, y, xt, yt, hidden: int, epochs: int, seed: int, infer_repeats: int) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import f1_score
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=(hidden,),
        solver="adam",
        learning_rate_init=1e-3,
        batch_size=64,
        max_iter=epochs,
        shuffle=True,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        early_stopping=False,
        random_state=seed,
    )
    wall0, cpu0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x, y)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    passes = []
    for _ in range(infer_repeats):
        t0 = time.perf_counter()
        proba = clf.predict_proba(xt)
        passes.append(time.perf_counter() - t0)
    pred = clf.classes_[np.argmax(proba, axis=1)]
    return {
        "s_per_epoch": wall / clf.n_iter_,
        "cpu_per_epoch": cpu / clf.n_iter_,
        "epochs": int(clf.n_iter_),
        "infer_s": statistics.median(passes),
        "macro_f1": float(f1_score(yt, pred, average="macro")),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--names", default="clip,dino_llama")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--infer-repeats", type=int, default=10)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    results = []
    for name in args.names.split(","):
        x, y = load(args.data, name, "train")
        xt, yt = load(args.data, name, "test")
        for fusion, hidden in (("early", 128), ("late", 64)):
            runs = [
                run(x, y, xt, yt, hidden, args.epochs, seed, args.infer_repeats)
                for seed in range(args.repeats)
            ]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            med.update(name=name, fusion=fusion, hidden=hidden, rows=len(y), test_rows=len(yt), runs=runs)
            print(f"sklearn {name} {fusion}: {med['s_per_epoch']:.3f} s/epoch, "
                  f"{med['infer_s']:.4f} s/test pass", flush=True)
            results.append(med)
    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
