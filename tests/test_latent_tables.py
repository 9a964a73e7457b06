"""Issue 24 item 5: ``latent tables`` -- paper 004's Tables 1-4 on stand-in sets, resumable per (row, image)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("constriction")

from robusthide.latent import tables, tables_report  # noqa: E402
from robusthide.latent.editing import EditConfig  # noqa: E402
from robusthide.latent.fnns import FnnsConfig  # noqa: E402

SIZE, N = 64, 2


@pytest.fixture(scope="module")
def val_photos(tmp_path_factory, photos):
    """Photos whose names fall in the val split: a 1024 px astronaut (div2k class), coffee and chelsea (coco)."""
    from PIL import Image

    from robusthide.training.data import split_of

    d = tmp_path_factory.mktemp("val-photos")
    names = [f"photo{k}.png" for k in range(200) if split_of(f"photo{k}.png") == "val"]
    Image.fromarray(photos["astronaut"]).resize((1024, 1024), Image.BICUBIC).save(d / names[0])
    Image.fromarray(photos["coffee"]).save(d / names[1])
    Image.fromarray(photos["chelsea"]).save(d / names[2])
    return d


@pytest.fixture(scope="module")
def models(train_tiny_codec, tmp_path_factory):
    from robusthide.latent.liso import Liso, save_liso

    d = tmp_path_factory.mktemp("liso")
    torch.manual_seed(0)
    save_liso(Liso(hidden=8, iters=2), d / "liso.safetensors")
    save_liso(Liso(hidden=8, iters=2, jpeg=90), d / "liso-jpeg.safetensors")
    return {"codec": train_tiny_codec("codec-tables", steps=10, batch=2, quality="7"),
            "liso": d / "liso.safetensors", "liso_jpeg": d / "liso-jpeg.safetensors"}


def _setup(models) -> tables.Setup:
    from robusthide.latent.liso import load_liso
    from robusthide.latent.models import load_codec
    from robusthide.latent.stegnet import load_decoder

    torch.set_num_threads(1)
    return tables.Setup(load_decoder("fnns-r:0"), [("7", load_codec(models["codec"]))], load_liso(models["liso"]),
                        load_liso(models["liso_jpeg"]), EditConfig(iters=3, lr=1e-2), FnnsConfig(steps=2))


def _numbers(r: dict) -> dict:
    """The rows' figures without the CPU times."""
    return {st["set"]: {m: {k: v for k, v in row.items() if "cpu" not in k} for m, row in st["rows"].items()}
            for st in r["sets"]}


def test_stand_in_sets_follow_their_rules(val_photos):
    """div2k takes the photos of >= 1000 px, coco the others; crop i depends on (set, seed, i) only, so a larger N
    extends a smaller one; celeba centres its portrait crop on the face the cascade finds (the astronaut)."""
    assert [p.name for p in tables.set_photos(val_photos, "div2k", SIZE)] == ["photo0.png"]
    assert len(tables.set_photos(val_photos, "coco", SIZE)) == 2
    three, two = tables.covers(val_photos, "coco", 3, SIZE), tables.covers(val_photos, "coco", 2, SIZE)
    assert all(torch.equal(a.image, b.image) for a, b in zip(three, two))
    assert three[0].image.shape == (1, 3, SIZE, SIZE) and three[0].photo != three[1].photo
    celeba = tables.covers(val_photos, "celeba", 3, SIZE)
    assert [c.face for c in celeba if c.photo == "photo0.png"] == [True]
    assert tables.message(0, 1, 1, SIZE).shape == (1, 1, SIZE, SIZE)
    assert not torch.equal(tables.message(0, 0, 1, SIZE), tables.message(0, 1, 1, SIZE))


