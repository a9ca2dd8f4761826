#!/usr/bin/env python3
"""Generate the small, committed fixtures of medvec's ONNX encoders (deterministic).

    .venv/bin/python tools/make_onnx_fixtures.py            # fixtures/images/ and fixtures/models/
    .venv/bin/python tools/make_onnx_fixtures.py --bench    # also target/bench-models/vit-b32/ (~350 MB, not committed)

fixtures/images/        a few dozen synthetic images, 8x6 to 120x90, in every format and pixel layout
                        load_image must handle (JPEG baseline/progressive/greyscale/EXIF-rotated, PNG
                        RGB/RGBA/L/LA/palette/16-bit, TIFF 8/16-bit, BMP, WebP lossy/lossless)
fixtures/images/draft/  larger JPEGs (100x80 to 520x512) that Pillow's Image.draft reduces by 1/2, 1/4 or
                        1/8 for the tiny model (the --jpeg-draft parity test)
fixtures/images/bad/    files that must give typed errors: truncated JPEG and PNG, a zero-byte file,
                        text named .png, a PNG header claiming 60000x60000 pixels (decompression bomb)
fixtures/models/tiny-image/          conv(3->8, 3x3, s2) -> ReLU -> conv(8->16, 3x3, s2) -> ReLU -> global
                                     average pool -> linear -> image_embeds [batch, 32]; CLIP-like
                                     preprocessor_config.json (shortest_edge 64, crop 56, bicubic)
fixtures/models/tiny-text/           WordPiece tokenizer.json over a HAM10000-template vocabulary;
                                     (word + token-type embedding) -> linear, masked ->
                                     last_hidden_state [batch, seq, 32]; mean pooling happens in medvec.
                                     max_position_embeddings 32, so long texts are truncated
fixtures/models/tiny-clip/           vision_model.onnx (fixed 3x56x56 input) + text_model.onnx (mean
                                     pooling in the graph -> text_embeds, no token_type_ids input)
fixtures/models/tiny-clip-combined/  model.onnx holding both towers with the same weights (inputs
                                     pixel_values, input_ids, attention_mask; outputs logits_per_image,
                                     text_embeds, image_embeds), as a single-file CLIP export has

Weights are seeded numpy draws. The linear bias of the image towers is set so that the outputs are
centred over the fixture images: without it every image maps to nearly the same direction, and a
cosine >= 0.999 parity test would pass even for a wrong preprocessing.
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_minilm import Graph, attention  # noqa: E402
import reference_encode  # noqa: E402

IMAGES = ROOT / "fixtures" / "images"
MODELS = ROOT / "fixtures" / "models"
BENCH = ROOT / "target" / "bench-models"
SEED = 20240603
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
DIM = 32


# ----------------------------------------------------------------------------- images


def pattern(w: int, h: int, seed: int) -> np.ndarray:
    """An RGB uint8 picture with gradients, blobs, rectangles and noise (asymmetric on purpose)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        a, b = rng.uniform(-1, 1, 2)
        img[..., c] = 128 + 100 * np.sin(a * 6 * x / w + b * 4 * y / h + rng.uniform(0, 6))
    for _ in range(4):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(3, max(4, min(w, h) / 2))
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
    x0, y0 = int(rng.integers(0, w // 2 + 1)), int(rng.integers(0, h // 2 + 1))
    img[y0 : y0 + h // 3, x0 : x0 + w // 4] = rng.uniform(0, 255, 3)
    img[: max(1, h // 8), : max(1, w // 8)] = (255, 0, 0)  # a marker corner: makes rotations visible
    img += rng.normal(0, 12, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, bit_depth: int, color_type: int, raw_rows: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(raw_rows, 9))
        + png_chunk(b"IEND", b"")
    )


def write_png_rgb16(path: Path, a16: np.ndarray) -> None:
    """Pillow cannot write 16-bit RGB PNGs, so write one by hand (filter 0 on every row)."""
    h, w, _ = a16.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in a16)
    path.write_bytes(png_bytes(w, h, 16, 2, raw))


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def save(im: Image.Image, name: str, **kw) -> None:
    im.save(IMAGES / name, **kw)


def good_images() -> None:
    rgb = lambda w, h, s: Image.fromarray(pattern(w, h, s), "RGB")  # noqa: E731
    save(rgb(80, 60, 1), "rgb_80x60.jpg", quality=90)
    save(rgb(120, 90, 2), "rgb_noise_120x90.jpg", quality=75)
    save(rgb(64, 48, 3).convert("L"), "gray_64x48.jpg", quality=90)
    save(rgb(96, 72, 4), "progressive_96x72.jpg", quality=85, progressive=True)
    save(rgb(30, 90, 5), "tall_30x90.jpg", quality=92)
    save(rgb(40, 30, 6), "exif_orient6_40x30.jpg", quality=95, exif=exif_bytes(6))
    save(rgb(60, 40, 7), "exif_orient8_60x40.jpg", quality=95, exif=exif_bytes(8))
    save(rgb(48, 36, 8), "exif_orient3_48x36.png", exif=exif_bytes(3))
    save(rgb(100, 75, 9), "rgb_100x75.png")
    rgba = np.dstack([pattern(60, 80, 10), np.linspace(0, 255, 60 * 80).reshape(80, 60).astype(np.uint8)])
    save(Image.fromarray(rgba, "RGBA"), "rgba_60x80.png")
    save(rgb(45, 40, 11).convert("L"), "gray_45x40.png")
    save(rgb(50, 50, 12).convert("LA"), "gray_alpha_50x50.png")
    save(rgb(70, 50, 13).quantize(colors=32, method=Image.Quantize.MEDIANCUT), "palette_70x50.png")
    pal = rgb(56, 42, 14).quantize(colors=16, method=Image.Quantize.MEDIANCUT)
    save(pal, "palette_trns_56x42.png", transparency=0)
    # 16-bit RGB: samples are 257 * v8, the one layout where Pillow's (truncating) and medvec's
    # (rounding) 16 -> 8-bit conversions agree, since Pillow can only read this file as 8-bit RGB.
    write_png_rgb16(IMAGES / "rgb16_64x48.png", pattern(64, 48, 15).astype(np.uint16) * 257)
    g16 = pattern(56, 72, 16)[..., 0].astype(np.uint16) * 257 + np.random.default_rng(16).integers(0, 257, (72, 56)).astype(np.uint16)
    save(Image.fromarray(g16), "gray16_56x72.png")
    save(rgb(80, 60, 17), "rgb_80x60.tif")
    save(rgb(72, 54, 18), "rgb_lzw_72x54.tif", compression="tiff_lzw")
    g16t = pattern(60, 45, 19)[..., 1].astype(np.uint16) * 250
    save(Image.fromarray(g16t), "gray16_60x45.tif")
    save(rgb(90, 60, 20), "rgb_90x60.bmp")
    save(rgb(64, 40, 21).quantize(colors=64, method=Image.Quantize.MEDIANCUT), "palette_64x40.bmp")
    save(rgb(80, 60, 22), "lossy_80x60.webp", quality=80)
    wa = np.dstack([pattern(60, 60, 23), np.full((60, 60), 200, np.uint8)])
    save(Image.fromarray(wa, "RGBA"), "lossless_rgba_60x60.webp", lossless=True)
    save(rgb(120, 20, 24), "wide_120x20.png")
    save(rgb(64, 64, 25), "square_64x64.png")
    save(rgb(8, 6, 26), "tiny_8x6.png")


def draft_images() -> None:
    """JPEGs large enough for the tiny model's draft request (64, 64) to reduce them: one per
    reduction (1/2, 1/4, 1/8) and layout (4:2:0, 4:2:2, 4:4:4, progressive, greyscale, EXIF
    orientation 6, odd sizes), one too small to reduce, and a PNG (never reduced)."""
    d = IMAGES / "draft"
    d.mkdir(parents=True, exist_ok=True)
    rgb = lambda w, h, s: Image.fromarray(pattern(w, h, s), "RGB")  # noqa: E731
    rgb(520, 390, 40).save(d / "photo_520x390.jpg", quality=85)  # 1/4
    rgb(520, 512, 41).save(d / "photo444_520x512.jpg", quality=70, subsampling=0)  # 1/8
    rgb(257, 131, 42).save(d / "photo422_257x131.jpg", quality=85, subsampling=1)  # 1/2
    rgb(200, 150, 43).save(d / "progressive_200x150.jpg", quality=85, progressive=True)  # 1/2
    rgb(333, 257, 44).convert("L").save(d / "gray_333x257.jpg", quality=85)  # 1/4
    rgb(300, 260, 45).save(d / "exif_orient6_300x260.jpg", quality=85, exif=exif_bytes(6))  # 1/4
    rgb(100, 80, 46).save(d / "small_100x80.jpg", quality=85)  # 1/1
    rgb(150, 130, 47).save(d / "not_jpeg_150x130.png")  # full size (a JPEG would be 1/2)


def bad_images() -> None:
    bad = IMAGES / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(pattern(80, 60, 30), "RGB").save(buf, "JPEG", quality=90)
    (bad / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    buf = io.BytesIO()
    Image.fromarray(pattern(80, 60, 31), "RGB").save(buf, "PNG")
    (bad / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) * 2 // 3])
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "not_an_image.png").write_text("Patient diagnosed via histo. This is a text file, not a PNG.\n")
    # A valid PNG header for 60000 x 60000 RGB (10.8 GB decoded) with a few bytes of data.
    (bad / "bomb_60000x60000.png").write_bytes(png_bytes(60000, 60000, 8, 2, b"\x00" * 64))


def good_image_paths() -> list[Path]:
    return sorted(p for p in IMAGES.iterdir() if p.is_file() and p.suffix != ".md")


# ----------------------------------------------------------------------------- models


def value_info(name: str, elem: int, shape: list):
    from onnx import helper

    return helper.make_tensor_value_info(name, elem, shape)


def vision_tower(g: Graph, rng: np.random.Generator, pixels: str, out: str) -> dict:
    """conv -> relu -> conv -> relu -> GAP -> linear; returns the weights (bias filled in later)."""
    w1 = (rng.standard_normal((8, 3, 3, 3)) * np.sqrt(2 / 27)).astype(np.float32)
    w2 = (rng.standard_normal((16, 8, 3, 3)) * np.sqrt(2 / 72)).astype(np.float32)
    wl = (rng.standard_normal((DIM, 16)) / 4).astype(np.float32)
    h = g.op("Relu", [g.op("Conv", [pixels, g.const(w1, "conv1_w")], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])])
    h = g.op("Relu", [g.op("Conv", [h, g.const(w2, "conv2_w")], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])])
    feat = g.op("Flatten", [g.op("GlobalAveragePool", [h])], axis=1, out=g.prefix + "features")
    bias_name = g.name("proj_b")
    g.op("Add", [g.op("MatMul", [feat, g.const(np.ascontiguousarray(wl.T), "proj_w")]), bias_name], out=out)
    return {"w1": w1, "w2": w2, "wl": wl, "bias_name": bias_name}


def set_bias(g: Graph, name: str, bias: np.ndarray) -> None:
    from onnx import numpy_helper

    g.inits.append(numpy_helper.from_array(bias.astype(np.float32), name))


def centring_bias(weights: dict, size: int) -> np.ndarray:
    """-W @ mean(features) over the good fixture images, so the outputs are centred."""
    from onnx import TensorProto

    probe = Graph()  # the tower up to the pooled features
    h = probe.op("Relu", [probe.op("Conv", ["pixel_values", probe.const(weights["w1"])], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])])
    h = probe.op("Relu", [probe.op("Conv", [h, probe.const(weights["w2"])], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])])
    probe.op("Flatten", [probe.op("GlobalAveragePool", [h])], axis=1, out="features")
    m = probe.model(
        [value_info("pixel_values", TensorProto.FLOAT, ["b", 3, "h", "w"])], [value_info("features", TensorProto.FLOAT, ["b", 16])], "probe"
    )
    import onnxruntime as ort

    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    cfg = preprocessor_config(size)
    feats = []
    for p in good_image_paths():
        x = reference_encode.preprocess(reference_encode.load_rgb(p), cfg)
        feats.append(sess.run(["features"], {"pixel_values": x[None]})[0][0])
    return -(weights["wl"] @ np.mean(feats, axis=0))


