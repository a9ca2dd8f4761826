#!/usr/bin/env bash
# Run the medvec demo: bash tools/demo.sh [demo args...]
# Setup messages go to stderr so the demo's stdout stays clean; relative paths in the
# arguments are resolved from the caller's directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

bash "$ROOT/tools/setup.sh" >&2
# shellcheck source=/dev/null
. "$ROOT/tools/.cache/env.sh"

# The archive-ingest step uses the real all-MiniLM-L6-v2 text encoder when its wheel is installed:
# converted once to ONNX (numpy + onnx, no torch) into target/models/minilm.
extra=()
minilm="$ROOT/target/models/minilm"
if [[ -n "${MEDVEC_MINILM_DIR:-}" && " $* " != *" --text-model "* ]]; then
    if [[ ! -f "$minilm/onnx/model.onnx" ]]; then
        "$MEDVEC_PYTHON" "$ROOT/tools/convert_minilm.py" --src "$MEDVEC_MINILM_DIR" --out "$minilm" >&2
    fi
    extra=(--text-model "$minilm")
fi

exec cargo run --release --quiet --manifest-path "$ROOT/Cargo.toml" -- demo "${extra[@]}" "$@"
