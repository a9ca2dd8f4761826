#!/usr/bin/env python3
"""The Python side of the ingest benchmark (benches/ingest.rs drives it; see benches/README.md).

    bench_ingest.py photos --dir DIR --n N [--distinct D] [--size WxH]
        Writes DIR/manifest-N.csv (N rows in the HAM10000 shape) over D distinct camera-sized JPEGs
        (640x480, textured so decoding does real work, deterministic; default D = min(N, 2000),
        rows cycle through them) in DIR/photos/. Existing files are reused. Another --size (e.g.
        4000x3000, a 12-megapixel phone photo) uses DIR/photos-WxH/ and DIR/manifest-WxH-N.csv.

    bench_ingest.py run --manifest CSV --root DIR --model DIR --threads T --batch B --out OUT.npy [--jpeg-draft]
        The pipeline a notebook would write, done well: Pillow decodes and preprocesses each image
        (the reference preprocessing of tools/reference_encode.py, which medvec matches pixel for
        pixel) in a pool of T threads (Pillow releases the GIL), batches of B go through one
        onnxruntime session with T intra-op threads, vectors are L2-normalised and saved with
        np.save at the end. Prints {"images": n, "seconds": s} as JSON. --jpeg-draft adds the one
        call a notebook would add for speed, im.draft("RGB", (n, n)) before loading
        (reference_encode.draft_request; medvec ingest --jpeg-draft does the same).

    bench_ingest.py infer --manifest CSV --root DIR --model DIR --threads T --batch B --report OUT.json
        The inference alone: the same session and batches as `run`, on the first image of the
        manifest preprocessed once and repeated (no file is read, nothing decoded). Writes
        {"images": n, "run_seconds": s, "run_cpu_seconds": c} to OUT.json, the time spent inside
        sess.run only. Any pipeline running this model with this ONNX Runtime and thread count
        spends at least this long, which bounds its speed-up over `run`.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_encode as ref  # noqa: E402

SEXES = ["male", "female", "unknown"]
SITES = ["back", "lower extremity", "trunk", "upper extremity", "abdomen", "face", "scalp"]
DX = ["nv", "mel", "bkl", "bcc", "akiec", "vasc", "df"]


def photo(i: int, width: int = 640, height: int = 480) -> np.ndarray:
    """A height x width RGB image: gradients, a per-image pattern and noise (JPEG has work to do)."""
    rng = np.random.default_rng(i)
    y, x = np.mgrid[0:height, 0:width].astype(np.int64)
    r = (x * 7 + y * 13 + i * 31) ^ (x * y)
    g = (r >> 3) + rng.integers(0, 32, size=r.shape)
    b = x + y + (i % 97)
    return (np.stack([r, g, b], axis=-1) % 256).astype(np.uint8)


def cmd_photos(args) -> None:
    from PIL import Image

    root = Path(args.dir)
    width, height = (int(v) for v in args.size.split("x"))
    # The original 640x480 set keeps its names, so existing benchmark data is reused.
    suffix = "" if (width, height) == (640, 480) else f"-{width}x{height}"
    photos = f"photos{suffix}"
    (root / photos).mkdir(parents=True, exist_ok=True)
    distinct = min(args.n, args.distinct)
    for i in range(distinct):
        path = root / photos / f"photo_{i:05d}.jpg"
        if not path.exists():
            # Write then rename, so an interrupted run never leaves a truncated photo behind.
            Image.fromarray(photo(i, width, height)).save(path.with_suffix(".tmp"), format="JPEG", quality=90)
            path.with_suffix(".tmp").rename(path)
    manifest = root / f"manifest{suffix}-{args.n}.csv"
    if not manifest.exists():
        with manifest.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "path", "dx", "age", "sex", "localization"])
            for i in range(args.n):
                w.writerow([f"case_{i:05d}", f"{photos}/photo_{i % distinct:05d}.jpg", DX[i % 7], 20 + i % 70, SEXES[i % 3], SITES[i % 7]])


def open_model(args):
    """The preprocessing config, session, pixel input name and output name, and the image paths."""
    import onnxruntime as ort

    folder = Path(args.model)
    cfg = json.loads(ref.find_file(folder, ["preprocessor_config.json"]).read_text())
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    model = ref.find_file(folder, ["vision_model.onnx", "model.onnx"])
    sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    pixels = next(i.name for i in sess.get_inputs() if i.type == "tensor(float)")
    output = ref.pick_output(sess, ["image_embeds", "pooler_output"])
    with open(args.manifest, newline="") as f:
        paths = [Path(args.root) / row["path"] for row in csv.DictReader(f)]
    return cfg, sess, pixels, output, paths


def cmd_run(args) -> None:
    t0 = time.perf_counter()
    cfg, sess, pixels, output, paths = open_model(args)

    draft = ref.draft_request(cfg) if args.jpeg_draft else None

    def load(path: Path) -> np.ndarray:
        return ref.preprocess(ref.load_rgb(path, draft), cfg)

    encode_and_save(args, sess, pixels, output, paths, load, t0)


def encode_and_save(args, sess, pixels, output, paths, load, t0: float) -> None:
    """The pipeline's loop: `load` each file (a pool of args.threads threads) into batches of
    args.batch through the session; unit vectors saved to args.out; prints images and seconds
    since t0. Shared with tools/bench_dicom.py, whose `load` reads DICOM instead."""
    vectors = []
    with ThreadPoolExecutor(args.threads) as pool:
        for start in range(0, len(paths), args.batch):
            batch = np.stack(list(pool.map(load, paths[start : start + args.batch])))
            y = sess.run([output], {pixels: batch} | ref.dummy_feed(sess, {pixels}))[0]
            y = y[:, 0] if y.ndim == 3 else y
            vectors.append(ref.l2n(y.astype(np.float32)))
    np.save(args.out, np.concatenate(vectors))
    print(json.dumps({"images": len(paths), "seconds": time.perf_counter() - t0}))


def cmd_infer(args) -> None:
    cfg, sess, pixels, output, paths = open_model(args)
    one = ref.preprocess(ref.load_rgb(paths[0]), cfg)
    run_seconds = run_cpu = 0.0
    for start in range(0, len(paths), args.batch):
        batch = np.repeat(one[None], min(args.batch, len(paths) - start), axis=0)
        feed = {pixels: batch} | ref.dummy_feed(sess, {pixels})
        t, c = time.perf_counter(), time.process_time()
        sess.run([output], feed)
        run_seconds += time.perf_counter() - t
        run_cpu += time.process_time() - c
    report = {"images": len(paths), "run_seconds": run_seconds, "run_cpu_seconds": run_cpu}
    Path(args.report).write_text(json.dumps(report))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("photos")
    p.add_argument("--dir", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--distinct", type=int, default=2000)
    p.add_argument("--size", default="640x480", help="WIDTHxHEIGHT of the photos")
    r = sub.add_parser("run")
    r.add_argument("--manifest", required=True)
    r.add_argument("--root", required=True)
    r.add_argument("--model", required=True)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--batch", type=int, default=64)
    r.add_argument("--out", required=True)
    r.add_argument("--jpeg-draft", action="store_true")
    i = sub.add_parser("infer")
    for name in ["--manifest", "--root", "--model", "--report"]:
        i.add_argument(name, required=True)
    i.add_argument("--threads", type=int, default=2)
    i.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    {"photos": cmd_photos, "run": cmd_run, "infer": cmd_infer}[args.cmd](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
