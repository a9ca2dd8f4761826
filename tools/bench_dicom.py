#!/usr/bin/env python3
"""The Python side of the DICOM ingest benchmark (benches/dicom.rs drives it; see benches/README.md).

    bench_dicom.py make --dir DIR --kind ct|xray|small --n N [--size WxH] [--syntax native|rle|j2k]
        Writes N DICOM files, deterministically (pydicom 3.0.2, numpy), into DIR/KIND-WxH-N[-SYNTAX]/
        (the data set folder, printed on stdout) and their list DIR/KIND-WxH-N[-SYNTAX].csv (id,path
        relative to the folder). Existing files are reused (written under a temporary name, then
        renamed, so an interrupted run never leaves half a file). Kinds:
        - ct: CT slices (default 512x512) of a body phantom whose anatomy moves along z: signed
          16-bit (PixelRepresentation 1), stored = HU + 1024 (RescaleSlope 1, RescaleIntercept
          -1024), -2000 outside the circular field of view, window 40/400, with noise;
        - xray: chest radiographs (default 2000x2500, i.e. 2000 columns x 2500 rows), 12 bits
          stored in 16, MONOCHROME2 for even files and MONOCHROME1 (inverted values) for odd ones,
          window about the middle of the 12-bit range, smooth anatomy + ribs + texture + noise;
        - small: CT-like 64x64 slices (as ct), for the memory runs (1k and 10k files).
        --syntax: native (Explicit VR Little Endian, default), rle (RLE Lossless: pydicom's
        Dataset.compress, which picks pylibjpeg-rle's encoder when it is installed, as in .venv)
        or j2k (JPEG 2000 Lossless, pylibjpeg-openjpeg).
        Files carry the fake identifying tags and the safe tags of tools/make_dicom_fixtures.py.

    bench_dicom.py run --manifest CSV --root DIR --model DIR --threads T --batch B --out OUT.npy
        The pipeline a careful notebook would write, done well: for each file, the reference
        pixels of tools/reference_dicom.py (pydicom dcmread + pixel_array, modality LUT, the
        file's window, MONOCHROME1 inverted, 8 bits, grey to RGB; the middle frame), then
        tools/reference_encode.py's Pillow resize / center crop / normalise, in a pool of T
        threads; batches of B through one onnxruntime session with T intra-op threads (the session
        of tools/bench_ingest.py run); vectors L2-normalised and saved with np.save at the end.
        Prints {"images": n, "seconds": s}. pydicom decodes RLE with pylibjpeg-rle and JPEG 2000
        with pylibjpeg-openjpeg (its first choices when installed; both are in .venv).

    bench_dicom.py stages --manifest CSV --root DIR --model DIR --threads T --batch B [--limit N]
        The same pipeline in one thread, stage by stage, timing each (wall and CPU): read (dcmread),
        decode (pixel_array), window (reference_dicom.grey_frame: modality LUT, VOI, 8 bits,
        RGB), resize (Image.fromarray + reference_encode.preprocess) and inference (sess.run on
        batches of B with T intra-op threads). Prints JSON {stage: {"seconds", "cpu_seconds"}}.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_ingest  # noqa: E402  (the onnxruntime session and manifest reading of the JPEG bench)
import reference_dicom as rd  # noqa: E402  (the pixels medvec matches)
import reference_encode as ref  # noqa: E402  (the Pillow resize / crop / normalise medvec matches)

DEFAULT_SIZE = {"ct": "512x512", "xray": "2000x2500", "small": "64x64"}


# ----------------------------------------------------------------------------- images


def ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1.0


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency texture in about [-1, 1]: a cells x cells random grid, bicubic-upsampled."""
    from PIL import Image

    small = rng.standard_normal((cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(small, "F").resize((w, h), Image.Resampling.BICUBIC), np.float64)


def ct_hu(i: int, h: int, w: int) -> np.ndarray:
    """Slice i of a chest CT phantom in Hounsfield units (float64, h x w)."""
    rng = np.random.default_rng(1_000_003 + i)
    z = (i % 120) / 120.0  # anatomy cycles every 120 slices
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = 2 * xx / (w - 1) - 1, 2 * yy / (h - 1) - 1
    hu = np.full((h, w), -1000.0)
    hu[ellipse(x, y, 0, 0.05, 0.86, 0.62 + 0.04 * np.sin(6.3 * z))] = -90.0  # fat
    hu[ellipse(x, y, 0, 0.05, 0.80, 0.56 + 0.04 * np.sin(6.3 * z))] = 45.0  # muscle / organs
    tissue = smooth_noise(rng, h, w, 12)
    hu += 12.0 * tissue * (hu > -500)
    lung_r = 0.6 + 0.35 * np.sin(np.pi * z)
    for side in (-1, 1):
        lung = ellipse(x, y, side * 0.36, -0.02, 0.27 * lung_r + 0.02, 0.42 * lung_r + 0.02)
        hu[lung] = -860.0 + 60.0 * np.maximum(tissue[lung], 0) ** 3  # vessels
    hu[ellipse(x, y, 0.08, 0.12, 0.22 + 0.05 * z, 0.2)] = 38.0 + 10.0 * z  # heart
    hu[ellipse(x, y, -0.02, -0.08, 0.05, 0.05)] = 160.0  # aorta with contrast
    spine = ellipse(x, y, 0, 0.5, 0.1, 0.1)
    hu[spine] = 1100.0
    hu[ellipse(x, y, 0, 0.5, 0.075, 0.075)] = 280.0  # cancellous bone
    for k in range(10):  # ribs around the body
        a = np.pi * (0.12 + 0.076 * k) + 0.05 * np.sin(6.3 * z + k)
        cx, cy = 0.78 * np.cos(a), 0.05 + 0.56 * np.sin(a)
        for sx in (-1, 1):
            hu[ellipse(x, y, sx * cx, cy, 0.035, 0.025)] = 700.0
    hu += rng.normal(0.0, 14.0, (h, w))
    return hu


def ct_stored(i: int, h: int, w: int) -> np.ndarray:
    """Stored values (signed 16-bit) = HU + 1024, -2000 outside the field of view."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    fov = ((2 * xx / (w - 1) - 1) ** 2 + (2 * yy / (h - 1) - 1) ** 2) > 1.0
    stored = np.rint(ct_hu(i, h, w) + 1024.0)
    stored[fov] = -2000
    return np.clip(stored, -32768, 32767).astype(np.int64)


def radiograph(i: int, h: int, w: int) -> np.ndarray:
    """A chest radiograph in 12 bits, MONOCHROME2 convention (dense = bright), int64 h x w."""
    rng = np.random.default_rng(2_000_003 + i)
    y = np.linspace(-1, 1, h)[:, None]
    x = np.linspace(-1, 1, w)[None, :]
    shift = rng.uniform(-0.05, 0.05, 2)
    x, y = x - shift[0], y - shift[1]
    img = np.full((h, w), 250.0)  # direct exposure
    body = 1.0 / (1.0 + np.exp(np.minimum(30.0 * ((x / 0.85) ** 2 + (y / 1.1) ** 4 - 1.0), 50.0)))
    img = img + 1700.0 * body
    lungs = np.zeros((h, w))
    for side in (-1, 1):
        d = ((x - side * 0.38) / 0.3) ** 2 + ((y + 0.1) / 0.62) ** 2
        lungs += 1.0 / (1.0 + np.exp(np.minimum(12.0 * (d - 1.0), 50.0)))
    img -= 900.0 * lungs
    img += 500.0 / (1.0 + np.exp(np.minimum(10.0 * ((x / 0.14) ** 2 + ((y + 0.05) / 0.9) ** 2 - 1.0), 50.0)))  # mediastinum
    img += 350.0 * np.exp(-(((x - 0.1) / 0.22) ** 2 + ((y - 0.25) / 0.2) ** 2))  # heart
    for k in range(10):  # ribs: curved bands across both lungs
        centre = -0.62 + 0.13 * k + 0.32 * x**2
        img += 380.0 * lungs * np.exp(-(((y - centre) / 0.022) ** 2))
    for side in (-1, 1):  # clavicles
        img += 450.0 * np.exp(-(((y + 0.72 - 0.12 * np.abs(x)) / 0.025) ** 2)) * (side * x > 0) * (np.abs(x) < 0.6)
    texture = smooth_noise(rng, h, w, 40)
    img += 60.0 * texture * body
    img += rng.normal(0.0, 25.0, (h, w))
    return np.clip(np.rint(img), 0, 4095).astype(np.int64)


# ----------------------------------------------------------------------------- data sets


def folder_name(kind: str, size: str, n: int, syntax: str) -> str:
    return f"{kind}-{size}-{n}" + ("" if syntax == "native" else f"-{syntax}")


def write_file(kind: str, i: int, h: int, w: int, syntax: str, path: Path) -> None:
    import make_dicom_fixtures as mk
    from pydicom.uid import JPEG2000Lossless, RLELossless

    fid = f"bench-{kind}-{w}x{h}-{i}"
    if kind in ("ct", "small"):
        ds = mk.new_dataset(i, fid, mk.CT, mk.ExplicitVRLittleEndian, modality="CT", body="CHEST", desc="CT chest")
        mk.set_native(ds, ct_stored(i, h, w), "MONOCHROME2", 16, signed=True)
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        mk.window(ds, 40, 400)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = i + 1
        ds.SliceLocation = -300.0 + 1.25 * i
        ds.PixelSpacing = [0.7, 0.7]
    else:
        ds = mk.new_dataset(i, fid, mk.DX, mk.ExplicitVRLittleEndian, modality="DX", body="CHEST", view="PA")
        v = radiograph(i, h, w)
        mono1 = i % 2 == 1
        mk.set_native(ds, 4095 - v if mono1 else v, "MONOCHROME1" if mono1 else "MONOCHROME2", 12)
        centre = 2048 + 40 * (i % 5)
        mk.window(ds, 4095 - centre if mono1 else centre, 3300 + 50 * (i % 7))
        ds.PresentationLUTShape = "INVERSE" if mono1 else "IDENTITY"
        ds.PixelSpacing = [0.15, 0.15]
    if syntax == "rle":
        ds.compress(RLELossless, generate_instance_uid=False)
    elif syntax == "j2k":
        ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    tmp = path.with_name(path.name + ".part")  # no DICOM extension, and renamed at once
    ds.save_as(tmp, enforce_file_format=True)
    tmp.rename(path)


def cmd_make(args) -> None:
    size = args.size or DEFAULT_SIZE[args.kind]
    w, h = (int(v) for v in size.split("x"))
    name = folder_name(args.kind, size, args.n, args.syntax)
    folder = Path(args.dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.rglob("*.part"):
        stale.unlink()
    # At most 1,000 files per sub-folder, as archives usually are (one folder per series).
    rels = [f"s{i // 1000:03d}/{args.kind}_{i:05d}.dcm" for i in range(args.n)]
    for i, rel in enumerate(rels):
        path = folder / rel
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            write_file(args.kind, i, h, w, args.syntax, path)
    manifest = Path(args.dir) / f"{name}.csv"
    if not manifest.exists():
        tmp = manifest.with_name(manifest.name + ".part")
        with tmp.open("w", newline="") as f:
            wr = csv.writer(f, lineterminator="\n")
            wr.writerow(["id", "path"])
            wr.writerows([rel.removesuffix(".dcm"), rel] for rel in rels)
        tmp.rename(manifest)
    print(folder)


# ----------------------------------------------------------------------------- pipelines


def rgb8(path: Path) -> np.ndarray:
    """The reference pixels of the middle frame (tools/reference_dicom.py, the file's window)."""
    _, _, rgb, _ = next(rd.dicom_frames(path, None, "middle"))
    return rgb


def cmd_run(args) -> None:
    from PIL import Image

    t0 = time.perf_counter()
    cfg, sess, pixels, output, paths = bench_ingest.open_model(args)

    def load(path: Path) -> np.ndarray:
        return ref.preprocess(Image.fromarray(rgb8(path), "RGB"), cfg)

    bench_ingest.encode_and_save(args, sess, pixels, output, paths, load, t0)


def cmd_stages(args) -> None:
    import pydicom
    from PIL import Image

    cfg, sess, pixels, output, paths = bench_ingest.open_model(args)
    paths = paths[: args.limit] if args.limit else paths
    spent = {k: [0.0, 0.0] for k in ("read", "decode", "window", "resize", "inference")}

    def timed(stage, f, *a):
        t, c = time.perf_counter(), time.process_time()
        out = f(*a)
        spent[stage][0] += time.perf_counter() - t
        spent[stage][1] += time.process_time() - c
        return out

    batch = []
    for k, path in enumerate(paths):
        ds = timed("read", pydicom.dcmread, path)
        arr = timed("decode", lambda: ds.pixel_array)
        pi = str(ds.PhotometricInterpretation).strip()
        rgb, _ = timed("window", rd.grey_frame, arr, ds, pi, None)
        batch.append(timed("resize", lambda: ref.preprocess(Image.fromarray(rgb, "RGB"), cfg)))
        if len(batch) == args.batch or k == len(paths) - 1:
            feed = {pixels: np.stack(batch)} | ref.dummy_feed(sess, {pixels})
            timed("inference", sess.run, [output], feed)
            batch = []
    report = {"images": len(paths)} | {k: {"seconds": w, "cpu_seconds": c} for k, (w, c) in spent.items()}
    print(json.dumps(report))


def cmd_compare(args) -> int:
    with open(args.manifest, newline="") as f:
        ids = [row["id"] for row in csv.DictReader(f)]
    with open(args.medvec_table, newline="") as f:
        row_of = {row["id"]: k for k, row in enumerate(csv.DictReader(f))}
    if sorted(row_of) != sorted(ids):
        print(json.dumps({"error": "medvec stored other ids than the manifest's"}))
        return 1
    ours = np.load(args.medvec_npy)[[row_of[i] for i in ids]].astype(np.float64)
    theirs = np.load(args.python_npy).astype(np.float64)
    cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    print(json.dumps({"images": len(ids), "min_cosine": float(cos.min())}))
    return 0 if cos.min() >= 0.9999 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--dir", required=True)
    m.add_argument("--kind", choices=sorted(DEFAULT_SIZE), required=True)
    m.add_argument("--n", type=int, required=True)
    m.add_argument("--size", help="WIDTHxHEIGHT (columns x rows)")
    m.add_argument("--syntax", choices=("native", "rle", "j2k"), default="native")
    for name in ("run", "stages"):
        r = sub.add_parser(name)
        for flag in ("--manifest", "--root", "--model"):
            r.add_argument(flag, required=True)
        r.add_argument("--threads", type=int, default=2)
        r.add_argument("--batch", type=int, default=64)
        if name == "run":
            r.add_argument("--out", required=True)
        else:
            r.add_argument("--limit", type=int, default=0, help="only the first N files")
    c = sub.add_parser("compare")
    for flag in ("--manifest", "--python-npy", "--medvec-npy", "--medvec-table"):
        c.add_argument(flag, required=True)
    args = parser.parse_args()
    if args.cmd == "compare":
        return cmd_compare(args)
    {"make": cmd_make, "run": cmd_run, "stages": cmd_stages}[args.cmd](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
