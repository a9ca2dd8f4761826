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

# A user's clone has nothing beside it: no test, tool, bench or fixture may read the shared/ folder laid
# beside this team's clones only. One line per offending file.
outside_refs() {
    local dirs=(crates src tests tools benches fixtures) files name="..""/shared"
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        files="$(git ls-files -z -- "${dirs[@]}" | xargs -0 grep -lF -- "$name" 2>/dev/null || true)"
    else
        files="$(grep -rlF -- "$name" "${dirs[@]}" 2>/dev/null || true)"
    fi
    [[ -z "$files" ]] && return 0
    while IFS= read -r f; do
        echo "tools/test.sh: $f refers to $name, which a clone does not have; copy what it needs into fixtures/"
    done <<<"$files"
    return 1
}

step outside-refs outside_refs
step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets --release -- -D warnings
step nextest cargo nextest run --workspace --release --no-fail-fast "$@"
step doctest cargo test --workspace --release --doc
# The Python package (built into .venv by setup.sh) against the CLI binary: its docstring examples,
# its suite, and the Spark examples in local mode.
step build-cli cargo build --workspace --release --bins
step pytest "$ROOT/.venv/bin/python" -m pytest -q -p no:cacheprovider --doctest-modules \
    crates/python/python/medvec crates/python/tests examples/spark

if ((${#failed[@]})); then
    echo "tools/test.sh: FAILED steps: ${failed[*]}"
    exit 1
fi
echo "tools/test.sh: all steps passed"
