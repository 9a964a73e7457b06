"""The cheaper training step of the papers' nets (issue 23) and ``robusthide reproduce --warm-steps``.

* The discriminator's generator pass runs with D frozen: the gradients that reach the marked images and D's
  own gradients are the ones of the plain form (three passes, D's stray ``.grad`` cleared before its step).
* ``train.adv_amp`` is a checked config key; a run saved before it existed resumes (reads it as its default).
* ``--warm-steps N`` fixes the shared warm start at N steps whatever ``--steps`` is, and is recorded.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from robusthide import RobustHideError
from robusthide.cli.main import main
from robusthide.evaluation.reproduce import get_reproduction, variant
from robusthide.evaluation.reproduce_columns import train_column, warm_config, warm_steps
from robusthide.nets.hidden import HiddenDiscriminator
from robusthide.training.adversary import adversarial_losses
from robusthide.training.config import load_config
from robusthide.training.data import split_of


def _plain(disc, cover, marked):
    """The adversarial losses as they were written before (three passes, D not frozen)."""
    d_marked = disc(marked).float()
    g_loss = F.binary_cross_entropy_with_logits(d_marked, torch.ones_like(d_marked))
    d_cover = disc(cover.detach()).float()
    d_fake = disc(marked.detach()).float()
    d_loss = (F.binary_cross_entropy_with_logits(d_cover, torch.ones_like(d_cover))
              + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
    return g_loss, d_loss


def _grads(fn, seed=0):
    torch.manual_seed(seed)
    disc = HiddenDiscriminator(ch=8, blocks=2).train()
    g = torch.Generator().manual_seed(1)
    cover = torch.rand(4, 3, 16, 16, generator=g)
    marked = (cover + 0.05 * torch.randn(4, 3, 16, 16, generator=g)).requires_grad_(True)
    g_loss, d_loss = fn(disc, cover, marked)
    g_loss.backward()                        # the generator's backward (the trainer's loss.backward())
    for p in disc.parameters():
        p.grad = None                        # the D step clears first (d_opt.zero_grad)
    d_loss.backward()
    return (g_loss.item(), d_loss.item(), marked.grad.clone(), [p.grad.clone() for p in disc.parameters()],
            [b.clone() for b in disc.buffers()])


def test_frozen_generator_pass_gives_the_same_numbers():
    g0, d0, mg0, pg0, buf0 = _grads(_plain)
    g1, d1, mg1, pg1, buf1 = _grads(adversarial_losses)
    assert (g1, d1) == (g0, d0)
    assert torch.equal(mg1, mg0)
    assert all(torch.equal(a, b) for a, b in zip(pg1, pg0))
    assert all(torch.equal(a, b) for a, b in zip(buf1, buf0))  # BatchNorm statistics: three passes as before


def test_frozen_pass_leaves_no_gradient_in_the_discriminator_and_restores_it():
    disc = HiddenDiscriminator(ch=8, blocks=1)
    marked = torch.rand(2, 3, 8, 8, requires_grad=True)
    g_loss, _ = adversarial_losses(disc, torch.rand(2, 3, 8, 8), marked)
    g_loss.backward()
    assert marked.grad is not None and float(marked.grad.abs().sum()) > 0
    assert all(p.grad is None and p.requires_grad for p in disc.parameters())


def test_adv_amp_runs_the_discriminator_in_bf16_close_to_fp32():
    disc = HiddenDiscriminator(ch=8, blocks=2).train()
    cover, marked = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16, requires_grad=True)
    g32, d32 = adversarial_losses(disc, cover, marked)
    g16, d16 = adversarial_losses(disc, cover, marked, amp=True)
    assert g16.dtype == torch.float32 and abs(g16.item() - g32.item()) < 0.02 * abs(g32.item()) + 1e-3
    assert abs(d16.item() - d32.item()) < 0.02 * abs(d32.item()) + 1e-3


def test_adv_amp_is_a_checked_config_key():
    assert load_config(None, ["train.adv_amp=true"])["train"]["adv_amp"] is True
    with pytest.raises(RobustHideError, match="train.adv_amp must be true or false"):
        load_config(None, ["train.adv_amp=3"])
    with pytest.raises(RobustHideError, match="did you mean 'train.adv_amp'"):
        load_config(None, ["train.adv_ampp=true"])


def _photos(root):
    d = root / "photos"
    d.mkdir()
    rng = np.random.default_rng(0)
    want = {"train": 3, "val": 1}
    i = 0
    while any(want.values()):
        name = f"p{i:03d}.png"
        i += 1
        if want[split_of(name)] == 0:
            continue
        want[split_of(name)] -= 1
        Image.fromarray(rng.integers(0, 256, (160, 200, 3), dtype=np.uint8)).save(d / name)
    return d


def test_warm_steps_fixes_the_warm_start(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    rep = get_reproduction("p000-table1")
    assert warm_steps(rep, rep.budget.steps * 10) == rep.budget.warm_steps * 10   # scaled by default
    assert warm_steps(rep, rep.budget.steps * 10, 150) == 150                    # fixed
    data = _photos(tmp_path)
    runs, out = tmp_path / "runs", tmp_path / "results"
    args = ["reproduce", "p000-table1", "--net", "hidden", "--size", "32", "--seed", "1", "--tag", "w",
            "--steps", "40", "--warm-steps", "3", "--data", str(data), "--runs", str(runs), "--out", str(out),
            "--no-progress", "--column", "warm-start", "--json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(t["label"], t["step"]) for t in doc["trained"]] == [("warm start", 3)]
    assert "--steps 40 --warm-steps 3 " in doc["command"]
    stored = json.loads((runs / "p000-table1-w" / "warm-start" / "latest.json").read_text())
    assert stored["state"]["step"] == 3 and stored["config"]["train"]["steps"] == 3
    # without --warm-steps the warm start would be 40 / 300 x 150 = 20 steps: another config, refused
    assert main([a for a in args if a not in ("--warm-steps", "3")]) == 2
    assert "train.steps: 3 there, 20 now" in capsys.readouterr().err
    assert main([("0" if a == "3" else a) for a in args]) == 2
    assert "--warm-steps must be at least 1, got 0" in capsys.readouterr().err
    assert main(["reproduce", "mbrs-table3", "--warm-steps", "5", "--data", str(data), "--out", str(out)]) == 2
    assert "mbrs-table3 has no warm start" in capsys.readouterr().err


def test_a_run_saved_before_a_new_train_key_resumes(tmp_path):
    data = _photos(tmp_path)
    rep = variant(get_reproduction("p000-table1"), net="lean", size=32, seed=1, tag="old")  # adv_amp at its default
    cfg = warm_config(rep, data, tmp_path / "runs", steps=4, warm=2)
    assert train_column(cfg, progress=False)["step"] == 2
    latest = tmp_path / "runs" / "p000-table1-old" / "warm-start" / "latest.json"
    doc = json.loads(latest.read_text())
    del doc["config"]["train"]["adv_amp"]             # as written before the key existed
    latest.write_text(json.dumps(doc))
    assert train_column(cfg, progress=False)["status"] == "skipped (finished)"


def test_carried_runs_resume_exactly(tmp_path):
    """docs/scripts/reproduce_carry.py: a finished warm start (weights only) and a column stopped half-way,
    saved to resume/ and restored into an empty runs/, resume to the very weights of an uninterrupted run."""
    import subprocess
    import sys
    from pathlib import Path

    from robusthide.evaluation.reproduce_columns import column_config
    from robusthide.training.trainer import Trainer

    data = _photos(tmp_path)
    rep = variant(get_reproduction("p000-table1"), net="hidden", size=32, seed=1, tag="c")
    col = rep.columns[1]

    def cfgs(runs):
        return warm_config(rep, data, runs, steps=4, warm=2), column_config(rep, col, 4, data, runs)

    w, c = cfgs(tmp_path / "a")
    train_column(w, progress=False)
    Trainer(c, device="cpu", progress=False).run(max_steps=2)         # stopped at step 2 of 4
    script = Path(__file__).parents[1] / "docs" / "scripts" / "reproduce_carry.py"
    base = [sys.executable, str(script)]
    run = subprocess.run([*base, "save", "p000-table1-c", "--runs", str(tmp_path / "a"),
                          "--resume", str(tmp_path / "resume")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "warm-start: step 2 of 2, finished, weights only" in run.stdout
    assert f"{col.slug}: step 2 of 4, in progress, everything" in run.stdout
    carried = tmp_path / "resume" / "p000-table1-c"
    from safetensors.torch import load_file

    assert not any(k.startswith("optim") for k in load_file(str(carried / "warm-start" / "latest.safetensors")))
    assert any(k.startswith("d_optim") for k in load_file(str(carried / col.slug / "latest.safetensors")))
    only = subprocess.run([*base, "save", "p000-table1-c", "--runs", str(tmp_path / "a"), "--resume",
                           str(tmp_path / "only"), "--only", "warm-start"], capture_output=True, text=True)
    assert only.returncode == 0 and [p.name for p in (tmp_path / "only" / "p000-table1-c").iterdir()] == ["warm-start"]
    none = subprocess.run([*base, "save", "p000-table1-c", "--runs", str(tmp_path / "a"), "--resume",
                           str(tmp_path / "only"), "--only", "no-such-run"], capture_output=True, text=True)
    assert none.returncode != 0 and "named no-such-run" in none.stderr
    # the next session: runs/ is empty; restore, then the same training resumes
    run = subprocess.run([*base, "restore", "p000-table1-c", "--runs", str(tmp_path / "b"),
                          "--resume", str(tmp_path / "resume")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    w, c = cfgs(tmp_path / "a")  # the same configs (the run folders moved back to where they were)
    import shutil

    shutil.rmtree(tmp_path / "a")
    (tmp_path / "b").rename(tmp_path / "a")
    assert train_column(w, progress=False)["status"] == "skipped (finished)"
    assert train_column(c, progress=False)["status"] == "resumed"
    resumed = load_file(str(tmp_path / "a" / "p000-table1-c" / col.slug / "latest.safetensors"))
    w2, c2 = cfgs(tmp_path / "u")
    train_column(w2, progress=False)
    train_column(c2, progress=False)                                     # uninterrupted
    straight = load_file(str(tmp_path / "u" / "p000-table1-c" / col.slug / "latest.safetensors"))
    assert resumed.keys() == straight.keys()
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)


def test_warm_mode_full_pretrains_with_the_whole_recipe(tmp_path, monkeypatch, capsys):
    """``--warm-mode full``: the shared warm start trains the net's paper losses (image term and adversary on),
    not the message path alone; it changes the budget, so it needs a tag, and the command records it."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    base = get_reproduction("p000-table1")
    msg = warm_config(variant(base, "hidden", 32, 1, "m"), "data", "runs", 3000)["train"]
    full = warm_config(variant(base, "hidden", 32, 1, "f", "full"), "data", "runs", 3000)["train"]
    assert (msg["img_weight_fixed"], msg["adv_weight"]) == (0.0, 0.0)
    assert (full["img_weight_fixed"], full["adv_weight"]) == (2.8, 0.001) and full["strategy"] == "identity"
    with pytest.raises(RobustHideError, match="give a --tag"):
        variant(base, warm_mode="full")
    with pytest.raises(RobustHideError, match="unknown --warm-mode 'both'"):
        variant(base, tag="x", warm_mode="both")
    with pytest.raises(RobustHideError, match="mbrs-table3 trains nothing"):
        variant(get_reproduction("mbrs-table3"), tag="x", warm_mode="full")
    data = _photos(tmp_path)
    runs = tmp_path / "runs"
    args = ["reproduce", "p000-table1", "--net", "hidden", "--size", "32", "--seed", "1", "--tag", "f",
            "--steps", "40", "--warm-steps", "2", "--warm-mode", "full", "--data", str(data), "--runs", str(runs),
            "--out", str(tmp_path / "out"), "--no-progress", "--column", "warm-start", "--json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "--warm-steps 2 --warm-mode full " in doc["command"]
    stored = json.loads((runs / "p000-table1-f" / "warm-start" / "latest.json").read_text())
    assert stored["config"]["train"]["img_weight_fixed"] == 2.8 and stored["state"]["step"] == 2
