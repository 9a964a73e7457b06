"""The watermark trainer's attack is a robusthide.attacks layer: the shipped configs in the attack form, the
old pool form converted with the same draws, the step curriculum, MBRS from PerBatchChoice."""

from __future__ import annotations

import pytest
import torch

from robusthide import RobustHideError
from robusthide.attacks import PerBatchChoice, build_attack
from robusthide.attacks.schedules import FromStep, Maybe
from robusthide.training.config import load_config
from robusthide.training.data import step_generator
from robusthide.training.noise_pool import TrainingAttack, noise_attack, pool_to_attack
from robusthide.training.strategies import build_strategy


def _batch(seed: int, n: int = 4, size: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    cover = torch.rand(n, 3, size, size, generator=g)
    return (cover + 0.02 * torch.randn(cover.shape, generator=g)).clamp(0, 1), cover


def test_resumable_geo256_old_form_draws_what_the_new_config_draws():
    """resume/geo256 holds the old pool form: it still loads, and converted it draws the same random numbers
    and gives the same images as configs/geo256.yaml (so --resume continues the same run)."""
    old = build_strategy(load_config("resume/geo256/config.json"))
    new = build_strategy(load_config("configs/geo256.yaml"))
    for step in (0, 400, 401, 2400, 9642):
        x, cover = _batch(step)
        g_old, g_new = step_generator(7925, step), step_generator(7925, step)
        y_old = old.at(step)[0](x, cover, g_old)
        y_new = new.at(step)[0](x, cover, g_new)
        assert torch.equal(y_old, y_new)
        assert torch.equal(g_old.get_state(), g_new.get_state())


def test_shipped_configs_are_in_the_attack_form():
    for name in ("default-lean64", "default-lean64-r5", "default-lean128", "lean128-r4", "geo256"):
        cfg = load_config(f"configs/{name}.yaml")
        assert "attack" in cfg["noise"], name
        attack = build_strategy(cfg).at(0)[0]
        assert isinstance(attack, TrainingAttack) and isinstance(attack.attack, PerBatchChoice)
        assert attack.attack.slices == 4


def test_curriculum_is_a_schedule():
    a = noise_attack({"attack": {"slices": 2, "choice": ["uint8@1", {"spec": "blur(1)", "p": 3, "from_step": 10}]}})
    early, late = a.for_step(9), a.for_step(10)
    assert late is a and early is not a and early is a.for_step(5)  # cached per active set
    assert [type(m).__name__ for m in early.attack.layers] == ["Uint8"]
    assert isinstance(late.attack.layers[1], FromStep) and late.attack.probs == [0.25, 0.75]
    x, cover = _batch(0)
    y = early(x, cover, torch.Generator().manual_seed(0))
    assert torch.equal(y, (x * 255).round() / 255)


def test_pool_conversion():
    spec = pool_to_attack([{"name": "jpeg", "p": 4, "q_lo": 30, "q_hi": 90},
                           {"name": "h264", "p": 1.5, "lo": 22, "hi": 32, "from_step": 2400},
                           {"name": "cropresize", "lo": 0.85, "hi": 1.0},
                           {"name": "geometry", "inplace": True, "after": [{"name": "webp", "q_lo": 40, "q_hi": 90}]}],
                          slices=4)
    layer = build_attack(spec)
    assert layer.spec() == (
        "choice(real(jpeg:q=30..90)@4,from_step(real(h264:crf=22..32,preset=ultrafast,mode=frames),step=2400)@1.5,"
        "cropresize(ratio=0.85..1,per_image=false)@1,seq(geometry(inplace=true),maybe(choice(real(webp:q=40..90))))@1,"
        "slices=4)")
    assert isinstance(layer.layers[3].layers[1], Maybe)


def test_noise_errors():
    with pytest.raises(RobustHideError, match=r"^config: give noise.attack or noise.pool"):
        noise_attack({"attack": "uint8", "pool": [{"name": "jpeg"}]})
    with pytest.raises(RobustHideError, match=r"^config: noise.attack: bad attack spec .*unknown layer 'nosuch'"):
        noise_attack({"attack": "choice(nosuch)"})
    with pytest.raises(RobustHideError, match="config: unknown key 'noise.atack'"):
        load_config({"noise": {"atack": "uint8"}})


@pytest.mark.parametrize("grad", ["identity", "zero"])
def test_mbrs_strategy_is_a_per_batch_choice(grad):
    cfg = load_config({"train": {"strategy": "mbrs"}, "noise": {"q": 50, "real_grad": grad}})
    attack = build_strategy(cfg).at(0)[0]
    choice = attack.attack
    assert isinstance(choice, PerBatchChoice)
    assert [type(m).__name__ for m in choice.layers] == ["RandomQuality", "JpegMask", "Uint8"]
    assert choice.layers[0].grad == grad
    x, cover = _batch(1)
    x.requires_grad_(True)
    y = choice.layers[0](x, cover)
    assert y.requires_grad == (grad == "identity")
    seen = set()
    for step in range(12):
        attack(x.detach(), cover, step_generator(0, step))
        seen.add(choice.last_choice)
    assert seen == {0, 1, 2}
