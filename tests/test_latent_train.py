"""Issue 24, item 5: codec training from a config file, in bf16 autocast, in exactly resumable stretches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("constriction")

from robusthide import RobustHideError  # noqa: E402
from robusthide.training.hardware import cpu_has_bf16  # noqa: E402

CONFIGS = sorted((Path(__file__).parent.parent / "configs" / "latent").glob("*.yaml"))


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.mark.parametrize("arch, M", [("hyperprior", 16), ("elic", 160)])
def test_bf16_forward_keeps_rate_and_reconstruction_in_float32(arch, M):
    """Under bf16 autocast the transforms run in bf16, but x_hat and the rate come back float32, within a few
    per cent of the float32 pass, and the gradients are finite."""
    from robusthide.latent.elic import ElicLite
    from robusthide.latent.models import ScaleHyperprior

    torch.manual_seed(0)
    model = (ElicLite if arch == "elic" else ScaleHyperprior)(8, M).train()
    x = torch.rand(2, 3, 64, 64)
    torch.manual_seed(1)
    full = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.manual_seed(1)
        half = model(x)
    assert half["x_hat"].dtype == half["bpp"].dtype == torch.float32
    assert float(half["bpp"].detach()) == pytest.approx(float(full["bpp"].detach()), rel=0.02)
    assert float((half["x_hat"] - full["x_hat"]).detach().abs().max()) < 0.05
    (half["bpp"] + half["x_hat"].mean()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def _config(tmp_path: Path, photo_dir: Path, arch: str, M: int, amp: bool) -> Path:
    cfg = tmp_path / f"{arch}-{amp}.yaml"
    cfg.write_text(f"data: {photo_dir}\narch: {arch}\nN: 8\nM: {M}\nsize: 64\nbatch: 1\nlr: 0.003\nmax_side: 256\n"
                   f"lmbda: 0.0483\nquality: '6'\ncheckpoint_every: 5\nlog_every: 1\namp: {str(amp).lower()}\n")
    return cfg


@pytest.mark.parametrize("arch, M", [("hyperprior", 16), ("elic", 160)])
def test_config_run_in_two_stretches_equals_one_run(arch, M, photo_dir, tmp_path, capsys):
    """``train-codec --config``: 10 steps, then 10 more with --resume, give the weights of 20 steps in one run
    (bf16 autocast on, where the CPU grants it); the log says which precision ran."""
    import json

    from robusthide.cli.main import main

    cfg = str(_config(tmp_path, photo_dir, arch, M, amp=True))
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["latent", "train-codec", "--config", cfg, "--out", str(one), "--steps", "20"]) == 0
    assert main(["latent", "train-codec", "--config", cfg, "--out", str(two), "--steps", "10"]) == 0
    assert main(["latent", "train-codec", "--config", cfg, "--out", str(two), "--steps", "20", "--resume"]) == 0
    capsys.readouterr()
    a, b = _tensors(one / "codec.safetensors"), _tensors(two / "codec.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(line) for line in (two / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(20))
    assert {r["bf16"] for r in rows} == {cpu_has_bf16()}
    if cpu_has_bf16():  # bf16 really ran: the float32 run ends elsewhere
        fp32 = tmp_path / "fp32"
        assert main(["latent", "train-codec", "--config", cfg, "--out", str(fp32), "--steps", "20", "--no-amp"]) == 0
        c = _tensors(fp32 / "codec.safetensors")
        assert not all(torch.equal(a[k], c[k]) for k in a)


def test_config_errors_are_one_line(photo_dir, tmp_path, capsys):
    from robusthide.cli.main import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("lmbda: 0.01\nlmdba: 0.02\n")
    assert main(["latent", "train-codec", "--config", str(bad), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"robusthide: error: {bad}: unknown key 'lmdba' (known: ") and len(err.splitlines()) == 1
    cfg = _config(tmp_path, photo_dir, "hyperprior", 16, amp=False)
    assert main(["latent", "train-codec", "--config", str(cfg)]) == 2
    assert capsys.readouterr().err == "robusthide: error: give --out (or out: in the --config file)\n"
    assert main(["latent", "train-codec", "--config", str(cfg), "--out", str(tmp_path / "y"), "--size", "96"]) == 2
    assert "multiple of 64" in capsys.readouterr().err
    assert main(["latent", "train-codec", "--config", str(tmp_path / "none.yaml"), "--out", str(tmp_path)]) == 2
    assert "config not found" in capsys.readouterr().err


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_latent_configs_load(path):
    """configs/latent/*.yaml: the plan's settings (128 px crops, bf16, checkpoints), valid for train_codec."""
    import argparse

    from robusthide.cli.cmd_latent_lab import CODEC_CLI_DEFAULTS, codec_settings
    from robusthide.latent.models import COMPRESSAI_LAMBDAS
    from robusthide.latent.train import CODEC_SCHEMA
    from robusthide.training.config import load_with_schema

    a = argparse.Namespace(config=str(path), **{k: None for k in CODEC_CLI_DEFAULTS})
    cfg = codec_settings(a)
    out = cfg.pop("out")
    assert cfg.pop("data") == "data/photos/train" and out == f"runs/latent-{path.stem}-128"
    checked = load_with_schema(CODEC_SCHEMA, cfg)
    assert checked["size"] == 128 and checked["amp"] is True and checked["checkpoint_every"] == 500
    assert checked["lmbda"] == COMPRESSAI_LAMBDAS[int(checked["quality"])]
    assert checked["arch"] == ("elic" if path.stem.startswith("elic") else "hyperprior")


def test_latent_configs_cover_three_hyperprior_rates_and_elic():
    assert [p.stem for p in CONFIGS] == ["elic-q6", "hp-q3", "hp-q5", "hp-q6-m320", "hp-q6"]


def test_unknown_precision_is_refused(photo_dir, tmp_path):
    from robusthide.latent.probe import run

    with pytest.raises(RobustHideError, match="unknown precision 'fp8'"):
        run(tmp_path / "p", photo_dir, sizes=(64,), precisions=("fp8",))
