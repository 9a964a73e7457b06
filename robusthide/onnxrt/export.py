"""Export a watermarking model's networks to ONNX (needs torch; the runtime in :mod:`robusthide.onnxrt` does not).

What is exported is the network's part of the fast path (``refine=0``): :meth:`WatermarkModel.small_residual`
and :meth:`WatermarkModel.cap`, pure functions of tensors at the working size S:

* ``encoder.onnx``: ``(small N x 3 x S x S in [0, 1], bits N x L in {0, 1})`` ->
  ``(residual N x 1 x S x S, cap N x 1 x S x S)``: the encoder output times the perceptual mask and the
  amplitude, and the per-pixel cap of :meth:`PerceptualMask.cap` (+inf where the model has no cap);
* ``decoder.onnx``: ``small N x 3 x S x S`` -> bit logits ``N x L``.

The rest -- the antialiased resize to S x S (Pillow), the clamp to ``cap / strength``
(:func:`robusthide.watermark.refine.at_strength`), the bilinear upsampling to the full size, the addition at
``strength`` and the 8-bit rounding -- is the embed path, which :mod:`robusthide.onnxrt.runtime` runs in numpy
as :meth:`Watermarker._embed_uint8` does in torch.
A manifest ``robusthide-onnx.json`` names the files, the payload size, the working size, the model's default
schema and the SHA-256 of the tensors of the weights file exported (the default model's ONNX folder ships in
the zoo, and tests/test_onnx_zoo.py checks that it still matches its weights).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from robusthide import RobustHideError
from robusthide.onnxrt.runtime import tensors_sha256

MANIFEST = "robusthide-onnx.json"
FORMAT = "robusthide-onnx/1"
OPSET = 17


class _Encoder(nn.Module):
    """The fast path's working-size computation: masked residual and its per-pixel cap."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, small: torch.Tensor, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        res = self.model.small_residual(small, bits)
        cap = self.model.cap(small)
        if cap is None:
            cap = torch.full_like(res, float("inf"))
        return res, cap


def export_onnx(model_name: str, out_dir: str | Path, opset: int = OPSET) -> dict:
    """Write ``encoder.onnx``, ``decoder.onnx`` and the manifest of zoo model (or weights file) ``model_name``
    to ``out_dir``; returns the manifest (with the paths written)."""
    from robusthide.zoo import load_model
    from robusthide.zoo.registry import resolve

    model = load_model(model_name, "cpu").float().eval()
    weights = resolve(model_name, "watermark")
    if not hasattr(model, "encoder") or not hasattr(model, "mask"):
        raise RobustHideError(f"{model_name}: not a watermarking model (no encoder/mask to export)")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RobustHideError(f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    s, n = int(model.size), int(model.n_bits)
    small = torch.rand(2, 3, s, s, generator=torch.Generator().manual_seed(0))
    bits = torch.randint(0, 2, (2, n), generator=torch.Generator().manual_seed(1)).float()
    batch = {0: "n"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on constant folding
        torch.onnx.export(_Encoder(model).eval(), (small, bits), str(out / "encoder.onnx"),
                          input_names=["small", "bits"], output_names=["residual", "cap"],
                          dynamic_axes={"small": batch, "bits": batch, "residual": batch, "cap": batch},
                          opset_version=opset, dynamo=False)
        torch.onnx.export(model.decoder.eval(), (small,), str(out / "decoder.onnx"),
                          input_names=["small"], output_names=["logits"],
                          dynamic_axes={"small": batch, "logits": batch}, opset_version=opset, dynamo=False)
    meta = getattr(model, "meta", {})
    manifest = {"format": FORMAT, "model": meta.get("name", str(model_name)), "source": str(model_name),
                "n_bits": n, "size": s, "opset": opset, "encoder": "encoder.onnx", "decoder": "decoder.onnx",
                "search": meta.get("search", "none"),  # the torch API's default; the ONNX runtime reads without
                "schema": getattr(model, "default_schema", None),  # None: the payload's default for n_bits
                "tensors_sha256": tensors_sha256(weights),  # the weights it was exported from
                "torch": torch.__version__}
    if getattr(model, "soft_share", 0.0):  # the soft-decision test's share, only where the model has one
        manifest["soft_share"] = float(model.soft_share)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return {**manifest, "written": [str(out / f) for f in ("encoder.onnx", "decoder.onnx", MANIFEST)]}
