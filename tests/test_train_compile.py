"""``--compile``: the nets through torch.compile, the same checkpoints, the same training to float rounding."""

from __future__ import annotations

import shutil

import pytest
import torch

from robusthide import RobustHideError
from robusthide.cli.main import main
from robusthide.training.loop import compile_nets
from robusthide.training.trainer import Trainer
from tests.test_training import tiny_cfg

HAS_CXX = bool(shutil.which("c++") or shutil.which("g++") or shutil.which("clang++"))


@pytest.mark.skipif(not HAS_CXX, reason="torch.compile on a CPU needs a C++ compiler")
def test_compiled_training_matches_eager_and_resumes_either_way(tmp_path, photo_dir):
    steps = 4
    eager = Trainer(tiny_cfg(tmp_path / "e", photo_dir, steps=steps), progress=False)
    comp = Trainer(tiny_cfg(tmp_path / "c", photo_dir, steps=steps), progress=False, compile=True)
    # the state_dict keys are the model's own (no "_orig_mod."): the checkpoint is the same file
    assert list(comp.model.state_dict()) == list(eager.model.state_dict())
    for _ in range(steps):
        a, b = eager.step(), comp.step()
        assert b["msg_loss"] == pytest.approx(a["msg_loss"], rel=1e-3, abs=1e-5)
    for (k, v), w in zip(eager.model.state_dict().items(), comp.model.state_dict().values()):
        assert torch.allclose(v.float(), w.float(), atol=1e-4), k
    twin = Trainer(tiny_cfg(tmp_path / "t", photo_dir, steps=steps), progress=False, compile=True)
    for _ in range(steps):
        twin.step()
    for (k, v), w in zip(comp.model.state_dict().items(), twin.model.state_dict().values()):
        assert torch.equal(v, w), k  # deterministic: the same seed, the same compiled run
    comp.loop.save()
    again = Trainer(comp.cfg, resume=True, progress=False)  # an eager process resumes the compiled run
    assert again.state["step"] == steps
    for (k, v), w in zip(comp.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(v, w), k


def test_compile_without_a_compiler_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    model = torch.nn.Module()
    model.encoder = torch.nn.Conv2d(3, 3, 1)
    with pytest.raises(RobustHideError, match="needs a C.. compiler"):
        compile_nets(model)


def test_compile_names_the_parts_it_finds():
    with pytest.raises(RobustHideError, match="none of encoder, decoder, discriminator"):
        compile_nets(torch.nn.Linear(2, 2))
    if HAS_CXX:
        model = torch.nn.Module()
        model.encoder, model.decoder = torch.nn.Conv2d(3, 3, 1), torch.nn.Conv2d(3, 1, 1)
        assert compile_nets(model) == ["encoder", "decoder"]
        assert list(model.state_dict()) == ["encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias"]
        x = torch.rand(1, 3, 4, 4)
        assert torch.allclose(model.decoder(model.encoder(x)),
                              torch.nn.functional.conv2d(torch.nn.functional.conv2d(x, model.encoder.weight,
                                                                                    model.encoder.bias),
                                                         model.decoder.weight, model.decoder.bias), atol=1e-6)


def test_cli_flags_are_there(capsys):
    for cmd in (["train", "--help"], ["reproduce", "--help"]):
        with pytest.raises(SystemExit):
            main(cmd)
        assert "--compile" in capsys.readouterr().out
