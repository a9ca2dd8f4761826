#!/usr/bin/env python3
"""Independent references for medvec's classifier heads (numpy + scikit-learn only).

Used by crates/query/tests/heads_reference.rs. Each command reads files from a directory
written by the Rust test and prints one JSON document on stdout.

  forward DIR   head.bin (TrainedHead::to_bytes, format v1 or v2) + field0.npy, field1.npy, ...
                (one per field of the head, in its field order)
                -> {"logits": [[...]], "proba": [[...]]}, computed in float64 with the
                   inference-mode formulas written out here (running BatchNorm statistics,
                   dropout off).
  metrics DIR   cases.json: [{"y_true": [...], "y_pred": [...]}, ...]
                -> per case: sklearn accuracy, macro-F1, balanced accuracy,
                   precision_recall_fscore_support(average=None), confusion_matrix.
  mlp DIR       field0.npy (text), field1.npy (image), labels.npy, train.npy, test.npy [+ alpha.json]
                -> test macro-F1 / accuracy of sklearn MLPClassifier((128,), adam,
                   lr 1e-3, batch 64, max_iter 30, random_state 0) trained on the
                   concatenated training features.
  pca DIR       x.npy -> {"projected": [[pc1, pc2], ...], "explained_variance": [...]} from
                   sklearn PCA(n_components=2, svd_solver="full") in float64.
  svg DIR       chart.svg -> parsed with xml.etree (so it must be well-formed XML):
                   {"root": tag, "circles": {fill or stroke colour: count},
                    "polylines": [{"stroke": colour, "points": count}, ...]}
"""
import json
import struct
import sys
import warnings
from pathlib import Path

import numpy as np

BN_EPS = 1e-5


