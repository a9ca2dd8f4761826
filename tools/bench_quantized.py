#!/usr/bin/env python3
"""int8 against fp32 for one image model, through `medvec ingest` (issue 12's "a cheaper model").

    bench_quantized.py [--model target/bench-models/vit-b32] [--n 256] [--repeats 3] [--threads 2]

Quantises MODEL with tools/quantize_model.py (once, into MODEL/onnx/model_quantized.onnx), writes
N 640x480 JPEGs with tools/bench_ingest.py's generator (target/bench-data/ingest, reused), then
ingests them REPEATS times with each model file, alternating, each into a fresh store
(`--threads T --batch 64`), timing the whole process (wall, and user+system CPU from wait4).
Finally exports both stores' vectors and compares them image by image. Prints JSON: images/s
(median wall, median per CPU-second) per variant, their ratio, and the cosine of each int8
vector to its fp32 vector (min, 1st percentile, median). Needs ORT_DYLIB_PATH
(`. tools/.cache/env.sh`) and a release build (`cargo build --release`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MEDVEC = ROOT / "target" / "release" / "medvec"
QUANTISED = "onnx/model_quantized.onnx"


def run_measured(cmd: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}: {proc.stderr.read().decode()}")
    return wall, usage.ru_utime + usage.ru_stime


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "target/bench-models/vit-b32")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    py = sys.executable
    if not (args.model / QUANTISED).is_file():
        subprocess.run([py, str(ROOT / "tools/quantize_model.py"), str(args.model)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    data = ROOT / "target/bench-data/ingest"
    subprocess.run([py, str(ROOT / "tools/bench_ingest.py"), "photos", "--dir", str(data), "--n", str(args.n)], check=True)
    manifest = data / f"manifest-{args.n}.csv"
    variants = {"fp32": [], "int8": ["--image-model-file", QUANTISED]}
    times: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    work = Path(tempfile.mkdtemp(prefix="medvec-quant-"))
    try:
        for r in range(args.repeats):
            for name, extra in variants.items():
                store = work / f"{name}-{r}"
                cmd = [str(MEDVEC), "ingest", str(store), "photos", "--manifest", str(manifest), "--root", str(data),
                       "--image-model", str(args.model), "--threads", str(args.threads), "--batch", "64",
                       "--rejects", str(work / "rejects.csv")] + extra
                times[name].append(run_measured(cmd))
        vectors = {}
        for name in variants:
            out = work / f"{name}.npy"
            subprocess.run([str(MEDVEC), "export", str(work / f"{name}-0"), "photos", "--field", "image", "--npy", str(out),
                            "--table", str(work / f"{name}.csv")], check=True, stdout=subprocess.DEVNULL)
            ids = [line.split(",")[0] for line in (work / f"{name}.csv").read_text().splitlines()[1:]]
            vectors[name] = dict(zip(ids, np.load(out)))
        cos = np.array([float(np.dot(vectors["fp32"][i], vectors["int8"][i]) /
                              (np.linalg.norm(vectors["fp32"][i]) * np.linalg.norm(vectors["int8"][i]))) for i in vectors["fp32"]])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"model": str(args.model), "images": args.n, "threads": args.threads, "repeats": args.repeats}
    for name, runs in times.items():
        result[name] = {"images_per_s": args.n / statistics.median(w for w, _ in runs),
                        "images_per_cpu_s": args.n / statistics.median(c for _, c in runs)}
    result["int8_over_fp32_wall"] = result["int8"]["images_per_s"] / result["fp32"]["images_per_s"]
    result["int8_over_fp32_cpu"] = result["int8"]["images_per_cpu_s"] / result["fp32"]["images_per_cpu_s"]
    result["cosine_int8_fp32"] = {"min": float(cos.min()), "p1": float(np.percentile(cos, 1)), "median": float(np.median(cos))}
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
