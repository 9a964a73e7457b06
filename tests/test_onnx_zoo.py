"""The default model's ONNX networks shipped in the zoo (robusthide/zoo/weights/default-lean64-onnx/): they match
what ``robusthide export-onnx`` makes of the shipped weights (so the two cannot drift apart), the package data
installs them, and the CLI's ``--runtime onnx`` reads and marks with them as the torch path does."""

from __future__ import annotations

import fnmatch
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from robusthide import RobustHideError
from robusthide.cli.main import main
from robusthide.onnxrt import OnnxWatermarker
from robusthide.onnxrt.runtime import tensors_sha256
from robusthide.zoo.registry import PRETRAINED, onnx_path, weights_path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = onnx_path("default")
FILES = ("encoder.onnx", "decoder.onnx", "robusthide-onnx.json")


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "robusthide-onnx.json").read_text())


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """The default model exported now from its shipped safetensors."""
    d = tmp_path_factory.mktemp("fresh-onnx")
    assert main(["export-onnx", "default", "-o", str(d)]) == 0
    return d


def test_shipped_folder_is_small_and_complete():
    assert SHIPPED is not None and SHIPPED.name == PRETRAINED["default"]["onnx"]
    sizes = {f: (SHIPPED / f).stat().st_size for f in FILES}
    assert 100_000 < sizes["encoder.onnx"] < 4_000_000 and 100_000 < sizes["decoder.onnx"] < 4_000_000
    assert sum(sizes.values()) < 1.5 * weights_path("default").stat().st_size  # float32 weights, as shipped
    m = _manifest(SHIPPED)
    assert (m["format"], m["n_bits"], m["size"], m["search"]) == ("robusthide-onnx/1", 64, 128, "none")


def test_shipped_onnx_was_exported_from_the_shipped_weights():
    """The manifest names the SHA-256 of the tensors it was exported from: retraining or replacing the default's
    weights without re-exporting fails here (re-export: robusthide export-onnx default -o SHIPPED). The file's
    metadata is not hashed: a new metadata format does not need a new export."""
    digest = tensors_sha256(weights_path("default"))
    assert _manifest(SHIPPED)["tensors_sha256"] == digest, \
        f"re-export: robusthide export-onnx default -o {SHIPPED.relative_to(ROOT)}"


def test_shipped_onnx_equals_a_fresh_export(fresh):
    """Same manifest (but the torch version), same outputs on the same inputs; byte for byte with the torch that
    exported them (the export is deterministic)."""
    import onnxruntime as ort
    import torch

    a, b = _manifest(SHIPPED), _manifest(fresh)
    assert {k: v for k, v in a.items() if k != "torch"} == {k: v for k, v in b.items() if k != "torch"}
    if a["torch"] == torch.__version__:
        for f in ("encoder.onnx", "decoder.onnx"):
            assert (SHIPPED / f).read_bytes() == (fresh / f).read_bytes(), f
    rng = np.random.default_rng(0)
    small = rng.random((4, 3, 128, 128), dtype=np.float32)
    bits = rng.integers(0, 2, (4, 64)).astype(np.float32)
    outs = []
    for d in (SHIPPED, fresh):
        enc = ort.InferenceSession(str(d / "encoder.onnx"), providers=["CPUExecutionProvider"])
        dec = ort.InferenceSession(str(d / "decoder.onnx"), providers=["CPUExecutionProvider"])
        outs.append((*enc.run(None, {"small": small, "bits": bits}), *dec.run(None, {"small": small})))
    for x, y in zip(*outs):
        assert x.shape == y.shape and np.allclose(x, y, rtol=0, atol=1e-5)
    assert np.array_equal(outs[0][2] > 0, outs[1][2] > 0)


def test_shipped_and_fresh_mark_and_read_alike(fresh):
    shipped, new = OnnxWatermarker.from_pretrained("default"), OnnxWatermarker(fresh)
    for img in (data.astronaut(), data.camera(), data.coffee()[:90, :70]):
        a, b = shipped.embed(img, 1234), new.embed(img, 1234)
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
        assert np.array_equal(shipped.decode_bits(a)[0], new.decode_bits(a)[0])
        assert shipped.extract(a).message == 1234


