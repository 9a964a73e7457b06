"""``robusthide embed|extract|detect|capacity``: watermark image files and folders (and videos)."""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from robusthide import RobustHideError

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}
VIDEO_EXTS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"}


def _is_video(p: Path) -> bool:
    return p.suffix.lower() in VIDEO_EXTS


def _inputs(src: Path, recursive: bool) -> list[Path]:
    if src.is_dir():
        if not recursive:
            raise RobustHideError(f"{src} is a folder: add --recursive")
        files = sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS)
        if not files:
            raise RobustHideError(f"no images in {src}")
        return files
    if not src.exists():
        raise RobustHideError(f"{src}: no such file")
    return [src]


def _wm(a: argparse.Namespace):
    from robusthide.watermark.watermarker import Watermarker

    return Watermarker.from_pretrained(a.model, schema=a.schema)


def _message(a: argparse.Namespace) -> Any:
    if a.message is None:
        raise RobustHideError("give the message with -m")
    if a.kind == "int":
        try:
            return int(a.message, 0)
        except ValueError:
            raise RobustHideError(f"not an integer: {a.message!r}") from None
    return a.message


def _embed_one(wm, src: Path, dst: Path, a: argparse.Namespace, bits) -> dict[str, Any]:
    import numpy as np

    from robusthide.watermark.files import encode_image, output_format, read_image_file, write_bytes_atomic

    if _is_video(src):
        from robusthide.watermark.video import embed_video

        return embed_video(wm, src, dst, bits, strength=a.strength, crf=a.crf, codec=a.video_codec,
                           in_place=a.in_place, refine=a.refine or 0)  # frames: fast path unless asked
    fmt = output_format(dst, a.format)
    f = read_image_file(src)
    marked = wm.embed_bits(f.array, bits, strength=a.strength, refine=a.refine)
    data = encode_image(marked, fmt, a.quality, f.icc, f.exif)
    write_bytes_atomic(dst, data, protect=[] if a.in_place else [src])
    x, y = f.array.astype(np.float64), marked.astype(np.float64)
    peak = 65535.0 if f.array.dtype == np.uint16 else 255.0
    mse = float(np.mean((x - y) ** 2))
    psnr = float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)
    return {"input": str(src), "output": str(dst), "psnr": round(psnr, 2), "bytes": len(data),
            "size": [int(f.array.shape[1]), int(f.array.shape[0])]}


