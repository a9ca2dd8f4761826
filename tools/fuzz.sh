#!/usr/bin/env bash
# Runs every cargo-fuzz (libFuzzer) target in tests/fuzz for SECONDS each (default 60), on the
# nightly toolchain. Exits non-zero at the first target that crashes; the crashing input is left
# in tests/fuzz/artifacts/<target>/. Record it as a regression: copy it to
# tests/fuzz/regressions/<target>/ (replayed by tests/fuzz_corpus.rs on stable) and fix the reader.
#
#   tools/fuzz.sh [SECONDS] [TARGET...]
#
# New inputs the fuzzer finds go to tests/fuzz/corpus-work/<target>/ (not committed); the seed
# corpus in tests/fuzz/corpus/ is only read. This is the fuzzing step of the long test mode.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
fuzz_dir=tests/fuzz

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz.sh: the nightly toolchain is needed (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir "$fuzz_dir")
fi

# One job per target and a memory cap well under the machine's, since other work shares it.
for target in "${targets[@]}"; do
    work="$fuzz_dir/corpus-work/$target"
    artifacts="$fuzz_dir/artifacts/$target"
    mkdir -p "$work" "$artifacts"
    echo "== $target: ${seconds}s"
    log="$fuzz_dir/artifacts/$target.log"
    if ! cargo +nightly fuzz run --fuzz-dir "$fuzz_dir" "$target" "$work" "$fuzz_dir/corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=20 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz.sh: $target crashed; input in $artifacts/" >&2
        exit 1
    fi
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^Done' "$log" || true
done
echo "fuzz.sh: ${#targets[@]} targets ran ${seconds}s each without a crash"
