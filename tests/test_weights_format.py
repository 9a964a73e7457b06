"""One weights format (robusthide/2) for every family, read through one reader that also takes the older
metadata, and one loader (robusthide.zoo.registry.load) for every shipped model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from robusthide import RobustHideError
from robusthide.zoo.registry import PRETRAINED, describe, load, weights_path
from robusthide.zoo.weights import FORMAT, KEYS, convert, raw_meta, read_meta


def test_every_shipped_model_reads_in_the_one_form():
    for name, entry in PRETRAINED.items():
        wm = read_meta(weights_path(name))
        assert wm.family == entry["family"] and wm.arch and isinstance(wm.config, dict) and wm.config, name
        assert wm.role == entry.get("role"), name
    for name in PRETRAINED:  # every shipped file is in robusthide/2, with a name and its card
        meta = raw_meta(weights_path(name))
        assert meta["name"] in (name, PRETRAINED[name]["file"].removesuffix(".safetensors")), name
        assert meta["format"] == FORMAT and set(KEYS) <= set(meta)
        assert meta["card"] == PRETRAINED[name]["card"] and meta["family"] == PRETRAINED[name]["family"]


def test_one_loader_for_every_family():
    from robusthide.imagehiding.nets import HidingNetwork
    from robusthide.latent.models import ScaleHyperprior
    from robusthide.latent.stegnet import BasicDecoder
    from robusthide.nets.watermark_model import WatermarkModel

    kinds = {"default": WatermarkModel, "imagehide-003": HidingNetwork, "latent-hyperprior": ScaleHyperprior,
             "latent-fnns-decoder": BasicDecoder}
    for name, kind in kinds.items():
        assert isinstance(load(name), kind), name
    with pytest.raises(RobustHideError, match="'imagehide-003' is an imagehide model, not a watermark model"):
        load("imagehide-003", "watermark")


def test_latent_files_load_in_both_formats_with_the_same_ids(tmp_path):
    """The latent weights moved to robusthide/2 with their tensors unchanged: the legacy form of each loads to
    the same model id, and the family's loaders refuse a robusthide/2 file of another family or role."""
    pytest.importorskip("constriction")
    from robusthide.latent.api import from_pretrained
    from robusthide.latent.models import load_codec
    from robusthide.latent.stegnet import load_decoder

    codec, decoder = from_pretrained("latent-hyperprior", "latent-fnns-decoder")
    legacy = {"latent-hyperprior": {"format": "robusthide-latent-codec", "arch": "hyperprior", "N": "64",
                                    "M": "192", "lmbda": "0.0483", "quality": "6", "steps": "4000"},
              "latent-fnns-decoder": {"format": "robusthide-latent-stegdecoder", "data_depth": "1", "hidden": "32",
                                      "steps": "2000"}}
    for name, meta in legacy.items():
        old = tmp_path / f"{name}.safetensors"
        save_file(load_file(str(weights_path(name))), str(old), metadata=meta)
        assert read_meta(old).config == read_meta(weights_path(name)).config
    assert load_codec(tmp_path / "latent-hyperprior.safetensors").model_id() == codec.model_id()
    assert load_decoder(tmp_path / "latent-fnns-decoder.safetensors").decoder_id() == decoder.decoder_id()
    assert codec.meta["lmbda"] == "0.0483" and load("latent-fnns-decoder").decoder_id() == "0914a735be5f3350"
    with pytest.raises(RobustHideError, match=r"not a latent codec \(family latent, role decoder\)"):
        load_codec(weights_path("latent-fnns-decoder"))
    with pytest.raises(RobustHideError, match=r"not a latent decoder \(family imagehide, role none\)"):
        load_decoder(weights_path("imagehide-003"))
    with pytest.raises(RobustHideError, match="'latent-hyperprior' is a latent codec, not a decoder"):
        load("latent-hyperprior", "latent", role="decoder")


def test_legacy_files_convert_without_changing_the_model(tmp_path):
    """A robusthide/1 file (the default as it shipped before) and its robusthide/2 conversion load to the
    same model and describe the same."""
    src = weights_path("default")
    meta = raw_meta(src)
    old = {"format": "robusthide/1", "arch": meta["arch"], "kwargs": meta["config"], "name": meta["name"],
           "step": meta["step"], "strength": meta["strength"], "config": meta["training"],
           "train_seconds": meta["train_seconds"]}
    v1 = tmp_path / "v1.safetensors"
    save_file(load_file(str(src)), str(v1), metadata=old)
    a = read_meta(v1)
    assert (a.source_format, a.family, a.arch, a.step, a.config) == (
        "robusthide/1", "watermark", "lean", 5000, json.loads(meta["config"]))
    v2 = convert(v1, tmp_path / "v2.safetensors", card="default-lean64.md")
    assert raw_meta(v2) == meta
    m1, m2 = load(v1), load(v2)
    assert m1.refine_cfg == m2.refine_cfg and all(
        torch.equal(x, y) for x, y in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert describe(str(v1))["n_bits"] == describe(str(v2))["n_bits"] == 64


def test_foreign_metadata_is_refused(tmp_path):
    p = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(p), metadata={"format": "pt"})
    with pytest.raises(RobustHideError, match="not a robusthide weights file"):
        read_meta(p)
    save_file({"w": torch.zeros(2)}, str(p), metadata={"format": FORMAT, "family": "audio", "config": "{}"})
    with pytest.raises(RobustHideError, match="family 'audio'"):
        read_meta(p)
    save_file({"w": torch.zeros(2)}, str(p), metadata={"format": FORMAT, "family": "watermark", "config": "{x"})
    with pytest.raises(RobustHideError, match="metadata 'config' is not valid JSON"):
        read_meta(p)


