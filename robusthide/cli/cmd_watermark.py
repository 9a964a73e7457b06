"""``robusthide embed|extract|detect|capacity``: watermark image files and folders (and videos).

Two runtimes (``--runtime``): ``torch`` (:class:`robusthide.watermark.watermarker.Watermarker`: everything) and
``onnx`` (:class:`robusthide.onnxrt.OnnxWatermarker`: 8-bit images on the fast path, no video, no search, no
PyTorch); ``auto``, the default, takes torch when it is installed and onnx otherwise (a
``pip install 'robusthide[onnx]'``). What only torch does is refused on onnx with one line naming the extra."""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from robusthide import RobustHideError
from robusthide.cli.args import SEARCHES, STDIO, is_stdio, read_image, write_stdout

TORCH_HINT = "pip install 'robusthide[torch]'"

VIDEO_EXTS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"}
#: upper bounds of the numeric options (a refinement of 10^9 steps would never end)
MAX_REFINE, MAX_WORKERS = 1000, 64


def _is_video(p: Path) -> bool:
    return p.suffix.lower() in VIDEO_EXTS


def _inputs(src: Path, recursive: bool, exclude: tuple[Path, ...] = ()) -> list[Path]:
    """The files to process: ``src`` itself, or with ``--recursive`` the regular image (of a writable format)
    and video files under it, leaving out the ``exclude`` folders (an output folder inside the input tree)."""
    if is_stdio(src):
        return [src]
    if src.is_dir():
        if not recursive:
            raise RobustHideError(f"{src} is a folder: add --recursive")
        from robusthide.io.safe import list_images
        from robusthide.watermark.files import FORMATS

        files = list_images(src, set(FORMATS) | VIDEO_EXTS, exclude=exclude)
        if not files:
            raise RobustHideError(f"no images in {src}")
        return files
    from robusthide.io.safe import check_regular

    return [check_regular(src)]


def _check_range(name: str, v: Any, lo: float, hi: float, integer: bool = True, lo_open: bool = False) -> None:
    bad = v is None or isinstance(v, bool) or (integer and not isinstance(v, int)) or v != v
    if not bad:
        bad = (v <= lo if lo_open else v < lo) or v > hi
    if bad:
        what = "an integer" if integer else "a number"
        raise RobustHideError(f"{name} must be {what} in {'(' if lo_open else '['}{lo:g}, {hi:g}], got {v!r}")


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError as e:
        if e.name != "torch":
            raise
        return False
    return True


def _has_onnxruntime() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def _runtime(a: argparse.Namespace) -> str:
    """``torch`` or ``onnx``: ``--runtime`` as given; for ``auto``, onnx for a ``--model`` folder written by
    ``export-onnx``, else torch when it is installed, else onnxruntime (decided once per command)."""
    rt = getattr(a, "runtime_used", None)
    if rt is None:
        rt = getattr(a, "runtime", "auto")
        if rt == "auto":
            model = getattr(a, "model", None)
            if model and (Path(str(model)) / "robusthide-onnx.json").is_file():
                rt = "onnx"  # --model FOLDER written by export-onnx
            elif _has_torch():
                rt = "torch"
            elif _has_onnxruntime():
                rt = "onnx"
            else:
                raise RobustHideError("this command needs PyTorch or onnxruntime: pip install 'robusthide[onnx]' "
                                      "(marks on the fast path and reads) or 'robusthide[torch]'")
        a.runtime_used = rt
    if rt == "onnx":
        if getattr(a, "refine", None):
            raise RobustHideError(f"--refine {a.refine} needs PyTorch: {TORCH_HINT} (the ONNX runtime marks on the "
                                  "fast path, --refine 0)")
        if getattr(a, "refine_precision", None):
            raise RobustHideError(f"--refine-precision needs PyTorch: {TORCH_HINT} (the ONNX runtime marks on the "
                                  "fast path)")
        if getattr(a, "search", None) not in (None, "none"):
            raise RobustHideError(f"--search {a.search} needs PyTorch: {TORCH_HINT} (the ONNX runtime reads the "
                                  "whole image)")
    return rt


def _no_video_on_onnx(a: argparse.Namespace, p: Path) -> None:
    if _is_video(p) and _runtime(a) == "onnx":
        raise RobustHideError(f"{p}: video needs PyTorch: {TORCH_HINT} (the ONNX runtime marks and reads images)")


