#!/usr/bin/env bash
# Search throughput of medvec and hnswlib, interleaved, on stores already built (issue 16).
#
#   bash benches/search_saved.sh [ROUNDS] [EF]
#
# Needs the data of an earlier 1M x 128 `cargo bench --bench search` in target/bench-data: the
# medvec store (`medvec-store`, or `medvec-store-sq8` with MEDVEC_BENCH_QUANTIZE=sq8), hnswlib's
# saved index `hnswlib.index`, `queries.npy` and `truth.npy`. Each round runs medvec's sweep
# (`cargo bench --bench search -- sweep`: warm-up, then the median of >= 5 batch runs of every
# query on 2 threads) and then the same for hnswlib on its saved index (loaded once per round),
# so the two share the machine's conditions. Prints each round and the medians' ratio, per
# CPU-second. Building either index is not measured here: see `cargo bench --bench search`.
# Not part of CI.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ROUNDS="${1:-3}"
EF="${2:-256}"
DATA="$ROOT/target/bench-data"
# shellcheck source=/dev/null
. tools/.cache/env.sh
for f in "$DATA/hnswlib.index" "$DATA/queries.npy" "$DATA/truth.npy" "$DATA/DATASET"; do
    [ -e "$f" ] || { echo "search_saved.sh: $f is missing: run the 1M x 128 search bench first" >&2; exit 2; }
done
read -r N DIM <<<"$(sed -E 's/^v1-n([0-9]+)-d([0-9]+)-.*/\1 \2/' "$DATA/DATASET")"
export MEDVEC_BENCH_N="$N" MEDVEC_BENCH_DIM="$DIM" MEDVEC_BENCH_QUERIES=10000 MEDVEC_BENCH_EFS="$EF"
cargo bench --bench search --no-run >/dev/null 2>&1

medvec_round() {
    cargo bench --bench search -- sweep 2>&1 | sed -nE 's/.*recall@10=([0-9.]+).*queries\/CPU-s=([0-9]+).*/\1 \2/p'
}

hnswlib_round() {
    "$MEDVEC_PYTHON" - "$DATA" "$EF" <<'PY'
import statistics, sys, time
import hnswlib, numpy as np
data, ef = sys.argv[1], int(sys.argv[2])
queries, truth = np.load(f"{data}/queries.npy"), np.load(f"{data}/truth.npy")[:, :10]
index = hnswlib.Index(space="cosine", dim=queries.shape[1])
index.load_index(f"{data}/hnswlib.index")
index.set_ef(ef)
index.set_num_threads(2)
labels, _ = index.knn_query(queries, k=10)  # warm-up
recall = np.mean([len(set(a) & set(b)) for a, b in zip(labels, truth)]) / 10
cpus = []
for _ in range(5):
    c = time.process_time()
    index.knn_query(queries, k=10)
    cpus.append(time.process_time() - c)
print(f"{recall:.4f} {len(queries) / statistics.median(cpus):.0f}")
PY
}

label="medvec${MEDVEC_BENCH_QUANTIZE:+ $MEDVEC_BENCH_QUANTIZE}"
mine=() theirs=()
for round in $(seq "$ROUNDS"); do
    read -r m_recall m_qps <<<"$(medvec_round)"
    read -r h_recall h_qps <<<"$(hnswlib_round)"
    echo "round $round, ef $EF: $label recall $m_recall, $m_qps q/CPU-s; hnswlib recall $h_recall, $h_qps q/CPU-s"
    mine+=("$m_qps") theirs+=("$h_qps")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
m=$(median "${mine[@]}") h=$(median "${theirs[@]}")
echo "median of $ROUNDS rounds: $label $m q/CPU-s, hnswlib $h q/CPU-s, ratio $(awk -v a="$m" -v b="$h" 'BEGIN {printf "%.2f", a/b}')x"
