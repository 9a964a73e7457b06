"""The one zoo (issue 18, item 2): every shipped model of every family in one registry, one card format,
``robusthide models`` lists them all, ``from_pretrained`` of each family resolves through the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robusthide import RobustHideError
from robusthide.zoo.registry import FAMILIES, PRETRAINED, card_problems, list_models, names, resolve, weights_path

ZOO = Path(__file__).parent.parent / "robusthide" / "zoo"


def test_every_family_has_models_and_every_file_is_registered():
    assert {e["family"] for e in PRETRAINED.values()} == set(FAMILIES)
    assert {p.name for p in (ZOO / "weights").glob("*.safetensors")} == {e["file"] for e in PRETRAINED.values()}
    assert {p.name for p in (ZOO / "cards").glob("*.md")} == {e["card"] for e in PRETRAINED.values()}
    assert not (ZOO.parent / "latent" / "weights").exists()  # moved into the zoo


@pytest.mark.parametrize("name", list(PRETRAINED))
def test_cards_share_one_format(name):
    assert card_problems(name) == []


def test_list_models_by_family():
    rows = list_models()
    assert [r["name"] for r in rows] == list(PRETRAINED)
    assert [r["name"] for r in list_models("latent")] == ["latent-hp-q6", "latent-hp-q5", "latent-hp-q3",
                                                         "latent-elic-q6", "latent-hyperprior", "latent-fnns-decoder",
                                                         "latent-hp-q6-decoder"]
    by = {r["name"]: r for r in rows}
    assert by["imagehide-003"]["size"] == 64 and by["imagehide-003"]["steps"] == 3500
    assert by["latent-hyperprior"]["role"] == "codec" and by["latent-hyperprior"]["arch"] == "hyperprior"
    assert [by[f"latent-hp-q{q}"]["steps"] for q in (3, 5, 6)] == [12500, 22000, 34500]
    assert by["latent-elic-q6"]["arch"] == "elic" and by["latent-elic-q6"]["steps"] == 17000
    with pytest.raises(RobustHideError, match="unknown model family 'video'"):
        list_models("video")


def test_resolution_checks_the_family():
    assert resolve("imagehide-003", "imagehide") == weights_path("imagehide-003")
    with pytest.raises(RobustHideError, match=r"^'imagehide-003' is an imagehide model, not a watermark model"):
        resolve("imagehide-003", "watermark")
    with pytest.raises(RobustHideError, match=r"no model named 'nope' \(known: default, lean128, lean128-r6, geo256\)"):
        resolve("nope", "watermark")


def test_from_pretrained_of_every_family():
    from robusthide import Watermarker
    from robusthide.imagehiding import ImageHider
    from robusthide.imagehiding.api import SHIPPED

    assert Watermarker.from_pretrained("lean128").n_bits == 128
    assert ImageHider.from_pretrained().size == 128 and list(SHIPPED) == names("imagehide")
    with pytest.raises(RobustHideError, match="is a watermark model, not an imagehide model"):
        ImageHider.from_pretrained("default")
    with pytest.raises(RobustHideError, match="is an imagehide model, not a watermark model"):
        Watermarker.from_pretrained("imagehide-003")
    pytest.importorskip("constriction")
    from robusthide.latent.api import DEFAULT_CODEC, DEFAULT_DECODER, from_pretrained

    codec, decoder = from_pretrained()
    assert codec.meta["quality"] == "6" and decoder.decoder_id() == "37f2f691e2d4a2c0"
    assert DEFAULT_CODEC == weights_path("latent-hp-q6") and DEFAULT_DECODER.is_file()
    with pytest.raises(RobustHideError, match="'latent-fnns-decoder' is a latent decoder, not a codec"):
        from_pretrained(codec="latent-fnns-decoder")


def test_cli_models_lists_every_family(capsys):
    from robusthide.cli.main import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["name", "family"]
    listed = {ln.split()[0]: ln.split()[1] for ln in out[1:-1]}
    assert listed == {n: e["family"] for n, e in PRETRAINED.items()}
    assert main(["models", "--family", "imagehide", "--json"]) == 0
    listed_imagehide = [r["name"] for r in json.loads(capsys.readouterr().out)]
    assert listed_imagehide == ["imagehide-hinet", "imagehide-hinet2", "imagehide-hinet3", "imagehide-003"]
    assert main(["models", "--card", "latent-fnns-decoder"]) == 0
    assert capsys.readouterr().out.startswith("# Model card: `latent-fnns-decoder`")
