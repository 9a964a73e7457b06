"""The one training loop (robusthide/training/loop.py) with a toy family: exact resume, cadences, clean stop."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from robusthide import RobustHideError
from robusthide.training.checkpoint import pack_checkpoint, read_checkpoint, unpack_checkpoint
from robusthide.training.data import step_generator
from robusthide.training.loop import Family, LoopSettings, TrainLoop, setup_runtime


class Toy(Family):
    """A linear regression trained by Adam on data drawn from (seed, step), with a loss EMA in its state."""

    def __init__(self, seed: int = 0, stop_at: int | None = None):
        torch.manual_seed(seed)
        self.seed, self.stop_at = seed, stop_at
        self.model = torch.nn.Linear(4, 1)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=0.05)
        self.state = {"ema": None}
        self.validations: list[int] = []

    def train_step(self, step: int) -> dict:
        g = step_generator(self.seed, step)
        x = torch.randn(8, 4, generator=g)
        y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * torch.randn(8, 1, generator=g)
        loss = torch.nn.functional.mse_loss(self.model(x), y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        ema = self.state["ema"]
        self.state["ema"] = float(loss.detach()) if ema is None else 0.9 * ema + 0.1 * float(loss.detach())
        if step + 1 == self.stop_at:
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill` would, in the middle of a step
        return {"step": step + 1, "loss": float(loss.detach())}

    def validate(self) -> dict:
        self.validations.append(self.state["step"])
        return {"val_w0": float(self.model.weight[0, 0].detach())}

    def checkpoint(self):
        return pack_checkpoint(self.model, self.opt, {"kind": "toy"})

    def restore(self, tensors, doc):
        unpack_checkpoint("toy", tensors, doc, self.model, self.opt)


def loop_for(run_dir, family, steps=20, **kw) -> TrainLoop:
    kw = {"log_every": 5, "ckpt_every": 4, "val_every": 10, "progress": False, **kw}
    return TrainLoop(family, LoopSettings(run_dir, steps, **kw))


def weights(family: Toy) -> list[torch.Tensor]:
    return [p.detach().clone() for p in family.model.parameters()]


def rows(run_dir) -> list[dict]:
    return [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("k", [1, 7, 8, 19])
def test_n_steps_straight_equal_k_steps_then_resume(tmp_path, k):
    straight = Toy()
    loop_for(tmp_path / "a", straight).run()
    first = Toy()
    loop_for(tmp_path / "b", first).run(max_steps=k)
    second = Toy(seed=0)
    resumed = loop_for(tmp_path / "b", second)
    resumed.resume()
    assert resumed.step == k and second.state["ema"] == first.state["ema"]
    resumed.run()
    assert all(torch.equal(p, q) for p, q in zip(weights(second), weights(straight)))
    assert second.state["ema"] == straight.state["ema"] and second.state["step"] == 20
    drop = ("img_per_s", "train_seconds")
    clean = [[{c: v for c, v in r.items() if c not in drop} for r in rows(tmp_path / d)] for d in "ab"]
    assert clean[0] == [r for r in clean[1] if r["step"] != k]  # the same rows, and those of the first part's end
    doc, tensors = read_checkpoint(tmp_path / "b")
    assert doc["step"] == 20 and doc["state"]["step"] == 20 and doc["kind"] == "toy"
    assert set(tensors) == {"model.weight", "model.bias"} | {f"optim.{i}.{k}" for i in (0, 1)
                                                             for k in ("step", "exp_avg", "exp_avg_sq")}


def test_cadences_of_logs_validation_and_checkpoints(tmp_path):
    saved: list[int] = []
    fam = Toy()
    loop = loop_for(tmp_path, fam, steps=12, batch=8)
    orig = loop.save
    loop.save = lambda: (saved.append(loop.step), orig())
    last = loop.run()
    logged = [r for r in rows(tmp_path) if "loss" in r]
    assert [r["step"] for r in logged] == [5, 10, 12]
    assert all(r["img_per_s"] > 0 and r["train_seconds"] > 0 for r in logged)
    assert fam.validations == [10, 12] and [r["step"] for r in rows(tmp_path) if "val_w0" in r] == [10, 12]
    assert saved == [4, 8, 12]  # every 4 steps, and once at the end
    assert last["step"] == 12 and "val_w0" in last
    first = TrainLoop(Toy(), LoopSettings(tmp_path / "f", 12, log_every=5, log_first=True, progress=False))
    first.run()
    assert [r["step"] for r in rows(tmp_path / "f")] == [1, 6, 11, 12]  # the 0-based steps 0, 5, 10, then the last
    assert not (tmp_path / "f" / "latest.json").exists()  # ckpt_every 0: no checkpoint


def test_sigterm_stops_cleanly_and_the_run_resumes_exactly(tmp_path):
    straight = Toy()
    loop_for(tmp_path / "a", straight).run()
    stopped = loop_for(tmp_path / "b", Toy(stop_at=6))
    before = signal.getsignal(signal.SIGTERM)
    stopped.run()
    assert stopped.stopped and stopped.step == 6 and signal.getsignal(signal.SIGTERM) is before
    assert read_checkpoint(tmp_path / "b")[0]["step"] == 6  # saved at the stop, not only at step 4
    fam = Toy()
    again = loop_for(tmp_path / "b", fam)
    again.resume()
    again.run()
    assert not again.stopped and all(torch.equal(p, q) for p, q in zip(weights(fam), weights(straight)))


def test_a_new_run_refuses_a_folder_with_a_checkpoint_and_starts_a_fresh_log(tmp_path):
    loop_for(tmp_path, Toy()).run(max_steps=4)
    with pytest.raises(RobustHideError, match="already has a checkpoint: use --resume"):
        loop_for(tmp_path, Toy()).check_fresh()
    (tmp_path / "latest.json").unlink()
    (tmp_path / "latest.safetensors").unlink()
    loop_for(tmp_path, Toy()).run(max_steps=5)
    assert [r["step"] for r in rows(tmp_path) if "loss" in r] == [5]  # the rows of the first attempt are gone


def test_a_half_written_checkpoint_is_detected(tmp_path):
    loop_for(tmp_path, Toy()).run(max_steps=4)
    doc = json.loads((tmp_path / "latest.json").read_text())
    doc["step"] = 8  # as if the JSON of a later save had landed without its tensors
    (tmp_path / "latest.json").write_text(json.dumps(doc))
    with pytest.raises(RobustHideError, match=r"inconsistent \(JSON step 8, tensors step 4\)"):
        loop_for(tmp_path, Toy()).resume()
    with pytest.raises(RobustHideError, match="no checkpoint 'latest'"):
        loop_for(tmp_path / "none", Toy()).resume()


def test_runtime_choices():
    rt = setup_runtime("cpu", amp=False)
    assert rt.device.type == "cpu" and not rt.amp and not rt.ddp and (rt.rank, rt.world) == (0, 1)
    with pytest.raises(RobustHideError, match="bad device 'gpu0'"):
        setup_runtime("gpu0")


def test_curves_of_any_family(tmp_path):
    """``robusthide plot RUN`` draws a family's own metrics (here the toy's loss and validation)."""
    from PIL import Image

    from robusthide.training.plot import plot_run

    loop_for(tmp_path, Toy()).run()
    with Image.open(plot_run(tmp_path)) as im:
        assert im.size[0] > 500 and (tmp_path / "curves.png").exists()
    with pytest.raises(RobustHideError, match="no metrics.jsonl"):
        plot_run(tmp_path / "nothing")


def test_latent_settings_go_through_the_strict_loader(tmp_path):
    from robusthide.latent.liso import Liso, LisoTrainConfig
    from robusthide.latent.train import train_codec, train_decoder, train_liso

    with pytest.raises(RobustHideError, match=r"unknown key 'stpes' \(did you mean 'steps'\?\)"):
        train_codec(tmp_path, tmp_path / "c", stpes=3)
    with pytest.raises(RobustHideError, match="config: lr must be a number, got 'fast'"):
        train_decoder(tmp_path, tmp_path / "d", lr="fast")
    with pytest.raises(RobustHideError, match="config: steps must be >= 1, got 0"):
        train_liso(tmp_path, tmp_path / "l", Liso(hidden=4), LisoTrainConfig(steps=0))
    assert not (tmp_path / "c").exists()  # refused before anything is written


def test_latent_decoder_and_liso_resume_exactly(tmp_path, photo_dir):
    """On the one loop the FNNS decoder and LISO get checkpoints and exact resume too (the codec's is
    tests/test_latent_elic.py::test_codec_training_resumes_exactly)."""
    from robusthide.latent.liso import Liso
    from robusthide.latent.train import train_decoder, train_liso

    kw = dict(size=32, batch=2, max_side=256, log_every=1, checkpoint_every=2)
    one = train_decoder(photo_dir, tmp_path / "d1", steps=4, hidden=8, **kw)
    train_decoder(photo_dir, tmp_path / "d2", steps=2, hidden=8, **kw)
    two = train_decoder(photo_dir, tmp_path / "d2", steps=4, hidden=8, resume=True, **kw)
    assert all(torch.equal(a, b) for a, b in zip(one.state_dict().values(), two.state_dict().values()))
    assert [r["step"] for r in map(json.loads, (tmp_path / "d2" / "log.jsonl").read_text().splitlines())] == \
        [0, 1, 2, 3]

    def liso():
        torch.manual_seed(1)
        return Liso(hidden=8, iters=2, decoder_hidden=8)

    one = train_liso(photo_dir, tmp_path / "l1", liso(), dict(steps=4, **kw))
    train_liso(photo_dir, tmp_path / "l2", liso(), dict(steps=2, **kw))
    two = train_liso(photo_dir, tmp_path / "l2", liso(), dict(steps=4, **kw), resume=True)
    assert all(torch.equal(a, b) for a, b in zip(one.state_dict().values(), two.state_dict().values()))
    with pytest.raises(RobustHideError, match="was trained with"):
        train_liso(photo_dir, tmp_path / "l2", Liso(hidden=4), dict(steps=6, **kw), resume=True)


def test_a_decoder_trained_through_a_frozen_codec_reads_its_reconstruction(tmp_path, photo_dir, train_tiny_codec):
    """``train_decoder(codec=...)``: the decoder reads g_s(round(g_a(stego))) rounded to 8 bits, the codec stays
    frozen, the codec's id and the starting decoder's are settings a resume must match, and the crops must fit
    the codec's stride."""
    from safetensors import safe_open

    from robusthide.latent.editing import ste_uint8
    from robusthide.latent.models import load_codec
    from robusthide.latent.stegnet import BasicDecoder
    from robusthide.latent.train import DECODER_SCHEMA, DecoderFamily, train_decoder
    from robusthide.training.config import load_with_schema
    from robusthide.training.data import ImageBank

    codec = load_codec(train_tiny_codec("dec-codec", 2, 2))
    before = {k: v.clone() for k, v in codec.state_dict().items()}
    torch.manual_seed(3)
    start = BasicDecoder(1, 8)
    kw = dict(size=64, batch=2, max_side=256, log_every=1, hidden=8, checkpoint_every=2)
    one = train_decoder(photo_dir, tmp_path / "d1", steps=4, codec=codec, init_decoder=start, **kw)
    assert all(torch.equal(before[k], v) for k, v in codec.state_dict().items())           # frozen
    assert not any(torch.equal(a, b) for a, b in zip(one.state_dict().values(), start.state_dict().values()))
    with safe_open(str(tmp_path / "d1" / "decoder.safetensors"), "pt") as f:
        meta = f.metadata()
    assert meta["codec"] == codec.model_id() and meta["init_decoder"] == start.decoder_id()
    train_decoder(photo_dir, tmp_path / "d2", steps=2, codec=codec, init_decoder=start, **kw)
    two = train_decoder(photo_dir, tmp_path / "d2", steps=4, codec=codec, init_decoder=start, resume=True, **kw)
    assert all(torch.equal(a, b) for a, b in zip(one.state_dict().values(), two.state_dict().values()))
    with pytest.raises(RobustHideError, match="was trained with"):  # resumed without the codec
        train_decoder(photo_dir, tmp_path / "d2", steps=6, init_decoder=start, resume=True, **kw)
    with pytest.raises(RobustHideError, match="must be a multiple of 64 px, got 32"):
        train_decoder(photo_dir, tmp_path / "d3", steps=2, codec=codec, **{**kw, "size": 32})
    with pytest.raises(RobustHideError, match="has depth 1 and hidden 8, not 1 and 16"):
        train_decoder(photo_dir, tmp_path / "d4", steps=2, codec=codec, init_decoder=start, **{**kw, "hidden": 16})
    cfg = load_with_schema(DECODER_SCHEMA, dict(kw, steps=1))
    fam = DecoderFamily(cfg, tmp_path, ImageBank(photo_dir, split="train", max_side=256, min_side=64), codec=codec)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        want = ste_uint8(codec.g_s(torch.round(codec.g_a(x))))
        assert torch.allclose(fam.seen(x), want, atol=1e-6) and fam.seen(x).mul(255).round().equal(fam.seen(x) * 255)


