"""Shared fixtures: a labelled two-modality store written through the package, and the `medvec`
binary, so that every result can be compared with the CLI's on the same store."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import medvec

ROOT = Path(__file__).resolve().parents[3]
CLASSES = ["bkl", "mel", "nv"]


def medvec_bin() -> str:
    path = os.environ.get("MEDVEC_BIN", str(ROOT / "target" / "release" / "medvec"))
    if not Path(path).exists():
        pytest.fail(f"{path} does not exist: build it with `cargo build --release` (tools/test.sh does)")
    return path


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs `medvec ARGS...` and returns the completed process (text mode)."""
    done = subprocess.run([medvec_bin(), *map(str, args)], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"medvec {' '.join(map(str, args))} failed: {done.stderr}")
    return done


def cli_json(*args: str) -> list:
    """The JSON lines `medvec ARGS... --json` prints."""
    return [json.loads(line) for line in cli(*args, "--json").stdout.splitlines() if line.strip()]


def make_cases(n: int = 600, dim: int = 32, seed: int = 0):
    """Clustered unit-ish vectors of two modalities with a modality gap (each modality sits
    around its own offset), three classes that both modalities carry, and payload."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASSES), n)
    centres = rng.normal(size=(len(CLASSES), dim))
    image_offset, text_offset = rng.normal(size=dim) * 2, rng.normal(size=dim) * 2
    signal = centres[labels] + rng.normal(scale=2.5, size=(n, dim))
    image = (signal + image_offset + rng.normal(scale=0.5, size=(n, dim))).astype(np.float32)
    text = (signal + text_offset + rng.normal(scale=0.5, size=(n, dim))).astype(np.float32)
    ids = [f"case{i:04d}" for i in range(n)]
    split = np.array(["train"] * n, dtype=object)
    split[rng.permutation(n)[: n // 5]] = "val"
    split[rng.permutation(np.nonzero(split == "train")[0])[: n // 5]] = "test"
    payload = {
        "dx": [CLASSES[i] for i in labels],
        "age": [int(a) if a % 7 else None for a in rng.integers(20, 90, n)],
        "split": list(split),
    }
    return ids, image, text, payload


@pytest.fixture(scope="session")
def cases_data():
    return make_cases()


@pytest.fixture(scope="session")
def clinic(tmp_path_factory, cases_data) -> Path:
    """A closed store at the returned path with collection `cases` (image, text: 32-d cosine;
    dx, age, split). Tests must not write to it: copy it with `writable_clinic` instead."""
    path = tmp_path_factory.mktemp("clinic") / "store"
    ids, image, text, payload = cases_data
    with medvec.open(path) as store:
        cases = store.create_collection(
            "cases", vectors={"image": 32, "text": (32, "cosine")}, payload={"dx": str, "age": int, "split": str}
        )
        cases.upsert(ids, vectors={"image": image, "text": text}, payload=payload)
    return path


@pytest.fixture
def empty_store(tmp_path):
    store = medvec.open(tmp_path / "store")
    yield store
    if not store.closed:
        store.close()
