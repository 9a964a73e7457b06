"""The ``anywhere`` search (robusthide/watermark/anywhere.py, session 31): a crop that kept the aspect ratio, at any
place in the frame."""

from __future__ import annotations

import numpy as np
import pytest

from robusthide.codecs import get_codec
from robusthide.watermark.anywhere import (
    ANYWHERE_MIN_SIDE,
    ANYWHERE_SCALE_STEP,
    ANYWHERE_STEP,
    anywhere_fine_count,
    anywhere_hypotheses,
    anywhere_logits,
    anywhere_neighbours,
    anywhere_search,
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

    import robusthide.training.hardware as hardware
    import robusthide.watermark.sync as sync

    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)  # the float32 read
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
    # the refined rows lie half a step of k either way of the screened grid's (refined since session 33)
    assert r.geometry["anywhere_side"] == pytest.approx(k, abs=ANYWHERE_SCALE_STEP / 2 + 1e-6)
    px, py = r.geometry["position"]
    assert px == pytest.approx(0.8, abs=0.03) and py == pytest.approx(0.2, abs=0.03)
    clean = wm.extract(photos["coffee"], search="anywhere")
    assert not clean.detected and clean.message is None


def _key(h: dict) -> tuple[float, float, float]:
    return round(float(h["kx"]), 9), round(float(h["ox"]), 9), round(float(h["oy"]), 9)


def test_anywhere_neighbours_are_the_finer_grid_around_a_row():
    """The refinement's rows lie on the grid twice as fine in k, x and y, which holds the screened grid; the count
    the p-value pays for is that grid's size; a row inside the grid has 26 new neighbours, one at its edge fewer."""
    fine = anywhere_hypotheses(WINDOW, ANYWHERE_STEP / 2, ANYWHERE_SCALE_STEP / 2)
    coarse = anywhere_hypotheses(WINDOW)
    assert anywhere_fine_count(WINDOW) == len(fine) == 103272 and len(coarse) == 13540
    small = dict(step=WINDOW / 2, scale_step=0.05, min_side=0.8)
    assert anywhere_fine_count(WINDOW, **small, split=3) == len(
        anywhere_hypotheses(WINDOW, WINDOW / 6, 0.05 / 3, 0.8))
    fine_keys, coarse_keys = {_key(h) for h in fine}, {_key(h) for h in coarse}
    assert coarse_keys <= fine_keys
    inner = min((h for h in coarse if h["anywhere_side"] == 0.82),
                key=lambda h: abs(h["position"][0] - 0.5) + abs(h["position"][1] - 0.5))
    near = anywhere_neighbours([inner], WINDOW)
    assert len(near) == 26 and {_key(h) for h in near} <= fine_keys - coarse_keys
    assert {round(h["kx"], 6) for h in near} == {0.814, 0.82, 0.826}
    # at its own k a half step either way; at the next k, whose grid starts elsewhere, the nearest and one either way
    assert max(abs(h["ox"] - inner["ox"]) for h in near if h["kx"] == inner["kx"]) == pytest.approx(ANYWHERE_STEP / 2)
    assert max(abs(h["ox"] - inner["ox"]) for h in near) <= 3 * ANYWHERE_STEP / 4 + 1e-9
    edge = next(h for h in coarse if h["anywhere_side"] == 0.7 and h["position"] == (0.0, 0.0))
    assert 0 < len(anywhere_neighbours([edge], WINDOW)) < 26
    assert len(anywhere_neighbours([inner, inner], WINDOW)) == 26  # each row once


