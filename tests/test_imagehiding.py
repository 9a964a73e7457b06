"""Image hiding (paper 003; paper 000 §4): networks, losses, trainer (resume), export, API, CLI, errors.

Tiny networks (widths 4..8) at 32 x 32 so the whole file runs in well under a minute on one core.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from robusthide import RobustHideError
from robusthide.cli.main import main as cli
from robusthide.imagehiding import FORMAT, HidingNetwork, ImageHider, export_model, load_model, save_model
from robusthide.imagehiding.checkpoint import read_training_checkpoint
from robusthide.imagehiding.losses import check_weights, generator_losses, lsgan_d, lsgan_g
from robusthide.imagehiding.nets import PatchDiscriminator
from robusthide.imagehiding.train import ImageHideTrainer, attack_generators, load_config, quantize_ste

TINY = {"size": 32, "channels": [4, 8]}


def tiny_cfg(tmp_path: Path, photo_dir: Path, **over) -> dict:
    cfg = {
        "name": "run", "out": str(tmp_path / "runs"), "seed": 5,
        "model": dict(TINY, n_secrets=1),
        "disc": {"channels": 4, "layers": 2},
        "data": {"train": str(photo_dir), "split": False, "max_side": 128},
        "attack": {"spec": "identity"},
        "train": {"steps": 50, "batch": 4, "lr": 2e-3, "lr_d": 1e-3},
        "val": {"every": 0},
        "ckpt": {"every": 1000},
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k].update(v)
        else:
            cfg[k] = v
    return load_config(cfg)


def rand_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, size, size, generator=g) * 255).round() / 255


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


# -- networks --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 3])
def test_shapes_for_1_to_3_secrets(n):
    torch.manual_seed(0)
    net = HidingNetwork(n_secrets=n, **TINY)
    assert len(net.embedder.unet.encoders) == 1 + n  # one unshared encoder per input (paper 003 §2.1)
    assert len(net.revealer.unet.decoders) == n      # one decoder branch per secret (§2.3)
    assert len(net.decoupler.unet.decoders) == 2     # residual and cover branches
    cover, secrets = rand_images(2, seed=1), [rand_images(2, seed=10 + i) for i in range(n)]
    m, r = net.hide(cover, secrets)
    assert m.shape == r.shape == (2, 3, 32, 32)
    revealed, r_hat, c_hat = net.reveal(m)
    assert len(revealed) == n and all(s.shape == (2, 3, 32, 32) for s in revealed)
    assert r_hat.shape == c_hat.shape == (2, 3, 32, 32)
    with pytest.raises(RobustHideError, match=f"hides {n} secret"):
        net.hide(cover, secrets + [cover])


def test_variants_and_discriminator_shapes():
    net = HidingNetwork(n_secrets=2, size=32, channels=[4, 8, 8], multi_branch=False, progressive=False)
    assert len(net.embedder.unet.encoders) == 1 and net.decoupler is None
    m, _ = net.hide(rand_images(1), [rand_images(1, seed=2), rand_images(1, seed=3)])
    revealed, r_hat, c_hat = net.reveal(m)
    assert len(revealed) == 2 and r_hat is None and c_hat is None
    d = PatchDiscriminator(4, 3)
    assert d(rand_images(2, 64)).shape == (2, 1, 6, 6)  # PatchGAN: a grid of patch scores


def test_residual_path_container_minus_cover_is_residual():
    torch.manual_seed(1)
    net = HidingNetwork(**TINY).eval()
    cover, secret = rand_images(3, seed=4), rand_images(3, seed=5)
    with torch.no_grad():
        m, r = net.hide(cover, [secret])
        r2 = net.embedder.residual(cover, [secret])
    assert torch.equal(r, r2)
    assert torch.allclose(m - cover, r, atol=1e-6)
    assert float(r.abs().max()) > 1e-3  # a real residual, not zeros


def test_api_residual_path_at_working_size_and_upsampled(tmp_path, photos):
    torch.manual_seed(2)
    path = save_model(HidingNetwork(**TINY), tmp_path / "m.safetensors")
    h = ImageHider.from_file(path)
    cover = np.ascontiguousarray(photos["astronaut"][100:132, 200:232])
    secret = photos["coffee"]
    r = h.residual(cover, [secret])[0].permute(1, 2, 0).numpy()
    expect = np.clip(np.round((cover / 255.0 + r) * 255), 0, 255).astype(np.uint8)
    got = h.hide(cover, [secret])
    assert got.shape == cover.shape
    assert np.abs(got.astype(int) - expect.astype(int)).max() <= 1  # float rounding only
    assert np.mean(got == expect) > 0.99
    big = photos["chelsea"]  # 300 x 451: the container keeps the cover's size
    c2 = h.hide(big, secret)
    assert c2.shape == big.shape and c2.dtype == np.uint8
    rev = h.reveal(c2)
    assert len(rev) == 1 and rev[0].shape == (32, 32, 3)


# -- losses ----------------------------------------------------------------------------------------------

def test_lsgan_and_generator_losses():
    ones, zeros = torch.ones(2, 1, 3, 3), torch.zeros(2, 1, 3, 3)
    assert float(lsgan_d(ones, zeros)) == 0.0 and float(lsgan_d(zeros, ones)) == 1.0
    assert float(lsgan_g(ones)) == 0.0 and float(lsgan_g(zeros)) == 1.0
    w = check_weights({"adv_container": 0.0})
    c = torch.full((1, 3, 4, 4), 0.5)
    total, terms = generator_losses(w, c, [c], c + 0.1, torch.full_like(c, 0.1), [c - 0.2], c * 0 + 1.0, c,
                                    10.0, torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2))
    assert terms["container"] == pytest.approx(0.1) and terms["secret"] == pytest.approx(0.2)
    assert terms["residual"] == pytest.approx(0.0) and terms["cover"] == pytest.approx(0.0)
    assert "adv_container" not in terms and terms["adv_secret"] == 0.0
    assert float(total) == pytest.approx(0.1 + 0.2)
    _, terms = generator_losses(w, c, [c], c, c * 0, [c], None, None, 10.0, revealed_teacher=[c + 0.3])
    assert terms["teacher"] == pytest.approx(0.3) and "cover" not in terms and "residual" not in terms
    with pytest.raises(RobustHideError, match="unknown loss keys"):
        check_weights({"perceptual": 1})
    with pytest.raises(RobustHideError, match="l1 or l2"):
        check_weights({"distance": "l3"})


def test_quantize_ste_rounds_forward_identity_backward():
    x = torch.tensor([[-0.1, 0.5012, 1.3]], requires_grad=True)
    y = quantize_ste(x)
    assert torch.equal(y.detach(), torch.tensor([[0.0, 128 / 255, 1.0]]))
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


# -- training ----------------------------------------------------------------------------------------------

def test_a_few_training_steps_lower_the_loss(tmp_path, photo_dir):
    cfg = tiny_cfg(tmp_path, photo_dir, train={"lr": 5e-3})
    tr = ImageHideTrainer(cfg, device="cpu", progress=False)
    rows = [tr.step() for _ in range(20)]
    first = np.mean([r["l_secret"] + r["l_container"] for r in rows[:3]])
    last = np.mean([r["l_secret"] + r["l_container"] for r in rows[-3:]])
    assert last < 0.8 * first, (first, last)
    assert rows[-1]["l_container"] < 0.6 * rows[0]["l_container"]
    assert all(np.isfinite(r["loss_d"]) for r in rows)


def test_resume_is_exact(tmp_path, photo_dir):
    over = {"attack": {"spec": "choice(paper003(crop=0.7..1), real(jpeg:q=40..90), noise(0..0.05))"}}
    a = tiny_cfg(tmp_path, photo_dir, name="straight", **over)
    b = tiny_cfg(tmp_path, photo_dir, name="resumed", **over)
    ImageHideTrainer(a, device="cpu", progress=False).run(max_steps=4)
    ImageHideTrainer(b, device="cpu", progress=False).run(max_steps=2)
    tr = ImageHideTrainer(b, resume=True, device="cpu", progress=False)
    assert tr.state["step"] == 2
    tr.run(max_steps=4)
    da, ta = read_training_checkpoint(tmp_path / "runs" / "straight")
    db, tb = read_training_checkpoint(tmp_path / "runs" / "resumed")
    assert da["step"] == db["step"] == 4
    assert set(ta) == set(tb) and any(k.startswith("optim_d.") for k in ta)
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
    assert da["state"]["psnr_ema"] == db["state"]["psnr_ema"]
    rows_a = [json.loads(s) for s in (tmp_path / "runs/straight/metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(s) for s in (tmp_path / "runs/resumed/metrics.jsonl").read_text().splitlines()]
    assert rows_a[-1]["loss_g"] == rows_b[-1]["loss_g"]


def test_attack_generators_are_reseeded_per_step(tmp_path, photo_dir):
    cfg = tiny_cfg(tmp_path, photo_dir, attack={"spec": "paper003"})
    tr = ImageHideTrainer(cfg, device="cpu", progress=False)
    gens = attack_generators(tr.attack)
    assert gens
    tr._seed_step(7)
    s1 = [g.get_state() for g in gens]
    tr._seed_step(8)
    tr._seed_step(7)
    assert all(torch.equal(x, g.get_state()) for x, g in zip(s1, gens))


def test_validation_with_real_codecs_and_interrupted_checkpoint(tmp_path, photo_dir):
    cfg = tiny_cfg(tmp_path, photo_dir, val={"every": 2, "n": 2, "codecs": ["jpeg:q=50", "webp:q=50"]},
                   attack={"spec": "slices(real(jpeg:q=50), real(jpeg2000:x1000=50), real(webp:q=50))"})
    last = ImageHideTrainer(cfg, device="cpu", progress=False).run(max_steps=2)
    for key in ("val_psnr_container", "val_psnr_secret[none]", "val_psnr_secret[jpeg:q=50]",
                "val_psnr_secret[webp:q=50]"):
        assert np.isfinite(last[key]), key
    run = tmp_path / "runs" / "run"
    with pytest.raises(RobustHideError, match="already has a checkpoint"):
        ImageHideTrainer(cfg, device="cpu", progress=False)
    doc = json.loads((run / "latest.json").read_text())
    doc["step"] = 3  # as if the JSON of a later save had landed without its tensors
    (run / "latest.json").write_text(json.dumps(doc))
    with pytest.raises(RobustHideError, match="inconsistent"):
        ImageHideTrainer(cfg, resume=True, device="cpu", progress=False)


def test_config_errors(tmp_path, photo_dir):
    with pytest.raises(RobustHideError, match="unknown key 'modle' \\(did you mean 'model'\\?\\)"):
        load_config({"modle": {}})
    with pytest.raises(RobustHideError, match="n_secrets must be 1, 2 or 3"):
        load_config({"model": {"n_secrets": 4}})
    with pytest.raises(RobustHideError, match="multiple of"):
        load_config({"model": {"size": 40}})
    with pytest.raises(RobustHideError, match="unknown key 'train.stpes'"):
        load_config({"train": {"stpes": 3}})
    with pytest.raises(RobustHideError, match="unknown key 'model.width'"):
        load_config({"model": {"width": 3}})
    cfg = load_config(None, ["model.n_secrets=2", "train.batch=2"])
    assert cfg["model"]["n_secrets"] == 2 and cfg["train"]["batch"] == 2


# -- export, real codecs, CLI ------------------------------------------------------------------------------

def test_reveal_after_real_jpeg_round_trip(tmp_path, photos):
    torch.manual_seed(3)
    h = ImageHider(HidingNetwork(n_secrets=2, **TINY))
    container = h.hide(photos["astronaut"], [photos["coffee"], photos["chelsea"]])
    p = tmp_path / "c.jpg"
    Image.fromarray(container).save(p, quality=50)
    rev = h.reveal(p)  # a path works too
    assert len(rev) == 2 and all(r.shape == (32, 32, 3) and r.dtype == np.uint8 for r in rev)
    from robusthide.codecs import get_codec

    decoded = get_codec("jpeg:q=50")(container[None]).images[0]
    assert [r.shape for r in h.reveal(decoded)] == [(32, 32, 3)] * 2


def test_export_and_load_errors(tmp_path, photo_dir):
    cfg = tiny_cfg(tmp_path, photo_dir)
    ImageHideTrainer(cfg, device="cpu", progress=False).run(max_steps=1)
    out = export_model(tmp_path / "runs" / "run", tmp_path / "m.safetensors", name="tiny")
    net, meta = load_model(out)
    assert meta["format"] == "robusthide/2" and meta["family"] == "imagehide" and meta["step"] == "1"
    assert json.loads(meta["config"])["size"] == 32 and meta["name"] == "tiny"
    assert not any(k.startswith(("D.", "optim")) for k in load_file(str(out)))
    # a file of the first export format (robusthide-imagehide/1) still loads, to the same network
    legacy = tmp_path / "legacy.safetensors"
    save_file(load_file(str(out)), str(legacy), metadata={"format": FORMAT, "arch": json.dumps(net.arch), "step": "1"})
    old, _ = load_model(legacy)
    assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(), net.state_dict().values()))
    with pytest.raises(RobustHideError, match=r"\.safetensors"):
        export_model(tmp_path / "runs" / "run", tmp_path / "m.pt")
    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(1)}, str(other), metadata={"format": "robusthide-lean/1"})
    with pytest.raises(RobustHideError, match="not an image-hiding model"):
        load_model(other)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model")
    with pytest.raises(RobustHideError, match="not a safetensors"):
        ImageHider.from_file(junk)
    with pytest.raises(RobustHideError, match="model not found"):
        ImageHider.from_file(tmp_path / "missing.safetensors")


def test_cli_round_trip(tmp_path, photo_dir, photos, capsys):
    cfgp = tmp_path / "cfg.yaml"
    cfgp.write_text(json.dumps({
        "name": "cli", "out": str(tmp_path / "runs"), "model": dict(TINY, n_secrets=2),
        "disc": {"channels": 4, "layers": 2}, "data": {"train": str(photo_dir), "split": False, "max_side": 128},
        "attack": {"spec": "paper003"}, "train": {"steps": 2, "batch": 2}, "val": {"every": 0},
    }))  # JSON is YAML
    assert cli(["imagehide", "train", str(cfgp), "--no-progress"]) == 0
    model = tmp_path / "tiny.safetensors"
    assert cli(["imagehide", "export", str(tmp_path / "runs" / "cli"), "-o", str(model)]) == 0
    cover, s1, s2 = tmp_path / "cover.png", tmp_path / "s1.png", tmp_path / "s2.jpg"
    Image.fromarray(photos["chelsea"]).save(cover)
    Image.fromarray(photos["coffee"]).save(s1)
    Image.fromarray(photos["astronaut"]).save(s2)
    before = {p: sha(p) for p in (cover, s1, s2)}
    out = tmp_path / "out" / "container.png"
    assert cli(["hide-image", str(cover), str(s1), str(s2), "-o", str(out), "--model", str(model)]) == 0
    assert np.asarray(Image.open(out)).shape == photos["chelsea"].shape
    jpg = tmp_path / "container.jpg"
    assert cli(["hide-image", str(cover), str(s1), str(s2), "-o", str(jpg), "--model", str(model),
                "--quality", "80", "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["output"] == str(jpg) and row["size"] == [451, 300]
    from robusthide.metrics import psnr

    saved = np.asarray(Image.open(jpg).convert("RGB"))  # the PSNR printed is that of the JPEG as written
    assert row["psnr"] == round(float(psnr(photos["chelsea"], saved)), 2)
    rev = tmp_path / "rev"
    assert cli(["reveal-image", str(jpg), "-o", str(rev), "--model", str(model)]) == 0
    assert sorted(p.name for p in rev.iterdir()) == ["secret_1.png", "secret_2.png"]
    assert np.asarray(Image.open(rev / "secret_2.png")).shape == (32, 32, 3)
    assert {p: sha(p) for p in (cover, s1, s2)} == before  # inputs untouched
    res = tmp_path / "eval"
    assert cli(["imagehide", "evaluate", str(model), "--data", str(photo_dir), "--split", "all", "--n", "2",
                "--attacks", "none,jpeg:q=50,resize:0.5,blur:1,noise:0.02,jpeg2000:x1000=50,webp:q=50",
                "--out", str(res)]) == 0
    doc = json.loads((tmp_path / "eval.json").read_text())
    assert set(doc["attacks"]) == {"none", "jpeg:q=50", "resize:0.5", "blur:1", "noise:0.02",
                                   "jpeg2000:x1000=50", "webp:q=50"}
    assert np.isfinite(doc["container"]["psnr"]) and doc["attacks"]["jpeg:q=50"]["bpp"] > 0
    assert len(doc["attacks"]["none"]["per_secret"]) == 2
    assert "| `webp:q=50` |" in (tmp_path / "eval.md").read_text()
    # the contact sheet: a caption band over 2 rows of cover, container, residual + (secret, revealed x 2) x 2
    sheet = np.asarray(Image.open(tmp_path / doc["sheet"]))
    band = sheet.shape[0] - 2 * doc["size"]
    assert band > 34 and (band - 6) % 14 == 0 and sheet.shape[1] == doc["size"] * (3 + 2 * 3)  # wrapped lines
    assert (sheet[:band] == 255).mean() > 0.8 and (sheet[:band] < 128).any()  # white, with text
    # the report's command comes from the parsed arguments (under pytest, sys.argv is pytest's)
    assert doc["command"] == (f"robusthide imagehide evaluate {model} --data {photo_dir} --split all --n 2 --attacks "
                              f"none,jpeg:q=50,resize:0.5,blur:1,noise:0.02,jpeg2000:x1000=50,webp:q=50 --out {res}")


def test_cli_bad_input_one_line_errors(tmp_path, photos, capsys):
    model = save_model(HidingNetwork(**TINY), tmp_path / "m.safetensors")
    cover, secret = tmp_path / "cover.png", tmp_path / "secret.png"
    Image.fromarray(photos["chelsea"]).save(cover)
    Image.fromarray(photos["coffee"]).save(secret)
    (tmp_path / "notimage.png").write_text("hello")
    (tmp_path / "file").write_text("x")
    cases = [
        (["hide-image", str(cover), str(secret), str(secret), "-o", str(tmp_path / "o.png"), "--model", str(model)],
         "hides exactly 1 secret"),
        (["hide-image", str(cover), str(tmp_path / "nope.png"), "-o", str(tmp_path / "o.png"), "--model",
          str(model)], "no such file"),
        (["hide-image", str(cover), str(secret), "-o", str(cover), "--model", str(model)],
         "refusing to overwrite the input"),
        (["hide-image", str(cover), str(secret), "-o", str(secret), "--model", str(model)],
         "refusing to overwrite the input"),
        (["hide-image", str(cover), str(secret), "-o", str(tmp_path / "o.gif"), "--model", str(model)],
         "unsupported container extension"),
        (["hide-image", str(cover), str(tmp_path / "notimage.png"), "-o", str(tmp_path / "o.png"), "--model",
          str(model)], "not an image file"),
        (["hide-image", str(cover), str(secret), "-o", str(tmp_path / "o.png"), "--model", str(cover)],
         "not a safetensors model"),
        (["reveal-image", str(cover), "-o", str(tmp_path / "file"), "--model", str(model)], "not a folder"),
        (["imagehide", "train", str(tmp_path / "missing.yaml")], "config not found"),
        (["imagehide", "export", str(tmp_path), "-o", str(tmp_path / "x.safetensors")], "no checkpoint"),
        (["imagehide", "evaluate", str(model), "--data", str(tmp_path / "nodata")], "data folder not found"),
    ]
    for argv, msg in cases:
        assert cli(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("robusthide: error: ") and msg in err, (argv, err)
        assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o.png").exists()
    assert sha(cover) == sha(tmp_path / "cover.png")
    h = ImageHider.from_file(model)
    with pytest.raises(RobustHideError, match="uint8"):
        h.hide(photos["chelsea"].astype(np.float32), [photos["coffee"]])
    with pytest.raises(RobustHideError, match="too small"):
        h.reveal(np.zeros((4, 4, 3), np.uint8))


def test_shipped_model_cli_round_trip(tmp_path, photos):
    """The shipped imagehide-003 (docs/results/imagehide-003.md): hide a fixture photo in another, save the
    container as JPEG 90, reveal it by the model's name; the revealed secret resembles the secret far
    more than it resembles an unrelated image."""
    from robusthide.metrics import psnr

    cover, secret = tmp_path / "cover.png", tmp_path / "secret.png"
    Image.fromarray(photos["astronaut"]).save(cover)
    Image.fromarray(photos["coffee"]).save(secret)
    out = tmp_path / "container.jpg"
    m = ["--model", "imagehide-003"]
    assert cli(["hide-image", str(cover), str(secret), "-o", str(out), "--quality", "90", *m]) == 0
    container = np.asarray(Image.open(out).convert("RGB"))
    assert container.shape == photos["astronaut"].shape
    assert psnr(container, photos["astronaut"]) > 20.0
    assert cli(["reveal-image", str(out), "-o", str(tmp_path / "rev"), *m]) == 0
    revealed = np.asarray(Image.open(tmp_path / "rev" / "secret_1.png").convert("RGB"))
    size = ImageHider.from_pretrained("imagehide-003").size
    assert revealed.shape == (size, size, 3)
    small = lambda a: np.asarray(Image.fromarray(a).resize((size, size), Image.BICUBIC))  # noqa: E731
    p_secret, p_other = psnr(revealed, small(photos["coffee"])), psnr(revealed, small(photos["chelsea"]))
    print(f"container {psnr(container, photos['astronaut']):.2f} dB, revealed {p_secret:.2f} dB, other {p_other:.2f}")
    assert p_secret > 13.0 and p_secret > p_other + 2.0


def test_default_models_cli_round_trip_for_one_and_two_secrets(tmp_path, photos):
    """``hide-image`` / ``reveal-image`` without ``--model`` pick the shipped invertible model for the number
    of secrets; the PNG container keeps the cover's size and the revealed secrets come back at that size."""
    from robusthide.metrics import psnr

    paths = {}
    for k in ("astronaut", "coffee", "chelsea"):
        paths[k] = tmp_path / f"{k}.png"
        Image.fromarray(np.ascontiguousarray(photos[k][:256, :320])).save(paths[k])
    fit = {k: np.ascontiguousarray(photos[k][:256, :320]) for k in paths}
    for secrets in (["coffee"], ["coffee", "chelsea"]):
        out, rev = tmp_path / f"c{len(secrets)}.png", tmp_path / f"rev{len(secrets)}"
        assert cli(["hide-image", str(paths["astronaut"]), *[str(paths[s]) for s in secrets], "-o", str(out)]) == 0
        container = np.asarray(Image.open(out).convert("RGB"))
        assert container.shape == (256, 320, 3) and psnr(container, fit["astronaut"]) > 33.0
        assert cli(["reveal-image", str(out), "-o", str(rev), "--secrets", str(len(secrets))]) == 0
        for i, s in enumerate(secrets, 1):
            got = np.asarray(Image.open(rev / f"secret_{i}.png").convert("RGB"))
            other = "chelsea" if s == "coffee" else "coffee"
            assert got.shape == (256, 320, 3) and psnr(got, fit[s]) > 22.0
            assert psnr(got, fit[s]) > psnr(got, fit[other]) + 5


