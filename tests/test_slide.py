"""The slide search (robusthide/watermark/sync/bands.py, session 26): a band of a common frame anywhere along it (a
square dragged off the centre of a photo), and the reframe codec's ``pos``."""

from __future__ import annotations

import numpy as np
import pytest

from robusthide.codecs import CodecError, get_codec
from robusthide.watermark.sync import SLIDE_MIN_BAND, SLIDE_STEP, band_text, reframe_hypotheses, slide_hypotheses
from robusthide.watermark.watermarker import Watermarker


def test_reframe_codec_moves_its_window_along_the_cut_side():
    img = np.zeros((40, 100, 3), np.uint8)
    img[:, :, 0] = np.arange(100, dtype=np.uint8)[None, :]  # the column index in red
    left = get_codec("reframe:1x1,pos=0,interp=nearest")(img[None]).images[0]
    right = get_codec("reframe:1x1,pos=1,interp=nearest")(img[None]).images[0]
    at = get_codec("reframe:1x1,pos=0.25,interp=nearest")(img[None]).images[0]
    assert left[0, 0, 0] == 0 and left[0, -1, 0] == 39  # the first 40 columns, stretched back to 100
    assert right[0, 0, 0] == 60 and right[0, -1, 0] == 99
    assert at[0, 0, 0] == 15  # round((100 - 40) x 0.25)
    centre = get_codec("reframe:1x1,interp=nearest")(img[None]).images[0]
    assert centre[0, 0, 0] == 30  # no pos: the centre, as before
    with pytest.raises(CodecError, match="pos must be a number in \\[0, 1\\]"):
        get_codec("reframe:1x1,pos=1.5")


def test_slide_hypotheses_step_along_each_band_between_the_reframing_anchors():
    hyps = slide_hypotheses(768, 1024)  # a 4:3 photo
    assert all(h["anchor"] == "slide" and not h["flip"] and h["angle"] == 0.0 for h in hyps)
    assert min(h["band"] for h in hyps) >= SLIDE_MIN_BAND
    square = [h for h in hyps if h["axis"] == "x" and h["band"] == 0.75]  # cut to 1:1 (or a 1:1 original's band)
    offs = sorted(h["ox"] for h in square)
    assert max(np.diff(sorted([-0.25, *offs, 0.0, 0.25]))) <= SLIDE_STEP + 1e-9  # anchors included
    assert len(offs) == 82  # 84 steps: the two ends and the centre left out
    assert -0.25 < offs[0] and offs[-1] < 0.25 and not any(abs(o) < 1e-9 for o in offs)
    anchors = {(h["axis"], h["band"], round(h["ox"] + h["oy"], 6)) for h in reframe_hypotheses(768, 1024)}
    assert not anchors & {(h["axis"], h["band"], round(h["ox"] + h["oy"], 6)) for h in hyps}
    for h in square:  # the position is the codec's pos: 0 at the left end (ox = -(1 - r)), 1 at the right
        assert h["position"] == pytest.approx((h["ox"] + 0.25) / 0.5, abs=1e-4)
    assert band_text(square[0]) == f"a band at {square[0]['position']:.2f} along the width (0.750 of it)"
    assert slide_hypotheses(100, 100, aspects=(1.0, 3.0), bands=()) == []  # its own aspect, a band under a half
    # a 3:2 photo: no common frame gives the band 0.75 (a side cut by a quarter, resized back): SLIDE_BANDS adds
    # it, both ends and the centre included (the reframing stage does not try it)
    cut = [h for h in slide_hypotheses(400, 600) if h["band"] == 0.75 and h["axis"] == "x"]
    assert len(cut) == 85 and cut[0]["position"] == 0.0 and cut[-1]["position"] == 1.0
    assert any(abs(h["ox"]) < 1e-9 for h in cut)
    assert not [h for h in slide_hypotheses(400, 600, bands=()) if h["band"] == 0.75]
    with pytest.raises(ValueError, match="step and min_band"):
        slide_hypotheses(100, 100, step=0)