def preprocessor_config(size: int) -> dict:
    return {
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": 64},
        "resample": 3,
        "do_center_crop": True,
        "crop_size": {"height": size, "width": size},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": CLIP_MEAN,
        "image_std": CLIP_STD,
        "do_convert_rgb": True,
    }


def write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def save_model(model, path: Path) -> None:
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def image_model(seed: int, fixed: bool, out: str = "image_embeds"):
    from onnx import TensorProto

    g = Graph()
    w = vision_tower(g, np.random.default_rng(seed), "pixel_values", out)
    set_bias(g, w["bias_name"], centring_bias(w, 56))
    shape = ["batch", 3, 56, 56] if fixed else ["batch", 3, "height", "width"]
    return g.model([value_info("pixel_values", TensorProto.FLOAT, shape)], [value_info(out, TensorProto.FLOAT, ["batch", DIM])], "tiny_image")


def vocabulary() -> list[str]:
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    punct = list(".,:;-_()/'\"!?")
    digits = [str(d) for d in range(10)] + [f"##{d}" for d in range(10)]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [f"##{chr(c)}" for c in range(ord("a"), ord("z") + 1)]
    words = """patient diagnosed via histo follow up consensus confocal age years sex male female unknown
        localization no data reported abdomen acral back chest ear face foot genital hand lower extremity
        neck scalp trunk upper an image from the of a with eye left right lesion skin melanoma nevus
        ##s ##ed ##ing ##ly""".split()
    # dict.fromkeys: drop repeats ("a" is a letter and a word) so ids stay 0..len-1.
    return list(dict.fromkeys(special + punct + digits + letters + words))


