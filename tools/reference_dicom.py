#!/usr/bin/env python3
"""Independent reference for medvec's DICOM ingest: pydicom 3.0.2 + numpy (+ Pillow/onnxruntime
through tools/reference_encode.py for the model part). Prints JSON on stdout.

    reference_dicom.py pixels FILE... [--window C,W | --window none] [--frames middle|first|all]
        {"results": [{"file", "frame", "frames", "rows", "columns", "mode", "rgb8", "sha256"}
                     | {"file", "error"}]}
        rgb8: base64 of the frame's rows x columns x 3 uint8 bytes (C order, R G B per pixel);
        sha256: hex digest of those bytes; mode: which branch of step 5 was used (see below);
        frames: the number of frames in the file.
    reference_dicom.py image MODEL_DIR FILE... [--window ...] [--frames ...] [--pixels]
        {"dim": D, "results": [{"file", "frame", "vector", "pixel_values"?} | {"file", "error"}]}
    reference_dicom.py locate NAME...
        {"results": [{"name", "path"} | {"name", "error"}]}: the absolute path of a file shipped
        in the installed pydicom package, NAME being a path relative to pydicom/data/test_files
        (e.g. "CT_small.dcm", "dicomdirtests/DICOMDIR") or a pydicom.examples name ("ct", "mr",
        "jpeg2k", "palette_color", "rgb_color", "ybr_color", ...). Nothing is downloaded.
    Any FILE may be written "pydicom:NAME" to mean that shipped file.

The pipeline, frame by frame (every arithmetic step below is numpy float64 unless stated):

 0. ds = pydicom.dcmread(FILE) (no force: a file without the DICM preamble and file meta fails).
    Before decoding, Rows x Columns x NumberOfFrames x SamplesPerPixel above 2**28 is an error
    ("too many pixels"), as a careful notebook would check before allocating.
 1. arr = ds.pixel_array: all frames, decoded by pydicom's default plugins (pydicom 3 defaults:
    as_rgb=True; JPEG baseline, JPEG lossless and JPEG-LS by pylibjpeg-libjpeg (pydicom tries
    its plugins in registration order, pylibjpeg before Pillow); JPEG 2000 by pylibjpeg-openjpeg; RLE by pydicom's own
    decoder). The result is indexed as (frames, rows, columns[, 3]); a single-frame file has one
    frame. Frame selection (step 8) happens on this array.
    YBR: with as_rgb=True, pixel_array itself converts YBR_FULL and YBR_FULL_422 (native and
    JPEG) to RGB with pydicom.pixels.processing._convert_YBR_FULL_to_RGB (float32 matrix product
    of (Y, Cb-128, Cr-128) with the ITU T.871 matrix, + 0.5, floor, clip 0..255), after the
    decoder has upsampled the 4:2:2 chroma (raw YCbCr from the JPEG decoder, no colour
    transform). JPEG 2000 YBR_RCT / YBR_ICT come back as RGB from openjpeg. ds's
    PhotometricInterpretation is not changed by pixel_array: every 3-sample image whose
    PhotometricInterpretation is RGB, YBR_FULL, YBR_FULL_422, YBR_RCT or YBR_ICT is RGB here.
    Other photometric interpretations (YBR_PARTIAL_*, ARGB, HSV, CMYK, ...) are errors.

 Greyscale (MONOCHROME1 / MONOCHROME2), for frame x:
 2. m = pydicom.pixels.apply_modality_lut(x, ds): the Modality LUT Sequence's first item if
    present (output uint8/uint16 from its descriptor's 3rd value), else RescaleSlope/Intercept
    when both are present (float64: x * slope + intercept), else x unchanged.
 3. VOI, chosen in this order:
    a. "--window none": no VOI; mode "minmax".
    b. "--window C,W": the file's VOI LUT Sequence is removed, WindowCenter=C, WindowWidth=W and
       VOILUTFunction=LINEAR are set, then as c. (even when the file had no window).
    c. pydicom.pixels.apply_voi_lut(m, ds, index=0) (prefer_lut=True): if the VOI LUT Sequence
       is present (item 0 with LUTDescriptor and LUTData), it wins over WindowCenter/Width:
       v = LUTData[clip(m - first_map, 0, entries - 1)] (m < first_map maps to entry 0);
       mode "voi-lut". Else, if WindowCenter and WindowWidth are present, the first value of
       each (index 0, for multi-valued) goes to pydicom's apply_windowing; mode "window".
       Else no VOI; mode "minmax".
    apply_windowing (PS3.3 C.11.2.1.2/3), with VOILUTFunction (default LINEAR):
       output range [y_min, y_max] = [0, 2**b - 1] with a Modality LUT Sequence (b = its
       descriptor's 3rd value); else [0, 2**BitsStored - 1] if PixelRepresentation is 0;
       else [-2**(BitsStored-1), 2**(BitsStored-1) - 1]; then, if RescaleSlope and
       RescaleIntercept are present, y_min = y_min * slope + intercept, likewise y_max.
       y_range = y_max - y_min.
       LINEAR: c = C - 0.5, w = W - 1 (W < 1 is an error); LINEAR_EXACT: c = C, w = W (W <= 0
       is an error). v = y_min where m <= c - w/2; v = y_max where m > c + w/2; otherwise
       v = ((m - c) / w + 0.5) * y_range + y_min (exactly this order of operations).
       SIGMOID: v = y_range / (1 + exp(-4 * (m - C) / W)) + y_min (W <= 0 is an error).
 4./5. Normalise to t in [0, 1] (the "range mapped to 0..255"), then invert, then 8 bits:
       mode "window":  t = (v - y_min) / y_range   (the window's 0-1 ramp; y_min, y_max, y_range
                       as in 3, recomputed exactly as pydicom does);
       mode "voi-lut": t = v / (2**n - 1), n = the VOI LUT item 0 descriptor's 3rd value;
       mode "minmax":  lo, hi = min(m), max(m) over this frame only (not the whole file);
                       t = (m - lo) / (hi - lo), and t = 0 everywhere when hi == lo.
       MONOCHROME1: t = 1 - t (so a constant MONOCHROME1 frame is 255, MONOCHROME2 0).
       u8 = uint8(clip(rint(t * 255), 0, 255)), rint = round half to even.
 6. grey to RGB: the u8 plane repeated into R, G and B.

 Colour, for frame x (rows x columns x 3, planar configuration already undone by pydicom):
    modality LUT, VOI LUT, windows and --window are ignored (they are greyscale-only in DICOM).
    mode "rgb8":  BitsStored <= 8: u8 = x as uint8.
    mode "rgb16": BitsStored > 8: t = x / (2**BitsStored - 1), u8 = uint8(clip(rint(t * 255), 0,
                  255)).
 PALETTE COLOR, for frame x: y = pydicom.pixels.apply_color_lut(x, ds)[..., :3] (alpha dropped;
    values below the descriptor's first mapped value take entry 0, above the last entry the
    last entry). The LUT depth is y's dtype (8 or 16 bits, from the data length, as pydicom
    decides). mode "palette8": u8 = y. mode "palette16": t = y / 65535, u8 = uint8(clip(rint(
    t * 255), 0, 255)).

 7. im = PIL.Image.fromarray(rgb8) (mode RGB), then reference_encode.preprocess(im, cfg) (the
    same Pillow resize / center crop / rescale / normalise as medvec's image encoder), and the
    ONNX session, output choice and L2 normalisation of reference_encode's "image" command.
 8. Frames: "--frames middle" (default) is frame n // 2, "first" is frame 0, "all" is every
    frame 0..n-1 (one result each); n = the number of frames pixel_array returned.

Bit-exactness: steps 2-6 are deterministic IEEE float64 arithmetic and can be reproduced
exactly in another language by doing the same operations in the same order; the exceptions
are SIGMOID (numpy's exp is not correctly rounded, so a tie at rint can differ in 1 unit) and
lossy JPEG / 4:2:2 chroma upsampling, which depend on the JPEG decoder, not on this script.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_encode  # noqa: E402  (the shared Pillow/onnxruntime image path)

MAX_SAMPLES = 2**28
COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT")


# ----------------------------------------------------------------------------- locating files


def pydicom_test_files() -> Path:
    import pydicom

    return Path(pydicom.__file__).resolve().parent / "data" / "test_files"


def locate(name: str) -> Path:
    """A file shipped in the installed pydicom wheel, by test_files-relative path or
    pydicom.examples name. Only local files: pydicom's get_testdata_file may download."""
    base = pydicom_test_files()
    p = (base / name).resolve()
    if p.is_file() and base in p.parents:
        return p
    from pydicom import examples

    try:
        p = Path(examples.get_path(name)).resolve()
    except ValueError:
        raise FileNotFoundError(f"no file {name!r} in {base} and no pydicom.examples.{name}") from None
    if not p.is_file():
        raise FileNotFoundError(f"pydicom.examples.{name} is not installed locally")
    return p


