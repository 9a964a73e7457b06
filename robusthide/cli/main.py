"""Entry point of the ``robusthide`` command.

Each ``robusthide/cli/cmd_*.py`` module defines ``register(subparsers)`` that adds its subcommands;
each subcommand sets ``func`` (a callable taking the parsed args, returning an exit code or None).
User errors are raised as :class:`robusthide.RobustHideError` and printed as one line, exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from robusthide import RobustHideError, __version__

COMMAND_MODULES = [
    "cmd_codecs",    # codecs, attack
    "cmd_bench",     # bench codecs|train|api
    "cmd_data",      # data photos
    "cmd_train",     # train, plot
    "cmd_watermark", # embed, extract, detect, capacity
    "cmd_checks",    # fpr, contact-sheet
    "cmd_models",    # models
    "cmd_evaluate",  # evaluate, reproduce
    "cmd_demo",      # demo
    "cmd_imagehide", # hide-image, reveal-image
    "cmd_latent",    # latent embed|extract|decode
    "cmd_onnx",      # export-onnx
    "cmd_scale",     # scale embed|extract (Ray Data)
    "cmd_serve",     # serve (HTTP service and web page)
]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="robusthide", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--version", action="version", version=f"robusthide {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"robusthide.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"robusthide.cli.{name}":
                continue
            raise
        mod.register(sub)
    return p


def _closed_pipe() -> int:
    """The reader of stdout went away (``robusthide models --card X | head -1``): no traceback. stdout is
    pointed at /dev/null so that Python's own flush at exit does not fail again; the exit status is 141
    (128 + SIGPIPE), as for any Unix tool stopped by a closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests)
        pass
    return 141


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # a closed pipe shows here, not in Python's flush at exit
    except BrokenPipeError:
        return _closed_pipe()


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        rc = args.func(args)
    except BrokenPipeError:  # before any broader OSError handling: a closed pipe is not an error
        return _closed_pipe()
    except RobustHideError as e:
        print(f"robusthide: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # permission, missing path, full disk...: one line naming the path
        print(f"robusthide: error: {_os_error(e)}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:  # an optional dependency (a torch-free install): one line naming the extra
        need = _missing_extra(e.name)
        if need is None:
            raise
        print(f"robusthide: error: this command needs {need}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return _interrupted()
    return int(rc or 0)


#: top-level module -> (what to name, the extra of pyproject.toml that installs it)
OPTIONAL_MODULES: dict[str, tuple[str, str]] = {
    "torch": ("PyTorch", "torch"), "torchvision": ("PyTorch", "torch"), "kornia": ("kornia", "torch"),
    "av": ("PyAV", "torch"), "cv2": ("OpenCV", "torch"), "matplotlib": ("matplotlib", "torch"),
    "skimage": ("scikit-image", "torch"), "scipy": ("SciPy", "torch"), "onnx": ("onnx", "torch"),
    "onnxruntime": ("onnxruntime", "onnx"), "fastapi": ("FastAPI", "serve"), "uvicorn": ("uvicorn", "serve"),
    "fastapi_offline": ("fastapi-offline", "serve"), "multipart": ("python-multipart", "serve"),
    "ray": ("Ray", "scale"), "pyarrow": ("pyarrow", "scale"), "constriction": ("constriction", "latent"),
    "bjontegaard": ("bjontegaard", "latent"),
}


def _missing_extra(module: str | None) -> str | None:
    """``PyTorch: pip install 'robusthide[torch]'`` for a missing optional module; None for any other. A module of
    the torch extra is named PyTorch when torch is missing too (a torch-free install: what the extra is for)."""
    import importlib.util

    what = OPTIONAL_MODULES.get((module or "").partition(".")[0])
    if what is None:
        return None
    name, extra = what
    if extra == "torch" and name != "PyTorch" and importlib.util.find_spec("torch") is None:
        name = "PyTorch"
    return f"{name}: pip install 'robusthide[{extra}]'"


def _os_error(e: OSError) -> str:
    """``PATH: reason`` of an OSError (both paths of a rename), on one line."""
    why = e.strerror or (str(e).splitlines() or [type(e).__name__])[0]
    paths = [str(p) for p in (e.filename, e.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {why}" if paths else why


def _interrupted() -> int:
    """Ctrl-C: remove the temporary files of writes in progress (outputs already in place are complete), and
    stop now even when worker threads are still inside a long computation."""
    import threading

    from robusthide.io.safe import remove_temporaries

    remove_temporaries()
    print("robusthide: interrupted", file=sys.stderr)
    busy = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if busy and os.environ.get("ROBUSTHIDE_NO_HARD_EXIT") is None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)  # joining busy workers at exit would wait for their current file
    return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