def test_export_writes_the_one_format_and_takes_a_refine_config(tmp_path):
    from robusthide.nets.registry import create_model
    from robusthide.watermark.refine import RefineConfig
    from robusthide.zoo.export import export_run
    from robusthide.zoo.registry import load_model

    model_cfg = {"arch": "lean", "n_bits": 8, "size": 32, "amplitude": 0.03}
    net = create_model("lean", n_bits=8, size=32, amplitude=0.03)
    run = tmp_path / "run"
    run.mkdir()
    save_file({f"model.{k}": v.contiguous() for k, v in net.state_dict().items()}, str(run / "latest.safetensors"))
    (run / "latest.json").write_text(json.dumps({"config": {"name": "tiny", "model": model_cfg},
                                                 "state": {"step": 7, "train_seconds": 3}}))
    cfg = RefineConfig(steps=4, margin=2.0, codecs=("webp:q=50",))
    out = export_run(run, tmp_path / "m.safetensors", refine=cfg)
    meta = raw_meta(out)
    assert meta["format"] == FORMAT and meta["family"] == "watermark" and meta["step"] == "7"
    assert json.loads(meta["config"])["refine"] == {"steps": 4, "margin": 2.0, "codecs": ["webp:q=50"]}
    assert RefineConfig.from_dict(load_model(out).refine_cfg) == cfg
    with pytest.raises(RobustHideError, match="not both"):
        export_run(run, tmp_path / "x.safetensors", refine=cfg, refine_steps=3)


def test_export_at_another_working_size_checks_the_architecture(tmp_path):
    from robusthide.nets.registry import create_model
    from robusthide.zoo.export import export_run
    from robusthide.zoo.registry import load_model

    net = create_model("geo", n_bits=16, size=64, ch=8, feat_ch=4, period=16)
    run = tmp_path / "run"
    run.mkdir()
    save_file({f"model.{k}": v.contiguous() for k, v in net.state_dict().items()}, str(run / "latest.safetensors"))
    model_cfg = {"arch": "geo", "n_bits": 16, "size": 64, "ch": 8, "feat_ch": 4, "period": 16, "amplitude": 0.03}
    (run / "latest.json").write_text(json.dumps({"config": {"name": "g", "model": model_cfg},
                                                 "state": {"step": 1}}))
    out = export_run(run, tmp_path / "g.safetensors", size=128)
    assert load_model(out).size == 128 and json.loads(raw_meta(out)["config"])["size"] == 128
    with pytest.raises(RobustHideError, match="size 120 does not fit architecture 'geo'"):
        export_run(run, tmp_path / "bad.safetensors", size=120)  # the period 16 must divide the size
    with pytest.raises(RobustHideError, match=r"size must be an integer in \[32, 2048\]"):
        export_run(run, tmp_path / "bad.safetensors", size=16)
    assert not (tmp_path / "bad.safetensors").exists()



def _lean_run(tmp_path, n_bits: int):
    """A run folder holding an untrained ``lean`` net of ``n_bits`` bits at 32 px, as training leaves one."""
    from robusthide.nets.registry import create_model

    net = create_model("lean", n_bits=n_bits, size=32, amplitude=0.03)
    run = tmp_path / "run"
    run.mkdir()
    save_file({f"model.{k}": v.contiguous() for k, v in net.state_dict().items()}, str(run / "latest.safetensors"))
    (run / "latest.json").write_text(json.dumps({"config": {"name": "w", "model": {
        "arch": "lean", "n_bits": n_bits, "size": 32, "amplitude": 0.03}}, "state": {"step": 1}}))
    return run


def test_export_names_the_default_schema(tmp_path):
    from robusthide import Watermarker
    from robusthide.zoo.export import export_run
    from robusthide.zoo.registry import load_model

    run = _lean_run(tmp_path, 128)
    assert load_model(export_run(run, tmp_path / "plain.safetensors")).default_schema is None
    out = export_run(run, tmp_path / "m.safetensors", schema="2")
    assert raw_meta(out)["schema"] == "large" and load_model(out).default_schema == "large"
    cap = Watermarker(load_model(out)).capacity()
    assert (cap["schema_name"], cap["data_bits"]) == ("large", 76)
    with pytest.raises(RobustHideError, match="schema: .*'huge'"):
        export_run(run, tmp_path / "bad.safetensors", schema="huge")
    assert not (tmp_path / "bad.safetensors").exists()


def test_export_gives_the_soft_test_its_share(tmp_path):
    from robusthide import Watermarker
    from robusthide.zoo.export import export_run
    from robusthide.zoo.registry import load_model

    run = _lean_run(tmp_path, 64)
    assert Watermarker(load_model(export_run(run, tmp_path / "hard.safetensors"))).soft_share == 0.0
    out = export_run(run, tmp_path / "soft.safetensors", soft_share=0.25)
    assert raw_meta(out)["soft_share"] == "0.25" and Watermarker(load_model(out)).soft_share == 0.25
    with pytest.raises(RobustHideError, match=r"soft share must be in \(0, 1\), got 1"):
        export_run(run, tmp_path / "bad.safetensors", soft_share=1.0)
    meta = {**raw_meta(out), "soft_share": "2"}
    save_file(load_file(str(out)), str(tmp_path / "forged.safetensors"), metadata=meta)
    with pytest.raises(RobustHideError, match=r"metadata soft_share = 2 is out of range"):
        load_model(tmp_path / "forged.safetensors")