def test_table2_rows_are_real_measurements(val_photos, models, tmp_path):
    """Each row is measured on the real saved form: 96 / 48 bpp for float32 / fp16, the PNG file's size, the
    codec's own bitstream; RSBPP rate is (2 acc - 1) / bpp; the paper's figures stand beside ours."""
    from robusthide.codecs import get_codec
    from robusthide.latent.api import to_8bit
    from robusthide.latent.fnns import FnnsConfig, fnns_embed
    from robusthide.latent.models import load_codec
    from robusthide.metrics import psnr

    s = _setup(models)
    r = tables.run(2, s, val_photos, tmp_path, n=N, size=SIZE, progress=False)
    rows = r["sets"][0]["rows"]
    want = {"FNNS", "FNNS-fp16", "FNNS-png", "FNNS-jpg90", "FNNS-jpg70", "FNNS-jpg50", "FNNS-JPG90_TRAIN",
            "FNNS-JPG70_TRAIN", "FNNS-JPG50_TRAIN", "hyper_7", "hyperbase_7", "LISO", "LISO-png", "LISO-jpg90",
            "LISO-jpg70", "LISO-jpg50", "LISO-JPEG"}
    assert set(rows) == want and all(row["n"] == N for row in rows.values())
    assert rows["FNNS"]["bpp"] == 96.0 and rows["FNNS-fp16"]["bpp"] == 48.0
    covers = tables.covers(val_photos, "div2k", N, SIZE)
    png_bpp, png_acc, h_bpp, h_psnr = [], [], [], []
    codec = load_codec(models["codec"])
    for c in covers:
        t = tables.message(0, c.index, 1, SIZE)
        png = get_codec("png")(fnns_embed(s.decoder, c.image, t, FnnsConfig(steps=2)))
        png_bpp.append(png.bpp()[0])
        png_acc.append(float(((s.decoder(png.images) > 0).float() == t).float().mean()))
        comp = codec.compress(c.image)
        h_bpp.append(8 * (len(comp.y_string) + len(comp.z_string)) / SIZE**2)
        h_psnr.append(float(psnr(to_8bit(codec.synthesize(comp.y_hat, (SIZE, SIZE))), c.image)))
    assert rows["FNNS-png"]["bpp"] == pytest.approx(np.mean(png_bpp), rel=1e-9)
    assert rows["FNNS-png"]["accuracy"] == pytest.approx(np.mean(png_acc), rel=1e-9)
    assert rows["hyper_7"]["bpp"] == pytest.approx(np.mean(h_bpp), rel=1e-9)
    assert rows["hyper_7"]["psnr"] == pytest.approx(np.mean(h_psnr), rel=1e-6)
    assert rows["FNNS"]["accuracy"] > 0.6  # two L-BFGS steps already move the random decoder's bits
    for row in rows.values():
        assert row["rsbpp_rate"] == pytest.approx(max(0.0, 2 * row["accuracy"] - 1) / row["bpp"])
        assert row["error_rate"] == pytest.approx(1 - row["accuracy"])
    assert rows["hyperbase_7"]["edit_cpu_s"] > 0
    assert r["paper"]["div2k"]["hyperbase_6"][2] == 91.75
    md = (tmp_path / "latent-table2.md").read_text()
    assert "| 23.28 / 3.53 / 91.75 % / 0.237 / 104.43 |" not in md  # no hyperbase_6 row here: it is listed missing
    assert "hyperbase_6 (no hyperprior codec labelled 6 given: --codec 6=WEIGHTS)" in md
    assert "| 23.04 / 21.78 / 99.98 % / 0.046 / 208.15 |" in md  # FNNS-png beside the paper's
    assert md.index("| hyper_7 |") < md.index("| hyperbase_7 |")
    assert json.loads((tmp_path / "latent-table2.json").read_text())["sets"][0]["images"][0]["photo"] == "photo0.png"
    from PIL import Image

    assert Image.open(tmp_path / "latent-table2.png").size == (16 * 128, 128)  # the crops, one row per set


