"""``robusthide export-onnx``: write a model's encoder and decoder as ONNX for :mod:`robusthide.onnxrt`."""

from __future__ import annotations

import argparse
import json


def _export(a: argparse.Namespace) -> int:
    from robusthide.onnxrt.export import export_onnx

    m = export_onnx(a.model, a.output, opset=a.opset)
    if a.json:
        print(json.dumps(m))
    else:
        print(f"{m['model']}: {m['n_bits']} bits at {m['size']}x{m['size']} -> {', '.join(m['written'])}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-onnx", help="write the encoder and decoder as ONNX (torch-free runtime: "
                                           "robusthide.onnxrt)")
    p.add_argument("model", nargs="?", default="default", help="zoo name or robusthide .safetensors (default)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(func=_export)