# -- paper 003 Table 2 ablations -------------------------------------------------------------------------

def test_ablation_variants_change_one_component_each(tmp_path, photo_dir):
    from robusthide.imagehiding.ablation import variant_config

    base = tiny_cfg(tmp_path, photo_dir, attack={"spec": "paper003(quality=30..90, base_quality=90)"})
    full = variant_config(base, "full", steps=7, size=32, target_psnr=30)
    assert full["name"] == "run-t2-full" and full["train"]["steps"] == 7 and full["train"]["target_psnr"] == 30
    assert variant_config(base, "unet", 7)["model"]["multi_branch"] is False
    assert variant_config(base, "no-progressive", 7)["model"]["progressive"] is False
    assert variant_config(base, "no-disc", 7)["disc"]["enabled"] is False
    sim = variant_config(base, "no-simulator", 7)["attack"]["spec"]
    assert sim == "paper003(kinds=jpegmask-hidden, quality=30..90, base_quality=90)"
    from robusthide.attacks import build_attack

    assert build_attack(sim).kinds == ("jpegmask-hidden",)
    assert base["name"] == "run" and base["model"]["multi_branch"] is True  # the base is not modified
    with pytest.raises(RobustHideError, match="paper003 attack spec"):
        variant_config(tiny_cfg(tmp_path, photo_dir), "no-simulator", 7)
    with pytest.raises(RobustHideError, match="unknown ablation variant 'bogus'"):
        variant_config(base, "bogus", 7)