def test_an_interrupted_run_resumes_where_it_stopped(val_photos, models, tmp_path, monkeypatch):
    """Stopped in image 2's editing, the rerun computes only what is missing (one editing run, no FNNS) and ends
    with the numbers of an uninterrupted run; a third run computes nothing; the hand-written reading is kept;
    Table 4 takes its div2k rows from Table 2's cache."""
    calls = {"edit": 0, "fnns": 0}
    real_edit, real_fnns = tables.edit_latent, tables.fnns_embed

    def edit(*a, **k):
        calls["edit"] += 1
        if calls.get("stop") == calls["edit"]:
            raise KeyboardInterrupt
        return real_edit(*a, **k)

    def fnns(*a, **k):
        calls["fnns"] += 1
        return real_fnns(*a, **k)

    monkeypatch.setattr(tables, "edit_latent", edit)
    monkeypatch.setattr(tables, "fnns_embed", fnns)
    whole = tables.run(2, _setup(models), val_photos, tmp_path / "whole", n=N, size=SIZE, progress=False)
    assert calls == {"edit": 2, "fnns": 8}  # per image: FNNS + 3 FNNS-JPGQ_TRAIN

    part = tmp_path / "part"
    calls.update(edit=0, fnns=0, stop=2)
    with pytest.raises(KeyboardInterrupt):
        tables.run(2, _setup(models), val_photos, part, n=N, size=SIZE, progress=False)
    cached = json.loads((part / tables.CACHE_NAME).read_text())["entries"].values()
    assert sorted({(e["index"], e["group"]) for e in cached if e["index"] == 1}) == [
        (1, "clean"), (1, "fnns"), (1, "fnns-train50"), (1, "fnns-train70"), (1, "fnns-train90")]
    assert not (part / "latent-table2.md").exists()

    calls.update(edit=0, fnns=0, stop=0)
    resumed = tables.run(2, _setup(models), val_photos, part, n=N, size=SIZE, progress=False)
    assert (calls["edit"], calls["fnns"]) == (1, 0)
    assert _numbers(resumed) == _numbers(whole)

    md = part / "latent-table2.md"
    md.write_text(md.read_text().replace(tables_report.READING_PLACEHOLDER, "Hand-written: FNNS-png reads every bit."))
    calls.update(edit=0, fnns=0)
    again = tables.run(2, _setup(models), val_photos, part, n=N, size=SIZE, progress=False)
    assert (calls["edit"], calls["fnns"]) == (0, 0) and _numbers(again) == _numbers(whole)
    assert md.read_text().endswith("## Reading\n\nHand-written: FNNS-png reads every bit.\n")

    t4 = tables.run(4, _setup(models), val_photos, part, n=N, size=SIZE, sets=("div2k",), progress=False)
    assert (calls["edit"], calls["fnns"]) == (0, 0)
    rows4 = t4["sets"][0]["rows"]
    assert set(rows4) == {"FNNS", "FNNS-jpg90", "FNNS-JPG90_TRAIN", "hyperbase_7", "LISO", "LISO-jpg90"}
    assert rows4["hyperbase_7"]["error_rate"] == pytest.approx(1 - whole["sets"][0]["rows"]["hyperbase_7"]["accuracy"])
    assert "| 7.8 % / 24.9 / 23 % (paper: q8) |" in (part / "latent-table4.md").read_text()


