#!/usr/bin/env bash
# The long mode of the reliability matrix (tests/README.md): every crash test with
# MEDVEC_CRASH_TRIALS random kills (default 1000), the corruption/disk-full/read-only/repair
# tests, and a fuzzing run of every cargo-fuzz target (tools/fuzz.sh) when --fuzz SECONDS is given.
# Prints the `crash-matrix:` result lines the table is built from.
#
#   bash tools/reliability.sh [--trials N] [--fuzz SECONDS]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
trials=1000
fuzz_seconds=0
while (($#)); do
    case "$1" in
    --trials) trials="$2"; shift 2 ;;
    --fuzz) fuzz_seconds="$2"; shift 2 ;;
    *) echo "usage: bash tools/reliability.sh [--trials N] [--fuzz SECONDS]" >&2; exit 2 ;;
    esac
done
bash tools/setup.sh
# shellcheck source=/dev/null
. tools/.cache/env.sh
log="target/reliability-$(date -u +%Y%m%dT%H%M%SZ).log"
mkdir -p target
echo "==> crash matrix, MEDVEC_CRASH_TRIALS=$trials (log: $log)"
status=0
MEDVEC_CRASH_TRIALS="$trials" cargo nextest run --release --no-fail-fast --no-capture -p medvec \
    --test crash --test concurrency --test resources --test privacy 2>&1 | tee "$log" |
    grep -E "crash-matrix:|PASS|FAIL|Summary" || status=1
echo "==> memory bounds at 1M rows"
cargo nextest run --release --no-fail-fast --no-capture -p medvec --test memory --run-ignored only 2>&1 |
    tee -a "$log" | grep -E "memory:|PASS|FAIL|Summary" || status=1
cargo nextest run --release --no-fail-fast --no-capture -p medvec-store \
    --test corruption --test disk_full --test read_only --test repair 2>&1 | tee -a "$log" |
    grep -E "PASS|FAIL|Summary|lost" || status=1
if ((fuzz_seconds > 0)); then
    if [[ -f tools/fuzz.sh ]]; then
        bash tools/fuzz.sh "$fuzz_seconds" 2>&1 | tee -a "$log" | tail -20
    else
        echo "tools/fuzz.sh is missing" >&2
        exit 1
    fi
fi
grep -q "FAIL" "$log" && status=1
exit "$status"
