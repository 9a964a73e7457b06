"""``robusthide codecs`` (list the codecs and the libraries behind them) and ``robusthide attack``
(apply a codec spec to image files: size, bits per pixel and PSNR of the decoded image)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from robusthide import RobustHideError
from robusthide.metrics import psnr_from_mse

_KINDS = {"robusthide.codecs.image": "image", "robusthide.codecs.video": "video",
          "robusthide.codecs.geometric": "distortion", "robusthide.codecs.framing": "distortion",
          "robusthide.codecs.edits": "edit"}


def codec_table() -> list[dict[str, Any]]:
    """One record per registered codec: name, kind, available, library (or reason), summary."""
    from robusthide.codecs import list_codecs

    rows = []
    for name, cls in sorted(list_codecs().items()):
        try:
            ok, info = cls.available()
        except Exception as e:  # noqa: BLE001 - a broken backend must not break the listing
            ok, info = False, f"{type(e).__name__}: {e}"
        rows.append({
            "name": name,
            "kind": _KINDS.get(cls.__module__, "other"),
            "available": bool(ok),
            "library": info if ok else None,
            "reason": None if ok else info,
            "lossy": bool(getattr(cls, "lossy", True)),
            "summary": getattr(cls, "summary", "") or (cls.__doc__ or "").strip().splitlines()[0],
        })
    return rows


def _codecs(a: argparse.Namespace) -> int:
    rows = codec_table()
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    w = max(len(r["name"]) for r in rows)
    for r in rows:
        state = "ok" if r["available"] else "MISSING"
        print(f"{r['name']:<{w}}  {r['kind']:<10}  {state:<7}  {r['library'] or r['reason']}")
        print(f"{'':<{w}}  {r['summary']}")
    print("\nspecs: NAME[:VALUE|KEY=VALUE,...], chained with '|', e.g. 'jpeg:q=50', 'resize:0.5|jpeg:q=80'")
    from robusthide.evaluation.attacks_grammar import DISTORTIONS

    print("robusthide evaluate also takes these distortions (attack layers, same grammar):")
    for name, d in DISTORTIONS.items():
        print(f"  {name}:{d.key}={d.default:g}  {d.doc}")
    return 0


# -- attack --------------------------------------------------------------------------------------------

def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (``inf`` when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return psnr_from_mse(mse)


def _output_format(out: Path) -> str:
    from robusthide.io.images import LOSSLESS_EXTENSIONS

    ext = out.suffix.lower()
    if ext in LOSSLESS_EXTENSIONS:
        return LOSSLESS_EXTENSIONS[ext]
    allowed = ", ".join(sorted(LOSSLESS_EXTENSIONS))
    if not ext:
        raise RobustHideError(f"output {out} has no extension: use one of {allowed} or an existing folder")
    raise RobustHideError(f"refusing to write the decoded image as '{ext}': it would be compressed again "
                          f"(use a lossless format: {allowed})")


def _attack_file(codec: Any, src: Path, dst: Path, quiet_json: bool) -> dict[str, Any]:
    from robusthide.io.images import read_image_rgb, write_image

    fmt = _output_format(dst)
    img, mode = read_image_rgb(src, return_mode=True)
    if mode != "RGB":
        print(f"robusthide: note: {src} is {mode}; converted to 8-bit RGB for coding", file=sys.stderr)
    res = codec(img)
    dec = res.images
    h, w = img.shape[:2]
    nbytes = int(res.nbytes[0])
    write_image(dst, dec, overwrite_guard_src=src, format=fmt)
    p = psnr(img, dec)
    rec = {"input": str(src), "output": str(dst), "spec": codec.spec, "library": codec.library,
           "width": w, "height": h, "nbytes": nbytes, "bpp": 8.0 * nbytes / (h * w),
           "psnr": None if math.isinf(p) else round(p, 4), "input_mode": mode}
    if not quiet_json:
        ps = "inf (identical)" if math.isinf(p) else f"{p:.2f} dB"
        print(f"{src} -> {dst}  {codec.spec}: {nbytes} bytes, {rec['bpp']:.4f} bpp, PSNR {ps}")
    return rec


def _is_same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def _attack(a: argparse.Namespace) -> int:
    from robusthide.codecs import get_codec
    from robusthide.io.images import IMAGE_EXTENSIONS

    src = Path(a.input)
    out = Path(a.output)
    if not src.exists():
        raise RobustHideError(f"no such file or folder: {src}")
    codec = get_codec(a.codec)
    if not a.recursive:
        if src.is_dir():
            raise RobustHideError(f"{src} is a folder: add --recursive to attack every image in it")
        if out.is_dir() or str(a.output).endswith(("/", "\\")):
            out = out / (src.stem + ".png")
        if _is_same(src, out):
            raise RobustHideError(f"refusing to overwrite the input file {src}")
        rec = _attack_file(codec, src, out, a.json)
        if a.json:
            print(json.dumps(rec))
        return 0

    if not src.is_dir():
        raise RobustHideError(f"--recursive needs a folder as input, {src} is a file")
    if out.exists() and not out.is_dir():
        raise RobustHideError(f"--recursive needs a folder as output, {out} is a file")
    if _is_same(src, out):
        raise RobustHideError(f"output folder {out} is the input folder: choose another one")
    out_res = out.resolve()
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                   and out_res not in p.resolve().parents)
    if not files:
        raise RobustHideError(f"no image files under {src}")
    rels = [p.relative_to(src) for p in files]
    targets = [r.with_suffix(".png") for r in rels]
    seen: dict[Path, int] = {}
    for t in targets:
        seen[t] = seen.get(t, 0) + 1
    targets = [r.parent / (r.name + ".png") if seen[t] > 1 else t for r, t in zip(rels, targets)]
    records, failed = [], 0
    for f, t in zip(files, targets):
        try:
            records.append(_attack_file(codec, f, out / t, a.json))
        except RobustHideError as e:
            failed += 1
            print(f"robusthide: error: {e}", file=sys.stderr)
    if a.json:
        print(json.dumps(records, indent=2))
    elif records:
        mb = sum(r["nbytes"] for r in records)
        ps = [r["psnr"] for r in records if r["psnr"] is not None]
        mean = f"{sum(ps) / len(ps):.2f} dB" if ps else "inf"
        print(f"{len(records)} image(s) -> {out}: {mb} bytes in all, mean PSNR {mean}"
              + (f", {failed} failed" if failed else ""))
    return 2 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("codecs", help="list every codec, available or not, with the library behind it")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=_codecs)

    q = sub.add_parser("attack", help="apply a codec spec to an image (or a folder): size, bpp, PSNR",
                       description="Encode and decode IN with a codec spec; write the decoded image "
                                   "(lossless: png, bmp, tif, tiff) and print its compressed size, bits "
                                   "per pixel and PSNR against IN. IN is never overwritten.")
    q.add_argument("input", metavar="IN", help="image file (or folder with --recursive)")
    q.add_argument("-o", "--output", metavar="OUT", required=True,
                   help="output image (.png/.bmp/.tif) or folder")
    q.add_argument("--codec", required=True, metavar="SPEC",
                   help="codec spec, e.g. jpeg:q=50 or resize:0.5|webp:q=75")
    q.add_argument("--recursive", action="store_true",
                   help="IN is a folder: attack every image under it, writing OUT/<same relative name>.png")
    q.add_argument("--json", action="store_true", help="print the results as JSON")
    q.set_defaults(func=_attack)
