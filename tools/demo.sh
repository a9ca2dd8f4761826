#!/usr/bin/env bash
# Run the medvec demo: bash tools/demo.sh [demo args...]
# Setup messages go to stderr so the demo's stdout stays clean; relative paths in the
# arguments are resolved from the caller's directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

bash "$ROOT/tools/setup.sh" >&2
# shellcheck source=/dev/null
. "$ROOT/tools/.cache/env.sh"

exec cargo run --release --quiet --manifest-path "$ROOT/Cargo.toml" -- demo "$@"