def test_slide_search_reads_a_square_dragged_off_the_centre(photos):
    """A 4:3 marked picture cut to 1:1 a third of the way along and saved as JPEG 80: the reframing search does
    not read it (it tries the centre and the ends); the slide search does, and says where."""
    wm = Watermarker.from_pretrained("default")
    marked = wm.embed(photos["astronaut"][64:448], 1321)  # 384 x 512: 4:3
    image = get_codec("reframe:1x1,pos=0.3|jpeg:q=80")(marked[None]).images[0]
    assert not wm.extract(image, search="reframe").detected
    r = wm.extract(image, search="slide")
    assert r.detected and r.message == 1321 and r.p_value <= 1e-6
    assert r.geometry["axis"] == "x" and r.geometry["band"] == 0.75
    assert r.geometry["position"] == pytest.approx(0.3, abs=0.02)


def test_slide_logits_read_wide_canvases_as_each_band_view(photos, monkeypatch):
    """In float32, the windows of the wide canvases give each hypothesis' logits as its own view does, up to the
    padding at the window's edges; the most confident rows are their own view's up to float rounding."""
    import torch

    import robusthide.training.hardware as hardware
    import robusthide.watermark.sync as sync

    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)  # the float32 read
    wm = Watermarker.from_pretrained("default")
    image = get_codec("reframe:1x1,pos=0.6")(wm.embed(photos["chelsea"], 77)[None]).images[0]  # 300 x 451
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    dec, size = wm.model.decoder, wm.model.size
    hyps = sync.slide_hypotheses(*image.shape[:2], window=2 * dec.stride / size)
    fast = sync.slide_logits(dec, x, size, hyps)
    with torch.no_grad():
        own = torch.cat([dec(v) for v in sync.affine_views(x, size, hyps).split(256)]).float()
    corr = torch.nn.functional.cosine_similarity(fast - fast.mean(1, keepdim=True), own - own.mean(1, keepdim=True))
    assert float(corr.median()) > 0.99 and float(corr.min()) > 0.9
    best = torch.topk(sync.ranking_scores(fast, hyps), sync.SCREEN_TOP).indices
    # their own view's logits up to float rounding: the convolution kernel oneDNN picks may differ with the input's
    # width (on an AMX Xeon the last digit differs), while the padding at a window's edge would move them by far more
    torch.testing.assert_close(fast[best], own[best], atol=1e-3, rtol=1e-4)
    gray = wm.extract(image.mean(axis=2).astype(np.uint8), search="slide")  # one channel: read as three
    assert gray.detected and gray.message == 77


def test_slide_reads_a_side_cut_by_a_quarter_and_resized_back(photos):
    """A 4:1 strip has no band of a common frame (each is under half of it); the slide stage still tries the bands
    of SLIDE_BANDS: the strip cut by a quarter of its width 0.3 of the way along and stretched back to 128 x 512
    reads, and says where. Without any band the stage would read the picture as it is (``search_logits``)."""
    import torch
    from PIL import Image

    from robusthide.watermark.sync import search_logits

    wm = Watermarker.from_pretrained("default")
    strip = wm.embed(np.ascontiguousarray(photos["astronaut"][200:328]), 1001)  # 128 x 512
    assert {h["band"] for h in slide_hypotheses(128, 512)} == {0.75}  # no common frame: only the side cut
    x0 = round(0.3 * 128)  # pos 0.3 of the 128 columns cut away
    cut = np.asarray(Image.fromarray(strip[:, x0:x0 + 384]).resize((512, 128), Image.Resampling.LANCZOS))
    assert not wm.extract(cut, search="none").detected
    r = wm.extract(cut, search="slide")
    assert r.detected and r.message == 1001
    assert r.geometry["band"] == 0.75 and r.geometry["position"] == pytest.approx(0.3, abs=0.02)
    hyps = search_logits(wm.model.decoder, torch.rand(1, 3, 128, 512), 128, "slide", staged=True)[1]
    assert {h["band"] for h in hyps} == {0.75}