def test_the_decoders_psnr_controller_steers_the_mse_weight_and_resumes_exactly(tmp_path, photo_dir):
    """``target_psnr``: the MSE weight grows by PSNR_STEP after each step below the target (here always) and
    shrinks above it; it is part of the checkpoint, so a run in two stretches equals one run."""
    from robusthide.latent.train import PSNR_STEP, train_decoder

    kw = dict(size=32, batch=2, max_side=256, log_every=1, hidden=8, checkpoint_every=2, target_psnr=70.0,
              mse_weight=2.0)
    one = train_decoder(photo_dir, tmp_path / "d1", steps=4, **kw)
    rows = [json.loads(ln) for ln in (tmp_path / "d1" / "log.jsonl").read_text().splitlines()]
    assert [r["mse_weight"] for r in rows] == pytest.approx([2.0 * PSNR_STEP**i for i in range(4)])
    train_decoder(photo_dir, tmp_path / "d2", steps=2, **kw)
    two = train_decoder(photo_dir, tmp_path / "d2", steps=4, resume=True, **kw)
    assert all(torch.equal(a, b) for a, b in zip(one.state_dict().values(), two.state_dict().values()))
    rows2 = [json.loads(ln) for ln in (tmp_path / "d2" / "log.jsonl").read_text().splitlines()]
    assert [r["mse_weight"] for r in rows2] == pytest.approx([r["mse_weight"] for r in rows])
    train_decoder(photo_dir, tmp_path / "d3", steps=3, **{**kw, "target_psnr": 1.0})  # always above: it shrinks
    rows3 = [json.loads(ln) for ln in (tmp_path / "d3" / "log.jsonl").read_text().splitlines()]
    assert [r["mse_weight"] for r in rows3] == pytest.approx([2.0 / PSNR_STEP**i for i in range(3)])
