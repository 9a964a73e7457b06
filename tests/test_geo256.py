"""The shipped periodic model ``geo256`` (issue 19, preview of release 6): a 72-data-bit payload, read after
geometric edits by its own geometry search, selectable by name beside the default."""

from __future__ import annotations

import pytest

from robusthide import RobustHideError
from robusthide.evaluation.attacks_grammar import attack_runner


@pytest.fixture(scope="module")
def geo():
    from robusthide import Watermarker

    return Watermarker.from_pretrained("geo256")


@pytest.fixture(scope="module")
def marked(geo, photos):
    message = (1 << 71) | 0x5A5A_1234_ABCD  # uses the top data bit of the 72
    return photos["astronaut"], geo.embed(photos["astronaut"], message), message


def test_geo256_carries_72_data_bits_and_searches_geometry_by_default(geo):
    from robusthide.zoo.registry import describe

    meta = describe("geo256")
    assert (meta["arch"], meta["n_bits"], meta["size"]) == ("geo", 256, 256)
    assert meta["refine"]["steps"] == 10 and meta["refine"]["codecs"] == ["h264:crf=28", "jpeg:q=50"]
    assert geo.model.default_search == "geometry" and geo.model.default_schema == "robust"
    assert geo.capacity()["data_bits"] == 72 and geo.capacity()["max_text_ascii_chars"] == 10
    with pytest.raises(RobustHideError, match=r"\(72 data bits\): an integer holds at most"):
        geo.encode_message(1 << 72)


@pytest.mark.parametrize("edit", ["identity", "flip:h", "crop:0.7,x=0.9,y=0.1", "rotate:15",
                                  "flip:h|rotate:-25,fill=crop", "rotate:90", "rotate:183"])
def test_geo256_reads_its_message_after_an_edit(geo, marked, edit):
    cover, image, message = marked
    edited = image if edit == "identity" else attack_runner(edit)(image[None], cover[None], seed=0)[0][0]
    r = geo.extract(edited)
    assert r.detected and r.message == message
    assert r.p_value < 1e-6


@pytest.mark.parametrize("edit,angle", [("rotate:15", 15.0), ("rotate:90", 90.0)])
def test_geo256_says_how_far_it_turned_the_image_back(geo, marked, edit, angle):
    """The rotation stage's angle comes from the tile lattice (robusthide.watermark.sync.lattice_angles); the
    hypothesis it reads reports it, within the half degree the decoder needs."""
    cover, image, message = marked
    r = geo.extract(attack_runner(edit)(image[None], cover[None], seed=0)[0][0])
    assert r.message == message and r.geometry["angle"] == pytest.approx(angle, abs=1.0)


def test_geo256_finds_nothing_in_the_unmarked_photo(geo, marked):
    cover, _, _ = marked
    r = geo.extract(cover)  # both stages of the search run, and none of their hypotheses passes
    assert not r.detected and r.message is None
