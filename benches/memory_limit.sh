#!/usr/bin/env bash
# Search under a hard memory limit (issue 16): medvec's SQ8 store and hnswlib's index, each run in
# a memory cgroup capped at the same size, on the same queries; prints recall@10, queries/s, CPU
# time and peak RSS, or how the process died.
#
#   bash benches/memory_limit.sh LIMIT_MIB [EF] [RESCORE]
#
# Needs root and a memory cgroup (v1 `memory.limit_in_bytes` or v2 `memory.max`), and the data
# and stores of an earlier `cargo bench --bench search` at 1M x 128 (target/bench-data: the SQ8
# store `medvec-store-sq8`, `hnswlib.index`, `queries.npy`, `truth.npy`). Not part of CI.
#
# Before each run the files the process will read are dropped from the page cache
# (posix_fadvise DONTNEED), so every page it touches is read in and charged to its cgroup: the
# limit bounds all of its resident memory, file pages included, not only its heap.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LIMIT_MIB="${1:?usage: memory_limit.sh LIMIT_MIB [EF] [RESCORE]}"
EF="${2:-256}"
RESCORE="${3:-4}"
DATA="$ROOT/target/bench-data"
STORE="$DATA/medvec-store-sq8"
# shellcheck source=/dev/null
. tools/.cache/env.sh
PY="$MEDVEC_PYTHON"
MEDVEC="$ROOT/target/release/medvec"
[ -x "$MEDVEC" ] || cargo build --release --bin medvec
for f in "$STORE" "$DATA/hnswlib.index" "$DATA/queries.npy" "$DATA/truth.npy"; do
    [ -e "$f" ] || { echo "memory_limit.sh: $f is missing: run the 1M x 128 search bench first" >&2; exit 2; }
done

OUT="$(mktemp -d /tmp/medvec-memlimit.XXXX)"
chmod 700 "$OUT"
if [ -d /sys/fs/cgroup/memory ]; then
    CG=/sys/fs/cgroup/memory/medvec-bench-$$
    mkdir "$CG"
    echo $((LIMIT_MIB << 20)) >"$CG/memory.limit_in_bytes"
    [ -e "$CG/memory.memsw.limit_in_bytes" ] && echo $((LIMIT_MIB << 20)) >"$CG/memory.memsw.limit_in_bytes"
else
    CG=/sys/fs/cgroup/medvec-bench-$$
    mkdir "$CG"
    echo $((LIMIT_MIB << 20)) >"$CG/memory.max"
    echo 0 >"$CG/memory.swap.max" 2>/dev/null || true
fi
trap 'rmdir "$CG" 2>/dev/null || true; rm -rf "$OUT"' EXIT

# Drops every file under the given paths from the page cache.
evict() {
    "$PY" - "$@" <<'EOF'
import os, sys
for top in sys.argv[1:]:
    paths = [top] if os.path.isfile(top) else [os.path.join(d, f) for d, _, fs in os.walk(top) for f in fs]
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
EOF
}

# Runs "$@" inside the cgroup under /usr/bin/time; its stdout goes to $OUT/stdout.
in_cgroup() {
    /usr/bin/time -f "%e %U %S %M %x" -o "$OUT/time" \
        bash -c 'echo $$ > "$0/cgroup.procs" && exec "${@}"' "$CG" "$@" >"$OUT/stdout" 2>"$OUT/stderr" || true
    # A killed command's line comes after a "Command terminated by signal N" line.
    read -r wall user sys maxrss_kib status < <(tail -n 1 "$OUT/time") || true
    if grep -q "terminated by signal" "$OUT/time"; then
        status="signal-$(grep -o 'signal [0-9]*' "$OUT/time" | cut -d' ' -f2)"
    fi
    echo "$wall $user $sys $maxrss_kib ${status:-?}"
}

report() {
    local name="$1" stats="$2" recall="$3"
    read -r wall user sys maxrss status <<<"$stats"
    "$PY" -c "
import sys
name, wall, user, sys_, rss, status, recall = sys.argv[1:]
cpu = float(user) + float(sys_)
if status != '0':
    print(f'{name}: did not finish ({status}) after {float(wall):.1f} s, peak RSS {int(rss) >> 10} MiB')
else:
    print(f'{name}: recall@10 {recall}, {10000 / float(wall):.0f} queries/s, {10000 / cpu:.0f} queries/CPU-s (process wall {float(wall):.1f} s, CPU {cpu:.1f} s, incl. open/load), peak RSS {int(rss) >> 10} MiB')
" "$name" "$wall" "$user" "$sys" "$maxrss" "$status" "$recall"
}

echo "limit ${LIMIT_MIB} MiB, ef ${EF}, rescore ${RESCORE}, 10,000 queries, k 10; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"

evict "$STORE"
stats=$(in_cgroup "$MEDVEC" search "$STORE" bench --field v --queries "$DATA/queries.npy" -k 10 --ef "$EF" --rescore "$RESCORE" --json)
recall=$("$PY" - "$OUT/stdout" "$DATA/truth.npy" <<'EOF' 2>/dev/null || echo n/a
import json, sys, numpy as np
truth = np.load(sys.argv[2])[:, :10]
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
found = sum(len({int(h["id"]) for h in q["hits"]} & set(map(int, t))) for q, t in zip(lines, truth))
print(f"{found / (10 * len(truth)):.4f}" if len(lines) == len(truth) else "n/a")
EOF
)
report "medvec sq8 (search --queries --rescore $RESCORE)" "$stats" "$recall"

evict "$DATA/hnswlib.index"
stats=$(in_cgroup "$PY" - "$DATA" "$EF" <<'EOF'
import sys, numpy as np, hnswlib
data, ef = sys.argv[1], int(sys.argv[2])
queries = np.load(f"{data}/queries.npy")
index = hnswlib.Index(space="cosine", dim=queries.shape[1])
index.load_index(f"{data}/hnswlib.index")
index.set_ef(ef)
index.set_num_threads(2)
labels, _ = index.knn_query(queries, k=10)
np.save(sys.argv[1].rstrip("/") + "/../memlimit-hnswlib-labels.npy", labels)
EOF
)
recall=$("$PY" -c "
import numpy as np, sys
t = np.load('$DATA/truth.npy')[:, :10]
l = np.load('$DATA/../memlimit-hnswlib-labels.npy')
print(f'{np.mean([len(set(a) & set(b)) for a, b in zip(l, t)]) / 10:.4f}')
" 2>/dev/null || echo n/a)
rm -f "$DATA/../memlimit-hnswlib-labels.npy"
report "hnswlib (load_index + knn_query)" "$stats" "$recall"
