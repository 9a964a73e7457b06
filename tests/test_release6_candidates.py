"""The shipped release-6 candidates (issue 19), each selectable by name beside the default: ``geo256``, a
periodic model with 72 data bits read after geometric edits by its own geometry search, and ``lean128-r6``, 76
data bits under its stored schema ``large``, decided by the hard and the soft-decision test together through
the default staged search."""

from __future__ import annotations

import functools

import pytest

from robusthide import RobustHideError
from robusthide.evaluation.attacks_grammar import attack_runner

#: each candidate's message, using the top data bit
MESSAGES = {"geo256": (1 << 71) | 0x5A5A_1234_ABCD, "lean128-r6": (1 << 75) | 0x5A5A_1234_ABCD}


@functools.cache
def _model(name: str):
    from robusthide import Watermarker

    return Watermarker.from_pretrained(name)


@pytest.fixture(scope="module")
def marked(photos):
    """name -> (cover, marked image, message), marked once per module."""
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            cover = photos["astronaut"]
            cache[name] = cover, _model(name).embed(cover, MESSAGES[name]), MESSAGES[name]
        return cache[name]

    return get


def test_geo256_carries_72_data_bits_and_searches_geometry_by_default():
    from robusthide.zoo.registry import describe

    geo = _model("geo256")
    meta = describe("geo256")
    assert (meta["arch"], meta["n_bits"], meta["size"]) == ("geo", 256, 256)
    assert meta["refine"]["steps"] == 10 and meta["refine"]["codecs"] == ["h264:crf=28", "jpeg:q=50"]
    assert geo.model.default_search == "geometry" and geo.model.default_schema == "robust"
    assert geo.capacity()["data_bits"] == 72 and geo.capacity()["max_text_ascii_chars"] == 10
    with pytest.raises(RobustHideError, match=r"\(72 data bits\): an integer holds at most"):
        geo.encode_message(1 << 72)


def test_lean128_r6_carries_76_data_bits_with_the_soft_test():
    from robusthide.zoo.registry import describe

    wm = _model("lean128-r6")
    meta = describe("lean128-r6")
    assert (meta["arch"], meta["n_bits"]) == ("lean", 128)
    assert meta["schema"] == "large" and meta["soft_share"] == 0.5
    assert (describe("default")["schema"], describe("default")["soft_share"]) == (None, 0.0)  # hard test only
    assert wm.schema == "large" and wm.soft_share == 0.5 and wm.default_search == "staged"
    assert wm.capacity()["data_bits"] == 76
    with pytest.raises(RobustHideError, match=r"\(76 data bits\): an integer holds at most"):
        wm.encode_message(1 << 76)


@pytest.mark.parametrize("name,edit", [
    *(("geo256", e) for e in ("identity", "flip:h", "crop:0.7,x=0.9,y=0.1", "rotate:15",
                              "flip:h|rotate:-25,fill=crop", "rotate:90", "rotate:183")),
    *(("lean128-r6", e) for e in ("identity", "jpeg:q=50", "flip:h|jpeg:q=75", "rotate:2", "crop:0.8|jpeg:q=75")),
])
def test_candidate_reads_its_message_after_an_edit(marked, name, edit):
    cover, image, message = marked(name)
    edited = image if edit == "identity" else attack_runner(edit)(image[None], cover[None], seed=0)[0][0]
    r = _model(name).extract(edited)
    assert r.detected and r.message == message
    assert r.p_value < 1e-6


@pytest.mark.parametrize("edit,angle", [("rotate:15", 15.0), ("rotate:90", 90.0)])
def test_geo256_says_how_far_it_turned_the_image_back(marked, edit, angle):
    """The rotation stage's angle comes from the tile lattice (robusthide.watermark.sync.lattice_angles); the
    hypothesis it reads reports it, within the half degree the decoder needs."""
    cover, image, message = marked("geo256")
    r = _model("geo256").extract(attack_runner(edit)(image[None], cover[None], seed=0)[0][0])
    assert r.message == message and r.geometry["angle"] == pytest.approx(angle, abs=1.0)


@pytest.mark.parametrize("name", list(MESSAGES))
def test_candidate_finds_nothing_in_the_unmarked_photo(photos, name):
    # every stage of the model's search runs (for lean128-r6 with both tests), and none of its hypotheses passes
    r = _model(name).extract(photos["astronaut"])
    assert not r.detected and r.message is None
