"""``robusthide serve``: the HTTP service through FastAPI's TestClient -- round trips, the CLI's messages for bad
input, the limits (bytes, pixels, jobs, timeout), nothing spooled to disk, the page and the OpenAPI docs."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import io
import socket
import tempfile
import threading

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
from fastapi.testclient import TestClient  # noqa: E402

from robusthide.cli.main import main  # noqa: E402
from robusthide.service import Settings, create_app  # noqa: E402
from robusthide.service.jobs import Jobs  # noqa: E402
from robusthide.service.settings import Busy, TimedOut  # noqa: E402

MAX_BYTES, MAX_PIXELS = 1_500_000, 400_000


def png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.fixture(scope="module")
def app():
    return create_app(Settings(max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS, max_jobs=2))


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def cover(photos) -> np.ndarray:
    return np.asarray(Image.fromarray(photos["astronaut"]).resize((256, 256), Image.BICUBIC))


def post(client, path, data: bytes, name="photo.png", **fields):
    return client.post(path, files={"image": (name, data, "image/png")}, data={k: str(v) for k, v in fields.items()})


def test_embed_extract_round_trip(client, cover):
    r = post(client, "/embed", png(cover), message="1234")
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["message"] == 1234 and j["filename"] == "photo-marked.png" and j["media_type"] == "image/png"
    marked = decode(base64.b64decode(j["image"]))
    assert marked.shape == cover.shape and j["size"] == [256, 256]
    diff = marked.astype(float) - cover
    assert 0 < np.abs(diff).max() and j["psnr"] == pytest.approx(10 * np.log10(255**2 / np.mean(diff**2)), abs=0.01)
    assert j["psnr"] > 35
    residual = decode(base64.b64decode(j["residual"]))  # where the mark is: an image of the same shape
    assert residual.shape == (256, 256, 3) and residual.max() > 200 and j["residual_gain"] > 1
    r = post(client, "/extract", base64.b64decode(j["image"]), name="marked.png")
    assert r.status_code == 200
    x = r.json()
    assert x["detected"] and x["message"] == 1234 and x["kind"] == "int" and x["p_value"] < 1e-6
    assert x["input"] == "marked.png" and "bits" not in x
    d = post(client, "/detect", base64.b64decode(j["image"])).json()
    assert d == {"input": "photo.png", "detected": True, "p_value": x["p_value"], "confidence": x["confidence"]}


def test_json_in_and_image_out(client, cover):
    body = {"image": base64.b64encode(png(cover)).decode(), "filename": "a.png", "message": "A", "kind": "text",
            "response": "image", "format": "webp", "quality": 95}
    r = client.post("/embed", json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    assert 'filename="a-marked.webp"' in r.headers["content-disposition"] and float(r.headers["x-psnr"]) > 35
    x = client.post("/extract", json={"image": base64.b64encode(r.content).decode(), "bits": True}).json()
    assert x["detected"] and x["message"] == "A" and x["input"] == "upload" and len(x["bits"]) == 64


def test_detect_on_clean_image_is_false(client, photos):
    r = post(client, "/detect", png(photos["coffee"]), name="coffee.png")
    assert r.status_code == 200
    d = r.json()
    assert d["detected"] is False and d["p_value"] > 1e-6 and d["input"] == "coffee.png"
    x = post(client, "/extract", png(photos["coffee"])).json()
    assert x["detected"] is False and x["message"] is None


@pytest.mark.parametrize("name, data, fields, cli", [
    ("notes.txt", b"hello, not an image", {}, ["extract", "notes.txt"]),
    ("in.png", None, {"message": "hello"}, ["embed", "in.png", "-o", "out.png", "-m", "hello"]),
    ("in.png", None, {"message": "x1", "kind": "int"}, ["embed", "in.png", "-o", "out.png", "-m", "x1",
                                                        "--kind", "int"]),
    ("in.png", None, {"search": "zoom"}, None),
])
def test_bad_input_gets_the_cli_message(client, cover, tmp_path, monkeypatch, capsys, name, data, fields, cli):
    data = png(cover) if data is None else data
    (tmp_path / name).write_bytes(data)
    path = "/extract" if "search" in fields or "message" not in fields else "/embed"
    r = post(client, path, data, name=name, **fields)
    assert r.status_code == 400
    err = r.json()["error"]
    if cli is None:
        assert err.startswith("search must be one of none, crop") and err.endswith("got 'zoom'")
        return
    monkeypatch.chdir(tmp_path)
    assert main(cli) == 2
    assert capsys.readouterr().err == f"robusthide: error: {err}\n"
    assert not (tmp_path / "out.png").exists()


def test_bad_requests_are_4xx_one_line(client, cover):
    r = post(client, "/embed", png(cover), message="1", strength="abc")
    assert r.status_code == 422 and r.json()["error"].startswith("strength: Input should be a valid number")
    r = post(client, "/embed", png(cover), message="1", strength="9")  # the library's check, its field's name
    assert r.status_code == 400 and r.json() == {"error": "strength must be in (0, 4], got 9.0"}
    r = post(client, "/embed", png(cover), message="1", colour="red")
    assert r.status_code == 422 and r.json() == {"error": "colour: Extra inputs are not permitted"}
    r = client.post("/embed", data={"message": "1"}, files={"other": ("a", b"x")})
    assert r.status_code == 400 and "send the image in 'image'" in r.json()["error"]
    r = client.post("/extract", content=b"abc", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "multipart" in r.json()["error"]
    r = client.post("/extract", json={"image": "***"})
    assert r.status_code == 400 and r.json() == {"error": "image: not valid base64"}
    r = post(client, "/embed", png(cover))
    assert r.status_code == 400 and r.json() == {"error": "give the message in the field 'message'"}
    r = client.get("/capacity", params={"schema": "nope"})
    assert r.status_code == 400 and r.json()["error"].startswith("unknown schema 'nope'")
    r = post(client, "/embed", png(cover), message="987654")  # 20 bits: the default schema holds 11
    assert r.status_code == 400 and r.json()["error"].endswith(
        "got 987654; it fits with schema balanced (25 data bits, 5 errors corrected); or model lean128; or model "
        "lean128-r6; or model geo256")
    r = post(client, "/embed", png(cover), message="9" * 31)  # 103 bits: only the 256-bit model's second schema
    assert r.json()["error"].endswith("it fits with model geo256 at schema balanced")


def test_upload_byte_limit_is_413(client):
    r = post(client, "/extract", b"\0" * (MAX_BYTES + 1), name="big.png")  # the part is over, the body within slack
    assert r.status_code == 413
    assert r.json() == {"error": f"upload too large ({MAX_BYTES + 1} bytes; the limit is {MAX_BYTES} bytes)"}
    r = post(client, "/extract", b"\0" * (2 * MAX_BYTES), name="big.png")  # refused from Content-Length
    assert r.status_code == 413 and r.json()["error"].startswith("upload too large (")
    r = client.post("/extract", json={"image": base64.b64encode(b"\0" * (MAX_BYTES + 1)).decode()})
    assert r.status_code == 413


def test_pixel_limit_is_413_before_decoding(client):
    r = post(client, "/extract", png(np.zeros((1000, 1000), np.uint8)), name="wide.png")  # 1 MP in a few KB
    assert r.status_code == 413
    assert r.json()["error"].startswith("wide.png: image is 1000 x 1000 = 1.0 MP, above the 0.4 MP limit")


def test_upload_stays_in_memory(client, monkeypatch):
    """An upload larger than Starlette's 1 MB spool is never rolled over to a temporary file."""
    def no_disk(self):
        raise AssertionError("the upload was spooled to disk")

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", no_disk)
    noise = np.random.default_rng(0).integers(0, 256, (600, 600, 3), dtype=np.uint8)
    data = png(noise)
    assert 1024 * 1024 < len(data) < MAX_BYTES
    r = post(client, "/extract", data)
    assert r.status_code == 200 and r.json()["detected"] is False


