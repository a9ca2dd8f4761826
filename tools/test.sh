#!/usr/bin/env bash
# THE test command of medvec (README and CI run exactly this): bash tools/test.sh [nextest args...]
# Runs setup, then fmt check, clippy (-D warnings), nextest and doctests, all in release.
# Every step runs even if an earlier one failed; the exit code is non-zero if any failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash tools/setup.sh
# shellcheck source=/dev/null
. tools/.cache/env.sh

failed=()
step() {
    local name="$1"
    shift
    echo "==> $name: $*"
    local t0=$SECONDS
    if "$@"; then
        echo "==> $name: ok ($((SECONDS - t0))s)"
    else
        echo "==> $name: FAILED (exit $?, $((SECONDS - t0))s)"
        failed+=("$name")
    fi
}

step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets --release -- -D warnings
step nextest cargo nextest run --workspace --release --no-fail-fast "$@"
step doctest cargo test --workspace --release --doc

if ((${#failed[@]})); then
    echo "tools/test.sh: FAILED steps: ${failed[*]}"
    exit 1
fi
echo "tools/test.sh: all steps passed"
