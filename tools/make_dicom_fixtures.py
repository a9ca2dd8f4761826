#!/usr/bin/env python3
"""Generate medvec's DICOM test files under fixtures/dicom/ (deterministic, small).

    .venv/bin/python tools/make_dicom_fixtures.py [--out DIR]

Every file is built with pydicom 3.0.2 from seeded numpy "phantoms" (smooth ellipses and
gradients with a little texture, so that resizing matters), carries fake identifying tags
(PatientName DOE^JANE, PatientID PID-000N, AccessionNumber, InstitutionName, ...; UIDs derived
deterministically from the file id) and the safe tags medvec keeps (Modality, BodyPartExamined,
ViewPosition, Laterality, PatientSex, PatientAge, descriptions, Manufacturer, PixelSpacing).

Encoders: native and deflated syntaxes are written by pydicom; RLE Lossless by pydicom's own
encoder; JPEG 2000 (lossless and lossy) by pydicom + pylibjpeg-openjpeg; JPEG baseline by Pillow
(libjpeg-turbo) and encapsulated with pydicom; JPEG lossless (process 14, selection value 1) by
the small encoder below (nothing installable here writes it), checked by decoding it back with
pylibjpeg-libjpeg. The broken files under bad/ are written byte by byte where pydicom would
refuse to write them.

Outputs: fixtures/dicom/*.dcm, detect/ (DICOM files without an extension), dicomdir/ (a
DICOMDIR and the files it references), bad/, manifest.csv, and the tables between the
"*-table" markers of README.md: the reference sha256 of the middle frame (tools/reference_dicom.py)
of every good file here and of the pydicom wheel's files listed in PYDICOM_FILES.
Everything in the output folder except README.md is deleted and rewritten.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import shutil
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels.processing import convert_color_space
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "fixtures" / "dicom"
sys.path.insert(0, str(Path(__file__).resolve().parent))

# SOP classes used here.
CT = UID("1.2.840.10008.5.1.4.1.1.2")
MR = UID("1.2.840.10008.5.1.4.1.1.4")
CR = UID("1.2.840.10008.5.1.4.1.1.1")
DX = UID("1.2.840.10008.5.1.4.1.1.1.1")  # Digital X-Ray Image Storage - For Presentation
SC = UID("1.2.840.10008.5.1.4.1.1.7")  # Secondary Capture
SC_MF_WORD = UID("1.2.840.10008.5.1.4.1.1.7.3")  # Multi-frame Grayscale Word SC
VL_PHOTO = UID("1.2.840.10008.5.1.4.1.1.77.1.4")  # VL Photographic Image
US = UID("1.2.840.10008.5.1.4.1.1.6.1")
BASIC_TEXT_SR = UID("1.2.840.10008.5.1.4.1.1.88.11")

PATIENTS = [  # (PatientID, sex, age): fake; several files share a patient on purpose
    ("PID-0001", "F", "045Y"),
    ("PID-0002", "M", "067Y"),
    ("PID-0003", "F", "008Y"),
    ("PID-0004", "M", "081Y"),
    ("PID-0005", "O", "030M"),
    ("PID-0006", "F", "052Y"),
]


def uid(*parts: object) -> UID:
    """A deterministic UUID-derived UID (2.25.<128-bit integer>, PS3.5 B.2) from the given parts.
    (pydicom's generate_uid ignores entropy_srcs when prefix=None, and its own root is not ours.)"""
    digest = hashlib.sha256("\x1f".join(["medvec-fixture", *map(str, parts)]).encode()).digest()
    return UID(f"2.25.{int.from_bytes(digest[:16], 'big')}")


# ----------------------------------------------------------------------------- images


def phantom(h: int, w: int, seed: int) -> np.ndarray:
    """A float64 image in [0, 1]: a gradient, a few soft ellipses and a faint texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    y, x = y / max(h - 1, 1), x / max(w - 1, 1)
    img = 0.25 * (rng.uniform(-1, 1) * x + rng.uniform(-1, 1) * y)
    for _ in range(4):
        cy, cx = rng.uniform(0.2, 0.8, 2)
        ry, rx = rng.uniform(0.08, 0.35, 2)
        a = rng.uniform(-np.pi, np.pi)
        dy, dx = y - cy, x - cx
        u = (dx * np.cos(a) + dy * np.sin(a)) / rx
        v = (-dx * np.sin(a) + dy * np.cos(a)) / ry
        img += rng.uniform(-0.6, 1.0) / (1.0 + np.exp(np.minimum(8.0 * (u * u + v * v - 1.0), 50.0)))
    img += 0.03 * rng.standard_normal((h, w))
    img -= img.min()
    return img / img.max()


def scaled(img: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """img in [0, 1] to integers in [lo, hi] (int64)."""
    return np.rint(lo + img * (hi - lo)).astype(np.int64)


def colour(h: int, w: int, seed: int) -> np.ndarray:
    """An HxWx3 float64 image in [0, 1] whose channels differ (not a grey image)."""
    return np.stack([phantom(h, w, seed + k) for k in range(3)], axis=-1)


# ----------------------------------------------------------------------------- datasets


@dataclass
class Case:
    id: str
    path: str  # relative to the output folder
    what: str
    expect: str = "ok"  # or the kind of reject (see README.md)
    extra: dict = field(default_factory=dict)


def new_dataset(
    n: int, fid: str, sop_class: UID, ts: UID, *, modality: str, body: str, view: str = "", lat: str = "", desc: str = ""
) -> FileDataset:
    """A dataset with file meta, fake identifying tags and the safe tags, no pixels yet."""
    pid, sex, age = PATIENTS[n % len(PATIENTS)]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = uid(fid, "sop")
    meta.TransferSyntaxUID = ts
    meta.ImplementationClassUID = uid("implementation")
    meta.ImplementationVersionName = "MEDVEC_FIXTURE"
    # The encoding given here must match the transfer syntax (save_as refuses to change endianness).
    ds = FileDataset(
        fid, {}, file_meta=meta, preamble=b"\0" * 128, is_implicit_VR=ts.is_implicit_VR, is_little_endian=ts.is_little_endian
    )
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyDate = f"2024{1 + n % 12:02d}{1 + n % 28:02d}"
    ds.SeriesDate = ds.StudyDate
    ds.StudyTime = f"{8 + n % 10:02d}{(7 * n) % 60:02d}00"
    ds.AccessionNumber = f"ACC-{1000 + n}"
    ds.Modality = modality
    ds.Manufacturer = "MEDVEC FIXTURES"
    ds.InstitutionName = "NOWHERE GENERAL HOSPITAL"
    ds.ReferringPhysicianName = "FAKE^REFERRER"
    ds.StudyDescription = desc or f"{modality} {body.lower()}"
    ds.SeriesDescription = f"fixture {fid}"
    ds.PatientName = "DOE^JANE"
    ds.PatientID = pid
    ds.PatientBirthDate = f"{1940 + 7 * (n % 6)}0{1 + n % 9}15"
    ds.PatientSex = sex
    ds.PatientAge = age
    ds.BodyPartExamined = body
    if view:
        ds.ViewPosition = view
    if lat:
        ds.Laterality = lat
    # One study per patient and modality, one series per file.
    ds.StudyInstanceUID = uid(pid, modality, "study")
    ds.SeriesInstanceUID = uid(fid, "series")
    ds.StudyID = f"S{n % 6}"
    ds.SeriesNumber = n + 1
    ds.InstanceNumber = 1
    return ds


def set_native(ds: Dataset, arr: np.ndarray, pi: str, bits_stored: int, *, signed: bool = False, planar: int = 0) -> None:
    """Image Pixel module + native Pixel Data, in the byte order of ds's transfer syntax.

    arr: (rows, cols[, 3]) or (frames, rows, cols[, 3]) integers. Signed values with
    bits_stored < 16 are stored masked to bits_stored bits (high bits zero): the reader must
    sign-extend from BitsStored, not from BitsAllocated."""
    spp = 3 if pi in ("RGB", "YBR_FULL", "YBR_FULL_422") else 1
    frames = arr if arr.ndim == (3 if spp == 1 else 4) else arr[None]
    nf, rows, cols = frames.shape[:3]
    alloc = 8 if bits_stored <= 8 else 16
    lo, hi = (-(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1) if signed else (0, 2**bits_stored - 1)
    assert frames.min() >= lo and frames.max() <= hi, (ds.SeriesDescription, frames.min(), frames.max())
    raw = frames.astype(np.int64) & (2**bits_stored - 1)
    if spp == 3 and planar == 1:
        raw = raw.transpose(0, 3, 1, 2)  # R plane, G plane, B plane per frame
    big = ds.file_meta.TransferSyntaxUID == ExplicitVRBigEndian
    dtype = np.uint8 if alloc == 8 else np.dtype(">u2" if big else "<u2")
    data = np.ascontiguousarray(raw).astype(dtype).tobytes()
    if len(data) % 2:
        data += b"\0"
    ds.SamplesPerPixel = spp
    ds.PhotometricInterpretation = pi
    if spp == 3:
        ds.PlanarConfiguration = planar
    if nf > 1:
        ds.NumberOfFrames = nf
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = alloc, bits_stored, bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelSpacing = [0.5, 0.5] if rows <= 64 else [0.25, 0.25]
    ds.PixelData = data
    ds["PixelData"].VR = "OB" if alloc == 8 else "OW"


def set_encapsulated(ds: Dataset, frames: list[bytes]) -> None:
    ds.PixelData = encapsulate(frames, has_bot=True)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True


def window(ds: Dataset, centers, widths, func: str | None = None) -> None:
    ds.WindowCenter = centers
    ds.WindowWidth = widths
    if func:
        ds.VOILUTFunction = func


def save(ds: FileDataset, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


# ----------------------------------------------------------------------------- JPEG encoders


def jpeg_pillow(img: np.ndarray, subsampling: str | None = None) -> bytes:
    """Baseline JPEG from Pillow: grey (L) or RGB, which libjpeg stores as YCbCr (JFIF)."""
    from PIL import Image

    buf = io.BytesIO()
    kw = {"quality": 90}
    if subsampling:
        kw["subsampling"] = subsampling
    Image.fromarray(img.astype(np.uint8)).save(buf, "JPEG", **kw)
    return buf.getvalue()


class BitWriter:
    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, code: int, length: int) -> None:
        for i in range(length - 1, -1, -1):
            self.acc = (self.acc << 1) | ((code >> i) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)  # byte stuffing
                self.acc = self.n = 0

    def flush(self) -> bytes:
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)  # pad with 1 bits
        return bytes(self.out)


def jpeg_lossless(img: np.ndarray, precision: int) -> bytes:
    """Lossless JPEG (ITU T.81 process 14), one component, predictor 1 (left), Pt = 0.

    Differences are taken modulo 2**16 (H.1.2.1) and coded with one Huffman table over the
    categories SSSS = 0..16, built from the image's own histogram with fixed code lengths."""
    h, w = img.shape
    x = img.astype(np.int64)
    pred = np.empty_like(x)
    pred[0, 0] = 1 << (precision - 1)
    pred[0, 1:] = x[0, :-1]  # first row: the left neighbour
    pred[1:, 0] = x[:-1, 0]  # first column: the pixel above
    pred[1:, 1:] = x[1:, :-1]  # predictor 1 elsewhere: left
    diff = (x - pred) % 65536
    diff = np.where(diff >= 32768, diff - 65536, diff)
    ssss = np.where(diff == 0, 0, np.floor(np.log2(np.maximum(np.abs(diff), 1))).astype(np.int64) + 1)
    # Code lengths 2,2,3,3,...,9,9,10 for the 17 categories, most frequent first: their Kraft sum
    # is below 1, so no code is all ones (T.81 C).
    lengths = [2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10]
    order = sorted(range(17), key=lambda s: (-int((ssss == s).sum()), s))
    bits = [0] * 16
    for ln in lengths:
        bits[ln - 1] += 1
    codes, code, k = {}, 0, 0
    for ln in range(1, 17):  # canonical codes, as the decoder rebuilds them (T.81 C.2)
        for _ in range(bits[ln - 1]):
            codes[order[k]] = (code, ln)
            code += 1
            k += 1
        code <<= 1
    bw = BitWriter()
    for d, s in zip(diff.ravel().tolist(), ssss.ravel().tolist()):
        bw.put(*codes[s])
        if 0 < s < 16:
            bw.put(d if d > 0 else d + (1 << s) - 1, s)
    scan = bw.flush()

    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">HH", marker, len(payload) + 2) + payload

    sof = struct.pack(">BHHB", precision, h, w, 1) + bytes([1, 0x11, 0])
    dht = bytes([0x00]) + bytes(bits) + bytes(order)
    sos = bytes([1, 1, 0x00, 1, 0, 0])  # Ns, Cs, Td/Ta, Ss = predictor 1, Se, Ah/Al
    return b"\xff\xd8" + segment(0xFFC3, sof) + segment(0xFFC4, dht) + segment(0xFFDA, sos) + scan + b"\xff\xd9"


