"""Video watermarking: frames marked, re-encoded with H.264, audio kept, message read back by voting."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from robusthide.cli.main import main


def _make_video(path, photos, n=8, audio=True):
    out = av.open(str(path), "w")
    v = out.add_stream("libx264", rate=10)
    v.width, v.height, v.pix_fmt = 320, 240, "yuv420p"
    v.options = {"crf": "16"}
    a = None
    if audio:
        a = out.add_stream("aac", rate=16000)
        a.layout = "mono"
    base = photos["coffee"][:240, 100:420]
    for i in range(n):
        f = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.roll(base, 2 * i, axis=1)), format="rgb24")
        f.pts, f.time_base = i, Fraction(1, 10)
        for p in v.encode(f):
            out.mux(p)
    for p in v.encode():
        out.mux(p)
    if a is not None:
        t = np.arange(16000, dtype=np.float32) / 16000
        samples = (0.2 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)
        af = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        af.sample_rate, af.pts, af.time_base = 16000, 0, Fraction(1, 16000)
        for p in a.encode(af):
            out.mux(p)
        for p in a.encode():
            out.mux(p)
    out.close()


def test_video_round_trip_keeps_audio(tmp_path, photos, capsys):
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    _make_video(src, photos)
    assert main(["embed", str(src), "-o", str(dst), "-m", "7", "--kind", "int", "--crf", "20", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["frames"] == 8 and row["psnr"] > 35
    with av.open(str(dst)) as c:
        assert len(c.streams.audio) == 1
        assert c.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in c.decode(video=0)) == 8
    assert main(["extract", str(dst), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["detected"] and res["message"] == 7


def test_video_without_frames_is_an_error(tmp_path, capsys):
    src = tmp_path / "empty.mp4"
    out = av.open(str(src), "w")
    a = out.add_stream("aac", rate=16000)
    a.layout = "mono"
    out.close()
    rc = main(["extract", str(src)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("robusthide: error:") and err.count("\n") == 1


@pytest.mark.parametrize("content", [b"", b"not a video"])
def test_bad_video_file(tmp_path, capsys, content):
    src = tmp_path / "bad.mp4"
    src.write_bytes(content)
    dst = tmp_path / "o.mp4"
    rc = main(["embed", str(src), "-o", str(dst), "-m", "1", "--kind", "int"])
    assert rc == 2 and not dst.exists()
    assert "robusthide: error:" in capsys.readouterr().err


def _marked_landscape_clip(wm, tmp_path, photos, write_clip, message: int):
    """(source clip, marked clip, its decoded frames): 8 frames of the coffee photo at 512 x 288 panning a pixel per
    frame, marked with ``message`` (H.264 CRF 18)."""
    from PIL import Image

    from robusthide.watermark.video import embed_video

    frame = np.asarray(Image.fromarray(photos["coffee"]).resize((512, 288), Image.BICUBIC))
    src, dst = tmp_path / "c.mp4", tmp_path / "m.mp4"
    write_clip(src, [np.roll(frame, i, axis=1) for i in range(8)])
    embed_video(wm, src, dst, wm.encode_message(message), crf=18)
    with av.open(str(dst)) as inp:
        return src, dst, [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]


def test_a_reframed_clip_is_read_by_the_staged_search_and_pays_for_it(tmp_path, photos, write_clip):
    """A 16:9 clip cut to 1:1 (a platform's reframing, a band of 56 % of the width) reads by the staged
    search's reframing stage, pooled over the frames; the plain read does not; an unmarked clip stays
    unmarked; the plain reading of an unedited clip is the staged search's first stage, at its share."""
    from robusthide.watermark.sync import STAGED_SHARES
    from robusthide.watermark.video import extract_video
    from robusthide.watermark.watermarker import Watermarker

    wm = Watermarker.from_pretrained("default")
    src, dst, marked = _marked_landscape_clip(wm, tmp_path, photos, write_clip, 77)
    cut = tmp_path / "r.mp4"
    write_clip(cut, [np.ascontiguousarray(f[:, 112:400]) for f in marked], crf=23)
    assert not extract_video(wm, cut, search="none").detected
    r = extract_video(wm, cut)
    assert r.detected and r.message == 77
    assert (r.geometry["axis"], r.geometry["band"], r.geometry["flip"]) == ("x", pytest.approx(0.5625, abs=0.01), False)
    seen: list[str] = []  # the progress hook: every later stage, in order, for a clip that is not marked
    assert not extract_video(wm, src, progress=seen.append).detected
    assert seen == [stage for stage, _ in STAGED_SHARES if stage != "none"]
    seen.clear()
    plain, staged = extract_video(wm, dst, search="none"), extract_video(wm, dst, progress=seen.append)
    assert seen == []  # the plain read detects: no later stage runs
    assert staged.detected and staged.geometry is None
    none = dict(STAGED_SHARES)["none"]  # the plain read keeps its share of the budget (0.16 since session 32)
    assert staged.p_value == pytest.approx(plain.p_value / none, rel=1e-4, abs=0)
    with pytest.raises(Exception, match="reframe_frames must be a positive integer"):
        wm.decide_frames_staged(torch.zeros(2, 64), [{}, {"flip": True}], [], reframe_frames=0)


def _marked_portrait_frames(wm, tmp_path, photos, write_clip, message: int) -> list[np.ndarray]:
    """The decoded frames (288 x 160, 9:16) of a 6-frame clip of the astronaut marked with ``message``."""
    from PIL import Image

    from robusthide.watermark.video import embed_video

    frame = np.asarray(Image.fromarray(photos["astronaut"]).resize((160, 288), Image.BICUBIC))
    src, dst = tmp_path / "v.mp4", tmp_path / "m.mp4"
    write_clip(src, [np.clip(frame * (0.9 + 0.03 * i), 0, 255).astype(np.uint8) for i in range(6)])
    embed_video(wm, src, dst, wm.encode_message(message), crf=18)
    with av.open(str(dst)) as inp:
        return [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]


def test_a_clip_turned_a_quarter_is_read_by_the_turn_stage(tmp_path, photos, write_clip):
    """A marked portrait clip whose frames were turned by a quarter (a phone video whose rotation tag a tool
    dropped: landscape frames, the picture on its side) reads by the staged search's quarter turns, pooled over
    the frames, and says by how much it turned them back; as it is it does not read."""
    from robusthide.watermark.video import extract_video
    from robusthide.watermark.watermarker import Watermarker

    wm = Watermarker.from_pretrained("default")
    marked, turned = _marked_portrait_frames(wm, tmp_path, photos, write_clip, 93), tmp_path / "t.mp4"
    write_clip(turned, [np.ascontiguousarray(np.rot90(m, -1)) for m in marked], crf=23)  # clockwise: 288 x 160
    assert not extract_video(wm, turned, search="none").detected
    r = extract_video(wm, turned)
    assert r.detected and r.message == 93
    assert (r.geometry["angle"], r.geometry["fill"], r.geometry["flip"]) == (270.0, "quarter", False)


def test_a_pillarboxed_clip_is_read_by_the_inset_stage(tmp_path, photos, write_clip):
    """A marked 9:16 clip shown in a 16:9 frame with black bars on both sides (a phone video on a desktop
    player) reads by the staged search's inset stage, pooled over the frames, which says where the clip is."""
    from robusthide.watermark.video import extract_video
    from robusthide.watermark.watermarker import Watermarker

    wm = Watermarker.from_pretrained("default")
    marked, boxed = _marked_portrait_frames(wm, tmp_path, photos, write_clip, 91), tmp_path / "b.mp4"
    canvas = np.zeros((288, 512, 3), np.uint8)
    write_clip(boxed, [np.ascontiguousarray(np.concatenate([canvas[:, :176], m, canvas[:, :176]], axis=1))
                       for m in marked], crf=23)
    assert not extract_video(wm, boxed, search="none").detected
    r = extract_video(wm, boxed)
    assert r.detected and r.message == 91
    x0, _, x1, _ = r.geometry["box"]
    assert x0 == pytest.approx(176 / 512, abs=0.01) and x1 == pytest.approx(336 / 512, abs=0.01)


def test_a_clip_cropped_off_centre_or_straightened_is_read_by_the_geometric_stages(tmp_path, photos, write_clip):
    """A marked clip cropped to 0.838 of each side (70 % of the area) off the centre, at (0.3, 0.7), then re-encoded
    reads by the staged search's anywhere stage, each row's logits pooled over the frames (one P-frame alone reads
    at 10-15 raw errors, the 8 frames pooled at none), and says where the crop was; a clip turned by 3 degrees
    (black corners) reads by the rotation stage. As they are, neither reads."""
    from PIL import Image

    from robusthide.watermark.video import extract_video
    from robusthide.watermark.watermarker import Watermarker

    wm = Watermarker.from_pretrained("default")
    _, _, marked = _marked_landscape_clip(wm, tmp_path, photos, write_clip, 77)
    h, w = 240, 428  # 0.838 of 288 x 512, even sides for yuv420p
    y0, x0 = round((288 - h) * 0.7), round((512 - w) * 0.3)
    cropped, turned = tmp_path / "crop.mp4", tmp_path / "turn.mp4"
    write_clip(cropped, [np.ascontiguousarray(f[y0:y0 + h, x0:x0 + w]) for f in marked], crf=23)
    write_clip(turned, [np.asarray(Image.fromarray(f).rotate(3, resample=Image.BICUBIC)) for f in marked], crf=23)
    for clip in (cropped, turned):
        assert not extract_video(wm, clip, search="none").detected
    r = extract_video(wm, cropped)
    assert r.detected and r.message == 77
    assert r.geometry["anywhere_side"] == pytest.approx(0.838, abs=0.02)
    assert r.geometry["position"] == pytest.approx((0.3, 0.7), abs=0.03)
    r = extract_video(wm, turned)
    assert r.detected and r.message == 77
    assert (r.geometry["angle"], r.geometry["fill"], r.geometry["flip"]) == (3.0, "black", False)


def test_the_stage_bar_counts_the_stages_done(capsys):
    """``robusthide extract CLIP``'s progress bar (on a terminal, one clip, no --json): a stage is counted done
    when the next one starts, and the bar names the stage running."""
    from robusthide.cli.cmd_watermark import _stage_bar

    with _stage_bar(False) as hook:
        assert hook is None
    with _stage_bar(True) as hook:
        for stage in ("inset", "reframe", "slide"):
            hook(stage)
    err = capsys.readouterr().err
    assert "2/8" in err and "slide" in err and "3/8" not in err