def test_busy_is_503(app, client, cover):
    jobs, release = app.state.jobs, threading.Event()
    holders = [threading.Thread(target=asyncio.run, args=(jobs.run(release.wait),)) for _ in range(jobs.max_jobs)]
    for t in holders:
        t.start()
    try:
        while jobs.running < jobs.max_jobs:
            release.wait(0.01)
        r = post(client, "/extract", png(cover))
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json() == {"error": "busy: 2 jobs running (limit 2); retry later"}
    finally:
        release.set()
        for t in holders:
            t.join()
    assert jobs.running == 0 and post(client, "/extract", png(cover)).status_code == 200


def test_timeout_is_504(app, client, cover):
    jobs = app.state.jobs
    jobs.timeout_s = 0.001  # far below an embed (decode, mark, encode)
    try:
        r = post(client, "/embed", png(cover), message="5")
    finally:
        jobs.timeout_s = 60.0
    assert r.status_code == 504 and r.json() == {"error": "the request took longer than the limit of 0.001 s"}
    done = threading.Event()
    while jobs.running:  # the job itself finishes in the background
        done.wait(0.05)


def test_jobs_timeout_keeps_the_slot_until_the_job_ends():
    jobs, release = Jobs(1, timeout_s=0.05), threading.Event()
    with pytest.raises(TimedOut, match=r"took longer than the limit of 0.05 s"):
        asyncio.run(jobs.run(release.wait))
    assert jobs.running == 1  # the job still runs: its slot stays taken
    with pytest.raises(Busy):
        asyncio.run(jobs.run(lambda: None))
    release.set()
    jobs._pool.shutdown(wait=True)
    assert jobs.running == 0