def _check_options(a: argparse.Namespace) -> None:
    """Every numeric option against its valid range (one line naming the option)."""
    _check_range("--workers", a.workers, 1, MAX_WORKERS)
    _check_range("--threads", getattr(a, "threads", 1), 0, 256)
    if getattr(a, "max_pixels", None) is not None:
        _check_range("--max-pixels", a.max_pixels, 1, 10**10)
    if getattr(a, "func", None) is _embed:
        _check_range("--quality", a.quality, 1, 100)
        _check_range("--strength", a.strength, 0, 4, integer=False, lo_open=True)
        if a.refine is not None:
            _check_range("--refine", a.refine, 0, MAX_REFINE)
        if _runtime(a) == "onnx":  # no video there (refused per file): its options do not apply
            return
        from robusthide.watermark.refine import REFINE_PRECISIONS

        if a.refine_precision is not None and a.refine_precision not in REFINE_PRECISIONS:
            raise RobustHideError(f"--refine-precision must be one of {', '.join(REFINE_PRECISIONS)}, "
                                  f"got {a.refine_precision!r}")
        from robusthide.watermark.video import CRF_RANGE, ENCODERS

        if a.video_codec not in ENCODERS:
            raise RobustHideError(f"unknown video codec '{a.video_codec}' ({', '.join(ENCODERS)})")
        lo, hi = CRF_RANGE.get(a.video_codec, (0, 63))
        _check_range("--crf", a.crf, lo, hi)


def _listed(a: argparse.Namespace) -> tuple[list[Path], Path] | None:
    """With ``--list FILE``: (the files it names, one path a line, blank lines and ``#`` comments skipped,
    ``-`` for stdin; as absolute paths) and their common folder, under which outputs keep their relative
    paths; None without ``--list``."""
    import os

    lst = getattr(a, "list", None)
    if lst is None:
        if getattr(a, "input", None) is None:
            raise RobustHideError("give an input (or --list FILE)")
        return None
    if a.input is not None:
        raise RobustHideError("give an input or --list FILE, not both")
    try:
        text = sys.stdin.read() if is_stdio(lst) else Path(lst).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise RobustHideError(f"{lst}: cannot read the file list ({type(e).__name__})") from None
    files = [Path(s).absolute() for s in (ln.strip() for ln in text.splitlines()) if s and not s.startswith("#")]
    if not files:
        raise RobustHideError(f"{lst}: the file list is empty")
    return files, Path(os.path.commonpath([str(f.parent) for f in files]))


def load_watermarker(a: argparse.Namespace):
    """The watermarker of ``--model`` / ``--schema`` on the chosen runtime (torch or onnx), with ``--threads``."""
    threads = getattr(a, "threads", 1)
    if _runtime(a) == "onnx":
        from robusthide.onnxrt import OnnxWatermarker

        return OnnxWatermarker.from_pretrained(a.model, threads=threads or None, schema=a.schema)
    import torch

    from robusthide.watermark.watermarker import Watermarker

    if threads:  # one intra-op thread by default: with a busy core, 2 threads made a call 4-12x slower
        torch.set_num_threads(threads)  # (docs/results/bench-threads.md); parallelism comes from --workers
    return Watermarker.from_pretrained(a.model, schema=a.schema)


def _message(a: argparse.Namespace) -> Any:
    if a.message is None:
        raise RobustHideError("give the message with -m")
    from robusthide.payload.codec import message_value

    return message_value(a.message, a.kind)


def _encode(wm: Any, a: argparse.Namespace) -> Any:
    """The payload bits of ``-m``; a message too long says where it would fit."""
    from robusthide.payload import MessageTooLongError
    from robusthide.zoo.payload_fit import where_it_fits_text

    try:
        return wm.encode_message(_message(a), kind=a.kind)
    except MessageTooLongError as e:  # --schema and --model choose what the hint names
        raise RobustHideError(f"{e}; {where_it_fits_text(_message(a), a.kind, e.schema)}") from None


