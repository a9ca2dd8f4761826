#!/usr/bin/env bash
# Long mode (issue 16): 10,000,000 x 128 clustered vectors through one `medvec import`, against
# usearch (and hnswlib when asked) on the same files, in the same run. Not part of CI: on 2 cores
# the medvec import took 40 minutes (benches/README, "Long mode"); usearch's build, 1.9x hnswlib's
# at 1M, needs about 3.5 hours of a quiet 2-core machine at 10M, more than a session. So usearch
# builds in chunks of MEDVEC_LONG_CHUNK_ROWS rows (1,000,000; 0 for one `add`), saved after
# each: a run that is stopped leaves $DATA/usearch.partial.*, and the next run resumes from it.
#
#   bash benches/long.sh                       # medvec, then usearch
#   MEDVEC_LONG_PEERS=usearch,hnswlib bash benches/long.sh
#   MEDVEC_LONG_N=2000000 bash benches/long.sh # a smaller rehearsal
#   MEDVEC_LONG_PEERS= bash benches/long.sh    # medvec only
#   MEDVEC_LONG_PEER_EFS=256,1024,2048 ...     # the peers' ef sweep (default: MEDVEC_LONG_EFS); one
#                                              # graph of 10M needs a far larger ef than 12 of 1M
#
# Steps, each logged with its cost to $DATA/long.log (DATA = target/bench-long-N by default,
# MEDVEC_LONG_DATA to move it; reused when present):
#  1. the data: `cargo bench --bench search -- data` (the search bench's generator: 100 Gaussian
#     clusters, unit rows, 1,000 held-out queries, exact top-10 by brute force);
#  2. `medvec create` (M 16, ef_construction 200) and one `medvec import --npy --table` under
#     /usr/bin/time: wall, CPU (user + system) and peak RSS of the whole import, merges included;
#  3. `medvec stats` (segments after the import);
#  4. the ef sweep on the store (`cargo bench --bench search -- sweep`: 2 threads, warm-up, then
#     the median of >= 5 batch runs of all queries; recall@10 against the exact top-10);
#  5. `get`, `search --like` and `search --queries one.npy` in fresh processes
#     (`cargo bench --bench open` on the same store);
#  6. the peers (`tools/bench_peers.py --repeats 1`, usearch in saved chunks): build, sweep,
#     load-to-first-query, peak RSS.
# Then prints the summary table from the log and the peers' JSON.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=/dev/null
. tools/.cache/env.sh
N="${MEDVEC_LONG_N:-10000000}"
DIM=128
QUERIES=1000
EFS="${MEDVEC_LONG_EFS:-64,128,256,512,1024}"
PEERS="${MEDVEC_LONG_PEERS-usearch}"
PEER_EFS="${MEDVEC_LONG_PEER_EFS:-$EFS}"
CHUNK_ROWS="${MEDVEC_LONG_CHUNK_ROWS:-1000000}"
DATA="${MEDVEC_LONG_DATA:-$ROOT/target/bench-long-$N}"
STORE="$DATA/medvec-store"
LOG="$DATA/long.log"
MEDVEC="$ROOT/target/release/medvec"
mkdir -p "$DATA"
export MEDVEC_BENCH_DATA_DIR="$DATA" MEDVEC_BENCH_N="$N" MEDVEC_BENCH_DIM="$DIM" \
    MEDVEC_BENCH_QUERIES="$QUERIES" MEDVEC_BENCH_EFS="$EFS"

log() { echo "$(date -u +%H:%M:%S) $*" | tee -a "$LOG"; }
# Runs a command under /usr/bin/time; logs "<label>: wall W s, cpu C s, peak RSS R MiB".
timed() {
    local label="$1"
    shift
    /usr/bin/time -f '%e %U %S %M' -o "$DATA/time.out" "$@"
    read -r wall user sys kib <"$DATA/time.out"
    log "$label: wall $wall s, cpu $(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.1f", u + s}') s, peak RSS $((kib / 1024)) MiB"
}

