"""Batches: Watermarker.embed_batch / extract_batch against one-at-a-time calls, and ``--list FILE`` in the CLI."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from skimage import data

from robusthide import RobustHideError
from robusthide.cli.main import main
from robusthide.watermark.watermarker import Watermarker


@pytest.fixture(scope="module")
def wm():
    return Watermarker.from_pretrained("default")


def _mixed() -> list:
    """Mixed sizes and kinds: RGB, gray, RGBA, PIL, a 1080p frame, a small crop and a 16-bit image."""
    coffee = data.coffee()
    return [data.astronaut(), coffee, data.camera(), Image.fromarray(data.chelsea()),
            np.dstack([coffee[:200, :300], np.full((200, 300, 1), 77, np.uint8)]),
            np.asarray(Image.fromarray(coffee).resize((1920, 1080), Image.BICUBIC)), coffee[:90, :70],
            (data.astronaut()[:128, :160].astype(np.uint16) * 257)]


def _same_image(a, b) -> None:
    """Equal, but for pixels where the batched convolutions' last-float-bit differences cross a rounding
    boundary: at most one grey level, on at most 1e-5 of the values."""
    a, b = np.asarray(a).astype(np.int64), np.asarray(b).astype(np.int64)
    assert a.shape == b.shape
    d = np.abs(a - b)
    assert d.max() <= (1 if a.max() <= 255 else 257)
    assert (d > 0).mean() <= 1e-5


def test_embed_batch_equals_one_at_a_time(wm):
    imgs = _mixed()
    msgs = list(range(1000, 1000 + len(imgs)))
    batch = wm.embed_batch(imgs, msgs, refine=0)
    assert len(batch) == len(imgs)
    for img, m, b in zip(imgs, msgs, batch):
        one = wm.embed(img, m, refine=0)
        assert type(b) is type(one)
        _same_image(b, one)
        assert np.array_equal(wm.decode_bits(b)[0], wm.decode_bits(one)[0])  # the same bits read back
    if isinstance(batch[4], np.ndarray):
        assert np.array_equal(batch[4][..., 3], imgs[4][..., 3])  # alpha untouched
    res = wm.extract_batch(batch)
    assert [r.message for r in res] == msgs
    for b, r in zip(batch, res):
        one = wm.extract(b)
        assert r.bits == one.bits and r.message == one.message and r.p_value == one.p_value


def test_small_batches_give_the_same_result(wm):
    imgs = [data.astronaut(), data.coffee(), data.chelsea()]
    a = wm.embed_batch(imgs, 7, refine=0)
    b = wm.embed_batch(imgs, 7, refine=0, batch_size=2)
    for x, y in zip(a, b):
        _same_image(x, y)
    hard, soft = wm.decode_bits_batch(a, batch_size=1)
    assert hard.shape == (3, 64) and soft.shape == (3, 64)
    assert np.array_equal(hard, wm.decode_bits_batch(a)[0])


def test_array_batch_and_one_message_for_all(wm):
    stack = np.stack([data.astronaut()[:256, :256], data.coffee()[:256, :256], data.chelsea()[:256, :256]])
    out = wm.embed_batch(stack, "Z", refine=0)
    assert [r.message for r in wm.extract_batch(np.stack(out))] == ["Z"] * 3
    gray = np.stack([data.camera()[:200, :200], data.camera()[200:400, 200:400]])  # N x H x W
    assert [r.message for r in wm.extract_batch(wm.embed_batch(gray, [3, 4], refine=0))] == [3, 4]
    assert wm.embed_batch([], [], refine=0) == [] and wm.extract_batch([]) == []


def test_refinement_runs_one_image_at_a_time(wm):
    imgs = [data.coffee()[:96, :120], data.chelsea()[:100, :100]]
    batch = wm.embed_batch(imgs, [5, 6])  # the model's refinement: the images are not coupled
    for img, m, b in zip(imgs, [5, 6], batch):
        assert np.array_equal(b, wm.embed(img, m))


def test_search_extract_batch(wm):
    marked = wm.embed(data.astronaut(), 9, refine=0)
    crop = np.asarray(Image.fromarray(marked[64:448, 64:448]).resize((512, 512), Image.BICUBIC))
    res = wm.extract_batch([marked, crop], search="crop")
    assert [r.to_dict() for r in res] == [wm.extract(x, search="crop").to_dict() for x in (marked, crop)]


def test_batch_errors_name_the_image(wm):
    with pytest.raises(RobustHideError, match=r"^image 1: image too small"):
        wm.embed_batch([data.coffee(), data.coffee()[:8]], 1, refine=0)
    with pytest.raises(RobustHideError, match=r"^image 1: image too small"):
        wm.extract_batch([data.coffee(), data.coffee()[:8]])
    with pytest.raises(RobustHideError, match="2 images but 1 messages"):
        wm.embed_batch([data.coffee(), data.coffee()], [1], refine=0)
    with pytest.raises(RobustHideError, match="strength must be in"):
        wm.embed_batch([data.coffee()], [1], strength=9)
    with pytest.raises(RobustHideError, match="batch is a list"):
        wm.extract_batch("photo.png")


# -- CLI: --list FILE ----------------------------------------------------------------------------------------

def run(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture()
def listed(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    paths = [src / "a.png", src / "sub" / "b.png", src / "c.jpg"]
    Image.fromarray(data.astronaut()).save(paths[0])
    Image.fromarray(data.coffee()).save(paths[1])
    Image.fromarray(data.chelsea()).save(paths[2], quality=95)
    lst = tmp_path / "list.txt"
    lst.write_text("# images to mark\n" + "\n".join(map(str, paths)) + "\n\n")
    return paths, lst


def test_cli_embed_and_extract_a_file_list(tmp_path, listed, capsys, monkeypatch):
    paths, lst = listed
    out = tmp_path / "out"
    rc, so, _ = run(capsys, "embed", "--list", lst, "-o", out, "-m", "1234", "--refine", "0", "--json")
    assert rc == 0
    rows = [json.loads(x) for x in so.splitlines()]
    assert sorted(r["output"] for r in rows) == sorted(str(out / p) for p in ("a.png", "sub/b.png", "c.jpg"))
    marked = [out / "a.png", out / "sub" / "b.png", out / "c.jpg"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(map(str, marked)) + "\n"))
    rc, so, _ = run(capsys, "extract", "--list", "-", "--json")
    rows = [json.loads(x) for x in so.splitlines()]
    assert rc == 0 and [r["message"] for r in rows] == [1234] * 3
    assert [r["input"] for r in rows] == [str(m) for m in marked]
    # resumable: existing outputs are skipped
    rc, _, se = run(capsys, "embed", "--list", lst, "-o", out, "-m", "1234", "--refine", "0")
    assert rc == 0 and "skipped 3" in se


def test_cli_list_errors(tmp_path, listed, capsys):
    paths, lst = listed
    rc, _, se = run(capsys, "extract", paths[0], "--list", lst)
    assert rc == 2 and se.strip() == "robusthide: error: give an input or --list FILE, not both"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# nothing\n")
    rc, _, se = run(capsys, "extract", "--list", empty)
    assert rc == 2 and se.strip() == f"robusthide: error: {empty}: the file list is empty"
    rc, _, se = run(capsys, "extract", "--list", tmp_path / "missing.txt")
    assert rc == 2 and "cannot read the file list" in se and len(se.strip().splitlines()) == 1
    rc, _, se = run(capsys, "extract")
    assert rc == 2 and se.strip() == "robusthide: error: give an input (or --list FILE)"
    lst.write_text(f"{paths[0]}\n{tmp_path / 'gone.png'}\n")
    out = tmp_path / "o2"
    rc, so, se = run(capsys, "embed", "--list", lst, "-o", out, "-m", "7", "--refine", "0")
    assert rc == 2 and (out / "src" / "a.png").exists() and "gone.png" in se  # the others are marked


def test_embed_refine_precision_bf16_reads_back(tmp_path, capsys, photos):
    """``embed --refine-precision bf16`` marks with bf16 refinement steps (fp32 where the CPU lacks native
    bf16); the mark reads back from the saved file."""
    from PIL import Image

    src, out = tmp_path / "c.png", tmp_path / "m.png"
    Image.fromarray(photos["coffee"]).save(src)
    rc, so, _ = run(capsys, "embed", src, "-o", out, "-m", "1234", "--refine", "3", "--refine-precision", "bf16",
                    "--json")
    assert rc == 0 and out.exists()
    rc, so, _ = run(capsys, "extract", out, "--json")
    assert rc == 0 and json.loads(so)["message"] == 1234