def test_package_data_installs_the_shipped_onnx():
    """Every shipped ONNX file matches a package-data pattern of pyproject.toml (a wheel carries it)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = cfg["tool"]["setuptools"]["package-data"]["robusthide.zoo"]
    zoo = ROOT / "robusthide" / "zoo"
    for f in FILES:
        rel = (SHIPPED / f).relative_to(zoo).as_posix()
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), rel


def test_from_pretrained_names_and_errors(tmp_path):
    assert OnnxWatermarker.from_pretrained().name == "default-lean64"
    assert OnnxWatermarker.from_pretrained(str(SHIPPED)).n_bits == 64
    cases = [("lean128", "ships no ONNX networks: export them with `robusthide export-onnx lean128 -o DIR`"),
             ("imagehide-003", "not a watermark model"),
             (str(weights_path("default")), "not a weights file"),
             ("no-such", "no model named 'no-such'")]
    for name, msg in cases:
        with pytest.raises(RobustHideError, match=msg.replace("(", r"\(").replace("`", ".")) as e:
            OnnxWatermarker.from_pretrained(name)
        assert "\n" not in str(e.value)
    wm = OnnxWatermarker.from_pretrained()
    with pytest.raises(RobustHideError, match=r"refine=5: the embed-time refinement needs PyTorch"):
        wm.embed(data.coffee(), 1, refine=5)
    with pytest.raises(RobustHideError, match=r"search='crop' needs PyTorch"):
        wm.extract(data.coffee(), search="crop")
    assert wm.embed(data.coffee(), 1, refine=0).shape == data.coffee().shape


def test_cli_runtime_onnx_matches_torch(tmp_path, capsys):
    """``--runtime onnx`` (torch installed but unused): the file it marks is within one grey level of the torch
    fast path's, and both runtimes read the same bits and message from it."""
    src = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(src)
    for rt in ("onnx", "torch"):
        assert main(["embed", str(src), "-o", str(tmp_path / f"{rt}.png"), "-m", "1234", "--refine", "0",
                     "--runtime", rt]) == 0
    a, b = (np.asarray(Image.open(tmp_path / f"{rt}.png")).astype(int) for rt in ("onnx", "torch"))
    assert np.abs(a - b).max() <= 1
    capsys.readouterr()
    rows = {}
    for rt in ("onnx", "torch"):
        assert main(["extract", str(tmp_path / "onnx.png"), "--json", "--bits", "--runtime", rt]) == 0
        rows[rt] = json.loads(capsys.readouterr().out)
    assert rows["onnx"]["message"] == rows["torch"]["message"] == 1234
    assert rows["onnx"]["bits"] == rows["torch"]["bits"]
    assert set(rows["onnx"]) == set(rows["torch"])  # the same JSON fields
    assert main(["extract", str(tmp_path / "torch.png"), "--json", "--model", str(SHIPPED)]) == 0  # auto: onnx
    assert json.loads(capsys.readouterr().out)["message"] == 1234
    assert main(["extract", str(src), "--runtime", "onnx", "--model", "lean128"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robusthide: error: model 'lean128' ships no ONNX networks") and err.count("\n") == 1


def test_lean128_r6_ships_onnx_with_its_schema_and_soft_test():
    """The 76-data-bit candidate's ONNX networks (re-export: robusthide export-onnx lean128-r6 -o FOLDER): its
    stored schema and soft-test share travel in the manifest, and the torch-free fast path marks and reads a
    76-bit message through real JPEG 50."""
    folder = onnx_path("lean128-r6")
    m = _manifest(folder)
    assert (m["n_bits"], m["schema"], m["soft_share"]) == (128, "large", 0.5)
    assert m["tensors_sha256"] == tensors_sha256(weights_path("lean128-r6")), \
        f"re-export: robusthide export-onnx lean128-r6 -o {folder.relative_to(ROOT)}"
    wm = OnnxWatermarker.from_pretrained("lean128-r6")
    message = (1 << 75) | 12345
    buf = io.BytesIO()
    Image.fromarray(wm.embed(data.astronaut(), message, refine=0)).save(buf, "JPEG", quality=50)
    r = wm.extract(np.asarray(Image.open(buf)))
    assert r.detected and r.message == message


def test_tensors_sha256_ignores_metadata_and_sees_every_value(tmp_path):
    from safetensors.numpy import save_file

    a = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float32)}
    save_file(a, str(tmp_path / "a.safetensors"), metadata={"format": "robusthide/1"})
    save_file(dict(reversed(list(a.items()))), str(tmp_path / "b.safetensors"), metadata={"format": "other"})
    assert tensors_sha256(tmp_path / "a.safetensors") == tensors_sha256(tmp_path / "b.safetensors")
    a["w"][1, 2] = np.nextafter(np.float32(5), np.float32(6))
    save_file(a, str(tmp_path / "c.safetensors"))
    assert tensors_sha256(tmp_path / "c.safetensors") != tensors_sha256(tmp_path / "a.safetensors")
    (tmp_path / "d.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(RobustHideError, match="not a safetensors file"):
        tensors_sha256(tmp_path / "d.safetensors")
