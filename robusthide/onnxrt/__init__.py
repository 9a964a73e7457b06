"""Watermarking without PyTorch: the networks exported to ONNX, run by onnxruntime (numpy + Pillow around).

``robusthide export-onnx [MODEL] -o DIR`` (:func:`robusthide.onnxrt.export.export_onnx`, needs torch) writes
the encoder and decoder; :class:`OnnxWatermarker` marks (the fast path, ``refine=0``) and reads with them.
The default model's folder ships in the zoo (``OnnxWatermarker.from_pretrained()``), so a
``pip install 'robusthide[onnx]'`` marks and reads without torch; the CLI uses this runtime when torch is
missing (``--runtime``). Importing this package does not import torch.
"""

from robusthide.onnxrt.runtime import OnnxExtractResult, OnnxWatermarker, upsample_bilinear

__all__ = ["OnnxExtractResult", "OnnxWatermarker", "upsample_bilinear"]
