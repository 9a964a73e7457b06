"""Mirror images (issue 19, session 11): every extraction of a whole-image model also reads the mirror image,
with no flag, and the detection test pays for it by weighted Bonferroni (the image as it is keeps 7/8 of the
false-positive budget, so its number of correctable errors at detection stays what it was)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robusthide.payload import (
    MIRROR_SHARE,
    decode_bits,
    decode_hypotheses,
    encode_message,
    max_detectable_errors,
    mirror_weights,
    p_value,
)
from robusthide.payload.schemas import list_schemas
from robusthide.watermark.watermarker import Watermarker


@pytest.fixture(scope="module")
def wm():
    return Watermarker.from_pretrained("default")


@pytest.fixture(scope="module")
def marked(wm, photos):
    return wm.embed(np.ascontiguousarray(photos["coffee"]), 1234, refine=0)


def test_weights_sum_to_one_and_give_the_mirror_an_eighth():
    w = mirror_weights([False, True])
    assert w.tolist() == pytest.approx([7 / 8, 1 / 8]) and MIRROR_SHARE == 1 / 8
    w = mirror_weights([False] * 3 + [True] * 3)
    assert w.sum() == pytest.approx(1) and w[0] == pytest.approx(7 / 24) and w[-1] == pytest.approx(1 / 24)
    assert mirror_weights([False, False]).tolist() == [0.5, 0.5]  # no mirror: plain Bonferroni


@pytest.mark.parametrize("n", [64, 128])
def test_the_unmirrored_detection_cap_is_unchanged_for_every_schema(n):
    """The number of corrected errors at which presence is declared, read as it is, is what it was before the
    mirror hypothesis existed (7/8 of the budget keeps it for every 64- and 128-bit schema)."""
    for s in list_schemas(n):
        cap = max_detectable_errors(n, s)
        for e in range(s.t + 1):
            assert (p_value(n, s, e) * 8 / 7 <= 1e-6) == (e <= cap), (s.name, e)


def test_decode_hypotheses_pays_for_every_hypothesis():
    word = encode_message(1234, 64).astype(np.float32)
    logits = np.stack([(2 * word - 1) * 4, np.random.default_rng(0).normal(0, 1, 64)]).astype(np.float32)
    plain = decode_bits(1 / (1 + np.exp(-logits[0])), 64)
    r, i = decode_hypotheses(logits, 64, weights=mirror_weights([False, True]))
    assert i == 0 and r.detected and r.message == 1234 and r.p_value == pytest.approx(plain.p_value * 8 / 7, abs=0)
    r, i = decode_hypotheses(logits[::-1].copy(), 64, weights=mirror_weights([False, True]))
    assert i == 1 and r.detected and r.p_value == pytest.approx(plain.p_value * 8, abs=0)  # read in the mirror
    r, _ = decode_hypotheses(logits, 64)
    assert r.p_value == pytest.approx(plain.p_value * 2, abs=0)  # no weights: plain Bonferroni
    with pytest.raises(ValueError, match="summing to at most 1"):
        decode_hypotheses(logits, 64, weights=[0.9, 0.9])


def test_extract_reads_a_mirrored_image_with_no_flag(wm, marked):
    flipped = np.ascontiguousarray(marked[:, ::-1])
    r = wm.extract(flipped)
    assert r.detected and r.message == 1234 and r.geometry == {"flip": True}
    assert wm.detect(flipped)
    assert not Watermarker(wm.model, mirror=False).extract(flipped).detected  # what it was before
    plain = wm.extract(marked)
    assert plain.detected and plain.geometry is None and plain.crop_side is None
    hard, _ = wm.decode_bits(flipped)
    assert np.array_equal(hard, wm.encode_message(1234))  # raw bits: the more confident reading


def test_the_unflipped_reading_is_the_old_one_at_8_7_of_its_p_value(wm, marked):
    old = Watermarker(wm.model, mirror=False)
    for img in (marked, np.zeros_like(marked)):
        a, b = old.extract(img), wm.extract(img)
        assert a.bits == b.bits and a.detected == b.detected and a.corrected_errors == b.corrected_errors
        if a.detected:
            assert b.p_value == pytest.approx(a.p_value * 8 / 7, rel=1e-12, abs=0)


def test_crop_search_reads_a_mirrored_zoom(wm, marked):
    from robusthide.codecs import get_codec

    zoom = get_codec("flip:h|crop:0.9")(marked[None]).images[0]
    r = wm.extract(zoom, search="crop")
    assert r.detected and r.message == 1234 and r.geometry == {"flip": True} and 0.94 < r.crop_side < 0.96


def test_batches_read_mirrors_as_single_calls_do(wm, marked, photos):
    imgs = [np.ascontiguousarray(marked[:, ::-1]), marked, np.ascontiguousarray(photos["chelsea"])]
    batch = wm.extract_batch(imgs)
    for img, r in zip(imgs, batch):
        one = wm.extract(img)
        assert (r.detected, r.message, r.p_value, r.geometry) == (one.detected, one.message, one.p_value,
                                                                   one.geometry)
    assert [r.detected for r in batch] == [True, True, False]
    hard, _ = wm.decode_bits_batch(imgs[:2])
    assert (hard == wm.encode_message(1234)).all()


def test_float_images_are_mirrored_too(wm, marked):
    x = torch.from_numpy(np.ascontiguousarray(marked[:, ::-1])).permute(2, 0, 1).float() / 255
    r = wm.extract(x)
    assert r.detected and r.message == 1234 and r.geometry == {"flip": True}


def test_video_of_mirrored_frames_is_read(wm, tmp_path, photos, write_clip):
    import av

    from robusthide.watermark.video import embed_video, extract_video

    src, dst, flipped = tmp_path / "c.mp4", tmp_path / "m.mp4", tmp_path / "f.mp4"
    frame = np.ascontiguousarray(photos["chelsea"][:256, :384])
    write_clip(src, [np.roll(frame, i, axis=1) for i in range(6)])
    embed_video(wm, src, dst, wm.encode_message(77), crf=18)
    with av.open(str(dst)) as inp:
        write_clip(flipped, [f.to_ndarray(format="rgb24")[:, ::-1] for f in inp.decode(video=0)], crf=18)
    r = extract_video(wm, flipped)
    assert r.detected and r.message == 77 and r.geometry == {"flip": True}
    r = extract_video(wm, dst)
    assert r.detected and r.message == 77 and r.geometry is None


def test_onnx_runtime_reads_the_mirror_as_torch_does(wm, marked):
    pytest.importorskip("onnxruntime")
    from robusthide.onnxrt import OnnxWatermarker

    ow = OnnxWatermarker.from_pretrained()
    flipped = np.ascontiguousarray(marked[:, ::-1])
    for img in (flipped, marked):
        a, b = ow.extract(img), wm.extract(img)
        assert (a.detected, a.message, a.geometry) == (b.detected, b.message, b.geometry)
        # the runtime reads the whole image only: the p-value of torch's plain read, not the staged search's share
        assert a.p_value == pytest.approx(wm.extract(img, search="none").p_value, rel=1e-6, abs=0)
    assert [r.message for r in ow.extract_batch([flipped, marked])] == [1234, 1234]


def test_fpr_reads_clean_images_mirrored_too(tmp_path, photos):
    from PIL import Image

    from robusthide.watermark.fpr import measure_fpr, write_fpr

    for name, im in photos.items():
        Image.fromarray(im).save(tmp_path / f"{name}.png")
    res = measure_fpr("default", str(tmp_path), None, n_photo=12, n_synth=6, progress=False)
    assert res["mirror"] is True and res["false_positives"] == 0 and res["clean_images"] == 18
    write_fpr(res, str(tmp_path / "out" / "fpr"))
    assert "mirrored" in (tmp_path / "out" / "fpr.md").read_text()
    assert json.loads((tmp_path / "out" / "fpr.json").read_text())["mirror"] is True


def test_demo_reads_a_flip(tmp_path, capsys):
    from robusthide.cli.main import main

    assert main(["demo", "--out", str(tmp_path)]) == 0
    rows = {r["attack"]: r for r in json.loads((tmp_path / "demo.json").read_text())}
    assert rows["flip:h|jpeg:q=80"]["message"] == 1234 and rows["flip:h|jpeg:q=80"]["geometry"] == {"flip": True}
    # the default extraction's staged search turns rotations back and finds centred crops
    assert rows["rotate:3|jpeg:q=80"]["message"] == 1234 and rows["rotate:3|jpeg:q=80"]["geometry"]["angle"] == 3.0
    assert rows["rotate:2"]["message"] == 1234 and rows["crop:0.9|jpeg:q=80"]["message"] == 1234
    corner = rows["crop:0.7,x=0,y=0"]  # a crop that kept the top-left corner and the aspect (session 23)
    assert corner["message"] == 1234 and corner["geometry"]["corner"] == "top-left"
    anywhere = rows["crop:0.7,x=0.3,y=0.7|jpeg:q=75"]  # off the centre and the corners: the anywhere stage (s. 33)
    assert anywhere["message"] == 1234 and abs(anywhere["geometry"]["anywhere_side"] - 0.7 ** 0.5) <= 0.006
    assert max(abs(anywhere["geometry"]["position"][0] - 0.3), abs(anywhere["geometry"]["position"][1] - 0.7)) <= 0.02
    assert not rows["crop:0.5,x=0.35,y=0.6|jpeg:q=75"]["detected"]  # half the area, then JPEG 75, here: not yet
    turned = rows["rotate:12|jpeg:q=80"]  # past the rotation stage's 5 degrees: the turn stage (session 25)
    assert turned["message"] == 1234 and abs(turned["geometry"]["angle"] - 12) <= 0.5
    assert rows["rotate:90"]["message"] == 1234 and rows["rotate:90"]["geometry"]["fill"] == "quarter"
    reframed = rows["reframe:4x5|jpeg:q=80"]  # the centre cut to 4:5 and resized back: a band of the width
    assert reframed["message"] == 1234 and reframed["geometry"]["band"] == 0.8 and reframed["geometry"]["axis"] == "x"
    out = capsys.readouterr().out
    assert "mirror image read" in out and "turned back 2 deg" in out and "are read on some photos only" in out
    assert "reframed: a centred band (0.800 of the width)" in out
    slid = rows["reframe:4x5,pos=0.2|jpeg:q=80"]  # the 4:5 window a fifth of the way along: the slide stage
    assert slid["message"] == 1234 and slid["geometry"]["anchor"] == "slide" and slid["geometry"]["band"] == 0.8
    assert abs(slid["geometry"]["position"] - 0.2) <= 0.02
    assert f"reframed: a band at {slid['geometry']['position']:.2f} along the width (0.800 of it)" in out
    side = rows["crop:w=0.75,x=0|jpeg:q=80"]  # the right quarter cut off: the left part of the frame
    assert side["message"] == 1234 and (side["geometry"]["anchor"], side["geometry"]["band"]) == ("start", 0.75)
    assert "reframed: the left part (0.750 of the width)" in out
    assert "cropped to the top-left corner (0.836 of each side)" in out


def test_rotation_views_cover_both_fills_and_the_mirror():
    from robusthide.watermark.sync import ROTATION_ANGLES, rotation_views

    views, hyps = rotation_views(torch.rand(1, 3, 200, 300), 64)
    n = 2 * len(ROTATION_ANGLES) - 1  # angle 0 once (black), every other angle black and straightened
    assert views.shape == (2 * n, 3, 64, 64) and len(hyps) == 2 * n
    assert hyps[0] == {"angle": -5.0, "fill": "black", "flip": False} and hyps[n]["flip"] is True
    assert sum(h["angle"] == 0 for h in hyps) == 2


@pytest.mark.parametrize("spec", ["rotate:3", "rotate:-4,fill=crop", "flip:h|rotate:2"])
def test_rotation_search_reads_a_rotated_photo(wm, marked, spec):
    from robusthide.codecs import get_codec
    from robusthide.watermark.sync import STAGED_SHARES

    turned = get_codec(spec)(marked[None]).images[0]
    assert not wm.extract(turned, search="none").detected
    r = wm.extract(turned, search="rotate")
    assert r.detected and r.message == 1234
    staged = wm.extract(turned)  # the default: the rotation search is one of its stages, with 0.15 of the budget
    assert staged.detected and staged.message == 1234 and staged.geometry == r.geometry
    assert staged.p_value == pytest.approx(r.p_value / dict(STAGED_SHARES)["rotate"], rel=1e-6, abs=0)
    assert abs(abs(r.geometry["angle"]) - abs(float(spec.split(":")[-1].split(",")[0]))) <= 0.5
    assert r.geometry["fill"] == ("crop" if "fill=crop" in spec else "black")
    assert r.geometry["flip"] is spec.startswith("flip")
    plain = wm.extract(marked, search="none")
    assert wm.extract(marked, search="rotate").p_value >= plain.p_value * 41 * 0.999  # pays for the search


def test_cli_extract_and_detect_read_a_mirrored_file(wm, marked, tmp_path, capsys):
    from PIL import Image

    from robusthide.cli.main import main

    Image.fromarray(np.ascontiguousarray(marked[:, ::-1])).save(tmp_path / "selfie.png")
    assert main(["extract", str(tmp_path / "selfie.png")]) == 0
    assert "selfie.png: 1234  (p=" in (out := capsys.readouterr().out) and "read mirrored" in out
    assert main(["detect", str(tmp_path / "selfie.png")]) == 0
    assert main(["extract", str(tmp_path / "selfie.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["geometry"] == {"flip": True}
