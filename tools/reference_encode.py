#!/usr/bin/env python3
"""Independent reference for medvec's ONNX encoders: Pillow + numpy + onnxruntime + tokenizers.

It does what a user's notebook does (the Hugging Face CLIPImageProcessor semantics, written out
with Pillow and numpy so that transformers is not needed), and prints JSON on stdout.

    reference_encode.py image MODEL_DIR FILE... [--pixels] [--pixels-only] [--jpeg-draft]
        {"dim": D, "results": [{"file", "width", "height", "vector", "pixel_values"?} | {"file", "error"}]}
        width/height: the image after EXIF orientation, before resizing.
        --jpeg-draft calls im.draft("RGB", draft_request(cfg)) right after Image.open (medvec's
        --jpeg-draft): libjpeg decodes JPEGs at 1/2, 1/4 or 1/8; other formats ignore it.
        --pixels adds the preprocessed CHW float32 tensor; --pixels-only skips the model (only
        preprocessor_config.json is needed in MODEL_DIR).
    reference_encode.py text MODEL_DIR [--tokens-only] [--max-length N] < texts.json
        stdin: a JSON list of strings.
        {"max_length", "input_ids", "attention_mask", "token_type_ids", "vectors"?}
    reference_encode.py bert-numpy WEIGHTS_DIR < texts.json
        A pure-numpy BERT forward pass from model.safetensors (no ONNX at all), one text at a time
        (no padding), mean pooling, L2 normalisation: {"input_ids" (unpadded), "vectors"}.

Image pipeline: Image.open; [im.draft("RGB", draft_request(cfg)) with --jpeg-draft;]
ImageOps.exif_transpose; to 8-bit RGB (16-bit samples are scaled by
round(v / 257), because Pillow's own convert("RGB") clips 16-bit greyscale at 255); resize the
shortest edge to size.shortest_edge (the long edge is int(short * long / short_in)) or to
size.height x size.width, with Image.resize(resample=...); center crop with top = (h - ch) // 2
and left = (w - cw) // 2, zero-padded when the image is smaller (transformers' center_crop);
* rescale_factor; (x - mean) / std; HWC -> CHW.

Text pipeline: tokenizers.Tokenizer.from_file(tokenizer.json), truncation to the model's max
length, padding to the longest text with the pad token (tokenizer_config.json pad_token, else the
tokenizer.json padding token, else [PAD]); max length = sentence_bert_config.json max_seq_length,
else min(tokenizer_config.json model_max_length (ignored when >= 1e6, transformers' "no limit"),
config.json max_position_embeddings (or text_config.max_position_embeddings)), else 512; never
more than the position embeddings.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

PIL_FILTERS = {0: "NEAREST", 1: "LANCZOS", 2: "BILINEAR", 3: "BICUBIC", 4: "BOX", 5: "HAMMING"}


# ----------------------------------------------------------------------------- images


def find_file(folder: Path, names: list[str]) -> Path | None:
    for sub in ("", "onnx"):
        for n in names:
            p = folder / sub / n
            if p.is_file():
                return p
    return None


def draft_request(cfg: dict) -> tuple[int, int] | None:
    """The size passed to Image.draft for a model: square, since draft runs before the EXIF
    rotation; the shortest edge of a shortest-edge resize, the larger side of an exact one, and
    None (no draft) without a resize. Mirrors ImagePreprocessor::draft_request."""
    if not cfg.get("do_resize", True):
        return None
    square = not cfg.get("do_center_crop", False) and "CLIP" not in cfg.get("image_processor_type", "")
    size = size_dict(cfg["size"], square)
    side = size["shortest_edge"] if "shortest_edge" in size else max(size["height"], size["width"])
    return (side, side)


def load_rgb(path: Path, draft: tuple[int, int] | None = None):
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        if draft is not None:
            im.draft("RGB", draft)  # a no-op for formats other than JPEG
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            a = np.asarray(im).astype(np.int64)
            a = np.clip((a + 128) // 257, 0, 255).astype(np.uint8)
            return Image.fromarray(a, "L").convert("RGB")
        return im.convert("RGB")


def size_dict(value, default_to_square: bool) -> dict:
    if isinstance(value, int):
        return {"height": value, "width": value} if default_to_square else {"shortest_edge": value}
    return value


def center_crop(a: np.ndarray, ch: int, cw: int) -> np.ndarray:
    """transformers.image_transforms.center_crop: floor-centred, zero padding when too small."""
    h, w = a.shape[:2]
    top, left = (h - ch) // 2, (w - cw) // 2
    if top >= 0 and left >= 0:
        return a[top : top + ch, left : left + cw]
    nh, nw = max(ch, h), max(cw, w)
    padded = np.zeros((nh, nw) + a.shape[2:], a.dtype)
    tp, lp = math.ceil((nh - h) / 2), math.ceil((nw - w) / 2)
    padded[tp : tp + h, lp : lp + w] = a
    top, left = top + tp, left + lp
    return padded[max(0, top) : min(nh, top + ch), max(0, left) : min(nw, left + cw)]


def preprocess(im, cfg: dict) -> np.ndarray:
    from PIL import Image

    if cfg.get("do_resize", True):
        square = not cfg.get("do_center_crop", False) and "CLIP" not in cfg.get("image_processor_type", "")
        size = size_dict(cfg["size"], square)
        w, h = im.size
        if "shortest_edge" in size:
            short, long = (w, h) if w <= h else (h, w)
            s = size["shortest_edge"]
            new_short, new_long = s, int(s * long / short)
            nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)
        else:
            nw, nh = size["width"], size["height"]
        resample = getattr(Image.Resampling, PIL_FILTERS[cfg.get("resample", 3)])
        im = im.resize((nw, nh), resample=resample)
    a = np.asarray(im, dtype=np.uint8)
    if cfg.get("do_center_crop", False):
        crop = cfg["crop_size"]
        ch, cw = (crop, crop) if isinstance(crop, int) else (crop["height"], crop["width"])
        a = center_crop(a, ch, cw)
    x = a.astype(np.float32)
    if cfg.get("do_rescale", True):
        x = x * np.float32(cfg.get("rescale_factor", 1 / 255))
    if cfg.get("do_normalize", True):
        x = (x - np.asarray(cfg["image_mean"], np.float32)) / np.asarray(cfg["image_std"], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def session(path: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def dummy_feed(sess, skip: set[str]) -> dict:
    """Inputs of a combined CLIP graph that the other modality needs: one minimal dummy row."""
    feed = {}
    for i in sess.get_inputs():
        if i.name in skip:
            continue
        if i.type == "tensor(float)":
            dims = [d if isinstance(d, int) else 1 for d in i.shape]
            if len(dims) == 4 and not all(isinstance(d, int) for d in i.shape[2:]):
                dims[2:] = [224, 224]
            feed[i.name] = np.zeros(dims, np.float32)
        else:
            feed[i.name] = np.ones((1, 1), np.int64)
    return feed


def l2n(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def pick_output(sess, preferred: list[str]) -> str:
    names = [o.name for o in sess.get_outputs()]
    for p in preferred:
        if p in names:
            return p
    return names[0]


def cmd_image(argv: list[str]) -> dict:
    want_pixels = "--pixels" in argv or "--pixels-only" in argv
    want_draft = "--jpeg-draft" in argv
    pixels_only = "--pixels-only" in argv
    args = [a for a in argv if not a.startswith("--")]
    folder, files = Path(args[0]), [Path(a) for a in args[1:]]
    cfg = json.loads(find_file(folder, ["preprocessor_config.json"]).read_text())
    sess = None if pixels_only else session(find_file(folder, ["vision_model.onnx", "model.onnx"]))
    draft = draft_request(cfg) if want_draft else None
    results = []
    dim = None
    for f in files:
        try:
            im = load_rgb(f, draft)
            x = preprocess(im, cfg)
        except Exception as e:  # noqa: BLE001 - reported per file, like a notebook loop would
            results.append({"file": str(f), "error": f"{type(e).__name__}: {e}"})
            continue
        r = {"file": str(f), "width": im.size[0], "height": im.size[1]}
        if want_pixels:
            r["pixel_values"] = x.ravel().tolist()
        if sess is not None:
            pix = next(i.name for i in sess.get_inputs() if i.type == "tensor(float)")
            feed = {pix: x[None]} | dummy_feed(sess, {pix})
            out = pick_output(sess, ["image_embeds", "pooler_output"])
            y = sess.run([out], feed)[0]
            y = y[:, 0] if y.ndim == 3 else y  # CLS token of a last_hidden_state
            v = l2n(y.astype(np.float64))[0]
            r["vector"] = v.tolist()
            dim = len(v)
        results.append(r)
    return {"dim": dim, "results": results}


# ----------------------------------------------------------------------------- text


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def max_length(folder: Path) -> int:
    cfg = read_json(folder / "config.json")
    positions = cfg.get("max_position_embeddings") or cfg.get("text_config", {}).get("max_position_embeddings")
    st = read_json(folder / "sentence_bert_config.json").get("max_seq_length")
    if st:
        n = int(st)
    else:
        mml = read_json(folder / "tokenizer_config.json").get("model_max_length")
        mml = mml if mml is not None and 1 <= mml < 1_000_000 else None  # 1e30 means "no limit"
        cands = [int(c) for c in (mml, positions) if c]
        n = min(cands) if cands else 512
    return min(n, int(positions)) if positions else n


def tokenizer_for(folder: Path, max_len: int):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    file_padding = tok.padding
    tok.no_padding()
    tok.enable_truncation(max_length=max_len)
    pad = read_json(folder / "tokenizer_config.json").get("pad_token")
    if isinstance(pad, dict):
        pad = pad.get("content")
    pad = pad or (file_padding or {}).get("pad_token") or "[PAD]"
    pad_id = tok.token_to_id(pad)
    if pad_id is None:
        pad_id = 0
    tok.enable_padding(pad_id=pad_id, pad_token=pad)
    return tok


def tokenize(folder: Path, texts: list[str], max_len: int):
    enc = tokenizer_for(folder, max_len).encode_batch(texts)
    ids = np.array([e.ids for e in enc], np.int64)
    mask = np.array([e.attention_mask for e in enc], np.int64)
    types = np.array([e.type_ids for e in enc], np.int64)
    return ids, mask, types


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None].astype(np.float64)
    return (hidden.astype(np.float64) * m).sum(1) / np.maximum(m.sum(1), 1e-9)


def cmd_text(argv: list[str], texts: list[str]) -> dict:
    args = [a for a in argv if not a.startswith("--")]
    folder = Path(args[0])
    n = max_length(folder)
    if "--max-length" in argv:
        n = int(argv[argv.index("--max-length") + 1])
    ids, mask, types = tokenize(folder, texts, n)
    out = {"max_length": n, "input_ids": ids.tolist(), "attention_mask": mask.tolist(), "token_type_ids": types.tolist()}
    if "--tokens-only" in argv:
        return out
    sess = session(find_file(folder, ["text_model.onnx", "model.onnx"]))
    given = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    names = {i.name for i in sess.get_inputs()}
    feed = {k: v for k, v in given.items() if k in names} | dummy_feed(sess, set(given))
    name = pick_output(sess, ["text_embeds", "sentence_embedding", "last_hidden_state"])
    y = sess.run([name], feed)[0]
    y = mean_pool(y, mask) if y.ndim == 3 else y.astype(np.float64)
    out["vectors"] = l2n(y).tolist()
    return out


# ----------------------------------------------------------------------------- numpy BERT


def layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def gelu(x):
    try:
        from scipy.special import erf  # scipy comes with scikit-learn in tools/requirements.txt
    except ImportError:
        erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def bert_numpy(W: dict, cfg: dict, ids, mask, types) -> np.ndarray:
    """Hugging Face BertModel.forward in float64 numpy: last_hidden_state. W: float64 weights."""
    eps, heads = cfg.get("layer_norm_eps", 1e-12), cfg["num_attention_heads"]
    B, T = ids.shape
    x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][np.arange(T)][None]
    x = x + W["embeddings.token_type_embeddings.weight"][types]
    x = layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], eps)
    add = (1.0 - mask[:, None, None, :]) * -10000.0
    D = x.shape[-1]
    dh = D // heads
    lin = lambda x, p: x @ W[p + ".weight"].T + W[p + ".bias"]  # noqa: E731
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        split = lambda t: t.reshape(B, T, heads, dh).transpose(0, 2, 1, 3)  # noqa: E731
        q, k, v = (split(lin(x, p + f"attention.self.{n}")) for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh) + add
        s = np.exp(s - s.max(-1, keepdims=True))
        ctx = (s / s.sum(-1, keepdims=True)) @ v
        ctx = ctx.transpose(0, 2, 1, 3).reshape(B, T, D)
        a = lin(ctx, p + "attention.output.dense")
        x = layer_norm(a + x, W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"], eps)
        h = lin(gelu(lin(x, p + "intermediate.dense")), p + "output.dense")
        x = layer_norm(h + x, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], eps)
    return x


def cmd_bert_numpy(argv: list[str], texts: list[str]) -> dict:
    from safetensors.numpy import load_file

    folder = Path(argv[0])
    w = load_file(str(folder / "model.safetensors"))
    W = {k.removeprefix("bert."): v.astype(np.float64) for k, v in w.items() if v.dtype.kind == "f"}
    cfg = json.loads((folder / "config.json").read_text())
    tok = tokenizer_for(folder, max_length(folder))
    ids_out, vectors = [], []
    # One text at a time: no padding at all, so the reference does not depend on masking
    # (and short texts do not pay for the long one's 256 tokens).
    for text in texts:
        e = tok.encode(text)
        ids, mask, types = (np.array([x], np.int64) for x in (e.ids, e.attention_mask, e.type_ids))
        hidden = bert_numpy(W, cfg, ids, mask, types)
        ids_out.append(ids[0].tolist())
        vectors.append(l2n(mean_pool(hidden, mask))[0].tolist())
    return {"input_ids": ids_out, "vectors": vectors}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("image", "text", "bert-numpy"):
        print(__doc__, file=sys.stderr)
        return 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "image":
        out = cmd_image(rest)
    else:
        texts = json.load(sys.stdin)
        out = cmd_text(rest, texts) if cmd == "text" else cmd_bert_numpy(rest, texts)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
