#!/usr/bin/env python3
"""Would binary codes pay? The best recall@10 any search over 1-bit codes can reach (issue 16).

    bench_binary.py [--n 1000000] [--dims 128,512] [--queries 1000] [--clusters 100]

A search over codes ranks candidates by the codes' distance, then re-ranks its best R with the
exact f32 vectors. Whatever graph it walks, it can do no better than a brute-force scan of
every code that keeps the R best: so the recall@10 of that scan, re-ranked exactly, is an upper
bound on the recall of a binary-code search with R = rescore x k candidates. This tool measures
it for 1-bit codes (bit d = x[d] > median of dimension d over the data, compared by Hamming
distance) beside SQ8 codes (8 bits per dimension, per-dimension min/max ranges, as medvec's
`sq8` field option; compared by inner product), on data drawn like the search bench's (`benches/search/data.rs`):
unit vectors from isotropic Gaussian clusters with centres N(0, 1) and spread 1.

Prints JSON: per dimension and R, the bound for each kind of code, and the rows' code sizes.
Reproduce the table in benches/README.md with the defaults (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

K = 10
CANDIDATES = (10, 20, 40, 100, 200, 400, 1000)


def clustered(rng: np.random.Generator, centres: np.ndarray, count: int) -> np.ndarray:
    """`count` unit vectors around random `centres`, spread 1 (float32)."""
    which = rng.integers(0, len(centres), size=count)
    rows = centres[which] + rng.standard_normal((count, centres.shape[1]), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def top(scores: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` highest scores of each row, best first."""
    part = np.argpartition(-scores, count - 1, axis=1)[:, :count]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def chunked_top(score_chunk, n_queries: int, count: int, chunk: int = 100) -> np.ndarray:
    """`top` over query chunks, so that a chunk's score matrix stays small."""
    return np.concatenate([top(score_chunk(q, min(q + chunk, n_queries)), count) for q in range(0, n_queries, chunk)])


def recall_after_rerank(base, queries, candidates, truth) -> float:
    """Recall@K of the exact inner-product top K among each query's candidates."""
    hits = 0
    for q, cand in enumerate(candidates):
        exact = base[cand] @ queries[q]
        best = cand[np.argsort(-exact, kind="stable")[:K]]
        hits += len(np.intersect1d(best, truth[q]))
    return hits / (K * len(queries))


def popcount_rows(words: np.ndarray) -> np.ndarray:
    """Bits set per row of a uint64 matrix."""
    return np.bitwise_count(words).sum(axis=-1, dtype=np.int32)


def binary_codes(rows: np.ndarray, medians: np.ndarray) -> np.ndarray:
    bits = np.packbits(rows > medians, axis=1)
    return bits.view(np.uint64)


def sq8_codes(rows: np.ndarray, lo: np.ndarray, step: np.ndarray) -> np.ndarray:
    return np.clip(np.rint((rows - lo) / step), 0, 255).astype(np.uint8)


def measure(dim: int, args, rng: np.random.Generator) -> dict:
    centres = rng.standard_normal((args.clusters, dim), dtype=np.float32)
    base = clustered(rng, centres, args.n)
    queries = clustered(rng, centres, args.queries)
    truth = chunked_top(lambda a, b: queries[a:b] @ base.T, args.queries, K)
    deepest = max(CANDIDATES)

    medians = np.median(base, axis=0)
    base_bits, query_bits = binary_codes(base, medians), binary_codes(queries, medians)
    # Lower Hamming distance is better: score = -distance.
    hamming = chunked_top(
        lambda a, b: -popcount_rows(base_bits[None, :, :] ^ query_bits[a:b, None, :]), args.queries, deepest, chunk=10
    )

    lo, hi = base.min(axis=0), base.max(axis=0)
    step = np.where(hi > lo, (hi - lo) / 255, 1.0).astype(np.float32)
    decoded = sq8_codes(base, lo, step).astype(np.float32) * step + lo
    sq8 = chunked_top(lambda a, b: queries[a:b] @ decoded.T, args.queries, deepest)

    rows = []
    for r in CANDIDATES:
        rows.append(
            {
                "candidates": r,
                "binary": round(recall_after_rerank(base, queries, hamming[:, :r], truth), 4),
                "sq8": round(recall_after_rerank(base, queries, sq8[:, :r], truth), 4),
            }
        )
        print(f"dim {dim} R {r}: {rows[-1]}", file=sys.stderr)
    return {"dim": dim, "code_bytes": {"binary": dim // 8, "sq8": dim, "f32": 4 * dim}, "bound": rows}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dims", default="128,512")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--clusters", type=int, default=100)
    ap.add_argument("--seed", type=int, default=16)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    results = [measure(int(d), args, rng) for d in args.dims.split(",")]
    print(json.dumps({"n": args.n, "queries": args.queries, "k": K, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