def _file_psnr(orig: Any, back: Any) -> float:
    """PSNR (dB) of the file as saved against the cover: :func:`robusthide.metrics.psnr` for 8-bit RGB, the
    same formula with the right peak for gray, alpha and 16-bit images."""
    import numpy as np

    from robusthide.metrics import psnr, psnr_from_mse

    x, y = np.asarray(orig), np.asarray(back)
    if x.dtype == np.uint16 and y.dtype == np.uint8:  # 16-bit cover saved as an 8-bit format
        x = np.rint(x.astype(np.float64) / 257).astype(np.uint8)
    if x.shape != y.shape and x.shape[:2] == y.shape[:2]:  # gray (+ alpha) saved as RGB(A), e.g. WebP
        x, y = _rgba(x), _rgba(y)
    if x.shape != y.shape:
        raise RobustHideError(f"the saved image is {y.shape}, the cover {x.shape}: the file does not hold the image")
    if x.dtype == np.uint8 and x.ndim == 3 and x.shape[2] == 3:
        return round(float(psnr(x, y)), 2)
    peak = 65535.0 if x.dtype == np.uint16 else 255.0
    mse = float(np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else round(float(psnr_from_mse(np.float64(mse), peak)), 2)


def _rgba(a: Any) -> Any:
    """H x W (x 1..4) -> H x W x 4: gray repeated to RGB, alpha (or full opacity) last."""
    import numpy as np

    a = a[..., None] if a.ndim == 2 else a
    c = a.shape[2]
    rgb = np.repeat(a[..., :1], 3, axis=2) if c in (1, 2) else a[..., :3]
    alpha = a[..., -1:] if c in (2, 4) else np.full(a.shape[:2] + (1,), np.iinfo(a.dtype).max, a.dtype)
    return np.concatenate([rgb, alpha], axis=2)


def _expected(wm, bits) -> tuple[Any, Any]:
    """(message, kind) that ``bits`` decode to: what a read-back must find."""
    import numpy as np

    from robusthide.payload import decode_bits

    r = decode_bits(np.asarray(bits, dtype=np.float64), wm.n_bits)
    return r.message, r.kind


def _reads_back(wm, array: Any, bits) -> bool:
    try:
        r = wm.extract(array)
    except RobustHideError:
        return False
    return bool(r.detected) and (r.message, r.kind) == _expected(wm, bits)


def _why_not(wm, src: Path, marked: Any, bits, fmt: str, a: argparse.Namespace, size: tuple[int, int]) -> str:
    """Why the mark does not read back from the saved image: the cover (too small / too flat) or the
    encoding (quality too low)."""
    w, h = size
    if not _reads_back(wm, marked, bits):
        return (f"{src}: the mark does not read back even before encoding: the image ({w}x{h}) is too small or too "
                "flat to hold it (try a larger image or --strength; --force writes it anyway)")
    if fmt in ("JPEG", "WEBP"):
        return (f"{src}: the mark does not read back from the saved {fmt} file: --quality {a.quality} is too low "
                "(raise it; --force writes it anyway)")
    return f"{src}: the mark does not read back from the saved file (--force writes it anyway)"


def _refine(wm, a: argparse.Namespace, steps: int | None) -> Any:
    """The refinement of ``embed``: ``steps`` (None: the model's), at ``--refine-precision`` when given."""
    precision = getattr(a, "refine_precision", None)
    if precision is None:
        return steps
    import dataclasses

    return dataclasses.replace(wm.refine_config(steps), precision=precision)


def _embed_one(wm, src: Path, dst: Path, a: argparse.Namespace, bits) -> dict[str, Any]:
    """Mark one file, re-read what was written (before it replaces anything) and check the mark reads back;
    the PSNR reported is that of the saved file."""
    from robusthide.io.safe import atomic_output
    from robusthide.watermark.files import encode_image, output_format, read_image_file

    max_px = getattr(a, "max_pixels", None)
    force = getattr(a, "force", False)
    _no_video_on_onnx(a, src)
    if _is_video(src):
        if is_stdio(dst):
            raise RobustHideError("-o - (stdout) takes an image, not a video")
        from robusthide.watermark.video import embed_video, extract_video, video_psnr

        def check(tmp: Path) -> dict[str, Any]:
            ok = False
            try:
                r = extract_video(wm, tmp)
                ok = bool(r.detected) and (r.message, r.kind) == _expected(wm, bits)
            except RobustHideError:
                pass
            if not ok and not force:
                raise RobustHideError(f"{src}: the mark does not read back from the encoded video: --crf {a.crf} is "
                                      "too high, or the video too small or too flat (lower --crf; --force writes it "
                                      "anyway)")
            return {"psnr": video_psnr(src, tmp), "verified": ok}

        return embed_video(wm, src, dst, bits, strength=a.strength, crf=a.crf, codec=a.video_codec,
                           in_place=a.in_place, refine=_refine(wm, a, a.refine or 0),
                           check=check)  # frames: fast path unless asked
    fmt = "PNG" if is_stdio(dst) and not a.format else output_format(dst, a.format)  # -o -: PNG unless --format
    f = read_image(src, max_pixels=max_px)  # - : stdin
    marked = wm.embed_bits(f.array, bits, strength=a.strength, refine=_refine(wm, a, a.refine))
    data = encode_image(marked, fmt, a.quality, f.icc, f.exif)
    size = (int(f.array.shape[1]), int(f.array.shape[0]))
    limit = max(max_px or 0, size[0] * size[1])

    def verify(back: Any) -> dict[str, Any]:
        ok = _reads_back(wm, back, bits)
        if not ok and not force:
            raise RobustHideError(_why_not(wm, src, marked, bits, fmt, a, size))
        return {"psnr": _file_psnr(f.array, back), "verified": ok}

    if is_stdio(dst):
        info = verify(read_image_file(dst, max_pixels=limit, data=data).array)
        write_stdout(data)
    else:
        with atomic_output(dst, protect=[] if a.in_place or is_stdio(src) else [src]) as tmp:
            with open(tmp, "wb") as fh:
                fh.write(data)
            info = verify(read_image_file(tmp, max_pixels=limit).array)  # the file as saved, re-read
    return {"input": str(src), "output": str(dst), **info, "bytes": len(data), "size": list(size)}


def _embed(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    _check_options(a)
    listed = _listed(a)  # --list FILE: the files it names, outputs under -o keep paths relative to their root
    src = listed[1] if listed else Path(a.input)
    out_dir = (Path(a.output),) if a.output and not listed and src.is_dir() else ()  # never walk into the output
    files = listed[0] if listed else _inputs(src, a.recursive, exclude=out_dir)
    if a.in_place:
        if a.output:
            raise RobustHideError("--in-place and -o exclude each other")
        if is_stdio(src):
            raise RobustHideError("--in-place needs a file, not - (stdin)")
        dests = files
    else:
        if not a.output:
            raise RobustHideError("give the output with -o (or --in-place)")
        out = Path(a.output)
        if listed or src.is_dir():
            dests = [out / f.relative_to(src) for f in files]
            if a.format:
                dests = [d.with_suffix("." + a.format.lower().replace("jpeg", "jpg")) for d in dests]
        else:
            dests = [out]
        if is_stdio(out) and (listed or len(files) != 1):
            raise RobustHideError("-o - (stdout) takes one image, not a folder")
    # with -o - the image goes to stdout: every human (or JSON) line goes to stderr
    say = sys.stderr if is_stdio(a.output) else sys.stdout
    wm = load_watermarker(a)
    bits = _encode(wm, a)
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

    # one file (or one worker): in the main thread, so that Ctrl-C stops it at once
    pool = ThreadPoolExecutor(a.workers) if len(todo) > 1 and a.workers > 1 else None
    try:
        # tqdm.write prints above the progress bar, so per-file lines never interleave with it
        results = pool.map(work, todo) if pool else map(work, todo)
        for row in tqdm(results, total=len(todo), disable=len(todo) < 2 or a.json, desc="embed"):
            rows.append(row)
            failed += "error" in row
            if a.json:
                print(json.dumps(row), file=say, flush=True)
            elif "error" in row:
                tqdm.write(f"robusthide: error: {row['error']}", file=sys.stderr)
            else:
                if not row.get("verified", True):
                    tqdm.write(f"robusthide: warning: {row['output']}: the mark does not read back (written because "
                               "of --force)", file=sys.stderr)
                tqdm.write(f"{row['output']}: PSNR {row['psnr']:.2f} dB", file=say)
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
    if skipped and not a.json:
        print(f"skipped {skipped} already marked (use --overwrite)", file=sys.stderr)
    return 2 if failed else 0


@contextmanager
def _stage_bar(show: bool):
    """A progress bar over the staged search's later stages of one video (an unmarked clip runs all of them,
    tens of seconds); yields its hook for ``extract_video(progress=...)``, or None when not ``show``n."""
    if not show:
        yield None
        return
    from tqdm import tqdm

    from robusthide.watermark.sync import STAGED_SHARES

    with tqdm(total=len(STAGED_SHARES) - 1, desc="search", unit="stage", leave=False) as bar:
        started: list[str] = []

        def step(stage: str) -> None:  # called as a stage starts: the one before it is done
            bar.set_postfix_str(stage, refresh=False)
            bar.update(1 if started else 0)
            bar.refresh()  # stages last seconds: draw each at once
            started.append(stage)

        yield step


def _extract_rows(a: argparse.Namespace):
    _check_options(a)
    max_px = getattr(a, "max_pixels", None)
    listed = _listed(a)
    files = listed[0] if listed else _inputs(Path(a.input), a.recursive)
    wm = load_watermarker(a)

    def work(p: Path) -> dict[str, Any]:
        try:
            _no_video_on_onnx(a, p)
            if _is_video(p):
                from robusthide.watermark.video import extract_video

                with _stage_bar(len(files) == 1 and not a.json and sys.stderr.isatty()) as progress:
                    r = extract_video(wm, p, search=a.search, progress=progress)
            else:
                img = read_image(p, max_pixels=max_px)  # - : stdin
                r = wm.extract(img.array, search=a.search)
        except RobustHideError as e:
            if len(files) == 1:
                raise
            return {"input": str(p), "error": str(e)}
        d = r.to_dict()
        if not a.bits:
            d.pop("bits"), d.pop("soft")
        return dict(input=str(p), **d)

    if len(files) == 1 or a.workers == 1:
        yield from map(work, files)
        return
    with ThreadPoolExecutor(a.workers) as ex:
        yield from ex.map(work, files)


def _found_how(row: dict[str, Any]) -> str:
    """Where a search found the mark, for the one-line output: mirrored, turned back, a centred crop."""
    geo = row.get("geometry") or {}
    out = ", read mirrored" if geo.get("flip") else ""
    if geo.get("angle"):  # the rotation search's (with ``fill``) or the geometry search's hypotheses
        out += f", turned back {geo['angle']:g} deg" + (" (straightened)" if geo.get("fill") == "crop" else "")
    if row.get("crop_side") is not None and row["crop_side"] < 1:
        out += f", centre of a frame {1 / row['crop_side']:.3f}x larger"
    if geo.get("band"):
        from robusthide.watermark.sync import band_text

        out += f", {band_text(geo)} of a reframed frame"
    if geo.get("corner"):
        from robusthide.watermark.sync import corner_text

        out += f", {corner_text(geo)} of a larger frame"
    if geo.get("anywhere_side"):
        from robusthide.watermark.anywhere import anywhere_text

        out += f", {anywhere_text(geo)} of a larger frame"
    if geo.get("box_px"):
        from robusthide.watermark.inset import inset_text

        out += f", inside {inset_text(geo)}"
    return out


def _extract(a: argparse.Namespace) -> int:
    failed = 0
    for row in _extract_rows(a):
        failed += "error" in row
        if a.json:
            print(json.dumps(row), flush=True)
        elif "error" in row:
            print(f"robusthide: error: {row['error']}", file=sys.stderr)
        elif row["detected"]:
            print(f"{row['input']}: {row['message']!s}  (p={row['p_value']:.2e}, corrected {row['corrected_errors']}"
                  f"{_found_how(row)})")
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
    wm = load_watermarker(a)
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
    p.add_argument("--workers", type=int, default=2, help=f"parallel workers for folders (1-{MAX_WORKERS})")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="intra-op threads per call (default 1: robust when cores are busy; 0: the runtime's default)")
    p.add_argument("--runtime", choices=["auto", "torch", "onnx"], default="auto",
                   help="auto (default): torch when installed, else onnxruntime (always for an export-onnx folder "
                        "as --model); onnx: the torch-free runtime (8-bit images, fast path, no video or --search; "
                        "--model default or an export-onnx folder)")
    p.add_argument("--max-pixels", type=int, default=None, metavar="N",
                   help="refuse images above N pixels, from the header before decoding (default 50 MP)")
    p.add_argument("--list", metavar="FILE", help="process the images named in FILE (one path a line; - for "
                                                  "stdin) instead of INPUT; embed writes them under -o FOLDER")


def _search(p: argparse.ArgumentParser) -> None:
    p.add_argument("--search", choices=SEARCHES, default=None,
                   help="default: the model's own (geometry for geo models, else staged; every search of a whole-image "
                        "model also reads the mirror image). none: the image as it is (fastest); staged: as it is, then"
                        " inset, reframe, slide, rotate, crop, corner, turn and anywhere, each only when the ones "
                        "before find nothing; inset: as it is and each box a photo may fill inside the picture "
                        "(padding, a screenshot, a collage); crop: also read each image as the centre of a larger frame"
                        " (a crop resized back); reframe: as the centred band of a frame of another common aspect ratio"
                        " (a platform's 4:5, 1:1 or 16:9 reframing); slide: as such a band anywhere along its frame (a "
                        "square dragged off the centre); rotate: turned back by -5..5 degrees (black corners or "
                        "straightened); corner: as the corner of a larger frame of the same aspect ratio (a crop "
                        "dragged from one corner, the ratio locked); turn: turned back by 5.5..45 degrees either way "
                        "and by quarter turns; anywhere: as a crop of a larger frame that kept the aspect ratio, at any"
                        " place in it (slower: thousands of placements); geometry: mirror images and the side fractions"
                        " of a crop anywhere; the p-value pays for the search")


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("embed", help="hide a message in an image (or a folder of images, or a video)")
    e.add_argument("input", nargs="?", help=f"image, video or folder; {STDIO} reads an image from stdin")
    e.add_argument("-o", "--output", help=f"output file (or folder with --recursive); {STDIO} writes to stdout "
                                          "(format from --format, default PNG)")
    e.add_argument("-m", "--message", help="the message: digits are an integer (0..2047 by default), "
                                           "anything else text")
    e.add_argument("--kind", choices=["text", "hex", "bytes", "int"], default=None,
                   help="how to read -m (default: an integer if all digits, else text)")
    e.add_argument("--strength", type=float, default=1.0, help="residual strength factor (MBRS), default 1")
    e.add_argument("--refine", type=int, default=None, metavar="STEPS",
                   help="embed-time refinement steps against the decoder (default: the model's; 0 = fast path; "
                        "videos: 0 unless given)")
    e.add_argument("--refine-precision", default=None, metavar="{fp32,bf16}",
                   help="precision of the refinement's decoder passes (default: the model's, fp32); bf16 is about "
                        "twice as fast on a CPU with native bf16 (AVX512-BF16, AMX) or a GPU, and fp32 elsewhere")
    e.add_argument("--format", help="output format: png (default by extension), jpeg, webp, tiff")
    e.add_argument("--quality", type=int, default=95, help="JPEG/WebP output quality (1-100)")
    e.add_argument("--in-place", action="store_true", help="overwrite the input file(s)")
    e.add_argument("--overwrite", action="store_true", help="re-mark outputs that already exist (folders)")
    e.add_argument("--force", action="store_true",
                   help="write the output even when the mark does not read back from it (a warning is printed)")
    e.add_argument("--crf", type=int, default=18, help="video: CRF of the re-encode (0-51 H.264/H.265, 0-63 VP9/AV1)")
    e.add_argument("--video-codec", default="h264", help="video: h264 (default), h265, vp9, av1")
    _common(e)
    e.set_defaults(func=_embed)
    x = sub.add_parser("extract", help="read the message hidden in an image (or folder, or video)")
    x.add_argument("input", nargs="?", help=f"image, video or folder; {STDIO} reads an image from stdin")
    x.add_argument("--bits", action="store_true", help="also print raw and soft bits")
    _common(x)
    _search(x)
    x.set_defaults(func=_extract)
    d = sub.add_parser("detect", help="is a watermark present? exit 0 if found, 1 if not, 2 on error")
    d.add_argument("input", nargs="?", help=f"image, video or folder; {STDIO} reads an image from stdin")
    d.set_defaults(func=_detect, bits=False)
    _common(d)
    _search(d)
    c = sub.add_parser("capacity", help="payload capacity of a model and schema")
    c.add_argument("--model", default="default")
    c.add_argument("--schema", type=schema_arg, default=None, help="id or name (default: all schemas)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_capacity)
