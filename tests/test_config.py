"""The one strict config loader (issue 18, item 3): unknown keys, wrong types and out-of-range values are
one-line errors naming the key (and the nearest valid one); numbers written as ``1e-3`` are numbers; every
shipped config loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from robusthide import RobustHideError
from robusthide.imagehiding.train import load_config as load_imagehide
from robusthide.training.config import load_config

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


def _loader(path: Path):
    return load_imagehide if path.name.startswith("imagehide") else load_config


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = _loader(path)(path)
    assert cfg["name"] == path.stem and cfg["train"]["steps"] >= 1


def test_configs_folder_is_not_empty():
    assert len(CONFIGS) >= 10


def _error(loader, doc=None, overrides=None) -> str:
    with pytest.raises(RobustHideError) as e:
        loader(doc, overrides)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("doc, overrides, message", [
    ({"trian": {"steps": 3}}, None, "config: unknown key 'trian' (did you mean 'train'?)"),
    ({"train": {"stpes": 3}}, None, "config: unknown key 'train.stpes' (did you mean 'train.steps'?)"),
    (None, ["train.stpes=3"], "config: unknown key 'train.stpes' (did you mean 'train.steps'?)"),
    (None, ["noise.slcies=2"], "config: unknown key 'noise.slcies' (did you mean 'noise.slices'?)"),
    (None, ["val.codecs=[jpeg]"], "config: unknown key 'val.codecs' (did you mean 'val.codec'?)"),
    (None, ["model.amplitdue=0.1"], "config: unknown key 'model.amplitdue' (did you mean 'model.amplitude'?)"),
    ({"model": {"arch": "mbrs", "blcks": 2}}, None, "config: unknown key 'model.blcks' (did you mean 'model.blocks'?)"),
    (None, ["train.steps=ten"], "config: train.steps must be an integer, got 'ten'"),
    (None, ["train.steps=2.5"], "config: train.steps must be an integer, got 2.5"),
    (None, ["train.amp=maybe"], "config: train.amp must be true or false, got 'maybe'"),
    (None, ["train.lr=fast"], "config: train.lr must be a number, got 'fast'"),
    (None, ["train.lr=-1e-3"], "config: train.lr must be >= 0, got -0.001"),
    (None, ["train.batch=0"], "config: train.batch must be >= 1, got 0"),
    (None, ["data.whole_p=1.5"], "config: data.whole_p must be in [0, 1], got 1.5"),
    (None, ["train.full_size=[256, 4]"], "config: train.full_size must be >= 8, got 4"),
    (None, ["train.strategy=psuedo"], "config: train.strategy must be one of identity, pseudo, oeds, tsr, "
                                      "tsr-s, mbrs, got 'psuedo'"),
    (None, ["train.steps=null"], "config: train.steps must be an integer, got null"),
    ({"val": 3}, None, "config: val must be a mapping (a section), got 3"),
])
def test_watermark_config_errors_name_the_key(doc, overrides, message):
    assert _error(load_config, doc, overrides) == message


def test_yaml_numbers_in_e_notation_are_numbers(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  lr: 1e-3\n  lr_final: 5e-5\n  steps: 2e3\n")
    cfg = load_config(p)
    assert cfg["train"]["lr"] == 1e-3 and isinstance(cfg["train"]["lr"], float)
    assert cfg["train"]["lr_final"] == 5e-5
    assert cfg["train"]["steps"] == 2000 and isinstance(cfg["train"]["steps"], int)
    assert load_config(None, ["train.lr=3e-4"])["train"]["lr"] == 3e-4


def test_overrides_replace_a_section_and_keep_the_rest():
    cfg = load_config(None, ["model={arch: mbrs, n_bits: 30, size: 128, diffusion: true}", "train.lr=0.01"])
    assert cfg["model"] == {"arch": "mbrs", "n_bits": 30, "size": 128, "diffusion": True}
    assert cfg["train"]["lr"] == 0.01 and cfg["train"]["batch"] == 16
    assert load_config(None, ["train.stage1_steps=5", "noise.q=75"])["noise"]["q"] == 75


@pytest.mark.parametrize("doc, overrides, message", [
    ({"modle": {}}, None, "config: unknown key 'modle' (did you mean 'model'?)"),
    ({"loss": {"containr": 1}}, None, "config: unknown key 'loss.containr' (did you mean 'loss.container'?)"),
    (None, ["disc.layres=2"], "config: unknown key 'disc.layres' (did you mean 'disc.layers'?)"),
    (None, ["train.lr_d=0"], None),
    (None, ["loss.cover=much"], "config: loss.cover must be a number, got 'much'"),
    (None, ["val.codecs=jpeg:q=50"], "config: val.codecs must be a list of strings, got 'jpeg:q=50'"),
])
def test_imagehide_config_uses_the_same_loader(doc, overrides, message):
    if message is None:
        assert load_imagehide(doc, overrides)["train"]["lr_d"] == 0
    else:
        assert _error(load_imagehide, doc, overrides) == message
    assert load_imagehide({"train": {"lr_d": "2e-4"}, "loss": {"cover": "1e-1"}})["loss"]["cover"] == 0.1


def test_cli_train_with_a_typo_is_one_line_exit_2(tmp_path, capsys):
    from robusthide.cli.main import main

    p = tmp_path / "c.yaml"
    p.write_text("trian:\n  steps: 3\n")
    assert main(["train", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "robusthide: error: config: unknown key 'trian' (did you mean 'train'?)"
