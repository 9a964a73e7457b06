"""A photo inside a larger picture (robusthide/watermark/inset.py, robusthide/codecs/framing.py): the box finder
finds where padding, a screenshot frame or a collage put the photo, and the staged default reads the mark there."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from robusthide.codecs import CodecError, get_codec
from robusthide.watermark.inset import MAX_BOXES, inset_boxes, inset_hypotheses, inset_text
from robusthide.watermark.watermarker import Watermarker


@pytest.fixture(scope="module")
def wm():
    return Watermarker.from_pretrained("default")


def _near(box, truth, tol=0.004) -> bool:
    return max(abs(a - b) for a, b in zip(box, truth)) <= tol


def _frac(y0: int, x0: int, h: int, w: int, H: int, W: int) -> tuple[float, float, float, float]:
    return x0 / W, y0 / H, (x0 + w) / W, (y0 + h) / H


@pytest.mark.parametrize("spec", ["pad:1x1", "pad:9x16,fill=black|jpeg:q=80", "pad:16x9,fill=grey"])
def test_padding_is_the_first_box(photos, spec):
    """Flat padding of one colour gives the photo's box first, to the pixel of the finder's grid."""
    img = photos["chelsea"]  # 300 x 451
    out = get_codec(spec)(img).images
    pad = get_codec(spec.split("|")[0])
    ph, pw, y0, x0 = pad.box(*img.shape[:2])
    truth = _frac(y0, x0, img.shape[0], img.shape[1], ph, pw)
    boxes = inset_boxes(out)
    assert boxes and _near(boxes[0], truth), (boxes[:2], truth)


@pytest.mark.parametrize("spec, key", [("inset:0.6,x=0.2,y=0.8", "inset"), ("inset:0.7,x=1,y=0,fill=black", "inset"),
                                       ("collage:2,cell=3,others=batch", "collage"),
                                       ("collage:3,cell=4", "collage")])
def test_screenshot_and_collage_boxes_are_found(photos, spec, key):
    """The photo's box in a screenshot-like frame (bars across the top and bottom) or a collage cell is one of
    the boxes found, and the whole picture never is."""
    batch = np.stack([photos[k][:300, :450] for k in ("astronaut", "coffee", "chelsea")])
    codec = get_codec(spec)
    out = codec.code_batch(batch)[0][0]
    H, W = out.shape[:2]
    if key == "inset":
        truth = _frac(*codec.box(H, W), H, W)
    else:
        truth = _frac(*codec.cells(H, W)[codec.cell], H, W)
    boxes = inset_boxes(out)
    assert 1 <= len(boxes) <= MAX_BOXES and (0.0, 0.0, 1.0, 1.0) not in boxes
    assert any(_near(b, truth) for b in boxes), (boxes, truth)


def test_a_smooth_picture_gives_no_box_and_boxes_lie_inside(photos):
    """A smooth ramp has no edge and no flat margin: no box. Boxes are fractions inside the picture."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(20, 230, 300)[None, :, None] + np.linspace(0, 20, 200)[:, None, None]
    assert inset_boxes(np.clip(ramp + rng.normal(0, 2, (200, 300, 3)), 0, 255).astype(np.uint8)) == []
    for b in inset_boxes(photos["astronaut"]):
        assert 0 <= b[0] < b[2] <= 1 and 0 <= b[1] < b[3] <= 1 and b != (0.0, 0.0, 1.0, 1.0)
    assert inset_boxes(np.zeros((10, 10, 3), np.uint8)) == []


def test_hypotheses_pay_for_every_box_and_mirror(photos):
    """Each hypothesis carries the search's size (MAX_BOXES and their mirror images, + the whole picture when
    the search runs alone), found or not, so the boxes chosen from the picture keep the false-positive bound."""
    from robusthide.watermark.sync import hypothesis_weights

    x = torch.from_numpy(get_codec("pad:1x1")(photos["chelsea"]).images).permute(2, 0, 1)[None].float() / 255
    alone = inset_hypotheses(x, whole=True)
    assert alone[0]["box"] == [0.0, 0.0, 1.0, 1.0] and {h["of"] for h in alone} == {2 * (MAX_BOXES + 1)}
    staged = inset_hypotheses(x)
    assert staged[0]["box"] == alone[1]["box"] and {h["of"] for h in staged} == {2 * MAX_BOXES}
    w = hypothesis_weights(staged)
    assert float(w.sum()) == pytest.approx(len(staged) / (2 * MAX_BOXES)) and float(w.sum()) <= 1
    x0, y0, x1, y1 = staged[0]["box_px"]
    assert inset_text(staged[0]) == f"the box x {x0}-{x1}, y {y0}-{y1} (pixels) of the picture"


