"""The ``anywhere`` search (robusthide/watermark/anywhere.py, session 31): a crop that kept the aspect ratio, at any
place in the frame."""

from __future__ import annotations

import numpy as np
import pytest

from robusthide.codecs import get_codec
from robusthide.watermark.anywhere import (
    ANYWHERE_MIN_SIDE,
    ANYWHERE_SCALE_STEP,
    anywhere_hypotheses,
    anywhere_logits,
    anywhere_text,
)
from robusthide.watermark.watermarker import Watermarker

WINDOW = 2 * 8 / 128  # the lean decoders' map cell at the size 128, in canvas half-sides


def test_anywhere_hypotheses_cover_every_place_of_each_side_fraction():
    hyps = anywhere_hypotheses(WINDOW, step=WINDOW / 4, scale_step=0.05, min_side=0.8)
    ks = sorted({h["anywhere_side"] for h in hyps}, reverse=True)
    assert ks == [0.95, 0.9, 0.85, 0.8]
    d = WINDOW / 4
    for k in ks:
        rows = [h for h in hyps if h["anywhere_side"] == k]
        n = int(np.floor(2 * (1 - k) / d + 1e-9)) + 1
        assert len(rows) == n * n  # a square grid of box centres
        ox = sorted({round(h["ox"], 9) for h in rows})
        assert ox[0] == pytest.approx(-(1 - k)) and ox[-1] <= 1 - k + 1e-9
        assert max(np.diff(ox)) == pytest.approx(d)
        assert all(h["kx"] == h["ky"] == k and not h["flip"] and h["angle"] == 0.0 for h in rows)
        first, last = rows[0]["position"], rows[-1]["position"]
        assert first == (0.0, 0.0) and last[0] <= 1.0 and last[1] <= 1.0
    # a step that does not divide the map cell is shrunk until it does (a whole number of rows per cell)
    odd = anywhere_hypotheses(WINDOW, step=0.05, scale_step=0.1, min_side=0.85)
    assert {round(h["ox"] + 0.1, 6) for h in odd} == {round(i * WINDOW / 3, 6) for i in range(5)}
    assert len(anywhere_hypotheses(WINDOW)) > len(anywhere_hypotheses(WINDOW, step=2 * WINDOW / 8))
    assert min(h["anywhere_side"] for h in anywhere_hypotheses(WINDOW)) >= ANYWHERE_MIN_SIDE - 1e-9
    assert anywhere_text({"anywhere_side": 0.8, "position": (0.25, 0.6)}) == \
        "a crop of 0.800 of each side at (0.25, 0.60)"
    with pytest.raises(ValueError, match="min_side, scale_step and step"):
        anywhere_hypotheses(WINDOW, step=0)


def test_anywhere_logits_read_the_canvases_as_each_crop_view(photos, monkeypatch):
    """In float32, the windows of the two-dimensional canvases give each hypothesis' logits as its own view does,
    up to the padding at the window's edges; the most confident rows are read again from their own views."""
    import torch

    import robusthide.watermark.sync as sync

    monkeypatch.setattr(sync, "_cpu_bf16", lambda: False)
    wm = Watermarker.from_pretrained("default")
    image = get_codec("crop:0.7,x=0.8,y=0.3")(wm.embed(photos["chelsea"], 77)[None]).images[0]
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    dec, size = wm.model.decoder, wm.model.size
    hyps = anywhere_hypotheses(2 * dec.stride / size, step=4 / 128, scale_step=0.05, min_side=0.8)
    fast = anywhere_logits(dec, x, size, hyps)
    with torch.no_grad():
        own = torch.cat([dec(v) for v in sync.affine_views(x, size, hyps).split(256)]).float()
    corr = torch.nn.functional.cosine_similarity(fast - fast.mean(1, keepdim=True), own - own.mean(1, keepdim=True))
    assert float(corr.median()) > 0.99 and float(corr.min()) > 0.9
    # the 8 rows read again from their own views: equal up to float rounding (oneDNN's kernel may differ with the
    # input's width), where the padding at a window's edge moves other rows by far more
    assert int(((fast - own).abs().amax(1) < 1e-3).sum()) >= 8
    assert anywhere_logits(dec, x, size, []).numel() == 0


def test_anywhere_search_reads_a_crop_off_the_centre(photos):
    """A marked photo cropped to 0.856 of each side (73 % of the area), at (0.8, 0.2) of the frame, resized back and
    saved as JPEG 80: the centred-crop and corner searches do not read it; the anywhere search does, says where,
    and its p-value pays for all of its rows."""
    wm = Watermarker.from_pretrained("default")
    k = 1 - 12 * ANYWHERE_SCALE_STEP  # a side fraction of the grid
    marked = wm.embed(photos["astronaut"], 1242)
    image = get_codec(f"crop:{k * k:.6f},x=0.8,y=0.2|jpeg:q=80")(marked[None]).images[0]
    assert not wm.extract(image, search="crop").detected
    assert not wm.extract(image, search="corner").detected
    r = wm.extract(image, search="anywhere")
    assert r.detected and r.message == 1242 and r.p_value <= 1e-6
    assert r.geometry["anywhere_side"] == pytest.approx(k, abs=1e-4)
    px, py = r.geometry["position"]
    assert px == pytest.approx(0.8, abs=0.03) and py == pytest.approx(0.2, abs=0.03)
    clean = wm.extract(photos["coffee"], search="anywhere")
    assert not clean.detected and clean.message is None
