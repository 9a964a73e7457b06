"""robusthide.scale on a local Ray started inside the test (loopback only, 2 CPUs, no dashboard)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
from PIL import Image
from skimage import data

from robusthide import RobustHideError
from robusthide.cli.main import main
from robusthide.scale import read_results, read_sources, run_job


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             logging_level="warning")
    yield
    ray.shutdown()


@pytest.fixture()
def folder(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(data.astronaut()[:160, :160]).save(src / "a.png")
    Image.fromarray(data.coffee()[:160, :200]).save(src / "sub" / "b.jpg", quality=95)
    (src / "broken.png").write_bytes(b"not an image")
    return src


def test_sources_and_errors(tmp_path, folder):
    assert [r["path"] for r in read_sources(folder)] == [str(folder / p) for p in ("a.png", "broken.png", "sub/b.jpg")]
    lst = tmp_path / "l.txt"
    lst.write_text(f"# one\n{folder / 'a.png'}\n\n")
    assert read_sources(lst) == [{"path": str(folder / "a.png"), "message": None}]
    pq.write_table(pa.table({"file": ["x"]}), tmp_path / "t.parquet")
    with pytest.raises(RobustHideError, match="no 'path' column"):
        read_sources(tmp_path / "t.parquet")
    with pytest.raises(RobustHideError, match="cannot read the file list"):
        read_sources(tmp_path / "missing.txt")
    with pytest.raises(RobustHideError, match="marking needs an output folder"):
        run_job("embed", folder, tmp_path / "r", message=1)
    with pytest.raises(RobustHideError, match="give the message"):
        run_job("embed", folder, tmp_path / "r", out_dir=tmp_path / "o")


def test_embed_resume_and_verify(local_ray, tmp_path, folder, capsys):
    out, res = tmp_path / "out", tmp_path / "results"
    s = run_job("embed", folder, res, out_dir=out, message=1234, refine=0, workers=1, batch_size=2)
    assert (s["tasks"], s["processed"], s["errors"], s["detected"]) == (3, 3, 1, 2)
    assert (out / "a.png").exists() and (out / "sub" / "b.jpg").exists()
    rows = {r["path"]: r for r in read_results(res)}
    assert rows[str(folder / "a.png")]["detected"] and rows[str(folder / "a.png")]["message"] == "1234"
    assert rows[str(folder / "a.png")]["p_value"] < 1e-6
    assert "not a readable image" in rows[str(folder / "broken.png")]["error"]

    # resumable: a new image and the failed one are processed, the two done are skipped
    Image.fromarray(data.chelsea()[:160, :160]).save(folder / "c.png")
    s = run_job("embed", folder, res, out_dir=out, message=1234, refine=0, workers=2, batch_size=2)
    assert (s["tasks"], s["skipped"], s["processed"], s["errors"]) == (4, 2, 2, 1)
    assert len(read_results(res)) == 4

    # verify a Parquet table of paths, results as CSV, through the CLI (the running Ray is used)
    marked = [str(out / p) for p in ("a.png", "sub/b.jpg", "c.png")]
    table = tmp_path / "paths.parquet"
    pq.write_table(pa.table({"path": marked + [str(folder / "a.png")]}), table)
    rc = main(["scale", "extract", str(table), "--results", str(tmp_path / "verify"), "--results-format", "csv",
               "--workers", "2", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 0 and summary["processed"] == 4 and summary["detected"] == 3
    assert list((tmp_path / "verify").glob("*.csv"))
    found = {r["path"]: r for r in read_results(tmp_path / "verify")}
    assert [found[p]["message"] for p in marked] == ["1234"] * 3
    assert not found[str(folder / "a.png")]["detected"] and found[str(folder / "a.png")]["message"] is None


def test_per_image_messages_from_parquet(local_ray, tmp_path, folder):
    table = tmp_path / "jobs.parquet"
    pq.write_table(pa.table({"path": [str(folder / "a.png"), str(folder / "sub" / "b.jpg")],
                             "message": ["7", "Q"]}), table)
    s = run_job("embed", table, tmp_path / "r", out_dir=tmp_path / "o", refine=0, workers=1, kind=None)
    assert s["errors"] == 0 and s["detected"] == 2
    v = run_job("extract", [str(tmp_path / "o" / "a.png"), str(tmp_path / "o" / "sub" / "b.jpg")],
                tmp_path / "v", workers=1)
    assert v["detected"] == 2
    assert sorted(r["message"] for r in read_results(tmp_path / "v")) == ["7", "Q"]