@pytest.mark.parametrize("spec", ["pad:4x5,fill=white|jpeg:q=80", "inset:0.6,x=0.2,y=0.8|jpeg:q=80"])
def test_staged_default_reads_a_photo_inside_a_larger_picture(wm, photos, spec):
    """A marked photo padded for a feed, or shown in a screenshot, is not read as it is; the staged default's
    inset stage reads it, says where it is, and pays 1/20 of the budget for it."""
    marked = wm.embed(photos["astronaut"], 777)
    shown = get_codec(spec)(marked).images
    assert not wm.extract(shown, search="none").detected
    r = wm.extract(shown)
    assert r.detected and r.message == 777 and r.geometry["box_px"]
    codec = get_codec(spec.split("|")[0])
    H, W = shown.shape[:2]
    if spec.startswith("pad"):
        ph, pw, y0, x0 = codec.box(*photos["astronaut"].shape[:2])
        truth = _frac(y0, x0, 512, 512, ph, pw)
    else:
        truth = _frac(*codec.box(H, W), H, W)
    assert _near(r.geometry["box"], truth, 0.01)
    alone = wm.extract(shown, search="inset")
    assert alone.detected and alone.message == 777


def test_framing_codecs_keep_shapes_and_refuse_bad_values(photos):
    img = photos["coffee"]
    for spec in ("pad:1x1,fill=blur", "inset:0.5,fill=blur", "collage:2,cell=1,gap=0.02"):
        out = get_codec(spec)(img).images
        assert out.shape == img.shape and out.dtype == np.uint8
    quad = get_codec("collage:2,cell=0,gap=0")(img).images  # the other cells: scikit-image's own photos, not img
    assert np.abs(quad[:200, :300].astype(int) - np.asarray(Image.fromarray(img).resize((300, 200))).astype(int)
                  ).mean() < 3 and np.abs(quad[200:, 300:].astype(int) - quad[:200, :300].astype(int)).mean() > 20
    padded = get_codec("pad:1x1,fill=black,interp=nearest")(img).images
    assert padded[0].max() == 0 and padded[-1].max() == 0 and padded[img.shape[0] // 2].max() > 0
    for spec, msg in (("pad:1x1,fill=pink", "fill must be one of"), ("inset:1.5", "scale must be"),
                      ("inset:0.5,bar=0.5", "bar must be"), ("collage:4", "n must be 2 or 3"),
                      ("collage:2,cell=4", "cell must be an integer"), ("collage:2,others=x", "others must be")):
        with pytest.raises(CodecError, match=f"bad codec spec '{re.escape(spec)}': {msg}"):
            get_codec(spec)


@pytest.mark.parametrize("before", [True, False])
def test_a_line_between_a_blurred_canvas_and_a_photo_of_its_colours_moves_by_texture(before):
    """A blurred copy of the photo behind it has the photo's colours but no texture: the line JPEG's blocks left
    5 pixels off (row 72, or 85 from the other side) moves to where the texture starts (row 77 / 80); with no
    texture on either side it stays."""
    from robusthide.watermark.inset import _refined

    rng = np.random.default_rng(0)
    y = np.full((160, 200), 120.0, np.float32) + np.linspace(0, 6, 200, dtype=np.float32)[None]  # smooth
    smooth = y.copy()
    if before:
        y[77:] += rng.normal(0, 4, (83, 200)).astype(np.float32)  # the photo below row 77, same colours
        assert _refined(y, (72, 0, 200, 200.0, False, False))[0] == 77
    else:
        y[:80] += rng.normal(0, 4, (80, 200)).astype(np.float32)  # the photo above row 80
        assert _refined(y, (85, 0, 200, 200.0, False, False))[0] == 80
    assert _refined(smooth, (72, 0, 200, 200.0, False, False))[0] == 72