def tokenizer_json(path: Path) -> int:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = {t: i for i, t in enumerate(vocabulary())}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tok.decoder = decoders.WordPiece()
    tok.save(str(path))
    return len(vocab)


def text_model(vocab: int, seed: int):
    """(word + token type embeddings) @ W + b, zeroed on padding -> last_hidden_state."""
    from onnx import TensorProto

    rng = np.random.default_rng(seed)
    g = Graph()
    emb = g.op("Gather", [g.const(rng.standard_normal((vocab, DIM)).astype(np.float32), "word_emb"), "input_ids"], axis=0)
    emb = g.op("Add", [emb, g.op("Gather", [g.const(rng.standard_normal((2, DIM)).astype(np.float32) * 0.5, "type_emb"), "token_type_ids"], axis=0)])
    h = g.linear(emb, (rng.standard_normal((DIM, DIM)) / np.sqrt(DIM)).astype(np.float32), rng.standard_normal(DIM).astype(np.float32) * 0.1, "proj")
    mask = g.op("Unsqueeze", [g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT), g.const(np.array([2], np.int64))])
    g.op("Mul", [h, mask], out="last_hidden_state")
    ids = lambda n: value_info(n, TensorProto.INT64, ["batch", "sequence"])  # noqa: E731
    out = value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", DIM])
    return g.model([ids("input_ids"), ids("attention_mask"), ids("token_type_ids")], [out], "tiny_text")