# ----------------------------------------------------------------------------- good files


def build_good(out: Path) -> list[Case]:
    cases: list[Case] = []
    n = 0

    def add(ds: FileDataset, rel: str, what: str) -> None:
        save(ds, out / rel)
        cases.append(Case(Path(rel).stem if "/" not in rel else rel.replace("/", "_"), rel, what))

    def nd(fid, sop, ts, **kw):
        nonlocal n
        n += 1
        return new_dataset(n, fid, sop, ts, **kw)

    # 1. MONOCHROME2 8-bit, no window: min-max of 30..220.
    ds = nd("mono2_u8", SC, ExplicitVRLittleEndian, modality="OT", body="HAND", lat="L")
    set_native(ds, scaled(phantom(48, 64, 1), 30, 220), "MONOCHROME2", 8)
    add(ds, "mono2_u8.dcm", "MONOCHROME2 8-bit, no window: min-max")

    # 2. MONOCHROME2 12-bit unsigned with one LINEAR window.
    ds = nd("mono2_u12_window", DX, ExplicitVRLittleEndian, modality="DX", body="CHEST", view="PA")
    set_native(ds, scaled(phantom(64, 64, 2), 0, 4095), "MONOCHROME2", 12)
    window(ds, 1800, 1600)
    add(ds, "mono2_u12_window.dcm", "MONOCHROME2 12-bit unsigned, LINEAR window (clips both ends)")

    # 3. MONOCHROME1 16-bit with a window: inverted.
    ds = nd("mono1_u16", CR, ExplicitVRLittleEndian, modality="CR", body="CHEST", view="AP")
    set_native(ds, scaled(phantom(56, 72, 3), 2000, 60000), "MONOCHROME1", 16)
    window(ds, 30000, 40000)
    add(ds, "mono1_u16.dcm", "MONOCHROME1 16-bit, window: inverted")

    # 4. Signed 16-bit CT with rescale and two windows: the first one wins.
    ds = nd("ct_s16_rescale", CT, ExplicitVRLittleEndian, modality="CT", body="HEAD")
    img = scaled(phantom(64, 64, 4), 700, 1400)  # -324..376 HU: mostly inside the brain window
    img[:6, :] = -2000  # padding outside the field of view, below every window
    set_native(ds, img, "MONOCHROME2", 16, signed=True)
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
    window(ds, [40, -600], [400, 1500])
    ds.WindowCenterWidthExplanation = ["BRAIN", "LUNG"]
    add(ds, "ct_s16_rescale.dcm", "signed 16-bit CT, RescaleIntercept -1024, two windows (first used)")

    # 5. No window at all: min-max over the frame's own 1000..3000.
    ds = nd("mono2_u16_nowindow", MR, ExplicitVRLittleEndian, modality="MR", body="KNEE", lat="R")
    set_native(ds, scaled(phantom(60, 40, 5), 1000, 3000), "MONOCHROME2", 16)
    add(ds, "mono2_u16_nowindow.dcm", "MONOCHROME2 16-bit, no window: min-max of 1000..3000")

    # 6. VOI LUT Sequence (12-bit gamma LUT starting at 512) next to a window: the LUT wins.
    ds = nd("voi_lut_seq", DX, ExplicitVRLittleEndian, modality="DX", body="PELVIS", view="AP")
    set_native(ds, scaled(phantom(64, 48, 6), 0, 4095), "MONOCHROME2", 12)
    item = Dataset()
    item.LUTDescriptor = [2048, 512, 12]
    item.LUTExplanation = "GAMMA 0.6"
    item.LUTData = np.rint(4095 * (np.arange(2048) / 2047) ** 0.6).astype(int).tolist()
    item["LUTData"].VR = "US"
    item["LUTDescriptor"].VR = "US"
    ds.VOILUTSequence = Sequence([item])
    window(ds, 2048, 4096)
    add(ds, "voi_lut_seq.dcm", "VOI LUT Sequence [2048, 512, 12] (wins over the window present)")

    # 7. Modality LUT Sequence (10-bit in, 16-bit out) and a window on its output.
    ds = nd("modality_lut_seq", SC, ExplicitVRLittleEndian, modality="OT", body="ABDOMEN")
    set_native(ds, scaled(phantom(48, 48, 7), 0, 1023), "MONOCHROME2", 10)
    item = Dataset()
    item.LUTDescriptor = [1024, 0, 16]
    item.ModalityLUTType = "US"
    item.LUTData = np.rint(65535 * np.log1p(np.arange(1024) / 64) / np.log1p(1023 / 64)).astype(int).tolist()
    item["LUTData"].VR = "US"
    item["LUTDescriptor"].VR = "US"
    ds.ModalityLUTSequence = Sequence([item])
    window(ds, 40000, 30000)
    add(ds, "modality_lut_seq.dcm", "Modality LUT Sequence [1024, 0, 16] then a window on 0..65535")

    # 8, 9. RGB 8-bit, planar configuration 0 and 1 (same picture).
    rgb = scaled(colour(60, 80, 8), 0, 255)
    for planar in (0, 1):
        ds = nd(f"rgb_u8_planar{planar}", VL_PHOTO, ExplicitVRLittleEndian, modality="XC", body="SKIN", lat="L")
        set_native(ds, rgb, "RGB", 8, planar=planar)
        add(ds, f"rgb_u8_planar{planar}.dcm", f"RGB 8-bit, planar configuration {planar}")

    # 10. RGB 16-bit allocated, 12 stored: scaled from 0..4095.
    ds = nd("rgb_u16_bs12", SC, ExplicitVRLittleEndian, modality="OT", body="SKIN")
    set_native(ds, scaled(colour(48, 64, 10), 0, 4095), "RGB", 12)
    add(ds, "rgb_u16_bs12.dcm", "RGB, BitsAllocated 16, BitsStored 12: from 0..4095")

    # 11. YBR_FULL native: pixel_array converts it to RGB.
    ds = nd("ybr_full", SC, ExplicitVRLittleEndian, modality="OT", body="SKIN")
    ybr = convert_color_space(scaled(colour(48, 48, 11), 0, 255).astype(np.uint8), "RGB", "YBR_FULL")
    set_native(ds, ybr, "YBR_FULL", 8)
    add(ds, "ybr_full.dcm", "YBR_FULL native 8-bit (converted to RGB by pixel_array)")

    # 12. JPEG baseline 4:2:2 in YBR_FULL_422 (Pillow / libjpeg-turbo).
    ds = nd("jpeg_baseline_ybr422", VL_PHOTO, JPEGBaseline8Bit, modality="XC", body="SKIN", lat="R")
    rgb = scaled(colour(64, 80, 12), 0, 255)
    set_native(ds, rgb, "YBR_FULL_422", 8)
    set_encapsulated(ds, [jpeg_pillow(rgb, "4:2:2")])
    ds.LossyImageCompression = "01"
    add(ds, "jpeg_baseline_ybr422.dcm", "JPEG baseline, YBR_FULL_422 (4:2:2 chroma)")

    # 13. PALETTE COLOR 8-bit with 16-bit LUTs of 240 entries starting at 8 (both ends clip).
    ds = nd("palette_u8_lut16", SC, ExplicitVRLittleEndian, modality="OT", body="BRAIN")
    set_native(ds, scaled(phantom(56, 56, 13), 0, 255), "PALETTE COLOR", 8)
    k = np.arange(240) / 239
    for name, curve in (("Red", k), ("Green", np.sin(np.pi * k) ** 2), ("Blue", 1 - k)):
        setattr(ds, f"{name}PaletteColorLookupTableDescriptor", [240, 8, 16])
        ds[f"{name}PaletteColorLookupTableDescriptor"].VR = "US"
        setattr(ds, f"{name}PaletteColorLookupTableData", np.rint(65535 * curve).astype("<u2").tobytes())
    add(ds, "palette_u8_lut16.dcm", "PALETTE COLOR 8-bit, 16-bit LUTs [240, 8, 16]")

    # 14. Multi-frame: 5 distinct frames, no window (min-max per frame).
    ds = nd("multiframe_5f", SC_MF_WORD, ExplicitVRLittleEndian, modality="OT", body="LIVER")
    frames = np.stack([scaled(phantom(40, 56, 140 + f), 100 * f, 1000 + 600 * f) for f in range(5)])
    set_native(ds, frames, "MONOCHROME2", 12)
    add(ds, "multiframe_5f.dcm", "5 frames MONOCHROME2 12-bit, each its own range (middle = 2)")

    # 15. Explicit VR big endian, signed 16-bit with a window.
    ds = nd("explicit_big_endian", MR, ExplicitVRBigEndian, modality="MR", body="BRAIN")
    set_native(ds, scaled(phantom(64, 56, 15), -300, 1200), "MONOCHROME2", 16, signed=True)
    window(ds, 400, 1000)
    add(ds, "explicit_big_endian.dcm", "Explicit VR Big Endian, signed 16-bit, window")

    # 16. Implicit VR little endian, signed 12-bit stored in 16 (high bits zero).
    ds = nd("implicit_s12", CT, ImplicitVRLittleEndian, modality="CT", body="CHEST")
    set_native(ds, scaled(phantom(48, 64, 16), -2048, 2047), "MONOCHROME2", 12, signed=True)
    ds.RescaleIntercept, ds.RescaleSlope = 0, 1
    window(ds, -100, 2000)
    add(ds, "implicit_s12.dcm", "Implicit VR LE, signed 12-bit in 16 (sign-extend from BitsStored)")

    # 17. Deflated explicit VR little endian.
    ds = nd("deflated", MR, DeflatedExplicitVRLittleEndian, modality="MR", body="SPINE")
    set_native(ds, scaled(phantom(64, 40, 17), 0, 900), "MONOCHROME2", 16)
    window(ds, 450, 700)
    add(ds, "deflated.dcm", "Deflated Explicit VR LE, 16-bit, window")

    # 18, 19. RLE Lossless, grey signed 16-bit and RGB 8-bit (pydicom's RLE encoder).
    ds = nd("rle_grey_s16", CT, ExplicitVRLittleEndian, modality="CT", body="ABDOMEN")
    set_native(ds, scaled(phantom(64, 64, 18), -1024, 1500), "MONOCHROME2", 16, signed=True)
    window(ds, 50, 350)
    ds.compress(RLELossless, encoding_plugin="pydicom", generate_instance_uid=False)
    add(ds, "rle_grey_s16.dcm", "RLE Lossless, grey signed 16-bit, window")
    ds = nd("rle_rgb_u8", VL_PHOTO, ExplicitVRLittleEndian, modality="XC", body="SKIN")
    set_native(ds, scaled(colour(50, 70, 19), 0, 255), "RGB", 8)
    ds.compress(RLELossless, encoding_plugin="pydicom", generate_instance_uid=False)
    add(ds, "rle_rgb_u8.dcm", "RLE Lossless, RGB 8-bit")

    # 20. JPEG baseline grey 8-bit (Pillow).
    ds = nd("jpeg_baseline_grey", DX, JPEGBaseline8Bit, modality="DX", body="HAND", view="PA", lat="R")
    img = scaled(phantom(64, 48, 20), 10, 240)
    set_native(ds, img, "MONOCHROME2", 8)
    set_encapsulated(ds, [jpeg_pillow(img)])
    ds.LossyImageCompression = "01"
    add(ds, "jpeg_baseline_grey.dcm", "JPEG baseline, MONOCHROME2 8-bit, no window")

    # 21. JPEG lossless SV1, 16-bit (own encoder, checked against pylibjpeg-libjpeg).
    ds = nd("jpeg_lossless_u16", CT, JPEGLosslessSV1, modality="CT", body="CHEST")
    img = scaled(phantom(48, 56, 21), 0, 40000)
    img[0, :8] = [0, 65535, 0, 65535, 40000, 0, 32768, 0]  # differences of every SSSS up to 16
    set_native(ds, img, "MONOCHROME2", 16)
    set_encapsulated(ds, [jpeg_lossless(img, 16)])
    window(ds, 20000, 30000)
    check = pydicom.dcmread(io.BytesIO(_bytes(ds))).pixel_array
    assert np.array_equal(check.astype(np.int64), img), "JPEG lossless round trip failed"
    add(ds, "jpeg_lossless_u16.dcm", "JPEG Lossless SV1 (process 14), 16-bit, window")

    # 22, 23. JPEG 2000 lossless grey 12-bit and lossy RGB (openjpeg; RGB becomes YBR_ICT).
    ds = nd("j2k_lossless_u12", MR, ExplicitVRLittleEndian, modality="MR", body="HEAD")
    set_native(ds, scaled(phantom(56, 48, 22), 0, 4095), "MONOCHROME2", 12)
    window(ds, 2000, 3000)
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    add(ds, "j2k_lossless_u12.dcm", "JPEG 2000 lossless, 12-bit, window")
    ds = nd("j2k_lossy_ybr_ict", VL_PHOTO, ExplicitVRLittleEndian, modality="XC", body="SKIN")
    rgb = scaled(colour(48, 64, 23), 0, 255)
    set_native(ds, rgb, "RGB", 8)
    # YBR_ICT tells pydicom's encoder to use the irreversible colour transform (MCT), as
    # lossy J2K colour images normally are; openjpeg undoes it when decoding.
    ds.PhotometricInterpretation = "YBR_ICT"
    ds.compress(JPEG2000, rgb.astype(np.uint8), encoding_plugin="pylibjpeg", j2k_cr=[10], generate_instance_uid=False)
    add(ds, "j2k_lossy_ybr_ict.dcm", "JPEG 2000 lossy, colour with MCT (YBR_ICT)")

    # 24, 25. The other VOI LUT functions.
    for fid, func, c, w in (("voi_linear_exact", "LINEAR_EXACT", 1000.5, 1200), ("voi_sigmoid", "SIGMOID", 1200, 900)):
        ds = nd(fid, DX, ExplicitVRLittleEndian, modality="DX", body="FOOT", view="AP")
        set_native(ds, scaled(phantom(40, 40, 24 if func == "SIGMOID" else 25), 0, 2500), "MONOCHROME2", 12)
        window(ds, c, w, func)
        add(ds, f"{fid}.dcm", f"VOILUTFunction {func}")

    # 26, 27. No extension, in a subfolder: found by the DICM preamble only.
    ds = nd("detect_1", US, ExplicitVRLittleEndian, modality="US", body="ABDOMEN")
    set_native(ds, scaled(phantom(48, 64, 26), 0, 255), "MONOCHROME2", 8)
    add(ds, "detect/IM000001", "no extension: MONOCHROME2 8-bit")
    ds = nd("detect_2", US, ExplicitVRLittleEndian, modality="US", body="HEART")
    set_native(ds, scaled(colour(48, 64, 27), 0, 255), "RGB", 8)
    add(ds, "detect/IM000002", "no extension: RGB 8-bit")

    # DICOMDIR referencing three files (pydicom FileSet writes them under dicomdir/).
    from pydicom.fileset import FileSet

    fs = FileSet()
    fs.UID = uid("fileset")
    fs.ID = "MEDVEC"
    for fid, sop, modality, body, seed, pi in (
        ("dicomdir_1", CT, "CT", "HEAD", 31, "MONOCHROME2"),
        ("dicomdir_2", CT, "CT", "HEAD", 32, "MONOCHROME2"),
        ("dicomdir_3", MR, "MR", "KNEE", 33, "MONOCHROME2"),
    ):
        ds = nd(fid, sop, ExplicitVRLittleEndian, modality=modality, body=body)
        set_native(ds, scaled(phantom(32, 32, seed), 0, 4000), pi, 12)
        window(ds, 2000, 3000)
        fs.add(ds)
    fs.write(out / "dicomdir")
    for inst in sorted(fs, key=lambda i: i.path):  # after write(): paths inside out/dicomdir
        rel = Path(inst.path).resolve().relative_to(out.resolve()).as_posix()
        cases.append(Case(rel.replace("/", "_"), rel, "referenced by dicomdir/DICOMDIR (12-bit CT/MR, window)"))
    return cases


