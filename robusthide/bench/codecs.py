"""``robusthide bench codecs``: milliseconds per image of every codec, 1 worker vs all cores.

A batch of ``--batch`` (16) different RGB images -- square crops of scikit-image fixtures (astronaut,
coffee, chelsea, rocket, ...) resized with Lanczos to each ``--sizes`` value -- goes through each codec
spec (encode + decode, in memory, as in training). For each spec, size and worker count (1, and all
cores: :func:`robusthide.codecs.base.default_workers`) we time one warm-up call (pools started, libraries
loaded) then ``--repeats`` calls and report the median per image; plus the mean bits per pixel and PSNR
of the decoded batch (a sanity check of the settings). Video codecs in ``mode=clip`` code the batch as ONE
clip of 16 unrelated frames (paper 000's setup); "workers" then is the encoder's thread count.

Writes ``<out>.json`` and ``<out>.md`` (the md has the exact command and the machine: CPU, core count,
load, library versions). Timings depend on what else runs: pass ``--note`` to say so.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from robusthide.metrics import psnr_from_mse

DEFAULT_SPECS = [
    "jpeg:q=50", "jpeg:q=50,backend=simplejpeg", "jpeg:q=50,backend=opencv",
    "jpeg2000:x1000=500", "jpeg2000:x1000=100", "jpeg2000:ratio=20", "jpeg2000:psnr=35",
    "webp:q=50", "avif:q=50", "jxl:d=2", "png",
    "mpeg4", "xvid", "h264:crf=23", "h264:crf=23,preset=ultrafast,mode=frames", "h265:crf=28",
    "vp9:crf=31", "av1:crf=35",
    "resize:0.5", "crop:0.9", "resize:0.5|jpeg:q=80",
]

_FIXTURES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
             "cat", "retina")


def fixture_batch(n: int, size: int) -> np.ndarray:
    """``n`` different uint8 ``size x size`` RGB images from scikit-image fixtures (deterministic)."""
    from PIL import Image
    from skimage import data

    srcs = []
    for name in _FIXTURES:
        im = np.asarray(getattr(data, name)())
        if im.ndim == 2:
            im = np.repeat(im[..., None], 3, axis=2)
        srcs.append(np.ascontiguousarray(im[..., :3]))
    out = []
    for i in range(n):
        im = srcs[i % len(srcs)]
        h, w = im.shape[:2]
        # variant k of an image: a square crop whose side and offset depend on k
        k = i // len(srcs)
        side = int(min(h, w) * (1.0 if k == 0 else max(0.4, 0.75 - 0.1 * (k - 1))))
        y0 = (h - side) // 2 if k == 0 else ((k * 37) % max(1, h - side + 1))
        x0 = (w - side) // 2 if k == 0 else ((k * 53) % max(1, w - side + 1))
        crop = Image.fromarray(im[y0:y0 + side, x0:x0 + side])
        out.append(np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS)))
    return np.stack(out)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return psnr_from_mse(mse)


def time_codec(spec: str, batch: np.ndarray, workers: int, repeats: int) -> dict[str, Any]:
    """Median ms per image (and bpp, PSNR) of ``spec`` on ``batch`` with ``workers`` workers."""
    from robusthide.codecs import get_codec

    codec = get_codec(spec, workers=workers)
    res = codec(batch)  # warm-up: pools, lazy imports, encoder init
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        codec(batch)
        times.append(time.perf_counter() - t0)
    n, h, w = batch.shape[:3]
    p = _psnr(batch, res.images)
    return {"ms_per_image": round(1e3 * statistics.median(times) / n, 3),
            "ms_per_image_min": round(1e3 * min(times) / n, 3),
            "bpp": round(8.0 * float(np.mean(res.nbytes)) / (h * w), 4),
            "psnr": None if math.isinf(p) else round(p, 2),
            "library": codec.library, "releases_gil": codec.releases_gil}


def gil_probe(spec: str, image: np.ndarray, seconds: float = 1.0) -> dict[str, Any]:
    """Does ``spec``'s library hold the GIL? Code ``image`` repeatedly (1 worker, in this thread) while
    another thread sleeps 0.5 ms in a loop: a library that releases the GIL barely delays the sleeper's
    wake-ups; one that holds it delays them by up to a whole call. Returns the median and 95th
    percentile delay, the mean call length, and ``holds_gil`` = median delay > max(1 ms, call / 10)
    (libraries that release the GIL give medians of ~0.1 ms whatever the call length)."""
    from robusthide.codecs import get_codec

    codec = get_codec(spec, workers=1)
    codec(image)
    stop = threading.Event()
    delays: list[float] = []

    def sleeper() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            time.sleep(0.0005)
            delays.append(time.perf_counter() - t - 0.0005)

    th = threading.Thread(target=sleeper, daemon=True)
    th.start()
    t0, calls = time.perf_counter(), 0
    while calls == 0 or time.perf_counter() - t0 < seconds:
        codec(image)
        calls += 1
    call_ms = 1e3 * (time.perf_counter() - t0) / calls
    stop.set()
    th.join()
    d = np.array(delays or [0.0]) * 1e3
    p50 = float(np.percentile(d, 50))
    return {"wake_delay_p50_ms": round(p50, 3), "wake_delay_p95_ms": round(float(np.percentile(d, 95)), 3),
            "call_ms": round(call_ms, 3), "holds_gil": bool(p50 > max(1.0, call_ms / 10))}


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("numpy", "pillow", "opencv-python-headless", "av", "imagecodecs", "simplejpeg",
                 "pillow-avif-plugin", "pillow-jxl-plugin", "scikit-image"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    try:
        import av

        out["ffmpeg (libavcodec)"] = ".".join(map(str, av.library_versions["libavcodec"]))
    except Exception:  # noqa: BLE001
        pass
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    from robusthide.codecs.base import default_workers

    info = {"cpu": _cpu_model(), "cpu_count": os.cpu_count(), "usable_cores": default_workers(),
            "platform": platform.platform(), "versions": _versions()}
    if hasattr(os, "getloadavg"):
        info["loadavg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def command_line(out: str, sizes: list[int], specs: list[str], batch: int, repeats: int, note: str,
                 gil_seconds: float = 1.0) -> str:
    import shlex

    cmd = ["robusthide", "bench", "codecs", "--out", out, "--sizes", ",".join(map(str, sizes)),
           "--batch", str(batch), "--repeats", str(repeats)]
    if gil_seconds != 1.0:
        cmd += ["--gil-seconds", f"{gil_seconds:g}"]
    if specs != DEFAULT_SPECS:
        cmd += ["--codecs", *specs]
    if note:
        cmd += ["--note", note]
    return " ".join(shlex.quote(c) for c in cmd)


def run(out: str, sizes: list[int] | None = None,
        specs: list[str] | None = None, batch: int = 16, repeats: int = 3, note: str = "",
        progress: Callable[[str], None] | None = None, gil_seconds: float = 1.0) -> dict[str, Any]:
    """Run the benchmark, write ``<out>.json`` and ``<out>.md``, return the results; ``progress`` is called
    with a line per measured row."""
    from robusthide import RobustHideError
    from robusthide.codecs import CodecError, CodecUnavailableError, get_codec
    from robusthide.codecs.base import default_workers

    sizes = sizes or [128, 512]
    specs = specs or list(DEFAULT_SPECS)
    if batch < 1 or repeats < 1 or any(s < 8 for s in sizes):
        raise RobustHideError(f"batch and repeats must be >= 1 and every size >= 8, got {batch}, {repeats}, {sizes}")
    for spec in specs:  # a malformed spec fails now; a missing library gives 'n/a' rows
        try:
            get_codec(spec)
        except CodecUnavailableError:
            pass
    all_cores = default_workers()
    worker_counts = sorted({1, all_cores})
    info = machine_info()
    t_start = time.time()
    rows = []
    probes: dict[str, dict[str, Any]] = {}
    batches = {s: fixture_batch(batch, s) for s in sizes}
    for spec in specs:
        for size in sizes:
            for wk in worker_counts:
                row: dict[str, Any] = {"spec": spec, "size": size, "workers": wk}
                try:
                    row.update(time_codec(spec, batches[size], wk, repeats))
                except CodecError as e:  # missing library, or a failure: recorded, the run goes on
                    row["error"] = str(e)
                rows.append(row)
                if progress:
                    progress(f"{spec:44s} {size:4d}px {wk:2d} worker(s): "
                             f"{row.get('ms_per_image', row.get('error'))} ms/image")
        if gil_seconds > 0 and "error" not in rows[-1]:
            try:
                probe = gil_probe(spec, batches[sizes[-1]][0], gil_seconds)
            except CodecError as e:
                probe = {"error": str(e)}
            probes[spec] = probe
            if progress:
                progress(f"{spec:44s} GIL probe: {probe}")
    res = {"command": command_line(out, sizes, specs, batch, repeats, note, gil_seconds), "note": note,
           "batch": batch, "repeats": repeats, "sizes": sizes, "workers": worker_counts,
           "machine": info, "seconds": round(time.time() - t_start, 1), "rows": rows, "gil_probe": probes}
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    Path(str(p) + ".json").write_text(json.dumps(res, indent=1) + "\n")
    Path(str(p) + ".md").write_text(to_markdown(res))
    return res


def to_markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    sizes, wks = res["sizes"], res["workers"]
    by = {(r["spec"], r["size"], r["workers"]): r for r in res["rows"]}
    specs = list(dict.fromkeys(r["spec"] for r in res["rows"]))
    lines = [
        "# Codec speed: milliseconds per image (encode + decode, in memory)", "",
        f"Command: `{res['command']}`", "",
        f"Machine: {m['cpu']}; {m['cpu_count']} CPUs, {m['usable_cores']} usable (= \"all cores\" below); "
        f"{m['platform']}; load average at start {m.get('loadavg_at_start', '?')}.", "",
        "Libraries: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".", "",
        f"Batch of {res['batch']} different fixture images per call; median of {res['repeats']} timed calls "
        "after one warm-up. Video codecs with the default `mode=clip` code the batch as one clip (their "
        "workers are encoder threads). bpp and PSNR: mean over the batch at the largest size. "
        "GIL probe (largest size, one image per call, 1 worker): median delay of a thread's 0.5 ms sleeps "
        "while this thread codes; a library holding the GIL delays it by a large part of a call.", "",
    ]
    if res.get("note"):
        lines += [f"Note: {res['note']}", ""]
    head = ["spec"] + [f"{s}px, {w} worker{'s' if w > 1 else ''}" for s in sizes for w in wks]
    head += [f"bpp @{sizes[-1]}", f"PSNR @{sizes[-1]}", "pool", "GIL probe: wake delay / call ms", "library"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for spec in specs:
        cells = [f"`{spec}`"]
        for s in sizes:
            for w in wks:
                r = by.get((spec, s, w), {})
                cells.append(f"{r['ms_per_image']:.2f}" if "ms_per_image" in r else "n/a")
        big = by.get((spec, sizes[-1], wks[0]), {})
        cells.append(f"{big['bpp']:.3f}" if "bpp" in big else "")
        cells.append(("inf" if big.get("psnr") is None else f"{big['psnr']:.2f}") if "bpp" in big else "")
        cells.append(("threads" if big.get("releases_gil") else "processes") if "bpp" in big else "")
        pr = res.get("gil_probe", {}).get(spec) or {}
        cells.append(f"{pr['wake_delay_p50_ms']:.2f} / {pr['call_ms']:.1f}"
                     + (" (holds GIL)" if pr["holds_gil"] else "") if "call_ms" in pr else "")
        cells.append(big.get("library", big.get("error", "")))
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", f"Total time {res['seconds']} s.", ""]
    return "\n".join(lines)