def text_tower(g: Graph, rng: np.random.Generator, vocab: int, out: str) -> None:
    """Mean of word embeddings over the attention mask -> linear -> out, all in the graph."""
    from onnx import TensorProto

    emb = g.op("Gather", [g.const(rng.standard_normal((vocab, DIM)).astype(np.float32), "word_emb"), "input_ids"], axis=0)
    mask = g.op("Unsqueeze", [g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT), g.const(np.array([2], np.int64))])
    total = g.op("ReduceSum", [g.op("Mul", [emb, mask]), g.const(np.array([1], np.int64))], keepdims=0)
    count = g.op("ReduceSum", [mask, g.const(np.array([1], np.int64))], keepdims=0)
    pooled = g.op("Div", [total, g.op("Max", [count, g.const(np.float32(1e-9))])])
    w = (rng.standard_normal((DIM, DIM)) / np.sqrt(DIM)).astype(np.float32)
    g.op("Add", [g.op("MatMul", [pooled, g.const(np.ascontiguousarray(w.T), "proj_w")]), g.const(rng.standard_normal(DIM).astype(np.float32) * 0.1, "proj_b")], out=out)


def clip_models(vocab: int, seed: int):
    """(vision_model, text_model, combined model) with shared weights."""
    from onnx import TensorProto

    def towers(g: Graph, vision: bool, text: bool):
        rv, rt = np.random.default_rng(seed), np.random.default_rng(seed + 1)
        if vision:
            w = vision_tower(g, rv, "pixel_values", "image_embeds")
            set_bias(g, w["bias_name"], centring_bias(w, 56))
        if text:
            text_tower(g, rt, vocab, "text_embeds")

    pix = value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, 56, 56])
    ids = [value_info(n, TensorProto.INT64, ["text_batch", "sequence"]) for n in ("input_ids", "attention_mask")]
    img_out = value_info("image_embeds", TensorProto.FLOAT, ["batch", DIM])
    txt_out = value_info("text_embeds", TensorProto.FLOAT, ["text_batch", DIM])
    gv, gt, gc = Graph(), Graph(), Graph()
    towers(gv, True, False)
    towers(gt, False, True)
    towers(gc, True, True)
    # logits_per_image = normalize(image) @ normalize(text).T, as CLIPModel returns (scale 1 here).
    norm = lambda t: gc.op("LpNormalization", [t], axis=-1, p=2)  # noqa: E731
    gc.op("MatMul", [norm("image_embeds"), gc.op("Transpose", [norm("text_embeds")], perm=[1, 0])], out="logits_per_image")
    logits = value_info("logits_per_image", TensorProto.FLOAT, ["batch", "text_batch"])
    return (
        gv.model([pix], [img_out], "tiny_clip_vision"),
        gt.model(ids, [txt_out], "tiny_clip_text"),
        gc.model([pix] + ids, [logits, txt_out, img_out], "tiny_clip"),
    )


