"""Robustness matrix: BER / word accuracy of a watermarking model under real codecs, plus image quality.

For each image (full resolution, or seeded S x S crops, see :mod:`robusthide.evaluation.images`):

1. a random message of ``n_bits`` bits is drawn from ``numpy.random.default_rng(seed)`` (the same
   messages for the same seed, whatever the model or strength);
2. the model embeds it at the image's own size and the marked image is rounded to uint8 (what a
   saved file holds; ``identity`` measures exactly this);
3. every attack (a real codec, :func:`robusthide.codecs.get_codec`, or a distortion of the attack system
   such as dropout / cropout, which also get the cover, see
   :func:`~robusthide.evaluation.attacks_grammar.attack_runner`) is applied to the uint8 marked
   image; images of one size are coded together in batches (codec libraries parallelise over a
   batch; video codecs code a batch as one clip), images of different sizes separately;
4. the decoder's logits give per-image BER, averaged over images (the BER of paper 002's tables),
   and word accuracy (fraction of images with every bit right).

Quality is reported once for marked vs cover (PSNR over RGB and over Y, SSIM, CIEDE2000 mean and
99th percentile, APD of paper 000) and per attack for attacked vs marked (PSNR, SSIM), with the mean
bits per pixel of the attacked image where the codec has a bitstream. Averages are over images; PSNR averages
skip infinite values (identical images) and are infinite only when every image is identical. The
metric definitions are those of :mod:`robusthide.metrics` (computed on the uint8 images).

:func:`strength_sweep` repeats the measurement over test-time strength factors (paper 002, Sec. 4.3.1
and Table 3: BER under JPEG Q against PSNR / SSIM). Their tables, files and plots are
:mod:`robusthide.evaluation.matrix_report`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robusthide import RobustHideError, __version__
from robusthide.evaluation.attacks_grammar import IDENTITY, Attack, attack_runner, expand_attacks
from robusthide.evaluation.images import ImageItem, image_set
from robusthide.metrics import apd, ber_per_image, bpp, ciede2000, psnr, psnr_y, ssim

# -- the method under test ----------------------------------------------------------------------------------


class ModelMethod:
    """A robusthide :class:`~robusthide.nets.watermark_model.WatermarkModel` on uint8 numpy batches."""

    uint8_io = True

    def __init__(self, model: Any, name: str | None = None, mirror: bool = True):
        import torch

        self.model = model.eval() if hasattr(model, "eval") else model
        #: whether decoding also reads the mirror images, as ``Watermarker.extract`` does (whole-image models)
        self.mirror = bool(mirror)
        self.n_bits = int(model.n_bits)
        meta = getattr(model, "meta", None) or {}
        self.name = name or meta.get("name") or type(model).__name__
        try:
            self.device = next(model.parameters()).device
        except (AttributeError, StopIteration):
            self.device = torch.device("cpu")

    def _tensor(self, images: np.ndarray) -> Any:
        import torch

        t = torch.from_numpy(np.ascontiguousarray(images)).to(self.device)
        return t.permute(0, 3, 1, 2).float() / 255.0

    @property
    def watermarker(self) -> Any:
        """The :class:`~robusthide.watermark.watermarker.Watermarker` that marks the images (the one embed
        path: what a user of the model gets, with the model's embed-time refinement)."""
        if getattr(self, "_wm", None) is None:
            from robusthide.watermark.watermarker import Watermarker

            self._wm = Watermarker(self.model, self.device, max_strength=math.inf)
        return self._wm

    def embed(self, cover: np.ndarray, bits: np.ndarray, strength: float = 1.0) -> np.ndarray:
        """uint8 N x H x W x 3 covers -> uint8 marked images (rounded, never truncated), by
        :meth:`Watermarker.embed_bits_batch <robusthide.watermark.watermarker.Watermarker.embed_bits_batch>`."""
        marked = self.watermarker.embed_bits_batch(list(np.asarray(cover)), np.asarray(bits, dtype=np.float32),
                                                   strength=strength)
        return np.stack(marked)

    @property
    def default_search(self) -> str:
        """The model's default extraction search (its ``search`` metadata; ``none`` if it names none)."""
        return str(getattr(self.model, "default_search", "none"))

    def hypothesis_logits(self, images: np.ndarray, search: str) -> tuple[list[Any], list[list[dict]]]:
        """Per image, the bit logits (H x L tensor) of every hypothesis of ``search``, and the hypotheses, as
        ``Watermarker.extract`` reads them (:func:`robusthide.watermark.sync.search_logits`; ``none``: the
        image as it is and, with :attr:`mirror`, its mirror image)."""
        import torch

        from robusthide.watermark.sync import mirror_hypotheses, search_logits

        with torch.inference_mode():
            x = self._tensor(images)
            if search == "none":
                rows = [self.model.decode(v).float().cpu() for v in ((x, x.flip(-1)) if self.mirror else (x,))]
                hyps = mirror_hypotheses([{}]) if self.mirror else [{}]
                return list(torch.stack(rows, dim=1)), [hyps] * x.shape[0]
            found = [search_logits(self.model.decoder, x[i:i + 1], self.model.size, search, self.mirror)
                     for i in range(x.shape[0])]
            return [lg.cpu() for lg, _ in found], [h for _, h in found]

    def decode(self, images: np.ndarray, strength: float = 1.0, search: str = "none") -> np.ndarray:
        """Bit logits (N x L, float32) of uint8 N x H x W x 3 images (``strength`` is not needed): those of each
        image's most confident hypothesis of ``search`` (``none``: the image or its mirror image; ``crop``,
        ``geometry``: :mod:`robusthide.watermark.sync`)."""
        import torch

        from robusthide.watermark.sync import most_confident

        rows = [lg[most_confident(lg, hs)] for lg, hs in zip(*self.hypothesis_logits(images, search))]
        return torch.stack(rows).numpy()


def _payload_words(method: Any, n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """``n`` codewords (N x L uint8) of random integer messages under the model's default schema."""
    from robusthide.payload import capacity, encode_message

    if not isinstance(method, ModelMethod):
        raise RobustHideError(f"message exactness needs a robusthide model, not {method.name}")
    schema = getattr(method.model, "default_schema", None)
    bits = int(capacity(method.n_bits, schema)["data_bits"])
    rng = np.random.default_rng(seed + 1)
    msgs = [int.from_bytes(rng.bytes(16), "big") % (1 << min(bits, 62)) for _ in range(n)]
    words = np.stack([encode_message(m, method.n_bits, schema=schema, kind="int") for m in msgs])
    return words.astype(np.uint8), msgs


def _message_read(logits: Any, n_bits: int, message: int, hyps: list[dict] | None = None,
                  soft_share: float = 0.0) -> bool:
    """Is ``message`` read back and detected from the hypotheses' logits (H x L), as ``extract`` decides
    (``hyps``: the hypotheses, whose mirror images get their weight in the test; ``soft_share``: the model's
    share for the soft-decision test)?"""
    import torch

    from robusthide.watermark.sync import decision_args, decode_search

    lg = torch.as_tensor(np.asarray(logits, dtype=np.float32))
    r, _ = decode_search(lg, n_bits, soft_share=soft_share, **(decision_args(hyps, lg) if hyps else {}))
    return bool(r.detected and r.message == message)


def as_method(model: Any) -> Any:
    """A model object, zoo name / weights path, or peer -> an object with uint8 ``embed`` / ``decode``."""
    if isinstance(model, (str, Path)):
        s = str(model)
        from robusthide.evaluation.peers import PEERS

        if s.startswith("peer:") or s in PEERS:
            raise RobustHideError(f"give peers as objects (robusthide.evaluation.peers.get_peer('{s}'))")
        from robusthide.zoo import load_model

        return ModelMethod(load_model(s), name=Path(s).stem if Path(s).suffix else s)
    if getattr(model, "uint8_io", False):
        return model
    if hasattr(model, "embed") and hasattr(model, "decode") and hasattr(model, "n_bits"):
        return ModelMethod(model)
    raise RobustHideError(f"not a watermarking model: {type(model).__name__}")


# -- helpers ------------------------------------------------------------------------------------------------


def _mean(vals: Sequence[float]) -> float | None:
    """Mean over finite values; ``inf`` if all are infinite; None if there are none."""
    v = np.asarray([x for x in vals if x is not None and not (isinstance(x, float) and math.isnan(x))],
                   dtype=np.float64)
    if v.size == 0:
        return None
    fin = v[np.isfinite(v)]
    if fin.size == 0:
        return float(v[0])
    return float(fin.mean())


def _chunks(items: list[ImageItem], batch: int) -> list[list[int]]:
    """Indices of images grouped by size (first-appearance order), cut into batches of ``batch``."""
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, it in enumerate(items):
        by_size.setdefault(tuple(it.hw), []).append(i)
    return [idx[k:k + batch] for idx in by_size.values() for k in range(0, len(idx), batch)]


def _attacks(attacks: Any) -> list[Attack]:
    if isinstance(attacks, Attack):
        return [attacks]
    return expand_attacks(attacks)


def _progress(total: int, enabled: bool, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="img", leave=False, dynamic_ncols=True)


# -- the matrix ---------------------------------------------------------------------------------------------


def robustness_matrix(model: Any, images: Any, attacks: Any, seed: int = 0, strength: float = 1.0,
                      batch: int = 8, progress: bool = True, *, n: int | None = None,
                      size: int | str | None = None, split: str | None = None, crop: str = "random",
                      workers: int | None = None, search: str | None = "none",
                      payload: bool = False) -> dict[str, Any]:
    """Measure ``model`` (a WatermarkModel, zoo name, weights path or a peer) under ``attacks``.

    ``images``: uint8 H x W x 3 arrays, or a folder (``n``, ``size``, ``split``, ``crop`` select and
    crop them, see :func:`robusthide.evaluation.images.image_set`). ``attacks``: an attack list
    (``'jpeg:q=10,50;identity'``, see :mod:`robusthide.evaluation.attacks_grammar`) or a list of specs.
    Returns a JSON-ready dict: ``quality`` (marked vs cover), ``rows`` (one per attack) and
    ``per_image`` values; write it with :func:`write_matrix`. ``search='crop'`` decodes every attacked
    image through the centred-crop search of :mod:`robusthide.watermark.sync` (robusthide models only),
    ``'geometry'`` through the geometry search, None through the model's default search.
    ``payload``: embed BCH codewords of random messages under the model's default schema instead of raw
    random bits, and report ``msg_exact``, the share of images whose message is read back exactly and
    detected (through the search's Bonferroni-corrected test, as ``robusthide extract`` decides).
    """
    from robusthide.watermark.sync import check_search

    t0 = time.perf_counter()
    method = as_method(model)
    try:
        search = check_search(method.default_search if search is None and isinstance(method, ModelMethod)
                              else search)
    except ValueError as e:
        raise RobustHideError(str(e)) from None
    if search != "none" and not isinstance(method, ModelMethod):
        raise RobustHideError(f"--search {search} needs a robusthide model, not {method.name}")
    items = image_set(images, n=n, size=size, seed=seed, split=split, crop=crop)
    atts = _attacks(attacks)
    if batch < 1:
        raise RobustHideError(f"batch must be at least 1, got {batch}")
    if not (isinstance(strength, (int, float)) and strength > 0 and math.isfinite(strength)):
        raise RobustHideError(f"strength must be a positive number, got {strength!r}")
    codecs = {a.spec: attack_runner(a.spec, workers=workers) for a in atts if a.spec != IDENTITY}

    N, L = len(items), method.n_bits
    bits = np.random.default_rng(seed).integers(0, 2, size=(N, L), dtype=np.int64).astype(np.uint8)
    messages: list[Any] = []
    if payload:
        bits, messages = _payload_words(method, N, seed)
    q = {k: [math.nan] * N for k in ("psnr_rgb", "psnr_y", "ssim", "ciede2000_mean", "ciede2000_p99", "apd")}
    per = {a.spec: {k: [math.nan] * N for k in ("ber", "psnr", "ssim", "bpp", "msg_exact")} for a in atts}

    bar = _progress(N * len(atts), progress, f"evaluate {method.name}")
    try:
        for idx in _chunks(items, batch):
            covers = []
            for i in idx:
                im = items[i].load()
                if tuple(im.shape[:2]) != tuple(items[i].hw) or im.dtype != np.uint8:
                    raise RobustHideError(f"{items[i].name}: loaded {im.shape} {im.dtype}, expected "
                                          f"{items[i].hw} uint8")
                covers.append(im)
            cover = np.stack(covers)
            marked = method.embed(cover, bits[idx], strength=strength)
            de = ciede2000(marked, cover, reduction="none")
            for k, v in (("psnr_rgb", psnr(marked, cover, reduction="none")),
                         ("psnr_y", psnr_y(marked, cover, reduction="none")),
                         ("ssim", ssim(marked, cover, reduction="none")),
                         ("ciede2000_mean", de["mean"]), ("ciede2000_p99", de["p99"]),
                         ("apd", apd(marked, cover, reduction="none"))):
                for j, i in enumerate(idx):
                    q[k][i] = float(v[j])
            for a in atts:
                if a.spec == IDENTITY:
                    attacked, nbytes = marked, None
                else:
                    # cropout / dropout mix marked and cover pixels: the runner gets the covers
                    attacked, nbytes = codecs[a.spec](marked, cover, seed, list(idx))
                exact = None
                if not isinstance(method, ModelMethod):  # peers' decode takes no search
                    logits = method.decode(attacked, strength=strength)
                    if payload:
                        exact = [_message_read(lg[None], L, messages[i]) for lg, i in zip(logits, idx)]
                else:  # as extract reads them: every hypothesis of the search, mirror images included
                    hyp, hyps = method.hypothesis_logits(attacked, search)
                    from robusthide.watermark.sync import most_confident

                    logits = np.stack([h[most_confident(h, hs)].numpy() for h, hs in zip(hyp, hyps)])
                    if payload:
                        soft = float(getattr(method.model, "soft_share", 0.0))
                        exact = [_message_read(h, L, messages[i], hs, soft) for h, hs, i in zip(hyp, hyps, idx)]
                ber = ber_per_image(np.asarray(logits, dtype=np.float32), bits[idx], logits=True)
                p = per[a.spec]
                same = attacked.shape == marked.shape
                if same:
                    ps = psnr(attacked, marked, reduction="none")
                    ss = ssim(attacked, marked, reduction="none")
                h, w = attacked.shape[1:3]
                rate = bpp(nbytes, h, w, reduction="none") if nbytes is not None and any(nbytes) else None
                for j, i in enumerate(idx):
                    p["ber"][i] = float(ber[j])
                    if same:
                        p["psnr"][i], p["ssim"][i] = float(ps[j]), float(ss[j])
                    if rate is not None and nbytes[j] > 0:
                        p["bpp"][i] = float(rate[j])
                    if exact is not None:
                        p["msg_exact"][i] = float(exact[j])
                bar.update(len(idx))
    finally:
        bar.close()

    rows = []
    for a in atts:
        p = per[a.spec]
        ber = np.asarray(p["ber"], dtype=np.float64)
        rows.append({
            "attack": a.spec, "family": a.family, "group": a.group, "param": a.param, "value": a.value,
            "ber": float(ber.mean()), "ber_std": float(ber.std()), "ber_max": float(ber.max()),
            "word_acc": float(np.mean(ber == 0)),
            "msg_exact": float(np.mean(p["msg_exact"])) if payload else None,
            "psnr_attacked": _mean(p["psnr"]), "ssim_attacked": _mean(p["ssim"]), "bpp": _mean(p["bpp"]),
            "n": N,
        })
    sizes: dict[str, int] = {}
    for it in items:
        k = f"{it.hw[1]}x{it.hw[0]}"
        sizes[k] = sizes.get(k, 0) + 1
    return {
        "method": method.name, "n_bits": L, "n_images": N, "seed": seed, "strength": float(strength),
        "search": search, "payload": bool(payload), "batch": batch, "image_sizes": sizes,
        "attacks": [a.spec for a in atts],
        "quality": {k: _mean(v) for k, v in q.items()},
        "rows": rows,
        "per_image": {"names": [it.name for it in items], **{k: v for k, v in q.items()},
                      "ber": {s: per[s]["ber"] for s in per},
                      **({"msg_exact": {s: per[s]["msg_exact"] for s in per}} if payload else {})},
        "robusthide": __version__, "seconds": round(time.perf_counter() - t0, 3),
    }


# -- strength sweep (paper 002, Table 3) -------------------------------------------------------------------


def strength_sweep(model: Any, images: Any, attack: Any, strengths: Sequence[float], seed: int = 0,
                   batch: int = 8, progress: bool = True, **kw: Any) -> dict[str, Any]:
    """PSNR / SSIM against BER over test-time strength factors (MBRS, paper 002, Sec. 4.3.1, Table 3).

    ``attack`` may be one spec or an attack list (``'jpeg:q=10,30,50,70,90'`` gives Table 3's rows);
    the same images and messages are used at every strength. Returns ``rows``: one per strength with
    ``psnr_rgb``, ``psnr_y``, ``ssim``, ``ciede2000_mean`` and ``ber`` / ``word_acc`` per attack.
    """
    if not strengths:
        raise RobustHideError("no strengths given")
    method = as_method(model)
    items = image_set(images, n=kw.pop("n", None), size=kw.pop("size", None), seed=seed,
                      split=kw.pop("split", None), crop=kw.pop("crop", "random"))
    atts = _attacks(attack)
    rows = []
    for s in strengths:
        r = robustness_matrix(method, items, atts, seed=seed, strength=float(s), batch=batch,
                              progress=progress, **kw)
        rows.append({"strength": float(s), **r["quality"],
                     "ber": {x["attack"]: x["ber"] for x in r["rows"]},
                     "word_acc": {x["attack"]: x["word_acc"] for x in r["rows"]}})
    return {"method": method.name, "n_bits": method.n_bits, "n_images": len(items), "seed": seed,
            "attacks": [a.spec for a in atts], "rows": rows, "robusthide": __version__}
