#!/usr/bin/env python3
"""Independent numpy / scikit-learn reference for medvec's alignment shift and gap report.

Usage: reference_alignment.py INPUT.json OUTPUT.json

INPUT: {"a": [[...]], "b": [[...]], "lambda": float, "queries": [[...]] (b-modality), "k": int}
Rows of a and b are paired (row i of each belongs to record i). OUTPUT holds Δ, the shifted
vectors, the exact top-k of each query (shifted as b) against the shifted a vectors, and the gap
report before and after the shift. This follows the paper's reference code (method.md §3).
"""
import json
import sys

import numpy as np
from sklearn.decomposition import PCA


def normalize(x):
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.where(n > 0, x / np.where(n > 0, n, 1), 0)


def gap(a_unit, b_unit):
    stacked = np.vstack([a_unit, b_unit])
    projected = PCA(n_components=2).fit_transform(stacked)
    n = len(a_unit)
    return {
        "delta_norm": float(np.linalg.norm(a_unit.mean(0) - b_unit.mean(0))),
        "mean_paired_cosine": float(np.mean(np.sum(a_unit * b_unit, axis=1))),
        "resultant_length_a": float(np.linalg.norm(a_unit.sum(0)) / n),
        "resultant_length_b": float(np.linalg.norm(b_unit.sum(0)) / len(b_unit)),
        "pca_variance_a": float(np.var(projected[:n])),
        "pca_variance_b": float(np.var(projected[n:])),
    }


def main():
    data = json.load(open(sys.argv[1]))
    a = normalize(np.array(data["a"], dtype=np.float64))
    b = normalize(np.array(data["b"], dtype=np.float64))
    lam = float(data["lambda"])
    delta = a.mean(0) - b.mean(0)
    a_shifted = normalize(a - lam / 2 * delta)
    b_shifted = normalize(b + lam / 2 * delta)
    queries = normalize(normalize(np.array(data["queries"], dtype=np.float64)) + lam / 2 * delta)
    scores = queries @ a_shifted.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, : data["k"]]
    out = {
        "delta": delta.tolist(),
        "a_shifted": a_shifted.tolist(),
        "b_shifted": b_shifted.tolist(),
        "topk": order.tolist(),
        "topk_scores": np.take_along_axis(scores, order, axis=1).tolist(),
        "gap": gap(a, b),
        "gap_shifted": gap(a_shifted, b_shifted),
    }
    json.dump(out, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