def test_cli_tables_json_and_one_line_errors(val_photos, models, tmp_path, capsys):
    from robusthide.cli.main import main

    base = ["latent", "tables", "--out-dir", str(tmp_path), "--data", str(val_photos), "--n", "1", "--size",
            str(SIZE), "--decoder", "fnns-r:0", "--fnns-steps", "1", "--iters", "2"]
    assert main(base + ["--table", "3", "--methods", "fnns", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["table"] == 3 and set(r["sets"][0]["rows"]) == {
        "FNNS", "FNNS-fp16", "FNNS-png", "FNNS-jpg90", "FNNS-jpg70", "FNNS-jpg50"}
    assert (tmp_path / "latent-table3.md").is_file()
    cache = tmp_path / tables.CACHE_NAME
    before = cache.read_bytes()
    for extra, msg in [
        (["--table", "2", "--data", str(tmp_path)], "no images found in"),
        (["--table", "3", "--methods", "fnns,gan"], "--methods takes a comma list"),
        (["--table", "2", "--sets", "coco"], "--sets coco: Table 2 covers div2k"),
        (["--table", "3", "--size", "72"], "--size must be a multiple of 16"),
        (["--table", "3", "--liso", str(tmp_path / "none.safetensors")], "LISO weights not found"),
        (["--table", "3", "--codec", "q99"], "no shipped codec of quality 99"),
        (["--table", "3", "--codec", f"7={models['codec']}", "--codec", f"7={models['codec']}"],
         "two codecs give the rows hyper_7 / hyperbase_7: label them differently"),
    ]:
        assert main(base + extra) == 2, extra
        err = capsys.readouterr().err.strip()
        assert err.startswith("robusthide: error: ") and msg in err and "\n" not in err, (extra, err)
    assert main(base + ["--n", "0", "--table", "3", "--methods", "fnns"]) == 2
    assert "need --n >= 1" in capsys.readouterr().err
    small = tmp_path / "small"
    small.mkdir()
    (small / "photo4.png").write_bytes((val_photos / "photo4.png").read_bytes())  # coffee: no div2k-class photo
    assert main(base + ["--table", "2", "--data", str(small), "--methods", "fnns"]) == 2
    assert "no photo of the div2k set (shorter side >= 1000 px, and >= 2.5 x --size = 160 px) in the val split" \
        in capsys.readouterr().err
    assert cache.read_bytes() == before
    cache.write_text("{not json")
    assert main(base + ["--table", "3", "--methods", "fnns"]) == 2
    assert "unreadable cache" in capsys.readouterr().err


def test_two_writers_of_one_cache_keep_each_others_entries(tmp_path):
    """Tables 1-3 may run side by side into one folder: each save merges what the file holds under the lock."""
    a, b = tables.Cache(tmp_path / tables.CACHE_NAME), tables.Cache(tmp_path / tables.CACHE_NAME)
    a.put({"k1": {"acc": 0.5}})
    b.put({"k2": {"acc": 0.75}})
    a.put({"k3": {"acc": 1.0}})
    assert tables.Cache(tmp_path / tables.CACHE_NAME).entries == {"k1": {"acc": 0.5}, "k2": {"acc": 0.75},
                                                                 "k3": {"acc": 1.0}}
    assert sorted(p.name for p in tmp_path.iterdir()) == [tables.CACHE_NAME]


def test_cli_defaults_are_the_tuned_settings_the_tables_run(val_photos, tmp_path, monkeypatch):
    """`latent tables` without editing or FNNS options runs tables.TABLE_EDIT / TABLE_FNNS (latent/defaults.py, the
    values tuned at 256 px in docs/results/latent-tables-tuning.md), one lambda5 for every codec."""
    from robusthide.cli.main import main
    from robusthide.latent import defaults

    seen = {}
    monkeypatch.setattr(tables, "run", lambda table, setup, *a, **k: seen.update(setup=setup) or {
        "sets": [], "settings": {"computed_cpu_s": 0.0}})
    assert main(["latent", "tables", "--table", "2", "--out-dir", str(tmp_path), "--data", str(val_photos),
                 "--decoder", "fnns-r:0", "--methods", "fnns"]) == 0
    s = seen["setup"]
    assert s.edit == tables.TABLE_EDIT and s.fnns == tables.TABLE_FNNS and not s.scale_lambda5
    assert (s.edit.iters, s.edit.lr, s.edit.lambda5) == (200, 0.1, pytest.approx(1 / 288))
    assert (s.fnns.steps, s.fnns.lr, s.fnns.eps) == (30, 0.1, 0.1)
    assert (s.edit.lambda2, s.edit.lambda4, s.edit.rounding) == (16.0, 1 / 244, "noise")  # the paper's
    assert defaults.TABLES_EDIT["lambda5"] == s.edit.lambda5
    assert main(["latent", "tables", "--table", "2", "--out-dir", str(tmp_path), "--data", str(val_photos),
                 "--decoder", "fnns-r:0", "--methods", "fnns", "--lr", "1e-3", "--fnns-eps", "0.3",
                 "--scale-lambda5"]) == 0
    s = seen["setup"]
    assert (s.edit.lr, s.fnns.eps, s.scale_lambda5) == (1e-3, 0.3, True)


def test_lambda5_follows_the_codec_lambda(models):
    """scale_lambda5: lambda5 x (codec lambda / 0.0483), so lambda5 / lambda1 is one number for every codec."""
    from robusthide.latent.editing import codec_lambda1
    from robusthide.latent.models import load_codec

    m = load_codec(models["codec"])
    s = _setup(models)
    assert s.edit_for(m) == s.edit  # the default: one lambda5 for all, as the paper
    s.scale_lambda5 = True
    lam = float(m.meta["lmbda"])
    assert s.edit_for(m).lambda5 == pytest.approx(s.edit.lambda5 * lam / 0.0483)
    assert s.edit_for(m).lambda5 / codec_lambda1(m) == pytest.approx(s.edit.lambda5 / (0.0483 * 255**2))
    s.scale_lambda5 = False
    assert s.edit_for(m) == s.edit


def test_a_liso_file_serves_as_the_fixed_decoder(models, to_tensor, photos):
    """--decoder takes a LISO file (train-liso): its decoder, the very one LISO's rows are read with."""
    from robusthide.latent.api import resolve_decoder
    from robusthide.latent.liso import load_liso

    lm, dec = load_liso(models["liso"]), resolve_decoder(str(models["liso"]))
    assert dec.decoder_id() == lm.decoder.decoder_id()
    x = to_tensor(photos["coffee"][:64, :64])
    with torch.no_grad():
        assert torch.equal(dec(x), lm.decoder(x))


def test_iters_set_runs_on_the_tables_crops(val_photos, models, tmp_path, monkeypatch):
    """`latent iters --set coco` tunes on the very crops `latent tables` uses for that set."""
    from robusthide.cli.main import main
    from robusthide.latent import iters

    seen = {}
    monkeypatch.setattr(iters, "run", lambda codec, dec, covers, *a, **k: seen.update(covers=covers))
    assert main(["latent", "iters", "--out", str(tmp_path / "it"), "--codec", str(models["codec"]), "--decoder",
                 "fnns-r:0", "--data", str(val_photos), "--set", "coco", "--n", "2", "--size", str(SIZE),
                 "--at", "0,1"]) == 0
    want = tables.covers(val_photos, "coco", 2, SIZE)
    assert len(seen["covers"]) == 2 and all(torch.equal(a, b.image) for a, b in zip(seen["covers"], want))