def test_anywhere_refinement_reads_a_crop_between_the_grid_rows(photos, monkeypatch):
    """A crop keeping 60 % of the area at (0.8, 0.25), then JPEG 80: the screened grid's best row is several
    errors off and the search does not read it; its refined rows are one error off or less, and with the
    refinement on (robusthide/watermark/anywhere.py's ANYWHERE_REFINE, the default) it reads, its p-value paying
    for each of the 103 272 rows of the finer grid."""
    import torch

    import robusthide.watermark.anywhere as anywhere
    from robusthide.watermark.sync import hypothesis_weights

    wm = Watermarker.from_pretrained("default")
    dec, size = wm.model.decoder, wm.model.size
    image = get_codec("crop:0.6,x=0.8,y=0.25|jpeg:q=80")(wm.embed(photos["chelsea"], 1242)[None]).images[0]
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    sent = np.asarray(wm.encode_message(1242))
    logits, hyps = anywhere_search(dec, x, size, WINDOW, refine=True)
    n = len(anywhere_hypotheses(WINDOW))
    errors = ((logits > 0).numpy() != sent).sum(1)
    assert errors[:n].min() >= 4 and errors[n:].min() <= 1
    assert len(hyps) == len(logits) > n and all(h["of"] == 103272 for h in hyps)
    assert float(hypothesis_weights(hyps).sum()) == pytest.approx(len(hyps) / 103272)
    monkeypatch.setattr(anywhere, "ANYWHERE_REFINE", False)
    assert not wm.extract(image, search="anywhere").detected
    monkeypatch.setattr(anywhere, "ANYWHERE_REFINE", True)  # the default since session 33
    r = wm.extract(image, search="anywhere")
    assert r.detected and r.message == 1242
    assert r.geometry["anywhere_side"] == pytest.approx(0.6 ** 0.5, abs=0.01)
    assert r.geometry["position"][0] == pytest.approx(0.8, abs=0.03)


def test_the_frames_of_a_clip_are_pooled_per_row(photos):
    """A list of one frame is searched bit for bit as the frame alone; for two frames every row of a stage is the
    mean of the frames' rows (:func:`robusthide.watermark.sync.frames_stage_logits`), and the anywhere search
    screens on the mean and refines the rows most confident on it, read in each frame and averaged."""
    import torch

    from robusthide.watermark.anywhere import anywhere_refined
    from robusthide.watermark.sync import frames_stage_logits, search_logits

    wm = Watermarker.from_pretrained("default")
    dec, size = wm.model.decoder, wm.model.size
    a = torch.from_numpy(wm.embed(photos["chelsea"], 5)).permute(2, 0, 1)[None].float() / 255
    b = a.flip(-1)
    one, hyps = anywhere_search(dec, [a], size, WINDOW)
    alone, alone_hyps = anywhere_search(dec, a, size, WINDOW)
    assert torch.equal(one, alone) and hyps == alone_hyps
    for stage in ("crop", "corner"):
        both, bh = frames_stage_logits(dec, [a, b], size, stage)
        (la, ha), (lb, _) = (search_logits(dec, x, size, stage, staged=True) for x in (a, b))
        assert bh == ha and torch.allclose(both, (la + lb) / 2, atol=1e-6)
    pooled, ph = anywhere_search(dec, [a, b], size, WINDOW)
    n = len(anywhere_hypotheses(WINDOW))
    la, lb = anywhere_logits(dec, a, size, ph[:n]), anywhere_logits(dec, b, size, ph[:n])
    assert torch.allclose(pooled[:n], (la + lb) / 2, atol=1e-6)
    fine, fh = anywhere_refined(dec, [a, b], size, ph[:n], (la + lb) / 2, WINDOW)
    assert [{**h, "of": ph[n]["of"]} for h in fh] == ph[n:] and torch.allclose(pooled[n:], fine, atol=1e-6)
    with pytest.raises(ValueError, match="no frames"):
        frames_stage_logits(dec, [], size, "crop")


def test_fpr_script_decides_the_screened_grid_as_the_search_does_and_the_refined_rows_alone(tmp_path, photo_dir):
    """docs/scripts/fpr_anywhere_refine.py screens each clean image once: its ``--screened-out`` decision is the one
    ``robusthide fpr --search anywhere`` makes on the same images, and its own is the refined rows' alone."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from robusthide.watermark.fpr import measure_fpr

    script = Path(__file__).resolve().parents[1] / "docs" / "scripts" / "fpr_anywhere_refine.py"
    done = subprocess.run([sys.executable, str(script), "--data", str(photo_dir), "--n", "2", "--synthetic", "1",
                           "--seed", "3", "--out", str(tmp_path / "ref"), "--screened-out", str(tmp_path / "scr")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    ref, scr = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("ref", "scr"))
    plain = measure_fpr("default", str(photo_dir), None, n_photo=2, n_synth=1, seed=3, progress=False,
                        search="anywhere")
    assert ref["search"] == "anywhere:refine" and scr["search"] == "anywhere" and ref["clean_images"] == 3
    keys = ("clean_images", "false_positives", "min_p_value", "ecc_decoded_but_rejected", "seed", "split")
    assert {k: scr[k] for k in keys} == {k: plain[k] for k in keys}
    assert "fpr_anywhere_refine.py --data" in (tmp_path / "scr.md").read_text()
    assert "refined rows alone" in (tmp_path / "ref.md").read_text()
