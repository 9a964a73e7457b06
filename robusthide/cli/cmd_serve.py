"""``robusthide serve``: the HTTP service and its page (:mod:`robusthide.service`) on uvicorn."""

from __future__ import annotations

import argparse
import socket

from robusthide import RobustHideError
from robusthide.cli.cmd_watermark import schema_arg


def _check_port(host: str, port: int) -> None:
    """A one-line error now, rather than uvicorn's log and exit, when the address cannot be listened on."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(infos[0][4])
    except OSError as e:
        raise RobustHideError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None


def _serve(a: argparse.Namespace) -> int:
    try:
        import uvicorn

        from robusthide.service import Settings, create_app
    except ModuleNotFoundError as e:
        raise RobustHideError(f"robusthide serve needs {e.name}: pip install 'robusthide[serve]'") from None
    if not 0 < a.port < 65536:
        raise RobustHideError(f"--port must be in 1..65535, got {a.port}")
    if not 0 <= a.threads <= 256:
        raise RobustHideError(f"--threads must be in 0..256, got {a.threads}")
    if a.threads:  # one intra-op thread per job by default: jobs run side by side (--max-jobs), and with a
        import torch  # busy core two threads made one call 4-12x slower (docs/results/bench-threads.md)

        torch.set_num_threads(a.threads)
    pixels = {} if a.max_pixels is None else {"max_pixels": a.max_pixels}
    settings = Settings(model=a.model, schema=a.schema, device=a.device, max_bytes=a.max_bytes,
                        max_jobs=a.max_jobs, timeout_s=a.timeout, **pixels)
    _check_port(a.host, a.port)
    app = create_app(settings)
    host = f"[{a.host}]" if ":" in a.host else a.host
    print(f"robusthide: serving {app.state.watermarker.name} on http://{host}:{a.port}/ "
          f"(page at /, API docs at /docs); Ctrl-C stops", flush=True)
    uvicorn.run(app, host=a.host, port=a.port, log_level=a.log_level)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="HTTP service and web page: embed, extract, detect, capacity, health")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", default="default", help="zoo name or path to a robusthide .safetensors")
    p.add_argument("--schema", type=schema_arg, default=None, help="default payload schema, id or name")
    p.add_argument("--device", default="cpu", help="torch device of the model (cpu, cuda)")
    p.add_argument("--max-bytes", type=int, default=25 * 1024 * 1024, help="largest upload in bytes (413 above)")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="largest image, width x height (413 above; default: the CLI's limit, 50 MP)")
    p.add_argument("--max-jobs", type=int, default=2, help="requests marking or reading at once (503 above)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request (504 past it)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads per job (default 1; 0: torch's default)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=_serve)