def resolve(arg: str) -> Path:
    return locate(arg.removeprefix("pydicom:")) if arg.startswith("pydicom:") else Path(arg)


# ----------------------------------------------------------------------------- pixels


def window_range(ds) -> tuple[float, float]:
    """[y_min, y_max] of pydicom 3.0.2's apply_windowing output (copied logic, see step 3)."""
    if ds.get("ModalityLUTSequence"):
        y_min, y_max = 0, 2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1
    elif ds.PixelRepresentation == 0:
        y_min, y_max = 0, 2 ** int(ds.BitsStored) - 1
    else:
        y_min, y_max = -(2 ** (int(ds.BitsStored) - 1)), 2 ** (int(ds.BitsStored) - 1) - 1
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope is not None and intercept is not None:
        y_min = y_min * float(slope) + float(intercept)
        y_max = y_max * float(slope) + float(intercept)
    return y_min, y_max


def to_u8(t: np.ndarray) -> np.ndarray:
    """Step 5's last operation: t in [0, 1] (float64) to uint8, rounding half to even."""
    return np.clip(np.rint(t * 255.0), 0, 255).astype(np.uint8)


def has_voi_lut(ds) -> bool:
    seq = ds.get("VOILUTSequence")
    return bool(seq) and seq[0].get("LUTDescriptor") is not None and seq[0].get("LUTData") is not None


