"""The ONNX runtime path (robusthide.onnxrt): export, parity with the torch fast path, no torch at import."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data

from robusthide import RobustHideError
from robusthide.cli.main import main
from robusthide.onnxrt import OnnxWatermarker, upsample_bilinear
from robusthide.watermark.watermarker import Watermarker

FIXTURES = {
    "astronaut": data.astronaut(),
    "coffee": data.coffee(),
    "chelsea": data.chelsea(),
    "camera (gray)": data.camera(),
    "rgba 300x200": np.dstack([data.astronaut()[:200, :300], np.full((200, 300, 1), 200, np.uint8)]),
    "small 70x90": data.coffee()[:90, :70],
}


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx")
    assert main(["export-onnx", "default", "-o", str(d)]) == 0
    return d


@pytest.fixture(scope="module")
def pair(onnx_dir):
    return Watermarker.from_pretrained("default"), OnnxWatermarker(onnx_dir)


def test_export_writes_encoder_decoder_and_manifest(onnx_dir):
    m = json.loads((onnx_dir / "robusthide-onnx.json").read_text())
    assert m["n_bits"] == 64 and m["size"] == 128 and m["format"] == "robusthide-onnx/1"
    assert (onnx_dir / "encoder.onnx").stat().st_size > 100_000
    assert (onnx_dir / "decoder.onnx").stat().st_size > 100_000


@pytest.mark.parametrize("name", list(FIXTURES))
def test_parity_with_torch_fast_path(pair, name):
    tw, ow = pair
    img = FIXTURES[name]
    for msg, strength in ((1234, 1.0), (7, 0.6)):
        mt = tw.embed(img, msg, strength=strength, refine=0)
        mo = ow.embed(img, msg, strength=strength)
        assert mo.shape == mt.shape and mo.dtype == np.uint8
        diff = np.abs(mt.astype(int) - mo.astype(int))
        assert diff.max() <= 1, name  # within one grey level of the torch path
        assert (diff > 0).mean() < 0.01
        if img.ndim == 3 and img.shape[2] == 4:
            assert np.array_equal(mo[..., 3], img[..., 3])  # alpha untouched
        for marked in (mt, mo):  # identical decoded bits, whichever path marked the image
            ht, st = tw.decode_bits(marked)
            ho, so = ow.decode_bits(marked)
            assert np.array_equal(ht, ho)
            assert np.abs(st - so).max() < 1e-4
        r = ow.extract(mo)
        assert r.detected and r.message == msg and r.p_value < 1e-6
        assert tw.extract(mo).message == msg


def test_unmarked_image_is_not_detected(pair):
    tw, ow = pair
    r = ow.extract(data.coffee())
    assert not r.detected and r.message is None
    assert r.p_value == pytest.approx(tw.extract(data.coffee(), search="none").p_value, abs=0)  # the plain read


def test_batch_of_mixed_sizes_equals_one_at_a_time(pair):
    _, ow = pair
    imgs = [FIXTURES["astronaut"], FIXTURES["camera (gray)"], FIXTURES["small 70x90"]]
    msgs = [1, 2000, 33]
    batch = ow.embed_batch(imgs, msgs)
    for img, m, b in zip(imgs, msgs, batch):
        assert np.array_equal(b, ow.embed(img, m))
    assert [r.message for r in ow.extract_batch(batch)] == msgs
    stacked = np.stack([data.astronaut()[:256, :256], data.coffee()[:256, :256]])
    out = ow.embed_batch(stacked, 5)
    assert [r.message for r in ow.extract_batch(np.stack(out))] == [5, 5]


def test_pil_in_pil_out(pair):
    _, ow = pair
    out = ow.embed(Image.fromarray(data.chelsea()), "A")
    assert isinstance(out, Image.Image) and out.size == (451, 300)
    assert ow.extract(out).message == "A"


def test_upsample_matches_torch_interpolate():
    r = np.random.default_rng(0).standard_normal((128, 128)).astype(np.float32)
    for h, w in ((512, 512), (1080, 1920), (90, 70), (300, 451), (128, 128)):
        ref = F.interpolate(torch.from_numpy(r)[None, None], size=(h, w), mode="bilinear", align_corners=False)
        assert np.abs(upsample_bilinear(r, h, w) - ref[0, 0].numpy()).max() < 1e-4  # float32 rounding of values ~1


def test_errors_are_one_line(pair, tmp_path):
    _, ow = pair
    with pytest.raises(RobustHideError, match="8-bit images only"):
        ow.embed(np.zeros((64, 64, 3), np.uint16), 1)
    with pytest.raises(RobustHideError, match="too small"):
        ow.embed(np.zeros((8, 64, 3), np.uint8), 1)
    with pytest.raises(RobustHideError, match="2 images but 3 messages"):
        ow.embed_batch([data.coffee(), data.coffee()], [1, 2, 3])
    with pytest.raises(RobustHideError, match="not a robusthide ONNX folder"):
        OnnxWatermarker(tmp_path)
    (tmp_path / "robusthide-onnx.json").write_text(json.dumps(
        {"format": "robusthide-onnx/1", "n_bits": 64, "size": 128, "encoder": "e.onnx", "decoder": "d.onnx"}))
    (tmp_path / "e.onnx").write_bytes(b"not a graph")
    with pytest.raises(RobustHideError, match="cannot load the ONNX networks"):
        OnnxWatermarker(tmp_path)
    (tmp_path / "robusthide-onnx.json").write_text(json.dumps(
        {"format": "robusthide-onnx/1", "n_bits": 64, "size": 128, "encoder": "e.onnx", "decoder": "d.onnx",
         "soft_share": "half"}))
    with pytest.raises(RobustHideError, match=r"soft_share 'half', expected a number in \[0, 1\)"):
        OnnxWatermarker(tmp_path)


def test_export_cli_error_is_one_line(tmp_path, capsys):
    assert main(["export-onnx", "no-such-model", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("robusthide: error: no model named 'no-such-model'") and "\n" not in err


def test_runtime_works_without_torch(onnx_dir):
    """A torch-free process: any attempt to import torch fails, yet marking and reading work."""
    code = textwrap.dedent(f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")
        sys.meta_path.insert(0, Block())
        import numpy as np
        from skimage import data
        import robusthide, robusthide.payload
        from robusthide.onnxrt import OnnxWatermarker
        wm = OnnxWatermarker({str(onnx_dir)!r})
        marked = wm.embed(data.astronaut(), 1234)
        r = wm.extract(marked)
        assert r.detected and r.message == 1234, r
        assert "torch" not in sys.modules
        print("ok", r.p_value)
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("ok")