def _embed(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    src = Path(a.input)
    files = _inputs(src, a.recursive)
    if a.in_place:
        if a.output:
            raise RobustHideError("--in-place and -o exclude each other")
        dests = files
    else:
        if not a.output:
            raise RobustHideError("give the output with -o (or --in-place)")
        out = Path(a.output)
        if src.is_dir():
            dests = [out / f.relative_to(src) for f in files]
            if a.format:
                dests = [d.with_suffix("." + a.format.lower().replace("jpeg", "jpg")) for d in dests]
        else:
            dests = [out]
    wm = _wm(a)
    bits = wm.encode_message(_message(a), kind=a.kind)
    todo = [(s, d) for s, d in zip(files, dests) if a.overwrite or a.in_place or not d.exists() or len(files) == 1]
    skipped = len(files) - len(todo)
    rows: list[dict[str, Any]] = []
    failed = 0

    def work(sd):
        try:
            return _embed_one(wm, sd[0], sd[1], a, bits)
        except RobustHideError as e:
            if len(files) == 1:
                raise
            return {"input": str(sd[0]), "error": str(e)}

    with ThreadPoolExecutor(max(1, a.workers)) as ex:
        for row in tqdm(ex.map(work, todo), total=len(todo), disable=len(todo) < 2 or a.json, desc="embed"):
            rows.append(row)
            failed += "error" in row
            if a.json:
                print(json.dumps(row), flush=True)
            elif "error" in row:
                print(f"robusthide: error: {row['error']}", file=sys.stderr)
            else:
                print(f"{row['output']}: PSNR {row['psnr']:.2f} dB")
    if skipped and not a.json:
        print(f"skipped {skipped} already marked (use --overwrite)", file=sys.stderr)
    return 2 if failed else 0


def _extract_rows(a: argparse.Namespace):
    from robusthide.watermark.files import read_image_file

    files = _inputs(Path(a.input), a.recursive)
    wm = _wm(a)

    def work(p: Path) -> dict[str, Any]:
        try:
            if _is_video(p):
                from robusthide.watermark.video import extract_video

                r = extract_video(wm, p)
            else:
                r = wm.extract(read_image_file(p).array, search=a.search)
        except RobustHideError as e:
            if len(files) == 1:
                raise
            return {"input": str(p), "error": str(e)}
        d = r.to_dict()
        if not a.bits:
            d.pop("bits"), d.pop("soft")
        return dict(input=str(p), **d)

    with ThreadPoolExecutor(max(1, a.workers)) as ex:
        yield from ex.map(work, files)


def _extract(a: argparse.Namespace) -> int:
    failed = 0
    for row in _extract_rows(a):
        failed += "error" in row
        if a.json:
            print(json.dumps(row), flush=True)
        elif "error" in row:
            print(f"robusthide: error: {row['error']}", file=sys.stderr)
        elif row["detected"]:
            print(f"{row['input']}: {row['message']!s}  (p={row['p_value']:.2e}, corrected {row['corrected_errors']})")
        else:
            print(f"{row['input']}: no watermark found (p={row['p_value']:.2e})")
    return 2 if failed else 0


def _detect(a: argparse.Namespace) -> int:
    any_found, failed = False, 0
    for row in _extract_rows(a):
        failed += "error" in row
        if "error" in row:
            print(f"robusthide: error: {row['error']}", file=sys.stderr)
            continue
        any_found |= row["detected"]
        if a.json:
            print(json.dumps({k: row[k] for k in ("input", "detected", "p_value", "confidence")}), flush=True)
        else:
            print(f"{row['input']}: {'watermark present' if row['detected'] else 'no watermark'} "
                  f"(p={row['p_value']:.2e})")
    return 2 if failed else (0 if any_found else 1)


def _capacity(a: argparse.Namespace) -> int:
    wm = _wm(a)
    c = wm.capacity()
    if a.json:
        print(json.dumps(c))
    else:
        for k, v in c.items():
            print(f"{k}: {v}")
    return 0


def schema_arg(s: str) -> int | str:
    """A payload schema on the command line: its id (0-3) or its name (robust, balanced, large, max)."""
    return int(s) if s.strip().isdigit() else s.strip()


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="default", help="zoo name or path to a robusthide .safetensors")
    p.add_argument("--schema", type=schema_arg, default=None,
                   help="payload schema, id or name: robust (default), balanced, large, max")
    p.add_argument("--json", action="store_true", help="JSON lines output")
    p.add_argument("--recursive", action="store_true", help="process every image in a folder")
    p.add_argument("--workers", type=int, default=2, help="parallel workers for folders")


def _search(p: argparse.ArgumentParser) -> None:
    p.add_argument("--search", choices=["none", "crop"], default="none",
                   help="crop: also read each image as the centre of a larger frame (a crop resized back; "
                        "images only); the p-value pays for the search")


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("embed", help="hide a message in an image (or a folder of images, or a video)")
    e.add_argument("input")
    e.add_argument("-o", "--output", help="output file (or folder with --recursive)")
    e.add_argument("-m", "--message", help="the message (text by default)")
    e.add_argument("--kind", choices=["text", "hex", "bytes", "int"], default=None,
                   help="how to read -m (default: text)")
    e.add_argument("--strength", type=float, default=1.0, help="residual strength factor (MBRS), default 1")
    e.add_argument("--refine", type=int, default=None, metavar="STEPS",
                   help="embed-time refinement steps against the decoder (default: the model's; 0 = fast path; "
                        "videos: 0 unless given)")
    e.add_argument("--format", help="output format: png (default by extension), jpeg, webp, tiff")
    e.add_argument("--quality", type=int, default=95, help="JPEG/WebP output quality")
    e.add_argument("--in-place", action="store_true", help="overwrite the input file(s)")
    e.add_argument("--overwrite", action="store_true", help="re-mark outputs that already exist (folders)")
    e.add_argument("--crf", type=int, default=18, help="video: H.264/H.265 CRF of the re-encode")
    e.add_argument("--video-codec", default="h264", help="video: h264 (default), h265, vp9, av1")
    _common(e)
    e.set_defaults(func=_embed)
    x = sub.add_parser("extract", help="read the message hidden in an image (or folder, or video)")
    x.add_argument("input")
    x.add_argument("--bits", action="store_true", help="also print raw and soft bits")
    _common(x)
    _search(x)
    x.set_defaults(func=_extract)
    d = sub.add_parser("detect", help="is a watermark present? exit 0 if found, 1 if not, 2 on error")
    d.add_argument("input")
    d.set_defaults(func=_detect, bits=False)
    _common(d)
    _search(d)
    c = sub.add_parser("capacity", help="payload capacity of a model and schema")
    c.add_argument("--model", default="default")
    c.add_argument("--schema", type=schema_arg, default=None, help="id or name (default: all schemas)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_capacity)
    register_fpr(sub)
    register_contact(sub)


def _fpr(a: argparse.Namespace) -> int:
    from robusthide.watermark.fpr import measure_fpr, write_fpr

    res = measure_fpr(a.model, a.data, a.split if a.split != "all" else None, a.n, a.synthetic, a.seed,
                      search=a.search)
    write_fpr(res, a.out)
    print(json.dumps(res) if a.json else f"{res['false_positives']} false positives in {res['clean_images']} "
          f"clean images -> {a.out}.md")
    return 0


def register_fpr(sub: argparse._SubParsersAction) -> None:
    f = sub.add_parser("fpr", help="measure the false-positive rate of detection on clean images")
    f.add_argument("--model", default="default")
    f.add_argument("--data", default="data/photos/train")
    f.add_argument("--split", default="val", help="val (hash split, default), train, or all")
    f.add_argument("--n", type=int, default=10000, help="photo patches")
    f.add_argument("--synthetic", type=int, default=600)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--search", choices=["none", "crop"], default="none",
                   help="decode through the centred-crop search, as extract --search crop does")
    f.add_argument("--out", default="docs/results/fpr")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=_fpr)


