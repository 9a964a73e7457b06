"""Evaluation (issue 7): attack-list grammar, robustness matrix, writers, strength sweep, peers, CLI."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from robusthide import RobustHideError
from robusthide.codecs import CodecError
from robusthide.evaluation import (
    DEFAULT_ATTACKS,
    expand_attacks,
    image_set,
    parse_attacks,
    robustness_matrix,
    strength_sweep,
    write_matrix,
    write_sweep,
)
from robusthide.evaluation.matrix import _chunks
from robusthide.evaluation.matrix_report import write_comparison

# -- grammar ------------------------------------------------------------------------------------------------


def test_default_attack_list_expands_to_single_specs():
    assert parse_attacks(DEFAULT_ATTACKS) == [
        "jpeg:q=10", "jpeg:q=25", "jpeg:q=50", "jpeg:q=75", "jpeg:q=90", "webp:q=50", "webp:q=75",
        "jpeg2000:x1000=100", "jpeg2000:x1000=500", "jpeg2000:x1000=900", "h264:crf=23", "h264:crf=28",
        "resize:0.5", "crop:0.9", "identity"]
    a = expand_attacks(DEFAULT_ATTACKS)
    assert (a[0].family, a[0].param, a[0].value, a[0].group) == ("jpeg", "q", 10, "jpeg:q={}")
    assert (a[12].family, a[12].param, a[12].value) == ("resize", "value", 0.5)
    assert (a[-1].family, a[-1].param, a[-1].value) == ("identity", None, None)


@pytest.mark.parametrize("text, specs", [
    # a bare number after a comma continues the previous key; key=value starts a new key
    ("jpeg:q=50,75,subsampling=444", ["jpeg:q=50,subsampling=444", "jpeg:q=75,subsampling=444"]),
    ("jpeg:subsampling=444,q=50,75", ["jpeg:subsampling=444,q=50", "jpeg:subsampling=444,q=75"]),
    ("jpeg:q=50,subsampling=444", ["jpeg:q=50,subsampling=444"]),
    ("resize:0.5,0.75", ["resize:0.5", "resize:0.75"]),
    ("jpeg:30,60", ["jpeg:30", "jpeg:60"]),
    ("resize:0.5|jpeg:q=50,80", ["resize:0.5|jpeg:q=50", "resize:0.5|jpeg:q=80"]),
    (" JPEG : q = 10 , 20 ;; identity ;", ["jpeg:q=10", "jpeg:q=20", "identity"]),
    ("jpeg:q=50;jpeg:q=10,50", ["jpeg:q=50", "jpeg:q=10"]),   # duplicates dropped, order kept
    ("png", ["png"]),
])
def test_grammar_cases(text, specs):
    assert parse_attacks(text) == specs


def test_grammar_groups_and_list_input():
    a = expand_attacks("jpeg:q=50,75,subsampling=444")
    assert {x.group for x in a} == {"jpeg:q={},subsampling=444"} and [x.value for x in a] == [50, 75]
    # an unswept group still names its first numeric parameter (so separate entries share a curve)
    b = expand_attacks(["jpeg:q=10", "jpeg:q=90", "identity"])
    assert [x.group for x in b] == ["jpeg:q={}", "jpeg:q={}", "identity"]
    assert [x.value for x in b] == [10, 90, None]
    c = expand_attacks("jpeg:subsampling=444,q=50,75")
    assert expand_attacks(c) == c and c[0].param == "q"          # Attack objects keep their sweep


@pytest.mark.parametrize("text, words", [
    ("", "empty attack list"),
    (" ; ;", "empty attack list"),
    ("jpeg:q=50,foo", "not a number"),
    ("jpeg:q=50,,75", "empty value"),
    ("jpeg:q=50,", "empty value"),
    ("jpeg:", "nothing after"),
    ("jpeg:q=", "bad parameter"),
    ("jpeg:=5", "bad parameter"),
    ("jpeg:q=1,q=2", "given twice"),
    ("jpeg:q=10,20,subsampling=420,444", "only one parameter"),
    ("resize:0.5,0.75|jpeg:q=50,80", "only one parameter"),
    ("identity:1", "identity"),
    ("identity|jpeg:q=50", "identity"),
    (":q=5", "missing codec name"),
    ("jp eg:q=5", "bad codec name"),
])
def test_grammar_errors(text, words):
    with pytest.raises(CodecError, match=words):
        expand_attacks(text)


def test_grammar_error_is_user_error():
    assert issubclass(CodecError, RobustHideError)


# -- matrix -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model():
    from robusthide.nets.registry import create_model

    torch.manual_seed(0)
    return create_model("lean", n_bits=16, size=32, ch=8).eval()


@pytest.fixture(scope="module")
def fixtures3(photos):
    # three different sizes: 512x512, 400x600, 300x451
    return [photos["astronaut"], photos["coffee"], photos["chelsea"]]


@pytest.fixture(scope="module")
def matrix_result(tiny_model, fixtures3):
    return robustness_matrix(tiny_model, fixtures3, "jpeg:q=10,50;identity", seed=3, strength=20.0,
                             batch=8, progress=False)


def test_matrix_structure_and_sanity(matrix_result):
    r = matrix_result
    assert r["n_images"] == 3 and r["n_bits"] == 16 and r["seed"] == 3 and r["strength"] == 20.0
    assert r["image_sizes"] == {"512x512": 1, "600x400": 1, "451x300": 1}
    assert r["attacks"] == ["jpeg:q=10", "jpeg:q=50", "identity"]
    assert [x["attack"] for x in r["rows"]] == r["attacks"]
    q = r["quality"]
    # an untrained model at strength 20: a visible but bounded change
    assert 20 < q["psnr_rgb"] < 45 and math.isfinite(q["psnr_y"])
    assert 0.8 < q["ssim"] < 1.0
    assert 0 < q["ciede2000_mean"] < q["ciede2000_p99"] < 30
    assert 0 < q["apd"] < 20
    for row in r["rows"]:
        assert 0.2 <= row["ber"] <= 0.8                 # untrained: chance level
        assert 0.0 <= row["word_acc"] <= 1.0
        assert len(r["per_image"]["ber"][row["attack"]]) == 3
        assert row["ber"] == pytest.approx(np.mean(r["per_image"]["ber"][row["attack"]]))
    j10, j50, ident = r["rows"]
    assert j10["bpp"] < j50["bpp"] and 0.05 < j10["bpp"] < 3
    assert j10["psnr_attacked"] < j50["psnr_attacked"] < 60
    assert j10["ssim_attacked"] < j50["ssim_attacked"] < 1.0
    assert ident["bpp"] is None and ident["psnr_attacked"] == math.inf and ident["ssim_attacked"] == 1.0
    assert (j10["family"], j10["param"], j10["value"]) == ("jpeg", "q", 10)


def test_matrix_is_deterministic(tiny_model, fixtures3, matrix_result):
    again = robustness_matrix(tiny_model, fixtures3, "jpeg:q=10,50;identity", seed=3, strength=20.0,
                              batch=2, progress=False)       # other batching, same numbers
    for k in ("rows", "quality", "per_image"):
        assert again[k] == matrix_result[k]
    other = robustness_matrix(tiny_model, fixtures3, "identity", seed=4, strength=20.0, progress=False)
    assert other["per_image"]["ber"]["identity"] != matrix_result["per_image"]["ber"]["identity"]


def test_matrix_identity_without_rounding_change(tiny_model, fixtures3):
    # at a tiny strength the residual (< 0.5/255) vanishes in the uint8 rounding: marked == cover
    r = robustness_matrix(tiny_model, fixtures3[:1], "identity", seed=0, strength=1e-3, progress=False)
    assert r["quality"]["psnr_rgb"] == math.inf and r["quality"]["apd"] == 0.0


def test_write_matrix_files(matrix_result, tmp_path):
    paths = write_matrix(matrix_result, tmp_path / "sub" / "tiny-0.5")
    assert set(paths) == {"md", "json", "csv", "png"}
    assert paths["md"].endswith("tiny-0.5.md")                     # the '.5' is not taken as a suffix
    md = (tmp_path / "sub" / "tiny-0.5.md").read_text()
    assert "| `jpeg:q=10` |" in md and "BER %" in md and "inf" in md
    doc = json.loads((tmp_path / "sub" / "tiny-0.5.json").read_text())
    assert doc["rows"][2]["psnr_attacked"] is None                 # inf is not valid JSON: null
    assert doc["rows"][0]["ber"] == matrix_result["rows"][0]["ber"]
    with (tmp_path / "sub" / "tiny-0.5.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["attack"] for r in rows] == matrix_result["attacks"]
    assert float(rows[1]["ber"]) == pytest.approx(matrix_result["rows"][1]["ber"])
    png = (tmp_path / "sub" / "tiny-0.5.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    cmp = write_comparison([matrix_result, matrix_result], tmp_path / "cmp")
    assert "| `jpeg:q=50` |" in (tmp_path / "cmp-compare.md").read_text()
    assert (tmp_path / "cmp-compare.png").stat().st_size > 5000 and set(cmp) == {"md", "png"}


def test_strength_sweep(tiny_model, fixtures3, tmp_path):
    res = strength_sweep(tiny_model, fixtures3[1:], "jpeg:q=50,90", [10, 20, 40], seed=1, progress=False)
    psnrs = [r["psnr_rgb"] for r in res["rows"]]
    assert psnrs[0] > psnrs[1] > psnrs[2] > 15                      # stronger mark, lower PSNR
    assert [r["strength"] for r in res["rows"]] == [10.0, 20.0, 40.0]
    assert set(res["rows"][0]["ber"]) == {"jpeg:q=50", "jpeg:q=90"}
    paths = write_sweep(res, tmp_path / "sweep")
    md = (tmp_path / "sweep.md").read_text()
    assert "| strength | 10 | 20 | 40 |" in md and "BER % `jpeg:q=90`" in md
    with (tmp_path / "sweep.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 6
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG" and "png" in paths


def test_errors_are_user_errors(tiny_model, fixtures3):
    with pytest.raises(RobustHideError, match="unknown codec"):
        robustness_matrix(tiny_model, fixtures3, "nosuchcodec:q=3", progress=False)
    with pytest.raises(RobustHideError, match="strength"):
        robustness_matrix(tiny_model, fixtures3, "identity", strength=0, progress=False)
    with pytest.raises(RobustHideError, match="uint8"):
        robustness_matrix(tiny_model, [fixtures3[0].astype(np.float32)], "identity", progress=False)
    with pytest.raises(RobustHideError, match="not found"):
        robustness_matrix(tiny_model, "/nonexistent/folder", "identity", progress=False)


# -- image selection ----------------------------------------------------------------------------------------


def test_image_set_from_folder(photo_dir):
    from robusthide.training.data import split_of

    full = image_set(photo_dir)
    assert len(full) == 6 and {it.hw for it in full} >= {(512, 512), (400, 600)}
    assert full[0].load().dtype == np.uint8 and full[0].load().shape[:2] == full[0].hw
    a = image_set(photo_dir, n=4, size=64, seed=5)
    b = image_set(photo_dir, n=4, size=64, seed=5)
    assert len(a) == 4 and all(it.hw == (64, 64) for it in a)
    assert [x.name for x in a] == [x.name for x in b]
    assert all(np.array_equal(x.load(), y.load()) for x, y in zip(a, b))
    assert np.array_equal(a[0].load(), a[0].load())                   # a crop is the same on every load
    c = image_set(photo_dir, size=64, crop="centre")
    src = full[0].load()
    h, w = src.shape[:2]
    y, x = (h - 64) // 2, (w - 64) // 2
    assert np.array_equal(c[0].load(), src[y:y + 64, x:x + 64])
    names = [it.name for it in full]
    for split in ("train", "val"):
        want = [n for n in names if split_of(n) == split]
        if want:
            assert [it.name for it in image_set(photo_dir, split=split)] == want
        else:
            with pytest.raises(RobustHideError, match="no images"):
                image_set(photo_dir, split=split)


def test_chunks_group_by_size():
    from robusthide.evaluation import ImageItem

    sizes = [(8, 8), (9, 9), (8, 8), (8, 8), (9, 9)]
    items = [ImageItem(str(i), hw, lambda: None) for i, hw in enumerate(sizes)]
    assert _chunks(items, 2) == [[0, 2], [3], [1, 4]]


# -- peers --------------------------------------------------------------------------------------------------


def test_peers_missing_extra(monkeypatch):
    import sys

    from robusthide.evaluation.peers import get_peer

    monkeypatch.setitem(sys.modules, "imwatermark", None)
    with pytest.raises(RobustHideError, match=r"pip install 'robusthide\[peers\]'"):
        get_peer("dwtDct", 16)


def test_peer_names():
    from robusthide.evaluation import parse_peers

    assert parse_peers("dwtdct, rivaGan,dwtDct") == ["dwtDct", "rivaGan"]
    with pytest.raises(RobustHideError, match="unknown peer"):
        parse_peers("dwtDct,trustmark")


def test_peer_dwtdctsvd_round_trip(photos):
    pytest.importorskip("imwatermark")
    pytest.importorskip("pywt")
    from robusthide.evaluation import get_peer

    peer = get_peer("dwtDctSvd", 16)
    cover = np.ascontiguousarray(photos["astronaut"][128:384, 128:384])       # 256 x 256
    bits = np.random.default_rng(0).integers(0, 2, (1, 16))
    marked = peer.embed(cover[None], bits)
    assert marked.shape == (1, 256, 256, 3) and marked.dtype == np.uint8
    err = float(np.mean((peer.decode(marked) > 0) != bits))
    assert err < 0.1
    psnr = 10 * np.log10(255**2 / np.mean((marked[0].astype(float) - cover) ** 2))
    assert 30 < psnr < 60
    # through the matrix, with the same interface as a model
    r = robustness_matrix(peer, [cover], "identity", seed=0, progress=False)
    assert r["method"] == "dwtDctSvd" and r["rows"][0]["ber"] < 0.1
    with pytest.raises(RobustHideError, match="256 x 256"):
        peer.embed(cover[:100, :100], bits)


# -- CLI ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory, tiny_model):
    from safetensors.torch import save_file

    p = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    kwargs = json.dumps({"n_bits": 16, "size": 32, "ch": 8})
    meta = {"format": "robusthide/1", "arch": "lean", "kwargs": kwargs, "name": "tiny"}
    save_file({k: v.contiguous() for k, v in tiny_model.state_dict().items()}, str(p), metadata=meta)
    return p


def test_cli_evaluate(tiny_weights, photo_dir, tmp_path, capsys, monkeypatch):
    from robusthide.cli.main import main

    out = tmp_path / "res" / "tiny"
    rc = main(["evaluate", str(tiny_weights), "--data", str(photo_dir), "--attacks", "jpeg:q=50;identity",
               "--n", "3", "--size", "64", "--seed", "2", "--strength", "20", "--out", str(out), "--json",
               "--no-progress", "--device", "cpu"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    res = doc["results"][0]
    assert res["method"] == "tiny" and res["n_images"] == 3 and res["image_sizes"] == {"64x64": 3}
    assert [r["attack"] for r in res["rows"]] == ["jpeg:q=50", "identity"]
    for ext in ("md", "json", "csv", "png"):
        assert (tmp_path / "res" / f"tiny.{ext}").stat().st_size > 0
    # the report names the command that reproduces it (defaults left out)
    cmd = (f"robusthide evaluate {tiny_weights} --data {photo_dir} --n 3 --size 64 --seed 2 --attacks "
           f"'jpeg:q=50;identity' --strength 20 --out {out}")
    assert res["command"] == cmd and f"Command: `{cmd}`" in (tmp_path / "res" / "tiny.md").read_text()
    rc = main(["evaluate-sweep", str(tiny_weights), "--data", str(photo_dir), "--attack", "jpeg:q=50",
               "--strengths", "10,30", "--n", "2", "--size", "64", "--out", str(tmp_path / "sw"),
               "--no-progress"])
    assert rc == 0 and "| strength | 10 | 30 |" in capsys.readouterr().out
    assert (tmp_path / "sw.png").exists()
    # a soft-decision share given on the command line is the model's for this run, and in the command
    import robusthide.evaluation.matrix as matrix

    seen, real = [], matrix.robustness_matrix
    monkeypatch.setattr(matrix, "robustness_matrix",
                        lambda method, *x, **k: seen.append(method.model.soft_share) or real(method, *x, **k))
    assert main(["evaluate", str(tiny_weights), "--data", str(photo_dir), "--attacks", "identity", "--n", "1",
                 "--size", "64", "--soft-share", "0.5", "--out", str(tmp_path / "soft"), "--json",
                 "--no-progress", "--device", "cpu"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert seen == [0.5] and "--soft-share 0.5 --out" in doc["results"][0]["command"]
    assert (f"Command: `robusthide evaluate-sweep {tiny_weights} --data {photo_dir} --n 2 --size 64 "
            f"--strengths 10,30 --out {tmp_path / 'sw'}`") in (tmp_path / "sw.md").read_text()


@pytest.mark.parametrize("extra, words", [
    (["--attacks", "jpeg:q=50,foo"], "not a number"),
    (["--attacks", "nosuch:q=1"], "unknown codec"),
    (["--attacks", "identity", "--peers", "foo"], "unknown peer"),
    (["--attacks", "identity", "--n", "0"], "at least 1"),
    (["--attacks", "identity", "--strength", "-1"], "strength"),
    (["--attacks", "identity", "--soft-share", "1"], "--soft-share must be in [0, 1), got 1"),
])
def test_cli_user_errors(tiny_weights, photo_dir, tmp_path, capsys, extra, words):
    from robusthide.cli.main import main

    rc = main(["evaluate", str(tiny_weights), "--data", str(photo_dir), "--size", "32", "--no-progress",
               "--out", str(tmp_path / "x"), *extra])
    assert rc == 2 and words in capsys.readouterr().err


def test_cli_refuses_output_inside_data(tiny_weights, photo_dir, capsys):
    from robusthide.cli.main import main

    before = sorted(p.name for p in photo_dir.iterdir())
    rc = main(["evaluate", str(tiny_weights), "--data", str(photo_dir), "--attacks", "identity",
               "--out", str(photo_dir / "res"), "--no-progress"])
    assert rc == 2 and "inside the data folder" in capsys.readouterr().err
    assert sorted(p.name for p in photo_dir.iterdir()) == before