def grey_frame(x: np.ndarray, ds, pi: str, window) -> tuple[np.ndarray, str]:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    m = apply_modality_lut(x, ds)
    if window == "none":
        mode = "minmax"
    else:
        if window is not None:  # --window C,W: a LINEAR window replaces the file's VOI
            if "VOILUTSequence" in ds:
                del ds.VOILUTSequence
            ds.WindowCenter, ds.WindowWidth = window
            ds.VOILUTFunction = "LINEAR"
        if has_voi_lut(ds):
            mode = "voi-lut"
        elif ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None:
            mode = "window"
        else:
            mode = "minmax"
    if mode == "voi-lut":
        v = apply_voi_lut(m, ds, index=0)
        t = v.astype(np.float64) / float(2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1)
    elif mode == "window":
        v = apply_voi_lut(m, ds, index=0)  # float64, in [y_min, y_max]
        y_min, y_max = window_range(ds)
        t = (v - y_min) / (y_max - y_min)
    else:
        m = m.astype(np.float64)
        lo, hi = float(m.min()), float(m.max())
        t = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
    if pi == "MONOCHROME1":
        t = 1.0 - t
    u8 = to_u8(t)
    return np.repeat(u8[..., None], 3, axis=-1), mode


def colour_frame(x: np.ndarray, ds) -> tuple[np.ndarray, str]:
    bits = int(ds.BitsStored)
    if bits <= 8:
        return x.astype(np.uint8), "rgb8"
    return to_u8(x.astype(np.float64) / float(2**bits - 1)), "rgb16"


def palette_frame(x: np.ndarray, ds) -> tuple[np.ndarray, str]:
    from pydicom.pixels import apply_color_lut

    y = apply_color_lut(x, ds)[..., :3]
    if y.dtype == np.uint8:
        return np.ascontiguousarray(y), "palette8"
    return to_u8(y.astype(np.float64) / 65535.0), "palette16"


