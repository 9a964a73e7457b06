"""A ``pip install 'robusthide[onnx]'`` without PyTorch: the dependencies of pyproject.toml, and the CLI run in a
process where torch and the rest of the ``torch`` extra are not installed.

The process is made torch-free by a ``sitecustomize`` on PYTHONPATH that hides those packages from the import
system (``import torch`` raises ModuleNotFoundError and ``importlib.util.find_spec("torch")`` is None, as in a
virtual environment without them). A real fresh environment was checked by hand: docs/results/onnx-install.md.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

ROOT = Path(__file__).resolve().parents[1]
#: the top-level modules of the `torch` extra (pyproject.toml): absent from an `[onnx]` install
TORCH_SIDE = ("torch", "torchvision", "kornia", "av", "cv2", "matplotlib", "skimage", "scipy", "onnx")
NEEDS_TORCH = "robusthide: error: this command needs PyTorch: pip install 'robusthide[torch]'"

SITECUSTOMIZE = '''
import importlib.machinery
import sys

BLOCKED = {blocked!r}


class _Hiding:
    """PathFinder, but the blocked packages are not found (as if not installed)."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            return None
        return importlib.machinery.PathFinder.find_spec(name, path, target)

    @classmethod
    def invalidate_caches(cls):
        importlib.machinery.PathFinder.invalidate_caches()