def test_health_capacity_page_and_openapi(client):
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["n_bits"] == 64 and h["jobs_running"] == 0
    assert h["limits"] == {"max_bytes": MAX_BYTES, "max_pixels": MAX_PIXELS, "max_jobs": 2, "timeout_s": 60.0}
    c = client.get("/capacity").json()
    assert c["schema_name"] == "robust" and c["max_int"] == 2047
    assert client.get("/capacity", params={"schema": "1"}).json()["max_int"] == 33554431
    page = client.get("/")
    assert page.status_code == 200 and 'id="file"' in page.text and "/static/app.js" in page.text
    assert "http" not in page.text.replace('href="/', "")  # no external resource
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "/embed" in js.text and "/extract" in js.text
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {"/embed", "/extract", "/detect", "/capacity", "/health"}
    body = spec["paths"]["/embed"]["post"]["requestBody"]["content"]
    assert body["multipart/form-data"]["schema"]["properties"]["image"]["format"] == "binary"
    assert "message" in body["application/json"]["schema"]["properties"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    if importlib.util.find_spec("fastapi_offline"):  # Swagger UI from the package, not a CDN
        assert "cdn" not in docs.text and client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200


def test_serve_cli_bad_flags(capsys):
    assert main(["serve", "--max-jobs", "0"]) == 2
    assert capsys.readouterr().err == "robusthide: error: max_jobs must be an integer >= 1, got 0\n"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"robusthide: error: cannot listen on 127.0.0.1:{port} (") and err.count("\n") == 1


def test_serve_command_answers_on_loopback(cover):
    """``robusthide serve`` itself, in a subprocess (as ``robusthide bench serve`` starts it)."""
    import httpx2

    from robusthide.bench.serve import start_server

    proc, url = start_server("default", max_jobs=1)
    try:
        assert httpx2.get(url + "/health").json()["limits"]["max_jobs"] == 1
        r = httpx2.post(url + "/embed", files={"image": ("c.png", png(cover), "image/png")},
                        data={"message": "77", "response": "image", "refine": "0"}, timeout=120)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        x = httpx2.post(url + "/extract", files={"image": ("m.png", r.content, "image/png")}, timeout=120).json()
        assert x["detected"] and x["message"] == 77
    finally:
        proc.terminate()
        proc.wait(10)
