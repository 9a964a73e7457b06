"""The centred-crop search (robusthide/watermark/sync/views.py): a zoomed photo is read back, the detection
test pays for the search, clean images stay clean."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from robusthide import RobustHideError
from robusthide.cli.main import main
from robusthide.watermark.sync import STAGED_SHARES, centred_crop_views, side_fractions
from robusthide.watermark.watermarker import Watermarker


@pytest.fixture(scope="module")
def wm():
    return Watermarker.from_pretrained("default")


def _zoom(img: np.ndarray, area: float) -> np.ndarray:
    """The centre keeping ``area`` of the image, resized back to the full size (a platform's zoom)."""
    h, w = img.shape[:2]
    k = area ** 0.5
    ch, cw = round(h * k), round(w * k)
    y, x = (h - ch) // 2, (w - cw) // 2
    return np.asarray(Image.fromarray(img[y:y + ch, x:x + cw]).resize((w, h), Image.BILINEAR))


def test_side_fractions_step_a_quarter_pixel():
    s = side_fractions(128)
    assert s[0] == 1.0 and len(s) == 103 and s[-1] == pytest.approx(0.80078125)
    assert np.allclose(np.diff(s), -1 / 512)
    with pytest.raises(ValueError, match=r"min_side must be in \(0, 1\]"):
        side_fractions(128, 0)


def test_the_first_view_is_the_image_the_rest_its_shrunk_centre():
    img = torch.rand(1, 3, 256, 256)
    views, sides = centred_crop_views(img, 64, min_side=0.75)
    assert views.shape == (len(sides), 3, 64, 64) and sides[0] == 1.0
    plain = torch.nn.functional.interpolate(img, size=(64, 64), mode="bilinear", antialias=True,
                                            align_corners=False)
    assert float((views[0] - plain).abs().mean()) < 0.02
    fill = img.mean(dim=(2, 3))[0]
    border = views[-1][:, :, :7]  # k = 0.75: the outer 8 columns are outside the image
    assert torch.allclose(border.mean(dim=(1, 2)), fill, atol=1e-3)


@pytest.mark.parametrize("area", [0.9, 0.75])
def test_crop_search_reads_a_zoomed_photo(wm, photos, area):
    marked = wm.embed(photos["astronaut"], 1234)
    zoomed = _zoom(marked, area)
    plain = wm.extract(zoomed, search="none")
    found = wm.extract(zoomed, search="crop")
    assert not plain.detected
    staged = wm.extract(zoomed)  # the default: the crop search is one of its stages, with 0.13 of the budget
    assert staged.detected and staged.crop_side == found.crop_side
    assert dict(STAGED_SHARES)["crop"] == 0.13  # 0.15 until session 33 gave 0.02 to the anywhere stage
    assert staged.p_value == pytest.approx(found.p_value / 0.13, rel=1e-6, abs=0)
    assert found.detected and found.message == 1234
    assert found.crop_side == pytest.approx(area ** 0.5, abs=0.004)
    n = len(side_fractions(wm.model.size))
    assert found.p_value >= n * wm.extract(marked, search="none").p_value * 0.999  # Bonferroni over the hypotheses
    assert wm.extract(marked, search="crop").crop_side == 1.0


def test_crop_search_keeps_clean_images_clean(wm, photos):
    for name, img in photos.items():
        r = wm.extract(img, search="crop")
        assert not r.detected and r.message is None and r.crop_side is None, name
    with pytest.raises(RobustHideError, match="search must be one of none, crop"):
        wm.extract(photos["coffee"], search="spin")


def test_cli_extract_and_evaluate_with_crop_search(tmp_path, photos, capsys):
    wm = Watermarker.from_pretrained("default")
    zoomed = _zoom(wm.embed(photos["coffee"], 77), 0.85)
    Image.fromarray(zoomed).save(tmp_path / "zoomed.png")
    assert main(["extract", str(tmp_path / "zoomed.png"), "--search", "crop", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["detected"] and row["message"] == 77 and 0.91 < row["crop_side"] < 0.93
    assert main(["detect", str(tmp_path / "zoomed.png"), "--search", "none"]) == 1  # without a search: not found
    assert main(["detect", str(tmp_path / "zoomed.png")]) == 0  # the default staged search finds it
    capsys.readouterr()
    d = tmp_path / "imgs"
    d.mkdir()
    for name, img in photos.items():
        Image.fromarray(img).save(d / f"{name}.png")
    out = tmp_path / "m"
    assert main(["evaluate", "default", "--data", str(d), "--size", "256", "--attacks", "crop:0.9",
                 "--search", "crop", "--no-progress", "--out", str(out)]) == 0
    res = json.loads(out.with_suffix(".json").read_text())
    assert res["search"] == "crop" and "--search crop" in res["command"]
    assert res["rows"][0]["ber"] < 0.05  # without the search: 0.26


@pytest.mark.parametrize("search", ["crop", "corner", "inset"])
def test_fpr_with_one_search_writes_its_command(tmp_path, photo_dir, search):
    from robusthide.watermark.fpr import measure_fpr, write_fpr

    res = measure_fpr("default", str(photo_dir), None, n_photo=3, n_synth=2, seed=0, progress=False,
                      search=search)
    assert res["search"] == search and res["clean_images"] == 5 and res["false_positives"] == 0
    assert 0 < res["min_p_value"] <= 1
    write_fpr(res, str(tmp_path / "f"))
    assert f"--search {search} --out" in (tmp_path / "f.md").read_text()
    with pytest.raises(RobustHideError, match="search must be one of none, crop"):
        measure_fpr("default", str(photo_dir), None, n_photo=1, n_synth=0, search="spin")


def test_fpr_of_the_staged_search_lists_its_stages(photo_dir):
    from robusthide.watermark.fpr import measure_fpr
    from robusthide.watermark.sync import STAGED_SHARES

    res = measure_fpr("default", str(photo_dir), None, n_photo=1, n_synth=0, seed=0, progress=False, search="staged")
    assert res["stages"] == [name for name, _ in STAGED_SHARES] and res["stages"][:2] == ["none", "inset"]


def test_fpr_total_counts_the_images_covered_for_every_later_stage(tmp_path):
    """docs/scripts/fpr_total.py: a staged run made before a stage was added counts for the staged search as it
    is only with that stage run alone over the same images, or read by the run itself (``stages``, --read)."""
    import subprocess
    import sys
    from pathlib import Path

    def run_file(name: str, seed: int, n: int, search: str = "staged", fp: int = 0, **kw) -> Path:
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps({"model": "default", "search": search, "mirror": True, "seed": seed, "clean_images": n,
                                 "photo_patches": n, "synthetic": 0, "data": "d", "split": None,
                                 "false_positives": fp, "min_p_value": 0.01, **kw}))
        return f

    old, mid = run_file("old", 1, 100), run_file("mid", 2, 50)
    new = run_file("new", 3, 30, stages=["none", "inset", "reframe", "rotate", "crop", "corner"])
    alone = [run_file("c1", 1, 100, "corner"), run_file("i1", 1, 100, "inset"), run_file("i2", 2, 50, "inset")]
    out = tmp_path / "total.md"
    script = Path(__file__).resolve().parents[1] / "docs" / "scripts" / "fpr_total.py"
    args = [sys.executable, str(script), str(old), str(mid), str(new), "--read", "corner:mid.json", "--out", str(out)]
    for f in alone:
        args += ["--stage-alone", str(f)]
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "| **total** | | **180** | **0** |" in text
    assert "**180 of the 180 images are covered for every stage**" in text
    assert "| mid.json | 2 | 50 | 0 | 1.00e-02 | read by the run | i2.json, 0 |" in text
    done = subprocess.run(args[:5] + ["--out", str(out)] + args[-2:], capture_output=True, text=True)  # inset: mid
    assert done.returncode == 0 and "**80 of the 180 images are covered for every stage**" in out.read_text()


def test_staged_search_weights_share_the_budget():
    """The staged search's weights: each stage's own (mirror 1/8 of it) times its share; they sum to 1, but for
    the inset stage, which pays for boxes it did not find (robusthide/watermark/inset.py)."""
    from robusthide.watermark.inset import MAX_BOXES
    from robusthide.watermark.sync import (
        STAGED_SHARES,
        hypothesis_weights,
        reframe_hypotheses,
        search_logits,
        slide_hypotheses,
    )

    logits, hyps = search_logits(Watermarker.from_pretrained("default").model.decoder, torch.rand(1, 3, 96, 128),
                                 128, "staged")
    w = hypothesis_weights(hyps)
    n_reframe, n_slide = 2 * len(reframe_hypotheses(96, 128)), len(slide_hypotheses(96, 128))
    n_inset = sum(h["stage"] == "inset" for h in hyps)  # noise is all edges: some boxes
    assert 0 < n_inset <= 2 * MAX_BOXES and [h["stage"] for h in hyps[:3]] == ["none", "none", "inset"]
    # the anywhere stage's rows (robusthide/watermark/anywhere.py), last: 13 540 screened ones, then the refined
    # neighbours of the 8 most confident (26 each, fewer at the grid's edges, each once)
    n_any = sum(h["stage"] == "anywhere" for h in hyps)
    assert 13540 < n_any <= 13540 + 8 * 26
    assert n_slide == 1130 and (logits.shape[0] == len(hyps)
                                == 2 + n_inset + n_reframe + n_slide + 82 + 206 + 300 + 366 + n_any)
    assert [h["stage"] for h in hyps[-666 - n_any:]] == ["corner"] * 300 + ["turn"] * 366 + ["anywhere"] * n_any
    assert sum(h["stage"] == "reframe" for h in hyps) == 156 and sum(h["stage"] == "slide" for h in hyps) == 1130
    assert [s for s, _ in STAGED_SHARES] == ["none", "inset", "reframe", "slide", "rotate", "crop", "corner", "turn",
                                             "anywhere"]
    # the inset and anywhere stages pay for every row they could have read (16 boxes; the 103 272 rows of the
    # anywhere stage's finer grid), and spend the part of their share the rows they read need
    used = {"inset": n_inset / (2 * MAX_BOXES), "anywhere": n_any / 103272}
    for stage, share in STAGED_SHARES:
        ws = w[[i for i, h in enumerate(hyps) if h["stage"] == stage]]
        assert float(ws.sum()) == pytest.approx(share * used.get(stage, 1))
    assert float(w.sum()) == pytest.approx(1.0 - sum(dict(STAGED_SHARES)[s] * (1 - u) for s, u in used.items()))
    assert float(w[0]) == pytest.approx(0.16 * 7 / 8) and float(w[1]) == pytest.approx(0.16 / 8)


@pytest.mark.parametrize("n_bits", [64, 128])
def test_the_stages_that_gave_the_anywhere_stage_a_share_declare_at_as_many_errors(n_bits):
    """Session 32 gave the anywhere stage 0.12 of the staged search's budget, from the plain read (2 rows, 0.25 ->
    0.16), the crop stage (206 rows, 0.15 -> 0.13) and the slide stage (1130 rows here, no mirror images, 0.1 ->
    0.09): for every schema of 64 and 128 bits, a row of each of them, as it is (7/8 of its stage's weight) or
    mirrored (1/8), is still declared at as many corrected errors. The anywhere stage's refined rows (its p-value
    paying for 103 272) are declared at 2 errors of the default's 64 bits, as its 13 540 screened rows are."""
    from robusthide.payload import list_schemas, max_detectable_errors
    from robusthide.watermark.sync import STAGED_SHARES

    before = {"none": 0.25, "crop": 0.15, "slide": 0.1}
    now = dict(STAGED_SHARES)
    assert sum(now.values()) == pytest.approx(1.0) and now["anywhere"] == pytest.approx(0.12)
    assert {s for s, v in now.items() if v != before.get(s, v)} == set(before)  # the others kept theirs
    if n_bits == 64:
        assert [max_detectable_errors(64, 0, threshold=1e-6 * now["anywhere"] / rows) for rows in (13540, 103272)] \
            == [2, 2]
    for stage, per_side, parts in (("none", 1, (7 / 8, 1 / 8)), ("crop", 103, (7 / 8, 1 / 8)), ("slide", 1130, (1,))):
        for schema in list_schemas(n_bits):
            for part in parts:
                old, new = (max_detectable_errors(n_bits, schema, threshold=1e-6 * share * part / per_side)
                            for share in (before[stage], now[stage]))
                assert new == old, (stage, schema.id, part)


def test_reframe_hypotheses_are_bands_of_common_frames_centred_or_at_one_end():
    """Every common aspect ratio but the image's own gives the band it would be of that frame, across the width
    and across the height (a platform's reframing, or one resized back to the original's shape), once each, at
    the centre and at either end (one side cut off)."""
    from robusthide.watermark.sync import REFRAME_ASPECTS, reframe_hypotheses

    hyps = reframe_hypotheses(1350, 1080, anchors=("centre",))  # a 4:5 post
    boxes = [(h["kx"], h["ky"]) for h in hyps]
    assert (0.8, 1.0) in boxes and (1.0, 0.8) in boxes  # a 1:1 original reframed to 4:5, either way
    assert (pytest.approx(0.45), 1.0) in boxes  # a 16:9 original
    assert len(boxes) == len(set(boxes)) == 2 * (len(REFRAME_ASPECTS) - 1)
    assert all(min(h["kx"], h["ky"]) < 0.99 and max(h["kx"], h["ky"]) == 1.0 for h in hyps)
    assert all(h["band"] == pytest.approx(min(h["kx"], h["ky"]), abs=1e-4) for h in hyps)
    assert all(h["ox"] == h["oy"] == 0.0 and h["anchor"] == "centre" for h in hyps)
    assert len(reframe_hypotheses(1000, 1000, anchors=("centre",))) == len(REFRAME_ASPECTS) - 1  # X, 1 / X: one band
    every = reframe_hypotheses(1350, 1080)
    assert every[: len(hyps)] == hyps and len(every) == 3 * len(hyps)  # the centred bands first
    left = next(h for h in every if h["anchor"] == "start" and h["axis"] == "x" and h["band"] == 0.8)
    assert left["ox"] == pytest.approx(-0.2) and left["oy"] == 0.0
    top = next(h for h in every if h["anchor"] == "end" and h["axis"] == "y" and h["band"] == 0.8)
    assert top["oy"] == pytest.approx(0.2) and top["ox"] == 0.0
    with pytest.raises(ValueError, match="unknown reframing anchor"):
        reframe_hypotheses(100, 100, anchors=("middle",))


def test_a_band_at_one_end_is_drawn_there_and_its_mirror_is_the_other_end():
    """``ox`` moves the band's box to the start of the canvas; the mirrored row of the reframing search is the
    view of the mirror image with the band at the other end, as its hypothesis says."""
    from robusthide.nets.watermark_model import resize
    from robusthide.watermark.sync import affine_views, band_text, mirror_reframings, reframe_hypotheses

    img = torch.rand(1, 3, 80, 60)
    hyps = [h for h in reframe_hypotheses(80, 60, aspects=(1.0,)) if h["axis"] == "x"]  # band 0.75 of the width
    views = affine_views(img, 64, hyps)
    fill = resize(img, (128, 128)).mean(dim=(2, 3)).view(3, 1, 1)  # the canvas' fill: the mean of the view source
    for v, h in zip(views, hyps):
        cols = ((v - fill).abs().sum(dim=(0, 1)) > 1e-4).nonzero().flatten()  # the columns holding the image
        assert {"centre": (8, 56), "start": (0, 48), "end": (16, 64)}[h["anchor"]] == (int(cols[0]), int(cols[-1]) + 1)
    mirrored = mirror_reframings(hyps)
    assert [h["anchor"] for h in mirrored] == ["centre", "start", "end", "centre", "end", "start"]
    assert torch.allclose(affine_views(img, 64, mirrored[3:]), affine_views(img, 64, hyps).flip(-1), atol=1e-5)
    assert band_text(hyps[1]) == "the left part (0.750 of the width)" and band_text(hyps[0]).startswith("a centred")


def test_staged_default_reads_a_photo_with_one_side_cut_off(wm, photos):
    """A photo with its right quarter cut off (the rest kept as it is, JPEG 75) reads by the staged default's
    reframing stage, as the left part of its original frame; as it is, it does not."""
    import io

    from PIL import Image

    marked = wm.embed(photos["chelsea"], 1234)  # 451 x 300: about 3:2
    cut = marked[:, : round(marked.shape[1] * 0.75)]
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(cut)).save(buf, "JPEG", quality=75)
    cut = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    assert not wm.extract(cut, search="none").detected
    r = wm.extract(cut)
    assert r.detected and r.message == 1234
    assert (r.geometry["anchor"], r.geometry["axis"], r.geometry["flip"]) == ("start", "x", False)


def test_corner_hypotheses_tile_the_side_fractions_at_four_corners():
    """k = 0.996 ... 0.7 in steps of 0.004 at each corner; the box of each sits in its corner of the frame."""
    from robusthide.watermark.sync import CORNERS, corner_hypotheses, corner_text

    hyps = corner_hypotheses()
    ks = sorted({h["corner_side"] for h in hyps}, reverse=True)
    assert len(hyps) == 4 * len(ks) == 300 and ks[0] == 0.996 and ks[-1] == 0.7
    for h in hyps:
        sx, sy = CORNERS[h["corner"]]
        assert h["kx"] == h["ky"] and not h["flip"]
        assert sx * h["ox"] + h["kx"] == pytest.approx(1) and sy * h["oy"] + h["ky"] == pytest.approx(1)
    assert corner_text(hyps[1]) == "the top-right corner (0.996 of each side)"
    with pytest.raises(ValueError, match="min_side and step"):
        corner_hypotheses(min_side=1.0)


@pytest.mark.parametrize("spec, corner", [("crop:0.7,x=0,y=0", "top-left"), ("crop:0.6,x=1,y=1|jpeg:q=80",
                                                                                "bottom-right")])
def test_staged_default_reads_a_crop_that_kept_a_corner(wm, photos, spec, corner):
    """A crop dragged from one corner with the aspect ratio locked (area 70 % or 60 %, resized back) is not read
    as it is, nor by the centred crop stage; the staged default's corner stage reads it and says which corner."""
    from robusthide.codecs import get_codec

    marked = wm.embed(photos["astronaut"], 1234)
    cut = get_codec(spec)(marked).images
    assert not wm.extract(cut, search="crop").detected
    found = wm.extract(cut, search="corner")
    r = wm.extract(cut)
    assert r.detected and r.message == 1234 and r.geometry["corner"] == corner == found.geometry["corner"]
    area = float(spec.split(":")[1].split(",")[0])
    assert r.geometry["corner_side"] == pytest.approx(area ** 0.5, abs=0.006)
    assert r.p_value == pytest.approx(found.p_value / 0.1, rel=1e-6, abs=0)  # the corner stage has 1/10 of the budget


def test_screened_logits_decide_on_float32_rows():
    """The bf16 pass (where the CPU has it) keeps the most confident rows in float32, exactly."""
    from robusthide.watermark.sync import SCREEN_TOP, ranking_scores, screened_logits

    dec = Watermarker.from_pretrained("default").model.decoder
    views = torch.rand(12, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    hyps = [{}] * 12
    with torch.no_grad():
        full = dec(views).float()
        mixed = screened_logits(dec, views, hyps)
    same = torch.isclose(mixed, full, rtol=0, atol=1e-4).all(dim=1)
    assert int(same.sum()) >= SCREEN_TOP                  # those rows are the float32 pass's
    assert bool(same[ranking_scores(mixed, hyps).argmax()])  # and the most confident one among them
    assert torch.allclose(mixed, full, atol=0.5)


@pytest.mark.parametrize("aspect, band, axis", [(0.8, 0.8, "x"), (16 / 9, 0.5625, "y")])
def test_reframe_search_reads_a_platform_reframing(wm, photos, aspect, band, axis):
    """A square photo reframed as a platform does it (the centre cut to 4:5 or 16:9, that shape kept, resized to
    1080 px, JPEG 75): not read as it is; the reframing search and the staged default (its second stage, 1/10
    of the budget) read it and say which band of the frame it was."""
    import io

    marked = wm.embed(photos["astronaut"], 1234)
    h, w = marked.shape[:2]
    cw, ch = (round(h * aspect), h) if aspect < w / h else (w, round(w / aspect))
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    post = Image.fromarray(marked[y0:y0 + ch, x0:x0 + cw])
    post = post.resize((round(cw * 1080 / min(cw, ch)), round(ch * 1080 / min(cw, ch))), Image.BICUBIC)
    buf = io.BytesIO()
    post.save(buf, "JPEG", quality=75)
    post = np.asarray(Image.open(buf).convert("RGB"))
    assert not wm.extract(post, search="none").detected
    found = wm.extract(post, search="reframe")
    assert found.detected and found.message == 1234
    assert found.geometry["band"] == pytest.approx(band, abs=0.01) and found.geometry["axis"] == axis
    staged = wm.extract(post)
    assert staged.detected and staged.message == 1234 and staged.geometry == found.geometry
    assert staged.p_value == pytest.approx(10 * found.p_value, rel=1e-6, abs=0)


def test_staged_batch_equals_one_at_a_time(wm, photos):
    """extract_batch with the staged default: plain reads batched, the rest searched, as extract decides."""
    from robusthide.codecs import get_codec

    marked = wm.embed(photos["astronaut"], 1321)
    imgs = [marked, get_codec("rotate:2")(marked[None]).images[0], _zoom(marked, 0.8), photos["coffee"]]
    batch = wm.extract_batch(imgs)
    single = [wm.extract(x) for x in imgs]
    assert [r.message for r in batch] == [1321, 1321, 1321, None]
    assert [(r.p_value, r.geometry, r.crop_side) for r in batch] == [(r.p_value, r.geometry, r.crop_side)
                                                                     for r in single]
    assert batch[1].geometry["angle"] == 2.0 and batch[2].crop_side < 0.92 and batch[0].geometry is None
