#!/usr/bin/env python3
"""`--like` in a process that stays open (a notebook, `medvec serve`): the latency of "show me the
cases like this one" once the store is open, for ids the process has not asked for before.

Each question is what `medvec search --like ID -k 10` does: `get` the record, then search its
vector for k + 1 hits (the record itself comes back first). Ids are drawn at random from
`0..N-1` (the ids `benches/long.sh` imports), 30 of them first as a warm-up, then `--runs` timed
ones; prints the median and 90th-percentile wall time and the median CPU time per question.

    . tools/.cache/env.sh
    "$MEDVEC_PYTHON" tools/bench_warm_like.py target/bench-long-10000000/medvec-store \\
        --n 10000000 --efs 64,192
"""

import argparse
import random
import statistics

import medvec
from bench_python import timed  # this folder's per-call wall and CPU timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store")
    parser.add_argument("--collection", default="bench")
    parser.add_argument("--field", default="v")
    parser.add_argument("--n", type=int, required=True, help="ids are 0..n-1")
    parser.add_argument("--efs", default="64,192")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    cases = medvec.open(args.store, read_only=True).collection(args.collection)
    draw = random.Random(args.seed)

    def like(ef: int):
        record = cases.get(str(draw.randrange(args.n)))
        return cases.search(args.field, record["vectors"][args.field], k=11, ef=ef)

    for ef in (int(e) for e in args.efs.split(",")):
        for _ in range(30):
            like(ef)
        walls, cpus = [], []
        for _ in range(args.runs):
            _, wall, cpu = timed(lambda: like(ef))
            walls.append(wall * 1e3)
            cpus.append(cpu * 1e3)
        walls.sort()
        p90 = walls[int(0.9 * len(walls)) - 1]
        print(
            f"ef {ef}: {args.runs} new ids, get + search k 11: median {statistics.median(walls):.1f} ms "
            f"wall, p90 {p90:.1f} ms, median CPU {statistics.median(cpus):.1f} ms"
        )


if __name__ == "__main__":
    main()