def _contact(a: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from robusthide.training.data import list_images
    from robusthide.watermark.contact_sheet import contact_sheet, residual_stats

    wm = _wm(a)
    files = list_images(a.data, None)
    want = [w.strip() for w in a.names.split(",")] if a.names else None
    chosen = [f for f in files if want is None or any(f.name.startswith(w) for w in want)]
    if want and len(chosen) < len(want):
        raise RobustHideError(f"only {len(chosen)} of {len(want)} names found in {a.data}")
    rows = []
    rng = np.random.default_rng(a.seed)
    for f in chosen:
        im = Image.open(f).convert("RGB")
        im = im.resize((a.resize, max(16, round(im.height * a.resize / im.width))), Image.LANCZOS)
        cover = np.asarray(im)
        marked = wm.embed_bits(cover, rng.integers(0, 2, wm.n_bits))
        h, w = cover.shape[:2]
        ch, cw = min(h, a.crop_h), min(w, a.crop_w)
        x0 = (w - cw) // 2
        rows.append((f"{f.name} ({w}x{h}, top-centre crop at 1:1)", cover[:ch, x0:x0 + cw], marked[:ch, x0:x0 + cw]))
    if a.astronaut:
        from skimage import data as skdata

        cover = skdata.astronaut()
        marked = wm.embed_bits(cover, rng.integers(0, 2, wm.n_bits))
        rows.append(("skimage astronaut (512x512, face at 1:1)", cover[20:308, 64:448], marked[20:308, 64:448]))
    if Path(a.out).suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise RobustHideError(f"--out must end in .png, .jpg or .webp, got {a.out!r}")
    out = contact_sheet(rows, a.out, width=a.crop_w)
    stats = [{"label": label, **residual_stats(c, m)} for label, c, m in rows]
    doc = {"model": str(a.model), "unit": "grey levels (0-255), all channels of the crop shown", "rows": stats,
           "mean": {k: round(float(np.mean([r[k] for r in stats if r[k] is not None])), 3)
                    for k in ("rms", "p99", "rms_flat", "rms_texture") if any(r[k] is not None for r in stats)}}
    side = out.with_suffix(".json")
    side.write_text(json.dumps(doc, indent=1) + "\n")
    for r in stats:
        split = "".join(f", {k[4:]} {r[k]:.2f}" for k in ("rms_flat", "rms_texture") if r[k] is not None)
        print(f"{r['label']}: residual RMS {r['rms']:.2f}{split}, p99 {r['p99']:.2f}, max {r['max']:.0f}")
    print(f"wrote {out}, {side}")
    return 0


def register_contact(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("contact-sheet", help="cover | marked | residual x10 for photos, for people to judge")
    c.add_argument("--model", default="default")
    c.add_argument("--schema", type=schema_arg, default=None, help="id or name (default: all schemas)")
    c.add_argument("--data", default="data/photos/train")
    c.add_argument("--names", help="comma-separated file-name prefixes")
    c.add_argument("--resize", type=int, default=1024, help="resize photos to this width first (web size)")
    c.add_argument("--crop-w", type=int, default=384)
    c.add_argument("--crop-h", type=int, default=288)
    c.add_argument("--astronaut", action="store_true", help="add skimage's astronaut (skin)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", default="docs/results/default-contact-sheet.png")
    c.set_defaults(func=_contact)
