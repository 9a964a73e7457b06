"""Video watermarking: frames marked, re-encoded with H.264, audio kept, message read back by voting."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pytest

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