def text_files(folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    vocab = tokenizer_json(folder / "tokenizer.json")
    write_json(folder / "tokenizer_config.json", {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512, "pad_token": "[PAD]"})
    return vocab


def models() -> None:
    d = MODELS / "tiny-image"
    save_model(image_model(SEED, fixed=False), d / "model.onnx")
    write_json(d / "preprocessor_config.json", preprocessor_config(56))
    write_json(d / "config.json", {"model_type": "medvec-tiny-image", "hidden_size": DIM, "image_size": 56})

    d = MODELS / "tiny-text"
    vocab = text_files(d)
    save_model(text_model(vocab, SEED + 10), d / "model.onnx")
    write_json(d / "config.json", {"model_type": "bert", "hidden_size": DIM, "max_position_embeddings": 32, "vocab_size": vocab, "type_vocab_size": 2})

    vision, text, combined = clip_models(vocab, SEED + 20)
    clip_cfg = {"model_type": "clip", "projection_dim": DIM, "text_config": {"max_position_embeddings": 16, "vocab_size": vocab}, "vision_config": {"image_size": 56}}
    for name, files in (("tiny-clip", {"vision_model.onnx": vision, "text_model.onnx": text}), ("tiny-clip-combined", {"model.onnx": combined})):
        d = MODELS / name
        text_files(d)
        for f, m in files.items():
            save_model(m, d / f)
        write_json(d / "preprocessor_config.json", preprocessor_config(56))
        write_json(d / "config.json", clip_cfg)


# ----------------------------------------------------------------------------- ViT-B/32 for benchmarks


def vit_b32(seed: int):
    """A CLIP ViT-B/32 vision tower with random weights: 224x224 -> 7x7 patches + CLS, 12 pre-LN
    layers of width 768 (12 heads, MLP 3072, quick GELU), post-LN on CLS, projection to 512."""
    from onnx import TensorProto

    rng = np.random.default_rng(seed)
    r = lambda *s: (rng.standard_normal(s, dtype=np.float32) * 0.02)  # noqa: E731
    D, L, H, F = 768, 12, 12, 3072
    g = Graph()
    patches = g.op("Conv", ["pixel_values", g.const(r(D, 3, 32, 32), "patch_w")], kernel_shape=[32, 32], strides=[32, 32])
    tokens = g.op("Transpose", [g.op("Reshape", [patches, g.const(np.array([0, D, -1], np.int64))])], perm=[0, 2, 1])
    batch = g.op("Slice", [g.op("Shape", ["pixel_values"]), g.const(np.array([0], np.int64)), g.const(np.array([1], np.int64))])
    cls_shape = g.op("Concat", [batch, g.const(np.array([1, D], np.int64))], axis=0)
    cls = g.op("Expand", [g.const(r(1, 1, D), "cls"), cls_shape])
    x = g.op("Add", [g.op("Concat", [cls, tokens], axis=1), g.const(r(1, 50, D), "pos")])
    ones, zeros = np.ones(D, np.float32), np.zeros(D, np.float32)
    x = g.layer_norm(x, ones, zeros, 1e-5, "ln_pre")
    for i in range(L):
        h = g.layer_norm(x, ones, zeros, 1e-5, f"l{i}_ln1")
        qkvo = [(r(D, D), zeros) for _ in range(4)]
        x = g.op("Add", [x, attention(g, h, *qkvo, H, D, None, f"l{i}")])
        h = g.layer_norm(x, ones, zeros, 1e-5, f"l{i}_ln2")
        h = g.linear(g.quick_gelu(g.linear(h, r(F, D), np.zeros(F, np.float32), f"l{i}_fc1")), r(D, F), zeros, f"l{i}_fc2")
        x = g.op("Add", [x, h])
    pooled = g.layer_norm(g.op("Gather", [x, g.const(np.array(0, np.int64))], axis=1), ones, zeros, 1e-5, "ln_post")
    g.linear(pooled, r(512, D), None, "proj")
    g.op("Identity", [g.nodes[-1].output[0]], out="image_embeds")
    pix = value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, 224, 224])
    return g.model([pix], [value_info("image_embeds", TensorProto.FLOAT, ["batch", 512])], "vit_b32_random")


