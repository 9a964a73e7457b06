"""Everyday photo edits as codecs (robusthide/codecs/edits.py): exact identities, the numbers each edit is
defined by, presets equal to their chains, errors, and their use in an attack list."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from robusthide.cli.cmd_codecs import codec_table
from robusthide.codecs import CodecError, get_codec
from robusthide.codecs.edits import FILTERS
from robusthide.evaluation.attacks_grammar import parse_attacks

EDITS = ("brightness", "contrast", "saturation", "gamma", "hue", "temperature", "grayscale", "sharpen",
         "vignette", "text", "filter")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[::2, ::2])


def code(spec: str, image: np.ndarray) -> np.ndarray:
    out = get_codec(spec)(image[None])
    assert out.nbytes == [0]
    return out.images[0]


@pytest.mark.parametrize("spec", ["brightness:1", "contrast:1", "saturation:1", "gamma:1", "hue:0",
                                  "temperature:0", "sharpen:0", "vignette:0"])
def test_neutral_settings_return_the_image_unchanged(photo, spec):
    np.testing.assert_array_equal(code(spec, photo), photo)


def test_each_edit_moves_pixels_as_defined():
    grey = np.full((8, 8, 3), 100, np.uint8)
    assert code("brightness:0.5", grey).max() == 50
    assert code("gamma:2", np.full((4, 4, 3), 64, np.uint8)).max() == 128       # 255 (64/255)^(1/2) = 127.7
    warm = code("temperature:1", grey)[0, 0]
    assert warm.tolist() == [120, 100, 80]                                      # red x 1.2, blue x 0.8
    dark = code("vignette:0.5", np.full((100, 100, 3), 200, np.uint8))
    assert dark[50, 50, 0] == 200 and abs(int(dark[0, 0, 0]) - 101) <= 1        # corners x (1 - 0.5 * 0.98)
    flat = code("contrast:0", np.stack([np.full((4, 4), v, np.uint8) for v in (0, 100, 200)], 2))
    assert np.ptp(flat.reshape(-1, 3), axis=0).max() == 0                     # every pixel the same colour


def test_grayscale_and_zero_saturation_give_one_grey_in_every_channel(photo):
    g = code("grayscale", photo)
    assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
    np.testing.assert_array_equal(code("saturation:0", photo), g)


def test_hue_turns_back_to_the_photo(photo):
    back = code("hue:180|hue:180", photo).astype(int)
    once = code("hue:90", photo).astype(int)
    assert np.abs(back - photo).mean() < 2.5 < np.abs(once - photo).mean()


def test_text_writes_white_and_black_only_around_its_line(photo):
    out = code("text:0.1,y=0.5", photo)
    changed = np.abs(out.astype(int) - photo).sum(axis=2) > 0
    rows = np.flatnonzero(changed.any(axis=1))
    assert rows.min() > 0.4 * photo.shape[0] and rows.max() < 0.6 * photo.shape[0]
    assert (out[changed] == 255).all(axis=1).sum() > 50 and (out[changed] == 0).all(axis=1).sum() > 50


@pytest.mark.parametrize("preset", sorted(FILTERS))
def test_each_filter_is_its_chain_of_edits(photo, preset):
    np.testing.assert_array_equal(code(f"filter:{preset}", photo), code(FILTERS[preset], photo))


@pytest.mark.parametrize("spec, msg", [
    ("brightness:5", "factor must be a number in [0, 4], got 5"),
    ("hue:200", "degrees must be a number in [-180, 180], got 200"),
    ("filter:sepia", "preset must be one of vivid, warm, cool, fade, vintage, mono, dramatic, got 'sepia'"),
    ("text:0.1,say=a b", "say must be 1-64 letters, digits or _ (for a space), got 'a b'"),
    ("grayscale:1", "bare value '1'"),
    ("sharpen:1,radius=0", "radius must be a number in [0.1, 50], got 0"),
])
def test_bad_edit_specs_are_one_line_errors(spec, msg):
    with pytest.raises(CodecError) as e:
        get_codec(spec)
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_edits_are_listed_and_sweep_in_an_attack_list():
    kinds = {r["name"]: r["kind"] for r in codec_table()}
    assert all(kinds[name] == "edit" for name in EDITS)
    assert parse_attacks("brightness:0.7,1.3;grayscale;filter:vintage|jpeg:q=75") == [
        "brightness:0.7", "brightness:1.3", "grayscale", "filter:vintage|jpeg:q=75"]
