"""Does the whole-image decoder lose its corner-crop reads to the search's flat fill? (issue 19, session 30).

The reads of docs/scripts/corner_crop_probe.py's oracle part (the first 8 validation photos, long side at most
1024 px, marked, cut to k = 0.9, 0.8, 0.71 of each side at each of the 4 corners, JPEG 75, read at the true
geometry), once as the decoder reads them and once with a gate: the decoder's bit-map cells whose input block
(``stride`` x ``stride`` view pixels) has a per-channel variance at or below ``--threshold`` (the constant fill the
search puts around a crop) set to zero before the last layer. Prints, per k and form, the median raw bit errors, the
messages exact and detected at 1e-6 (with the model's own tests) and at a search stage's 3e-10, and the share of
cells the gate kept.

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/fill_gate_probe.py lean128-r6 default
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from robusthide.training.data import list_images
from robusthide.watermark.sync import affine_views, decode_search
from robusthide.watermark.watermarker import Watermarker

_spec = importlib.util.spec_from_file_location("corner_crop_probe", Path(__file__).with_name("corner_crop_probe.py"))
ccp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ccp)  # type: ignore[union-attr]


def gated_logits(decoder: torch.nn.Module, views: torch.Tensor, threshold: float) -> tuple[torch.Tensor, float]:
    """Bit logits with the fill cells of the bit map zeroed, and the share of cells kept."""
    s = decoder.stride
    var = (F.avg_pool2d(views.square(), s) - F.avg_pool2d(views, s).square()).mean(1, keepdim=True)
    gate = (var > threshold).float()
    return decoder.read_map(decoder.bit_map(views) * gate).float(), float(gate.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--threshold", type=float, default=1e-7)
    a = ap.parse_args()
    torch.set_num_threads(1)
    for name in a.models:
        wm = Watermarker.from_pretrained(name)
        reads: dict[tuple[float, bool], list[tuple[int, bool, bool, float]]] = {}
        for i, f in enumerate(list_images("data/photos/train", "val")[:8]):
            im = Image.open(f).convert("RGB")
            im.thumbnail((1024, 1024))
            msg = 300 + i
            marked = wm.embed(np.asarray(im), msg)
            sent = torch.as_tensor(np.asarray(wm.encode_message(msg)), dtype=torch.bool)
            for k in (0.9, 0.8, 0.71):
                for corner, (sx, sy) in ccp.CORNERS.items():
                    hyp = {"flip": False, "angle": 0.0, "kx": k, "ky": k, "ox": sx * (1 - k), "oy": sy * (1 - k)}
                    with torch.no_grad():
                        views = affine_views(ccp.corner_crop(marked, k, corner), wm.model.size, [hyp])
                        for gate in (False, True):
                            lg, kept = (gated_logits(wm.model.decoder, views, a.threshold) if gate
                                        else (wm.model.decoder(views).float(), 1.0))
                            r, _ = decode_search(lg, wm.n_bits, soft_share=wm.soft_share)
                            ok = bool(r.detected and r.message == msg)
                            reads.setdefault((k, gate), []).append(
                                (int(((lg[0] > 0) != sent).sum()), ok, ok and r.p_value <= ccp.SEARCH_P, kept))
        for (k, gate), v in sorted(reads.items()):
            print(f"{name} k={k:g} {'gated' if gate else 'as is'}: median raw errors "
                  f"{np.median([e for e, *_ in v]):g} of {wm.n_bits}, exact {sum(r[1] for r in v)}/{len(v)}, "
                  f"in a search {sum(r[2] for r in v)}/{len(v)}, cells kept {np.mean([r[3] for r in v]):.2f}")


if __name__ == "__main__":
    main()