def _bytes(ds: FileDataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


# ----------------------------------------------------------------------------- bad files


def explicit_le_element(group: int, elem: int, vr: str, value: bytes, undefined: bool = False) -> bytes:
    head = struct.pack("<HH", group, elem) + vr.encode()
    if vr in ("OB", "OW", "SQ", "UN", "UT", "UC", "UR", "OD", "OF", "OL", "OV"):
        return head + b"\0\0" + struct.pack("<I", 0xFFFFFFFF if undefined else len(value)) + value
    return head + struct.pack("<H", len(value)) + value


def insert_before_pixel_data(data: bytes, element: bytes) -> bytes:
    """Insert raw explicit-LE element bytes just before (7FE0,0010) in a written file."""
    i = data.rindex(b"\xe0\x7f\x10\x00")
    return data[:i] + element + data[i:]


def build_bad(out: Path, first_n: int) -> list[Case]:
    bad = out / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    n = first_n

    def nd(fid, sop=SC, ts=ExplicitVRLittleEndian, **kw):
        nonlocal n
        n += 1
        kw.setdefault("modality", "OT")
        kw.setdefault("body", "CHEST")
        return new_dataset(n, fid, sop, ts, **kw)

    def add(rel: str, expect: str, what: str, data: bytes) -> None:
        (out / rel).write_bytes(data)
        cases.append(Case("BAD_" + Path(rel).stem, rel, what, expect))

    add(
        "bad/not_dicom.dcm",
        "not-dicom",
        "plain text named .dcm (no DICM preamble)",
        b"This is not a DICOM file. PatientName=DOE^JANE\n" * 4,
    )

    ds = nd("truncated_pixels", MR)
    set_native(ds, scaled(phantom(64, 64, 41), 0, 4000), "MONOCHROME2", 12)
    data = _bytes(ds)
    add("bad/truncated_pixels.dcm", "truncated", "file cut in the middle of Pixel Data (2000 bytes missing)", data[:-2000])

    ds = nd("no_pixels_sr", BASIC_TEXT_SR, modality="SR", body="CHEST")
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "18748-4", "LN", "Diagnostic Imaging Report"
    ds.ConceptNameCodeSequence = Sequence([code])
    text = Dataset()
    text.RelationshipType, text.ValueType = "CONTAINS", "TEXT"
    c2 = Dataset()
    c2.CodeValue, c2.CodingSchemeDesignator, c2.CodeMeaning = "121071", "DCM", "Finding"
    text.ConceptNameCodeSequence = Sequence([c2])
    text.TextValue = "No acute findings. (fixture text for DOE^JANE)"
    ds.ContentSequence = Sequence([text])
    add("bad/no_pixels_sr.dcm", "no-pixel-data", "Basic Text SR: no Pixel Data", _bytes(ds))

    ds = nd("jpeg_ls", CT, JPEGLSLossless, modality="CT")
    set_native(ds, np.zeros((32, 32), np.int64), "MONOCHROME2", 16)
    # Not a real JPEG-LS stream (nothing here encodes JPEG-LS): the transfer syntax alone must
    # reject the file, before any decoding. pydicom's libjpeg fails on it.
    fake = b"\xff\xd8" + b"JPEG-LS placeholder: never decoded. " * 4 + b"\xff\xd9"
    set_encapsulated(ds, [fake])
    add("bad/jpeg_ls.dcm", "unsupported-transfer-syntax", f"JPEG-LS Lossless ({JPEGLSLossless}), encapsulated", _bytes(ds))

    # Decompression bombs: 65535 x 65535 x 1000 frames declared, a few bytes given.
    for kind in ("rle", "native"):
        ds = nd(f"bomb_{kind}", SC, RLELossless if kind == "rle" else ExplicitVRLittleEndian)
        set_native(ds, np.zeros((2, 2), np.int64), "MONOCHROME2", 8)
        ds.Rows = ds.Columns = 65535
        ds.NumberOfFrames = 1000
        if kind == "rle":
            # One RLE frame: a 64-byte header with one segment, then "repeat 0 128 times".
            segment = bytes([0x81, 0x00])
            header = struct.pack("<16I", 1, 64, *([0] * 14))
            set_encapsulated(ds, [header + segment])
        else:
            ds.PixelData = bytes(128)
        what = "Rows=Columns=65535, NumberOfFrames=1000, " + ("one tiny RLE fragment" if kind == "rle" else "128 bytes of native Pixel Data")
        add(f"bad/bomb_{kind}.dcm", "too-many-pixels", what, _bytes(ds))

    # Encapsulated Pixel Data whose offset table and fragment length point past the end.
    ds = nd("encaps_outside", SC, JPEGBaseline8Bit)
    set_native(ds, np.zeros((32, 32), np.int64), "MONOCHROME2", 8)
    ds.NumberOfFrames = 2
    del ds.PixelData
    data = _bytes(ds)
    pixel = (
        struct.pack("<HH", 0x7FE0, 0x0010) + b"OB\0\0" + struct.pack("<I", 0xFFFFFFFF)
        + struct.pack("<HHI", 0xFFFE, 0xE000, 8) + struct.pack("<2I", 0, 0x7FFF0000)  # BOT
        + struct.pack("<HHI", 0xFFFE, 0xE000, 0x7FFFFFF0) + b"\xff\xd8\xff\xdb" + bytes(60)  # fragment
    )
    add("bad/encaps_outside.dcm", "bad-fragments", "Basic Offset Table entry and fragment length beyond the end of the file", data + pixel)

    # A sequence nested 1,000 deep (ContentSequence in ContentSequence ...), then valid pixels.
    ds = nd("deep_sequence", SC)
    set_native(ds, scaled(phantom(32, 32, 47), 0, 255), "MONOCHROME2", 8)
    depth = 1000
    sq_open = struct.pack("<HH", 0x0040, 0xA730) + b"SQ\0\0" + struct.pack("<I", 0xFFFFFFFF)
    item_open = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    item_close = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    sq_close = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    nested = (sq_open + item_open) * depth + (item_close + sq_close) * depth
    add("bad/deep_sequence.dcm", "too-deep", f"ContentSequence nested {depth} deep before valid Pixel Data", insert_before_pixel_data(_bytes(ds), nested))
    return cases


# ----------------------------------------------------------------------------- outputs


def describe(path: Path) -> dict:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return {
        "ts": ds.file_meta.TransferSyntaxUID.name,
        "pi": str(ds.PhotometricInterpretation),
        "bits": f"{ds.BitsStored}/{ds.BitsAllocated}{'s' if ds.PixelRepresentation else 'u'}",
        "frames": int(ds.get("NumberOfFrames") or 1),
    }


# Files shipped in the pydicom 3.0.2 wheel (pydicom/data/test_files/) that are good third-party
# inputs for the Rust tests, for what the generated files do not cover (or cover only with our
# own encoders). Not committed: tests find them with `reference_dicom.py locate NAME`.
PYDICOM_FILES = [
    ("CT_small.dcm", "CT, signed 16-bit, rescale, no window (min-max); pydicom.examples.ct"),
    ("MR_small.dcm", "MR, signed 16-bit, window; pydicom.examples.mr"),
    ("MR_small_implicit.dcm", "same MR, Implicit VR Little Endian"),
    ("MR_small_bigendian.dcm", "same MR, Explicit VR Big Endian"),
    ("MR_small_RLE.dcm", "same MR, RLE Lossless (GDCM's encoder)"),
    ("MR_small_jp2klossless.dcm", "same MR, JPEG 2000 lossless"),
    ("JPEG2000.dcm", "JPEG 2000 lossy, signed 16-bit grey, no window"),
    ("JPGExtended.dcm", "JPEG Extended (process 2/4), 12-bit grey"),
    ("SC_rgb_jpeg_gdcm.dcm", "JPEG Lossless SV1, RGB 8-bit (GDCM)"),
    ("SC_rgb_dcmtk_+eb+cy+s2.dcm", "JPEG baseline, YBR_FULL_422, 4:2:2 chroma (DCMTK)"),
    ("SC_rgb_dcmtk_+eb+cy+np.dcm", "JPEG baseline labelled YBR_FULL_422 whose stream is 4:2:0 (the JPEG header rules)"),
    ("SC_rgb_dcmtk_+eb+cy+s4.dcm", "JPEG baseline, YBR_FULL, 4:4:4 (DCMTK)"),
    ("SC_rgb_dcmtk_+eb+cr.dcm", "JPEG baseline stored as RGB (no colour transform)"),
    ("SC_ybr_full_422_uncompressed.dcm", "native (uncompressed) YBR_FULL_422"),
    ("SC_rgb_rle_16bit.dcm", "RLE Lossless, RGB 16-bit (BitsStored 16)"),
    ("SC_rgb_rle_2frame.dcm", "RLE Lossless, RGB 8-bit, 2 frames"),
    ("SC_rgb_small_odd.dcm", "RGB 8-bit, 3 x 3 (odd sizes, padding byte)"),
    ("ExplVR_BigEnd.dcm", "RGB 8-bit, Explicit VR Big Endian"),
    ("image_dfl.dcm", "Deflated Explicit VR LE, 8-bit grey, 512 x 512"),
    ("examples_palette.dcm", "PALETTE COLOR 8-bit, 16-bit LUTs; pydicom.examples.palette_color"),
    ("examples_rgb_color.dcm", "RGB 8-bit ultrasound; pydicom.examples.rgb_color"),
    ("examples_ybr_color.dcm", "JPEG baseline YBR_FULL_422 (4:2:0 stream), 30 frames; pydicom.examples.ybr_color"),
    ("examples_jpeg2k.dcm", "JPEG 2000 lossless colour, YBR_RCT; pydicom.examples.jpeg2k"),
    ("dicomdirtests/77654033/CR1/6154", "CR MONOCHROME1 12-bit, rescale and window (no extension)"),
]
# Third-party files that must be rejected, and why.
PYDICOM_BAD = [
    ("MR_truncated.dcm", "truncated", "Pixel Data shorter than Rows x Columns x 2 (8130 of 8192 bytes)"),
    ("rtplan.dcm", "no-pixel-data", "RT Plan"),
    ("test-SR.dcm", "no-pixel-data", "Structured Report, many levels of nesting"),
    ("MR_small_jpeg_ls_lossless.dcm", "unsupported-transfer-syntax", "JPEG-LS Lossless (pydicom decodes it; medvec does not)"),
    ("no_meta.dcm", "not-dicom", "CT_small without preamble or file meta: not found by the DICM check"),
]


def table_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def reference_row(path: Path) -> tuple[dict, str, str]:
    import reference_dicom

    d = describe(path)
    ((_i, _n, rgb, mode),) = list(reference_dicom.dicom_frames(path, None, "middle"))
    return d, mode, hashlib.sha256(rgb.tobytes()).hexdigest()


def replace_block(text: str, name: str, lines: list[str]) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text:
        text += f"\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    _old, tail = rest.split(end, 1)
    return head + start + "\n" + "\n".join(lines) + "\n" + end + tail


def write_readme_tables(out: Path, cases: list[Case]) -> None:
    import reference_dicom

    header = "| id | file | what it tests | transfer syntax | photometric | bits stored/alloc | frames | step-5 mode | sha256 of the reference rgb8 (middle frame) |"
    rows = [header, "|---|---|---|---|---|---|---|---|---|"]
    for c in cases:
        if c.expect == "ok":
            d, mode, sha = reference_row(out / c.path)
            rows.append(table_row([c.id, f"`{c.path}`", c.what, d["ts"], d["pi"], d["bits"], str(d["frames"]), mode, f"`{sha}`"]))
    third = [header.replace("| id | file |", "| file |"), "|---|---|---|---|---|---|---|---|"]
    for name, what in PYDICOM_FILES:
        d, mode, sha = reference_row(reference_dicom.locate(name))
        third.append(table_row([f"`{name}`", what, d["ts"], d["pi"], d["bits"], str(d["frames"]), mode, f"`{sha}`"]))
    bad = ["| file | expected reject | why |", "|---|---|---|"]
    bad += [table_row([f"`{name}`", f"`{kind}`", why]) for name, kind, why in PYDICOM_BAD]
    readme = out / "README.md"
    text = readme.read_text() if readme.exists() else "# DICOM fixtures\n"
    text = replace_block(text, "fixture-table", rows)
    text = replace_block(text, "pydicom-table", third)
    text = replace_block(text, "pydicom-bad-table", bad)
    readme.write_text(text)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for p in out.iterdir():  # start clean, keeping the hand-written README
        if p.name != "README.md":
            shutil.rmtree(p) if p.is_dir() else p.unlink()

    good = build_good(out)
    bad = build_bad(out, len(good) + 10)
    cases = good + bad
    with (out / "manifest.csv").open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "path", "expect", "what"])
        for c in cases:
            w.writerow([c.id, c.path, c.expect, c.what])
    write_readme_tables(out, cases)

    files = [p for p in sorted(out.rglob("*")) if p.is_file() and p.name != "README.md"]
    total = sum(p.stat().st_size for p in files)
    big = [f"{p.relative_to(out)} ({p.stat().st_size} B)" for p in files if p.stat().st_size >= 64 * 1024]
    print(f"wrote {len(files)} files, {total} bytes, in {out}; good {len(good)}, bad {len(bad)}", file=sys.stderr)
    if big:
        print("warning: files of 64 KiB or more: " + ", ".join(big), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
