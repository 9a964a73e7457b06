"""``xvid`` is the real libxvid (the system ffmpeg over pipes); ``xvid-opencv`` is OpenCV's mpeg4-tagged-XVID."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

from robusthide.codecs import CodecError, get_codec
from robusthide.codecs import video as video_codecs
from robusthide.codecs.base import CodecUnavailableError
from robusthide.metrics import psnr

_PATH, _WHY = video_codecs.ffmpeg_xvid()
needs_libxvid = pytest.mark.skipif(_PATH is None, reason=f"xvid unavailable here: {_WHY}")


def _clip(n: int = 6, size: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.stack([(xx * 3) % 256, (yy * 2 + xx) % 256, (128 + 40 * np.sin(xx / 5.0) * np.cos(yy / 7.0))], -1)
    rng = np.random.default_rng(0)
    frames = [np.roll(base, 2 * i, axis=1) + rng.integers(-4, 5, base.shape) for i in range(n)]
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


@needs_libxvid
def test_xvid_output_differs_from_mpeg4_output():
    batch = _clip()
    x = get_codec("xvid")(batch)
    m = get_codec("mpeg4:container=avi")(batch)
    o = get_codec("xvid-opencv")(batch)
    assert x.images.shape == batch.shape and x.images.dtype == np.uint8
    assert np.array_equal(o.images, m.images)                      # the old 'xvid': mpeg4's pixels
    differ = [not np.array_equal(x.images[i], m.images[i]) for i in range(len(batch))]
    assert all(differ)
    assert np.mean(np.abs(x.images.astype(int) - m.images.astype(int))) > 0.5
    for i in range(len(batch)):
        assert psnr(batch[i], x.images[i]) > 24
    assert sum(x.nbytes) > 0 and max(x.nbytes) - min(x.nbytes) <= 1


@needs_libxvid
def test_xvid_clip_is_an_xvid_avi_made_by_libxvid():
    import av

    codec = get_codec("xvid")
    clip = codec.encode_clip(_clip(3))
    assert clip[:4] == b"RIFF" and clip[8:12] == b"AVI "
    assert b"XviD" in clip                                          # libxvid's signature in the bitstream
    assert b"XviD" not in get_codec("xvid-opencv").encode_clip(_clip(3))
    with av.open(io.BytesIO(clip)) as c:
        st = c.streams.video[0]
        assert st.codec_tag == "XVID" and st.codec_context.name == "mpeg4"
    assert "libxvid via" in codec.library


@needs_libxvid
def test_xvid_parameters_change_the_bitstream_and_are_deterministic():
    batch = _clip(4)
    a, b = get_codec("xvid:q=2")(batch), get_codec("xvid:q=20")(batch)
    assert sum(a.nbytes) > sum(b.nbytes)
    assert psnr(batch[0], a.images[0]) > psnr(batch[0], b.images[0])
    again = get_codec("xvid:q=2")(batch)
    assert np.array_equal(again.images, a.images) and again.nbytes == a.nbytes
    odd = get_codec("xvid")(_clip(2, 50)[:, :49, :47])
    assert odd.images.shape == (2, 49, 47, 3)
    assert get_codec("xvid:mode=frames")(batch).images.shape == batch.shape


@needs_libxvid
def test_xvid_leaves_no_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    get_codec("xvid")(_clip(2))
    assert list(tmp_path.iterdir()) == []


def test_without_libxvid_codecs_says_why_and_xvid_names_the_fix(monkeypatch, capsys):
    from robusthide.cli.cmd_codecs import codec_table
    from robusthide.cli.main import main

    monkeypatch.setenv("ROBUSTHIDE_FFMPEG", "no-such-ffmpeg-here")
    video_codecs.ffmpeg_xvid.cache_clear()
    try:
        row = {r["name"]: r for r in codec_table()}["xvid"]
        assert not row["available"]
        assert "no 'no-such-ffmpeg-here' program on PATH" in row["reason"]
        assert "apt-get install ffmpeg" in row["reason"] and "\n" not in row["reason"]
        assert {r["name"]: r for r in codec_table()}["xvid-opencv"]["available"]
        with pytest.raises(CodecUnavailableError) as e:
            get_codec("xvid")
        msg = str(e.value)
        assert "\n" not in msg and "apt-get install ffmpeg" in msg and "'xvid'" in msg
        assert main(["codecs"]) == 0
        out = capsys.readouterr().out
        line = next(ln for ln in out.splitlines() if ln.startswith("xvid "))
        assert "MISSING" in line and "apt-get install ffmpeg" in line
    finally:
        monkeypatch.delenv("ROBUSTHIDE_FFMPEG")
        video_codecs.ffmpeg_xvid.cache_clear()


def test_an_ffmpeg_without_libxvid_is_named(tmp_path, monkeypatch):
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho ' V....D mpeg4   MPEG-4 part 2'\n")
    fake.chmod(0o755)
    video_codecs.ffmpeg_xvid.cache_clear()
    try:
        path, why = video_codecs.ffmpeg_xvid(str(fake))
        assert path is None and why.startswith(f"{fake} has no libxvid encoder") and "apt-get" in why
    finally:
        video_codecs.ffmpeg_xvid.cache_clear()


@needs_libxvid
def test_an_ffmpeg_failure_is_a_one_line_codec_error(monkeypatch):
    codec = get_codec("xvid")
    monkeypatch.setattr(video_codecs.XVID, "ffmpeg_args", lambda self, w, h, t: ["-nostdin", "-f", "nonsense"])
    with pytest.raises(CodecError) as e:
        codec(_clip(2))
    assert "libxvid could not encode 2 frame(s) of 64x64" in str(e.value) and "\n" not in str(e.value)
    assert os.environ.get("ROBUSTHIDE_FFMPEG") is None
