#!/usr/bin/env python3
"""Quantise an ONNX encoder folder to int8 with onnxruntime's dynamic quantiser.

    quantize_model.py MODEL_DIR [--file onnx/model.onnx] [--out onnx/model_quantized.onnx]

Writes the int8 model beside the original, where Optimum puts its quantised exports
(`onnx/model_quantized.onnx` by default), so the folder's configs (preprocessor_config.json,
tokenizer.json) serve both. Use it with `medvec ingest --image-model MODEL_DIR
--image-model-file onnx/model_quantized.onnx` (or `--text-model-file`); the choice is recorded
with the collection's model like any other, so queries are encoded with the same file.

Dynamic quantisation (`onnxruntime.quantization.quantize_dynamic`, weights QInt8, activations
quantised per batch at run time) needs no calibration data, so it runs on the model alone. The
vectors change: measure the cosine to the fp32 vectors on your own images before switching a
collection (`medvec embed` with and without `--model-file`). Prints one JSON line: the input and
output files and their sizes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from onnxruntime.quantization import QuantType, quantize_dynamic

DEFAULT_NAMES = ("vision_model.onnx", "text_model.onnx", "model.onnx")


def find_input(folder: Path, name: str | None) -> Path:
    if name:
        return folder / name
    for sub in ("", "onnx"):
        for n in DEFAULT_NAMES:
            p = folder / sub / n
            if p.is_file():
                return p
    sys.exit(f"{folder}: no ONNX model (looked for {', '.join(DEFAULT_NAMES)} here and in onnx/)")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--file", help="the fp32 .onnx file, relative to MODEL_DIR (default: as medvec picks it)")
    ap.add_argument("--out", default="onnx/model_quantized.onnx", help="output, relative to MODEL_DIR")
    args = ap.parse_args(argv)
    src = find_input(args.model_dir, args.file)
    if not src.is_file():
        sys.exit(f"{src}: no such file")
    dst = args.model_dir / args.out
    dst.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    print(json.dumps({"input": str(src), "input_bytes": src.stat().st_size, "output": str(dst), "output_bytes": dst.stat().st_size}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
