#!/usr/bin/env python3
"""Generate medvec's small demo dataset under fixtures/demo/ (deterministic).

    .venv/bin/python tools/make_demo_fixtures.py --metadata HAM10000_metadata.csv [--out DIR] [--seed N]

Rows are a stratified sample of the real HAM10000 metadata (the dataset's metadata CSV,
columns lesion_id,image_id,dx,dx_type,age,sex,localization; Tschandl et al. 2018,
doi:10.7910/DVN/DBW86T, CC BY-NC 4.0). Only the sampled rows are committed, in meta.csv. Embeddings are synthetic and "CLIP-like": each modality sits in a narrow
cone around its own centre and the two cones are apart (the modality gap), with a
learnable but noisy class signal. See fixtures/README.md for the file formats.

Outputs (row i of every file is the same sample):
    image.npy, text.npy   float32, C order, shape (N, DIM), numpy.save
    meta.csv              id,lesion_id,dx,dx_type,age,sex,localization,split
    paper_layout.csv      ID,dx,age,sex,localization,split,image_embedding_0..,text_embedding_0..

Prints the statistics used to check the signal level (cosines, concentration,
logistic-regression macro-F1).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "fixtures" / "demo"

CLASSES = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
COLUMNS = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"]
SPLITS = (("train", 0.70), ("val", 0.15), ("test", 0.15))

# Generator parameters (tuned so the printed statistics land in the target ranges:
# mean paired cosine 0.2-0.35, mean resultant length ~0.8 per modality, linear
# macro-F1 on concat 0.6-0.85).
CONE_COS = 0.30  # cosine between the image and the text cone centres
IMG_A, IMG_B, IMG_NOISE = 1.0, 0.22, 0.080  # centre weight, class weight, per-dim noise sd
TXT_A, TXT_B, TXT_NOISE = 1.0, 0.18, 0.075
TXT_CLASS_CORR = 0.6  # how much text class directions follow the image ones
LESION_SD = 0.030  # per-dim sd of an offset shared by images of one lesion
PAIR_SD = 0.050  # per-dim sd of a per-row latent seen by both modalities (makes pairs match)
ATTR_SEX, ATTR_AGE, ATTR_LOC = 0.12, 0.10, 0.14  # text attribute signal weights


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--metadata", type=Path, required=True, help="the HAM10000 metadata CSV (10,015 rows)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default: %(default)s)")
    p.add_argument("--seed", type=int, default=20240603, help="numpy seed (default: %(default)s)")
    p.add_argument("--rows", type=int, default=600, help="rows to sample (default: %(default)s)")
    p.add_argument("--dim", type=int, default=64, help="embedding dimension (default: %(default)s)")
    p.add_argument("--min-per-class", type=int, default=30, help="minimum rows per dx class (default: %(default)s)")
    p.add_argument("--min-missing-age", type=int, default=3, help="rows without age to keep in the sample (default: %(default)s)")
    return p.parse_args(argv)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def allocate(counts: pd.Series, total: int, floor: int) -> dict[str, int]:
    """Proportional allocation with a per-class floor (largest-remainder rounding)."""
    counts = counts.astype(int)
    if floor * len(counts) > total:
        sys.exit(f"cannot give {len(counts)} classes {floor} rows each out of {total}")
    fixed: dict[str, int] = {}
    while True:
        free = [c for c in counts.index if c not in fixed]
        budget = total - sum(fixed.values())
        share = {c: budget * counts[c] / counts[free].sum() for c in free}
        low = [c for c in free if share[c] < floor]
        if not low:
            break
        for c in low:
            fixed[c] = min(floor, int(counts[c]))
    alloc = {c: int(math.floor(share[c])) for c in free}
    rest = budget - sum(alloc.values())
    for c in sorted(free, key=lambda c: (-(share[c] - alloc[c]), c))[:rest]:
        alloc[c] += 1
    alloc.update(fixed)
    for c, n in alloc.items():
        if n > counts[c]:
            sys.exit(f"class {c} has only {counts[c]} rows, {n} requested")
    return alloc


def sample_rows(meta: pd.DataFrame, rng: np.random.Generator, total: int, floor: int, min_missing_age: int) -> pd.DataFrame:
    alloc = allocate(meta["dx"].value_counts(), total, floor)
    parts = []
    for c in CLASSES:
        pool = meta[meta["dx"] == c]
        idx = rng.choice(len(pool), size=alloc[c], replace=False)
        parts.append(pool.iloc[np.sort(idx)])
    sample = pd.concat(parts)
    # Keep a few rows without age so that readers meet the "no data reported" case;
    # swap them in for same-class rows that have an age.
    missing = int(sample["age"].isna().sum())
    if missing < min_missing_age:
        unused = meta[meta["age"].isna() & ~meta["image_id"].isin(sample["image_id"])]
        take = unused.iloc[rng.permutation(len(unused))[: min_missing_age - missing]]
        for _, row in take.iterrows():
            cand = sample.index[(sample["dx"] == row["dx"]) & sample["age"].notna()]
            drop = cand[rng.integers(len(cand))]
            sample = pd.concat([sample.drop(index=drop), row.to_frame().T])
    sample = sample.sort_values("image_id", kind="stable").reset_index(drop=True)
    return sample


def assign_splits(sample: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """70/15/15 split stratified by dx, keeping all images of a lesion in one split."""
    split = np.empty(len(sample), dtype=object)
    for c in CLASSES:
        rows = sample.index[sample["dx"] == c]
        groups = list(sample.loc[rows].groupby("lesion_id", sort=True).groups.items())
        order = rng.permutation(len(groups))
        # Biggest lesions first so multi-image lesions do not overshoot a small split.
        order = sorted(order, key=lambda i: -len(groups[i][1]))
        n = len(rows)
        targets = {name: frac * n for name, frac in SPLITS}
        have = {name: 0 for name, _ in SPLITS}
        for gi in order:
            _, members = groups[gi]
            name = max(SPLITS, key=lambda s: (targets[s[0]] - have[s[0]]) / targets[s[0]])[0]
            split[members] = name
            have[name] += len(members)
    return split


def random_unit_orthogonal(rng: np.random.Generator, dim: int, basis: np.ndarray, k: int) -> np.ndarray:
    """k random unit vectors orthogonal to the rows of `basis` (orthonormal)."""
    v = rng.standard_normal((k, dim))
    v -= (v @ basis.T) @ basis
    return unit(v)


def make_embeddings(sample: pd.DataFrame, rng: np.random.Generator, dim: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(sample)
    # Cone centres: unit vectors with cosine CONE_COS.
    e = np.linalg.qr(rng.standard_normal((dim, 2)))[0].T  # two orthonormal rows
    img_c = e[0]
    txt_c = CONE_COS * e[0] + math.sqrt(1 - CONE_COS**2) * e[1]
    centres = e  # span of both centres

    # Class directions, orthogonal to both centres; text ones partly follow image ones.
    cls_img = random_unit_orthogonal(rng, dim, centres, len(CLASSES))
    own = random_unit_orthogonal(rng, dim, centres, len(CLASSES))
    cls_txt = unit(TXT_CLASS_CORR * cls_img + math.sqrt(1 - TXT_CLASS_CORR**2) * own)

    # Text attribute directions (sex, age, localization), orthogonal to the centres.
    sexes = sorted(sample["sex"].unique())
    locs = sorted(set(sample["localization"].unique()))
    sex_dir = dict(zip(sexes, random_unit_orthogonal(rng, dim, centres, len(sexes))))
    loc_dir = dict(zip(locs, random_unit_orthogonal(rng, dim, centres, len(locs))))
    age_dir = random_unit_orthogonal(rng, dim, centres, 1)[0]
    age_missing_dir = random_unit_orthogonal(rng, dim, centres, 1)[0]

    # Per-lesion offset shared by the images of one lesion.
    lesions = sorted(sample["lesion_id"].unique())
    lesion_off = dict(zip(lesions, LESION_SD * rng.standard_normal((len(lesions), dim))))

    # Per-row content shared by the image and its text (what paired retrieval finds),
    # living in the subspace orthogonal to both centres.
    pair = PAIR_SD * rng.standard_normal((n, dim))
    pair -= (pair @ centres.T) @ centres

    dx_idx = sample["dx"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    img = IMG_A * img_c + IMG_B * cls_img[dx_idx]
    img += np.stack([lesion_off[l] for l in sample["lesion_id"]])
    img += pair + IMG_NOISE * rng.standard_normal((n, dim))

    age = pd.to_numeric(sample["age"], errors="coerce").to_numpy(dtype=float)
    age_z = np.where(np.isnan(age), 0.0, (age - 52.0) / 17.0)
    txt = TXT_A * txt_c + TXT_B * cls_txt[dx_idx]
    txt += ATTR_SEX * np.stack([sex_dir[s] for s in sample["sex"]])
    txt += ATTR_LOC * np.stack([loc_dir[s] for s in sample["localization"]])
    txt += ATTR_AGE * (age_z[:, None] * age_dir + np.isnan(age)[:, None] * age_missing_dir)
    txt += pair + TXT_NOISE * rng.standard_normal((n, dim))

    img = np.ascontiguousarray(unit(img), dtype=np.float32)
    txt = np.ascontiguousarray(unit(txt), dtype=np.float32)
    return img, txt


def age_str(v, as_float: bool) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or pd.isna(v):
        return ""
    return repr(float(v)) if as_float else str(int(v))


def write_outputs(out: Path, sample: pd.DataFrame, img: np.ndarray, txt: np.ndarray) -> None:
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "image.npy", img)
    np.save(out / "text.npy", txt)
    with open(out / "meta.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "lesion_id", "dx", "dx_type", "age", "sex", "localization", "split"])
        for r in sample.itertuples(index=False):
            w.writerow([r.image_id, r.lesion_id, r.dx, r.dx_type, age_str(r.age, False), r.sex, r.localization, r.split])
    dim = img.shape[1]
    with open(out / "paper_layout.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(
            ["ID", "dx", "age", "sex", "localization", "split"]
            + [f"image_embedding_{j}" for j in range(dim)]
            + [f"text_embedding_{j}" for j in range(dim)]
        )
        for i, r in enumerate(sample.itertuples(index=False)):
            # Ages as pandas writes a float column with NaNs ("80.0" / empty);
            # embeddings as repr() of the float32 values (exact when parsed back).
            w.writerow(
                [r.image_id, r.dx, age_str(r.age, True), r.sex, r.localization, r.split]
                + [repr(float(x)) for x in img[i]]
                + [repr(float(x)) for x in txt[i]]
            )


def report(out: Path, sample: pd.DataFrame, img: np.ndarray, txt: np.ndarray, seed: int) -> None:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    print(f"wrote {out}:")
    for name in ("image.npy", "text.npy", "meta.csv", "paper_layout.csv"):
        print(f"  {name:17s} {os.path.getsize(out / name):>9,d} bytes")
    print(f"rows {len(sample)}, dim {img.shape[1]}, seed {seed}")
    ct = pd.crosstab(sample["dx"], sample["split"]).reindex(index=CLASSES, columns=[s for s, _ in SPLITS]).fillna(0).astype(int)
    ct["total"] = ct.sum(axis=1)
    print("rows per class and split:\n" + ct.to_string())
    print(
        f"missing age: {int(sample['age'].isna().sum())}, "
        f"lesions: {sample['lesion_id'].nunique()} (all images of a lesion share a split)"
    )

    paired = np.sum(img.astype(np.float64) * txt, axis=1)
    perm = np.random.default_rng(seed + 1).permutation(len(img))
    unpaired = np.sum(img.astype(np.float64) * txt[perm], axis=1)
    r_img = float(np.linalg.norm(img.mean(axis=0)))
    r_txt = float(np.linalg.norm(txt.mean(axis=0)))
    gap = img.astype(np.float64).mean(axis=0) - txt.mean(axis=0)
    shifted_t = unit(txt + 0.5 * gap)
    shifted_v = unit(img - 0.5 * gap)
    print(f"mean paired cosine (image_i, text_i): {paired.mean():.3f} (sd {paired.std():.3f}); shuffled pairs: {unpaired.mean():.3f}")
    print(f"mean resultant length: image {r_img:.3f}, text {r_txt:.3f}; ||gap|| = {np.linalg.norm(gap):.3f}")
    print(f"after alignment shift lambda=1: mean paired cosine {np.sum(shifted_t * shifted_v, axis=1).mean():.3f}")
    # The paper's gap diagnostic: variance per modality after PCA(2) on the stacked vectors.
    z = PCA(n_components=2).fit_transform(np.vstack([img, txt]).astype(np.float64))
    vi, vt = z[: len(img)].var(axis=0).sum(), z[len(img) :].var(axis=0).sum()
    print(f"PCA(2) on stacked vectors, variance per modality: image {vi:.4f}, text {vt:.4f}")

    y = sample["dx"].to_numpy()
    tr, va, te = (sample["split"].to_numpy() == s for s in ("train", "val", "test"))
    feats = {"image": img, "text": txt, "concat": np.hstack([txt, img])}
    print("LogisticRegression (standardised, balanced class weights), macro-F1 / accuracy:")
    for name, x in feats.items():
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, class_weight="balanced"))
        clf.fit(x[tr], y[tr])
        res = []
        for label, m in (("val", va), ("test", te)):
            pred = clf.predict(x[m])
            res.append(f"{label} {f1_score(y[m], pred, average='macro'):.3f} / {np.mean(pred == y[m]):.3f}")
        print(f"  {name:6s} train->{', train->'.join(res)}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not args.metadata.is_file():
        sys.exit(f"metadata file not found: {args.metadata} (pass --metadata PATH)")
    meta = pd.read_csv(args.metadata, usecols=COLUMNS, dtype={c: str for c in COLUMNS if c != "age"})
    meta = meta[COLUMNS]
    meta["age"] = pd.to_numeric(meta["age"], errors="coerce")
    unknown = set(meta["dx"]) - set(CLASSES)
    if unknown:
        sys.exit(f"unexpected dx values: {sorted(unknown)}")

    rng = np.random.default_rng(args.seed)
    sample = sample_rows(meta, rng, args.rows, args.min_per_class, args.min_missing_age)
    sample["split"] = assign_splits(sample, rng)
    img, txt = make_embeddings(sample, rng, args.dim)
    assert img.shape == txt.shape == (args.rows, args.dim)
    assert img.flags["C_CONTIGUOUS"] and img.dtype == np.float32
    write_outputs(args.out, sample, img, txt)
    report(args.out, sample, img, txt, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
