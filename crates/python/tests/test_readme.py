"""The README's Python example runs as written (on generated meta.csv, img.npy and txt.npy)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from conftest import ROOT


def test_the_readme_python_example_runs(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(import medvec.*?)```", readme, re.S).group(1)
    rng = np.random.default_rng(0)
    n = 240
    meta = pd.DataFrame({
        "id": [f"ISIC_{i:07d}" for i in range(n)],
        "dx": rng.choice(["nv", "mel", "bkl"], n),
        "age": rng.integers(20, 90, n),
        "split": rng.choice(["train", "val", "test"], n, p=[0.6, 0.2, 0.2]),
    })
    centres = {d: rng.normal(size=512) for d in ["nv", "mel", "bkl"]}
    signal = np.stack([centres[d] for d in meta["dx"]])
    monkeypatch.chdir(tmp_path)
    meta.to_csv("meta.csv", index=False)
    np.save("img.npy", (signal + rng.normal(size=(n, 512))).astype(np.float32))
    np.save("txt.npy", (signal + 3 + rng.normal(size=(n, 512))).astype(np.float32))
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["ids"].shape == (3, 5) and scope["table"].num_rows == n
    assert set(scope["hits"]["query"]) == {0, 1}
    scope["store"].close()