sys.meta_path[:] = [_Hiding if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
'''


def _requirements(reqs: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in reqs}


def test_core_dependencies_are_torch_free_and_dev_installs_everything():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core, extras = _requirements(project["dependencies"]), project["optional-dependencies"]
    assert not core & {"torch", "kornia", "av", "opencv-python-headless", "matplotlib", "scikit-image", "scipy"}
    assert {"numpy", "pillow", "bchlib", "safetensors", "tqdm"} <= core  # the runtime path, payload, zoo, CLI
    assert _requirements(extras["onnx"]) == {"onnxruntime"}
    assert "torch" in _requirements(extras["torch"])
    # `all` holds every feature extra (peers excepted: it is installed with --no-deps), `dev` holds `all`:
    # `make test` (pip install -e .[dev,jxl]) installs what it did when torch was a core dependency
    (all_req,) = extras["all"]
    m = re.fullmatch(r"robusthide\[([a-z,]+)\]", all_req)
    assert m and set(m.group(1).split(",")) == set(extras) - {"all", "dev", "peers"}
    assert "robusthide[all]" in extras["dev"]


@pytest.fixture(scope="module")
def torch_free(tmp_path_factory):
    """``run(*args, blocked=TORCH_SIDE, stdin=None)``: ``python -m robusthide ARGS`` in a process without those
    packages; returns the CompletedProcess (bytes out)."""
    base = tmp_path_factory.mktemp("torch-free")

    def run(*args: str, blocked: tuple[str, ...] = TORCH_SIDE, stdin: bytes | None = None,
            code: str | None = None) -> subprocess.CompletedProcess:
        site = base / ("site-" + "-".join(sorted(blocked)))
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(blocked=set(blocked)))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "robusthide", *args]
        return subprocess.run(cmd, input=stdin, capture_output=True, timeout=300, env=env, cwd=base)

    run.dir = base  # type: ignore[attr-defined]
    return run


def test_the_blocker_hides_torch_and_robusthide_imports(torch_free):
    p = torch_free(code=textwrap.dedent("""
        import importlib.util, sys
        assert importlib.util.find_spec("torch") is None and importlib.util.find_spec("cv2") is None
        try:
            import torch
        except ModuleNotFoundError as e:
            assert e.name == "torch"
        else:
            raise SystemExit("torch imported")
        import robusthide, robusthide.onnxrt, robusthide.zoo, robusthide.payload, robusthide.cli.main
        assert not [m for m in sys.modules if m.partition(".")[0] in ("torch", "kornia", "cv2")]
        print("ok", robusthide.__version__)
    """))
    assert p.returncode == 0 and p.stdout.startswith(b"ok"), p.stderr.decode()
    for args in (["--help"], ["--version"], ["embed", "--help"], ["models"], ["capacity", "--json"]):
        p = torch_free(*args)
        assert p.returncode == 0 and not p.stderr, (args, p.stderr.decode())
    assert json.loads(torch_free("capacity", "--json").stdout)["n_bits"] == 64


def test_embed_extract_detect_round_trip_without_torch(torch_free, tmp_path):
    """The bits a torch-free embed writes are the ones the torch path reads; its file is within one grey level
    of the torch fast path's; JPEG output, stdin/stdout and detect work."""
    from robusthide.watermark.watermarker import Watermarker

    d = torch_free.dir
    cover = data.astronaut()
    Image.fromarray(cover).save(d / "astronaut.png")
    Image.fromarray(data.coffee()).save(d / "coffee.jpg", quality=92)
    p = torch_free("embed", "astronaut.png", "-o", "marked.png", "-m", "1234")
    assert p.returncode == 0 and b"PSNR" in p.stdout, p.stderr.decode()
    p = torch_free("extract", "marked.png", "--json", "--bits")
    assert p.returncode == 0, p.stderr.decode()
    row = json.loads(p.stdout)
    assert row["detected"] and row["message"] == 1234 and row["p_value"] < 1e-6
    marked = np.asarray(Image.open(d / "marked.png"))
    tw = Watermarker.from_pretrained("default")
    assert tw.decode_bits(marked)[0].tolist() == row["bits"]  # identical bits, torch reading the torch-free file
    assert tw.extract(marked).message == 1234
    ref = tw.embed(cover, 1234, refine=0)
    assert np.abs(ref.astype(int) - marked.astype(int)).max() <= 1  # within one grey level of the torch path
    p = torch_free("embed", "coffee.jpg", "-o", "marked.jpg", "--quality", "90", "-m", "A")
    assert p.returncode == 0, p.stderr.decode()
    assert b": A  (p=" in torch_free("extract", "marked.jpg").stdout
    p = torch_free("embed", "-", "-o", "-", "-m", "7", stdin=(d / "astronaut.png").read_bytes())
    assert p.returncode == 0 and p.stdout.startswith(b"\x89PNG"), p.stderr.decode()
    assert b"-: 7  (p=" in torch_free("extract", "-", stdin=p.stdout).stdout
    assert torch_free("detect", "marked.png").returncode == 0
    assert torch_free("detect", "astronaut.png").returncode == 1


def _one_line(p: subprocess.CompletedProcess) -> str:
    err = p.stderr.decode()
    assert p.returncode == 2 and err.count("\n") == 1 and "Traceback" not in err and not p.stdout, err
    return err.strip()


def test_what_needs_torch_fails_with_one_line(torch_free):
    d = torch_free.dir
    Image.fromarray(data.coffee()).save(d / "c.png")
    (d / "clip.mp4").write_bytes(b"\0" * 64)
    for args in (["train"], ["demo"], ["hide-image", "c.png", "c.png", "-o", "x.png"],
                 ["extract", "c.png", "--runtime", "torch"], ["export-onnx", "-o", "onnx-out"]):
        assert _one_line(torch_free(*args)) == NEEDS_TORCH, args
    assert _one_line(torch_free("embed", "c.png", "-o", "r.png", "-m", "1", "--refine", "5")).startswith(
        "robusthide: error: --refine 5 needs PyTorch: pip install 'robusthide[torch]'")
    assert _one_line(torch_free("embed", "c.png", "-o", "r.png", "-m", "1", "--refine-precision", "bf16")).startswith(
        "robusthide: error: --refine-precision needs PyTorch: pip install 'robusthide[torch]'")
    assert _one_line(torch_free("extract", "c.png", "--search", "crop")).startswith(
        "robusthide: error: --search crop needs PyTorch: pip install 'robusthide[torch]'")
    assert _one_line(torch_free("embed", "clip.mp4", "-o", "m.mp4", "-m", "1")).startswith(
        "robusthide: error: clip.mp4: video needs PyTorch: pip install 'robusthide[torch]'")
    Image.fromarray((np.arange(200 * 300, dtype=np.uint32).reshape(200, 300) % 65536).astype(np.uint16)).save(
        d / "g16.png")
    assert _one_line(torch_free("embed", "g16.png", "-o", "r.png", "-m", "1")) == (
        "robusthide: error: g16.png: a 16-bit image needs OpenCV: pip install 'robusthide[torch]'")
    assert not (d / "r.png").exists() and not (d / "m.mp4").exists()
    neither = torch_free("extract", "c.png", blocked=(*TORCH_SIDE, "onnxruntime"))
    assert _one_line(neither).startswith("robusthide: error: this command needs PyTorch or onnxruntime: "
                                         "pip install 'robusthide[onnx]'")