class Reader:
    """Little-endian reader for the head body format (see crates/query/src/heads/serial.rs)."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        vals = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return vals

    def tensor(self, shape):
        (n,) = self.take("<Q")
        assert n == int(np.prod(shape)), (n, shape)
        arr = np.frombuffer(self.data, dtype="<f4", count=n, offset=self.pos)
        self.pos += 4 * n
        return arr.astype(np.float64).reshape(shape)


def load_head(path: Path) -> dict:
    r = Reader(path.read_bytes())
    assert r.data[:4] == b"MVHD", "bad magic"
    r.pos = 4
    (version, fusion) = r.take("<II")
    assert version in (1, 2), version
    if version == 1:  # two fields, no count
        dims = list(r.take("<QQ"))
    else:
        (n,) = r.take("<Q")
        dims = list(r.take("<" + "Q" * n))
    hidden, classes = r.take("<QQ")
    (_dropout,) = r.take("<f")
    (_best_epoch, n_hist) = r.take("<QQ")
    r.pos += n_hist * (8 + 4 * 8)
    in_dims = [sum(dims)] if fusion == 0 else dims
    branches = []
    for d in in_dims:
        branches.append(
            {
                "w": r.tensor((d, hidden)),
                "b": r.tensor((hidden,)),
                "gamma": r.tensor((hidden,)),
                "beta": r.tensor((hidden,)),
                "mean": r.tensor((hidden,)),
                "var": r.tensor((hidden,)),
            }
        )
    out = 1 if classes == 2 else classes
    out_w = r.tensor((hidden * len(in_dims), out))
    out_b = r.tensor((out,))
    assert r.pos == len(r.data), "trailing bytes"
    return {"fusion": fusion, "dims": dims, "branches": branches, "out_w": out_w, "out_b": out_b, "classes": classes}


def forward(head: dict, fields: list):
    """Inference-mode forward pass in float64; early fusion concatenates the fields in order,
    late fusion has one branch per field."""
    fields = [f.astype(np.float64) for f in fields]
    inputs = [np.concatenate(fields, axis=1)] if head["fusion"] == 0 else fields
    hidden = []
    for x, br in zip(inputs, head["branches"]):
        a = np.maximum(x @ br["w"] + br["b"], 0.0)  # Linear -> ReLU (dropout is identity)
        hidden.append((a - br["mean"]) / np.sqrt(br["var"] + BN_EPS) * br["gamma"] + br["beta"])
    logits = np.concatenate(hidden, axis=1) @ head["out_w"] + head["out_b"]
    if logits.shape[1] == 1:
        p = 1.0 / (1.0 + np.exp(-logits[:, 0]))
        proba = np.stack([1.0 - p, p], axis=1)
    else:
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        proba = z / z.sum(axis=1, keepdims=True)
    return logits, proba


def cmd_forward(d: Path):
    head = load_head(d / "head.bin")
    fields = [np.load(d / f"field{k}.npy") for k in range(len(head["dims"]))]
    logits, proba = forward(head, fields)
    return {"logits": logits.tolist(), "proba": proba.tolist()}


def cmd_metrics(d: Path):
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    out = []
    for case in json.loads((d / "cases.json").read_text()):
        t, p = np.asarray(case["y_true"]), np.asarray(case["y_pred"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prec, rec, f1, sup = precision_recall_fscore_support(t, p, average=None)
            out.append(
                {
                    "accuracy": float(accuracy_score(t, p)),
                    "macro_f1": float(f1_score(t, p, average="macro")),
                    "balanced_accuracy": float(balanced_accuracy_score(t, p)),
                    "labels": sorted(set(t.tolist()) | set(p.tolist())),
                    "precision": prec.tolist(),
                    "recall": rec.tolist(),
                    "f1": f1.tolist(),
                    "support": [int(s) for s in sup],
                    "confusion": confusion_matrix(t, p).tolist(),
                }
            )
    return out


def cmd_mlp(d: Path):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.neural_network import MLPClassifier

    x = np.concatenate([np.load(d / "field0.npy"), np.load(d / "field1.npy")], axis=1)
    y = np.load(d / "labels.npy")
    train, test = np.load(d / "train.npy"), np.load(d / "test.npy")
    alpha_file = d / "alpha.json"
    alpha = json.loads(alpha_file.read_text()) if alpha_file.exists() else 1e-4
    clf = MLPClassifier(
        hidden_layer_sizes=(128,),
        solver="adam",
        learning_rate_init=1e-3,
        batch_size=64,
        alpha=alpha,
        max_iter=30,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x[train], y[train])
    pred = clf.predict(x[test])
    return {
        "test_macro_f1": float(f1_score(y[test], pred, average="macro")),
        "test_accuracy": float(accuracy_score(y[test], pred)),
        "predictions": pred.tolist(),
    }


def cmd_pca(d: Path):
    from sklearn.decomposition import PCA

    x = np.load(d / "x.npy").astype(np.float64)
    pca = PCA(n_components=2, svd_solver="full")
    projected = pca.fit_transform(x)
    return {"projected": projected.tolist(), "explained_variance": pca.explained_variance_.tolist()}


def cmd_svg(d: Path):
    import xml.etree.ElementTree as ET

    root = ET.parse(d / "chart.svg").getroot()
    local = lambda tag: tag.rsplit("}", 1)[-1]
    circles, polylines = {}, []
    for el in root.iter():
        if local(el.tag) == "circle":
            colour = el.get("fill") if el.get("fill") not in (None, "none") else el.get("stroke")
            circles[colour] = circles.get(colour, 0) + 1
        elif local(el.tag) == "polyline":
            polylines.append({"stroke": el.get("stroke"), "points": len(el.get("points", "").split())})
    return {"root": local(root.tag), "circles": circles, "polylines": polylines}


def main(argv):
    commands = {"forward": cmd_forward, "metrics": cmd_metrics, "mlp": cmd_mlp, "pca": cmd_pca, "svg": cmd_svg}
    if len(argv) != 3 or argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    json.dump(commands[argv[1]](Path(argv[2])), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
