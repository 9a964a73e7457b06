"""``robusthide bench serve``: load test of the HTTP service on loopback.

``robusthide serve`` is started in a subprocess on a free loopback port (so the clients do not share its
interpreter); ``clients`` threads, each with its own HTTP connection, send ``requests`` requests per endpoint
and size as fast as the answers come, after one untimed warm-up request. Reported per row: requests/s
(timed requests / wall time of the row), p50/p99/mean latency of the requests (client side: upload, job,
answer), the errors. ``embed`` asks for the marked file itself (``response=image``, PNG), ``extract`` reads
a marked PNG. The images are skimage's astronaut resized to each size, uploaded as PNG.
"""

from __future__ import annotations

import io
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from robusthide import RobustHideError

SIZES = {"512x512": (512, 512), "1920x1080": (1080, 1920)}


def _png(h: int, w: int) -> bytes:
    from PIL import Image
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((w, h), Image.BICUBIC).save(buf, format="PNG")
    return buf.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, max_jobs: int, timeout_s: float = 600.0) -> tuple[subprocess.Popen, str]:
    """``robusthide serve`` in a subprocess on a free loopback port, once /health answers: (process, url)."""
    import httpx2

    port = _free_port()
    cmd = [sys.executable, "-m", "robusthide", "serve", "--host", "127.0.0.1", "--port", str(port), "--model",
           model, "--max-jobs", str(max_jobs), "--timeout", str(timeout_s), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RobustHideError(f"the service did not start: {(proc.stderr.read() or '').strip()[-300:]}")
        try:
            if httpx2.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx2.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RobustHideError("the service did not answer /health within 120 s")


def _load(url: str, path: str, upload: bytes, fields: dict[str, str], clients: int, n: int) -> dict[str, Any]:
    """``n`` timed requests from ``clients`` threads; latencies in ms, requests/s, errors."""
    import httpx2

    lock, left = threading.Lock(), [n]
    lat: list[float] = []
    errors: list[str] = []

    def client() -> None:
        with httpx2.Client(base_url=url, timeout=600) as c:
            while True:
                with lock:
                    if left[0] == 0:
                        return
                    left[0] -= 1
                t0 = time.perf_counter()
                r = c.post(path, files={"image": ("bench.png", upload, "image/png")}, data=fields)
                dt = 1000 * (time.perf_counter() - t0)
                with lock:
                    (lat.append(dt) if r.status_code == 200 else errors.append(f"{r.status_code}: {r.text[:80]}"))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as ex:
        for f in [ex.submit(client) for _ in range(clients)]:
            f.result()
    wall = time.perf_counter() - t0
    a = np.asarray(lat) if lat else np.asarray([np.nan])
    return {"requests": n, "ok": len(lat), "errors": len(errors), "first_error": errors[0] if errors else None,
            "wall_s": round(wall, 2), "rps": round(len(lat) / wall, 2),
            "p50_ms": round(float(np.percentile(a, 50)), 1), "p99_ms": round(float(np.percentile(a, 99)), 1),
            "mean_ms": round(float(np.mean(a)), 1)}


def run(out: str | Path, model: str = "default", clients: int = 4, requests: int = 16,
        sizes: list[str] | None = None, refine: int | None = None, note: str = "") -> dict[str, Any]:
    """Measure the service, write ``<out>.json`` and ``<out>.md``, and return the results."""
    import httpx2

    names = list(SIZES) if sizes is None else sizes
    bad = [s for s in names if s not in SIZES]
    if bad or clients < 1 or requests < 1:
        raise RobustHideError(f"sizes must be among {', '.join(SIZES)}, clients and requests >= 1")
    load0 = os.getloadavg()
    proc, url = start_server(model, max_jobs=clients)
    rows = []
    try:
        embed_fields = {"message": "1234", "response": "image"} | ({} if refine is None else {"refine": str(refine)})
        for name in names:
            upload = _png(*SIZES[name])
            with httpx2.Client(base_url=url, timeout=600) as c:  # warm-up, and the marked file extract reads
                r = c.post("/embed", files={"image": ("bench.png", upload, "image/png")}, data=embed_fields)
                if r.status_code != 200:
                    raise RobustHideError(f"embed failed during the warm-up: {r.text[:200]}")
                marked = r.content
                c.post("/extract", files={"image": ("bench.png", marked, "image/png")})
            for endpoint, data, fields in (("embed", upload, embed_fields), ("extract", marked, {})):
                row = _load(url, "/" + endpoint, data, fields, clients, requests)
                rows.append({"size": name, "endpoint": endpoint, "upload_bytes": len(data), **row})
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    cmd = f"robusthide bench serve --out {out} --model {model} --clients {clients} --requests {requests}"
    cmd += "".join([f" --sizes {','.join(names)}" if sizes else "", f" --refine {refine}" if refine is not None else "",
                    f" --note {note!r}" if note else ""])
    res = {"command": cmd, "model": model, "clients": clients, "server_max_jobs": clients,
           "refine": "the model's default" if refine is None else refine, "cpus": os.cpu_count(),
           "cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
           "load_average_before": [round(x, 2) for x in load0],
           "load_average_after": [round(x, 2) for x in os.getloadavg()], "note": note, "rows": rows}
    _write(res, Path(out))
    return res


def _write(res: dict[str, Any], out: Path) -> None:
    import json

    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    lines = [f"# robusthide serve under load ({res['model']}, {res['clients']} clients, loopback)", "",
             f"Command: `{res['command']}`", "",
             f"{res['cpus']} CPUs ({res['cpu']}), Python {res['python']}; load average (1, 5, 15 min) "
             f"{res['load_average_before']} before, {res['load_average_after']} after"
             + (f". Note: {res['note']}" if res["note"] else "") + ".", "",
             f"The service ran in its own process with --max-jobs {res['server_max_jobs']}; embed refinement: "
             f"{res['refine']}; embed returns the marked PNG (`response=image`), extract reads a marked PNG. "
             "Latency is the client's: upload, job, answer.", "",
             "| image | endpoint | upload | requests (ok) | requests/s | p50 ms | p99 ms | mean ms |",
             "|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['size']} | {r['endpoint']} | {r['upload_bytes'] / 1e6:.2f} MB | {r['requests']} "
                     f"({r['ok']}) | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | {r['mean_ms']} |")
    n = min((r["ok"] for r in res["rows"]), default=0)
    lines += ["", f"With {n} timed requests a row, p99 is close to the slowest request."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")