def test_ablation_trains_measures_and_resumes(tmp_path, photo_dir):
    """Two variants, 2 steps each: the table has the paper's row and ours; a rerun does not train again and
    keeps a hand-written reading."""
    from robusthide.imagehiding.ablation import ablate, write_results
    from robusthide.io.results import READING_HEADING

    cfg = tiny_cfg(tmp_path, photo_dir)
    kw = dict(variants=["no-disc", "full"], steps=2, size=None, data=photo_dir, n=2, attacks=("none",))
    doc = ablate(cfg, **kw, progress=False)
    assert list(doc["variants"]) == ["no-disc", "full"] and doc["column"] == "jpeg:q=50"
    for v in ("no-disc", "full"):
        r = doc["variants"][v]
        assert r["steps"] == 2 and set(r["attacks"]) == {"none", "jpeg:q=50"}
        assert r["curve"]["step"][-1] == 2 and len(r["curve"]["psnr_secret"]) == len(r["curve"]["step"])
        assert (tmp_path / "runs" / f"run-t2-{v}" / "model.safetensors").exists()
    paths = write_results(doc, tmp_path / "out" / "t2")
    md = Path(paths["md"]).read_text()
    assert "| Without any discriminator (`no-disc`) | 15.37 / 0.726 |" in md
    assert "| Fully implemented (`full`) | 26.68 / 0.875 |" in md
    assert Path(paths["png"]).stat().st_size > 1000 and json.loads(Path(paths["json"]).read_text())["steps"] == 2
    Path(paths["md"]).write_text(md + f"\n{READING_HEADING}\n\nmine\n")
    again = ablate(cfg, **kw, progress=False)
    for v in ("no-disc", "full"):
        assert again["variants"][v]["train_seconds"] == doc["variants"][v]["train_seconds"]
        psnr_again, psnr_first = (d["variants"][v]["attacks"]["none"]["psnr"] for d in (again, doc))
        assert psnr_again == pytest.approx(psnr_first)
    write_results(again, tmp_path / "out" / "t2")
    assert Path(paths["md"]).read_text().endswith(f"{READING_HEADING}\n\nmine\n")
    with pytest.raises(RobustHideError, match="unknown ablation variant"):
        ablate(cfg, variants=["full", "nope"], steps=2)