def bench_models() -> Path:
    d = BENCH / "vit-b32"
    save_model(vit_b32(SEED + 100), d / "vision_model.onnx")
    cfg = preprocessor_config(224) | {"size": {"shortest_edge": 224}}
    write_json(d / "preprocessor_config.json", cfg)
    write_json(d / "config.json", {"model_type": "clip_vision_model", "hidden_size": 768, "projection_dim": 512, "image_size": 224, "patch_size": 32})
    return d


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", action="store_true", help="also write target/bench-models/vit-b32 (~350 MB)")
    p.add_argument("--bench-only", action="store_true", help="only write the benchmark model")
    p.add_argument("--wide-image", metavar="DIR", help="only write the tiny image model with 512-d output to DIR (the 1M-row memory test)")
    args = p.parse_args(argv)
    if args.wide_image:
        global DIM
        DIM = 512
        d = Path(args.wide_image)
        save_model(image_model(SEED, fixed=False), d / "model.onnx")
        write_json(d / "preprocessor_config.json", preprocessor_config(56))
        write_json(d / "config.json", {"model_type": "medvec-tiny-image", "hidden_size": DIM, "image_size": 56})
        return 0
    if not args.bench_only:
        IMAGES.mkdir(parents=True, exist_ok=True)
        good_images()
        draft_images()
        bad_images()
        models()
        total = sum(f.stat().st_size for base in (IMAGES, MODELS) for f in base.rglob("*") if f.is_file())
        print(f"make_onnx_fixtures: wrote {len(good_image_paths())} good images, fixtures total {total / 1024:.0f} KiB")
    if args.bench or args.bench_only:
        print(f"make_onnx_fixtures: wrote {bench_models()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
