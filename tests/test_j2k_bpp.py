"""``jpeg2000:bpp=B``: paper 000's JPEG 2000 "quality" read as thousandths of a bit per pixel
(docs/results/j2k-x1000.md)."""

from __future__ import annotations

import numpy as np
import pytest

from robusthide.codecs import CodecError, get_codec


def _images() -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128]
    base = np.stack([(xx * 2 + yy) % 256, (yy * 3) % 256, 128 + 60 * np.sin(xx / 9.0)], -1)
    return np.clip(base + rng.normal(0, 6, (2, 128, 128, 3)), 0, 255).astype(np.uint8)


def test_bpp_hits_the_asked_rate_and_is_ratio_24_over_bpp():
    x = _images()
    res = get_codec("jpeg2000:bpp=1")(x)
    assert all(0.85 <= b <= 1.05 for b in res.bpp())
    same = get_codec("jpeg2000:ratio=24")(x)
    assert np.array_equal(res.images, same.images) and res.nbytes == same.nbytes
    assert sum(get_codec("jpeg2000:bpp=0.5")(x).nbytes) < sum(res.nbytes)


@pytest.mark.parametrize("spec, words", [("jpeg2000:bpp=0", "bpp must be a number in (0, 24]"),
                                         ("jpeg2000:bpp=0.5,x1000=500", "exactly one of x1000=, ratio=, bpp=")])
def test_bpp_errors(spec, words):
    with pytest.raises(CodecError) as e:
        get_codec(spec)
    assert words in str(e.value)