def frame_indices(n: int, which: str) -> list[int]:
    return {"middle": [n // 2], "first": [0], "all": list(range(n))}[which]


def dicom_frames(path: Path, window, which: str):
    """Yield (frame index, frame count, rgb8 HxWx3 uint8, mode) for the selected frames."""
    import pydicom

    ds = pydicom.dcmread(path)
    if "PixelData" not in ds:
        raise ValueError("no Pixel Data")
    n = int(ds.get("NumberOfFrames") or 1)
    spp = int(ds.get("SamplesPerPixel") or 1)
    if int(ds.Rows) * int(ds.Columns) * max(n, 1) * spp > MAX_SAMPLES:
        raise ValueError("too many pixels")
    pi = str(ds.PhotometricInterpretation).strip()
    arr = ds.pixel_array
    if arr.ndim == (2 if spp == 1 else 3):
        arr = arr[None]  # a single frame: index it like a multi-frame array
    n = arr.shape[0]
    for i in frame_indices(n, which):
        x = arr[i]
        if pi in ("MONOCHROME1", "MONOCHROME2") and spp == 1:
            rgb, mode = grey_frame(x, ds, pi, window)
        elif pi == "PALETTE COLOR" and spp == 1:
            rgb, mode = palette_frame(x, ds)
        elif pi in COLOUR and spp == 3:
            rgb, mode = colour_frame(x, ds)
        else:
            raise ValueError(f"unsupported photometric interpretation {pi!r} with {spp} samples")
        yield i, n, np.ascontiguousarray(rgb, dtype=np.uint8), mode


def parse_window(s: str | None):
    if s is None or s == "none":
        return s
    c, w = (float(v) for v in s.split(","))
    return (c, w)


def error(f, e: Exception) -> dict:
    return {"file": str(f), "error": f"{type(e).__name__}: {e}"}


def cmd_pixels(args) -> dict:
    results = []
    for f in args.files:
        try:
            for i, n, rgb, mode in dicom_frames(resolve(f), args.window, args.frames):
                b = rgb.tobytes()
                results.append(
                    {
                        "file": str(f),
                        "frame": i,
                        "frames": n,
                        "rows": rgb.shape[0],
                        "columns": rgb.shape[1],
                        "mode": mode,
                        "rgb8": base64.b64encode(b).decode("ascii"),
                        "sha256": hashlib.sha256(b).hexdigest(),
                    }
                )
        except Exception as e:  # noqa: BLE001 - reported per file, like a notebook loop would
            results.append(error(f, e))
    return {"results": results}


def cmd_image(args) -> dict:
    from PIL import Image

    folder = Path(args.model_dir)
    cfg = json.loads(reference_encode.find_file(folder, ["preprocessor_config.json"]).read_text())
    sess = reference_encode.session(reference_encode.find_file(folder, ["vision_model.onnx", "model.onnx"]))
    pix = next(i.name for i in sess.get_inputs() if i.type == "tensor(float)")
    out = reference_encode.pick_output(sess, ["image_embeds", "pooler_output"])
    results, dim = [], None
    for f in args.files:
        try:
            frames = list(dicom_frames(resolve(f), args.window, args.frames))
        except Exception as e:  # noqa: BLE001
            results.append(error(f, e))
            continue
        for i, _n, rgb, _mode in frames:
            x = reference_encode.preprocess(Image.fromarray(rgb, "RGB"), cfg)
            feed = {pix: x[None]} | reference_encode.dummy_feed(sess, {pix})
            y = sess.run([out], feed)[0]
            y = y[:, 0] if y.ndim == 3 else y  # CLS token of a last_hidden_state
            v = reference_encode.l2n(y.astype(np.float64))[0]
            dim = len(v)
            r = {"file": str(f), "frame": i, "vector": v.tolist()}
            if args.pixels:
                r["pixel_values"] = x.ravel().tolist()
            results.append(r)
    return {"dim": dim, "results": results}


def cmd_locate(args) -> dict:
    results = []
    for name in args.names:
        try:
            results.append({"name": name, "path": str(locate(name))})
        except FileNotFoundError as e:
            results.append({"name": name, "error": str(e)})
    return {"results": results}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--window", type=parse_window, default=None, help="C,W or none")
    common.add_argument("--frames", choices=("middle", "first", "all"), default="middle")
    p = sub.add_parser("pixels", parents=[common])
    p.add_argument("files", nargs="+")
    p = sub.add_parser("image", parents=[common])
    p.add_argument("model_dir")
    p.add_argument("files", nargs="+")
    p.add_argument("--pixels", action="store_true", help="add the preprocessed CHW float32 tensor")
    p = sub.add_parser("locate")
    p.add_argument("names", nargs="+")
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    args = ap.parse_args(argv)
    out = {"pixels": cmd_pixels, "image": cmd_image, "locate": cmd_locate}[args.cmd](args)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
