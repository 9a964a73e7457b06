"""The turn search (robusthide/watermark/sync/rotation.py, session 25): rotations of 5.5-45 degrees and quarter turns,
the last stage of the staged default; the rotate codec's exact quarter turns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robusthide.codecs import get_codec
from robusthide.nets.watermark_model import resize
from robusthide.watermark.sync import QUARTER_TURNS, TURN_ANGLES, TURN_CROP_MAX, turn_hypotheses, turn_views
from robusthide.watermark.watermarker import Watermarker


@pytest.fixture(scope="module")
def wm():
    return Watermarker.from_pretrained("default")


def test_turn_hypotheses_are_quarter_turns_then_angles_past_five_degrees_mirrored_after():
    hyps = turn_hypotheses()
    assert len(hyps) == 366 and len(TURN_ANGLES) == 160
    half = hyps[:183]
    assert [h["angle"] for h in half[:3]] == [float(q) for q in QUARTER_TURNS]
    assert all(h["fill"] == "quarter" for h in half[:3]) and not any(h["flip"] for h in half)
    assert [(h["angle"], h["fill"], True) for h in half] == [(h["angle"], h["fill"], h["flip"]) for h in hyps[183:]]
    angles = {h["angle"] for h in half[3:]}
    assert min(angles) == -45.0 and max(angles) == 45.0 and not any(abs(a) <= 5 for a in angles)
    crops = [h["angle"] for h in half if h["fill"] == "crop"]
    assert len(crops) == 20 and max(abs(a) for a in crops) == TURN_CROP_MAX
    assert len(turn_hypotheses(flips=False)) == 183


def test_a_quarter_turn_is_undone_exactly_sides_swapped():
    """The view of a picture turned by 90 degrees (its sides swapped) under the 90-degree hypothesis is the
    plain read's view of the picture before the turn; mirrored, its mirror image."""
    img = torch.rand(1, 3, 48, 80, generator=torch.Generator().manual_seed(1))
    turned = torch.from_numpy(np.rot90(img[0].permute(1, 2, 0).numpy(), 1).copy()).permute(2, 0, 1)[None]
    hyps = [{"angle": 90.0, "fill": "quarter", "flip": False}, {"angle": 90.0, "fill": "quarter", "flip": True},
            {"angle": 270.0, "fill": "quarter", "flip": False}]
    views = turn_views(turned, 32, hyps)
    plain = resize(img, (32, 32))[0]
    assert torch.allclose(views[0], plain, atol=1e-5) and torch.allclose(views[1], plain.flip(-1), atol=1e-5)
    assert not torch.allclose(views[2], plain, atol=0.05)


def test_rotate_codec_turns_quarter_turns_exactly(photos):
    square = photos["astronaut"][:200, :200]
    assert np.array_equal(get_codec("rotate:90")(square[None]).images[0], np.rot90(square))
    assert np.array_equal(get_codec("rotate:-90")(square[None]).images[0], np.rot90(square, 3))
    assert np.array_equal(get_codec("rotate:180")(square[None]).images[0], square[::-1, ::-1])
    wide = photos["chelsea"]  # 300 x 451: turned, then resampled to its own shape (codecs keep the shape)
    out = get_codec("rotate:90")(wide[None]).images[0]
    assert out.shape == wide.shape and not np.array_equal(out, wide)


@pytest.mark.parametrize("edit, angle, fill", [("rotate:12|jpeg:q=80", 12.0, "black"),
                                               ("rotate:-9,fill=crop", -9.0, "crop"),
                                               ("quarter", 90.0, "quarter")])
def test_staged_default_reads_a_turn_past_five_degrees(wm, photos, edit, angle, fill):
    """Turned by 12 degrees (black corners, JPEG 80), straightened after -9 degrees, or turned a quarter (a
    non-square picture, its sides swapped): the rotation stage (+-5 degrees) does not read it; the turn stage,
    the staged default's last with 1/10 of the budget, does and says by how much it turned it back."""
    marked = wm.embed(photos["chelsea"], 1234)
    if edit == "quarter":
        image = np.ascontiguousarray(np.rot90(marked, 1))
        assert image.shape[:2] == marked.shape[1::-1]
    else:
        image = get_codec(edit)(marked[None]).images[0]
    assert not wm.extract(image, search="rotate").detected
    found = wm.extract(image, search="turn")
    r = wm.extract(image)
    assert r.detected and r.message == 1234 and r.geometry["fill"] == fill == found.geometry["fill"]
    assert r.geometry["angle"] == pytest.approx(angle, abs=0.5) and not r.geometry["flip"]
    assert r.p_value == pytest.approx(found.p_value / 0.1, rel=1e-6, abs=0)