log "long mode: N=$N dim=$DIM queries=$QUERIES efs=$EFS peers=$PEERS peer efs=$PEER_EFS load $(cut -d' ' -f1-3 /proc/loadavg)"
cargo build --release --quiet --bin medvec
cargo bench --bench search --no-run --quiet 2>/dev/null
cargo bench --bench open --no-run --quiet 2>/dev/null

timed "data (generate or reuse, exact top-10)" cargo bench --quiet --bench search -- data

if [ ! -e "$STORE/collections/bench/MANIFEST" ]; then
    awk -v n="$N" 'BEGIN { print "id"; for (i = 0; i < n; i++) print i }' >"$DATA/ids.csv"
    rm -rf "$STORE"
    "$MEDVEC" create "$STORE" bench --vector "v:$DIM:cosine" --m 16 --ef-construction 200 >/dev/null
    timed "medvec import" "$MEDVEC" import "$STORE" bench --npy "v=$DATA/base.npy" --table "$DATA/ids.csv"
fi
"$MEDVEC" stats "$STORE" | tee -a "$LOG"
du -sh "$STORE" | tee -a "$LOG"

cargo bench --quiet --bench search -- sweep 2>&1 | grep 'bench: medvec ef=' | tee -a "$LOG"

mkdir -p "$DATA/open"
ln -sfn "$STORE" "$DATA/open/store"
MEDVEC_BENCH_OPEN_DIR="$DATA/open" MEDVEC_BENCH_OPEN_N="$N" MEDVEC_BENCH_OPEN_DIM="$DIM" \
    MEDVEC_BENCH_OPEN_FIELD=v MEDVEC_BENCH_OPEN_ID_PREFIX="" \
    cargo bench --quiet --bench open 2>/dev/null | grep '^| `' | tee -a "$LOG"

for peer in ${PEERS//,/ }; do
    chunks=()
    [[ "$peer" == usearch* && "$CHUNK_ROWS" != 0 ]] && chunks=(--chunk-rows "$CHUNK_ROWS")
    timed "$peer (python process: build, sweep, children)" "$MEDVEC_PYTHON" tools/bench_peers.py \
        --data "$DATA" --efs "$PEER_EFS" --repeats 1 --peers "$peer" ${chunks[@]+"${chunks[@]}"} --out "$DATA/peer-$peer.json"
done

"$MEDVEC_PYTHON" - "$DATA" "$PEERS" <<'PY'
import json, re, sys
data, peers = sys.argv[1], [p for p in sys.argv[2].split(",") if p]
log = open(f"{data}/long.log").read()
print("\n| ef | medvec recall@10 | medvec q/CPU-s | " + " | ".join(f"{p} recall@10 | {p} q/CPU-s" for p in peers) + " |")
print("|---:|---:|---:|" + "---:|---:|" * len(peers))
mine = {int(m[0]): (float(m[1]), float(m[2])) for m in re.findall(r"ef=(\d+)\s+recall@10=([0-9.]+) .*queries/CPU-s=([0-9.]+)", log)}
theirs = {p: {q["ef"]: q for q in json.load(open(f"{data}/peer-{p}.json"))[0]["sweep"]} for p in peers}
for ef in sorted(set(mine).union(*theirs.values())):
    cells = [f"{mine[ef][0]:.4f}", f"{mine[ef][1]:.0f}"] if ef in mine else ["", ""]
    for p in peers:
        q = theirs[p].get(ef)
        cells += [f"{q['recall']:.4f}", f"{q['qps_cpu']:.0f}"] if q else ["", ""]
    print(f"| {ef} | " + " | ".join(cells) + " |")
for p in peers:
    r = json.load(open(f"{data}/peer-{p}.json"))[0]
    print(f"\n{p}: build {r['build_s']:.0f} s, {r['build_cpu_s']:.0f} CPU-s; load-to-first-query {r['first_query_ms']:.0f} ms; "
          f"VmHWM {r['vm_hwm_kib'] / 1024:.0f} MiB searching at ef {r['ef_target']}; index file {r['index_bytes'] / 2**20:.0f} MiB")
PY
