"""The service's page in a real browser: Debian's chromium (``apt-get install chromium chromium-driver``) driven
by playwright with the system browser (no browser download). Upload a photo, mark it, download the marked
file, upload that file, verify it: the page must show "Watermark present", its p-value and the message.

Screenshot for the docs (docs/service-page.png):
``ROBUSTHIDE_SCREENSHOT=docs/service-page.png .venv/bin/python -m pytest -p no:xdist tests/test_service_browser.py``
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver", allow_module_level=True)
pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def server_url():
    """The service on a free loopback port, in a thread."""
    from robusthide.service import Settings, create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(Settings()), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture()
def browser_page(tmp_path):
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                   headless=True, args=FLAGS, accept_downloads=True,
                                                   viewport={"width": 1100, "height": 1300})
        try:
            yield ctx.new_page()
        finally:
            ctx.close()


def test_mark_download_verify_in_chromium(server_url, browser_page, tmp_path, photos):
    from robusthide.watermark.watermarker import Watermarker

    page = browser_page
    src = tmp_path / "chelsea.png"
    Image.fromarray(photos["chelsea"]).save(src)
    page.goto(server_url + "/")
    sync_api.expect(page.locator("#capacity")).to_contain_text("0..2047")

    page.set_input_files("#file", str(src))
    sync_api.expect(page.locator("#chosen")).to_contain_text("chelsea.png")
    page.fill("#message", "1234")
    page.click("#mark")
    sync_api.expect(page.locator("#marked")).to_be_visible(timeout=60_000)
    sync_api.expect(page.locator("#mark-info")).to_contain_text("Message 1234 hidden in 451 x 300 px")
    assert page.eval_on_selector("#residual-img", "img => img.naturalWidth") == 451
    with page.expect_download() as dl:
        page.click("#download")
    download = dl.value
    assert download.suggested_filename == "chelsea-marked.png"
    marked = tmp_path / download.suggested_filename
    download.save_as(marked)

    # the downloaded file is the marked image: same size, changed, and the library reads the message
    arr = np.asarray(Image.open(marked))
    assert arr.shape == photos["chelsea"].shape and (arr != photos["chelsea"]).any()
    assert Watermarker.from_pretrained("default").extract(arr).message == 1234

    page.set_input_files("#file", str(marked))
    page.click("#verify")
    sync_api.expect(page.locator("#result")).to_be_visible(timeout=60_000)
    sync_api.expect(page.locator("#verdict")).to_have_text("Watermark present")
    sync_api.expect(page.locator("#found-message")).to_have_text("1234")
    sync_api.expect(page.locator("#result-file")).to_have_text("chelsea-marked.png")
    p_text = page.inner_text("#pvalue")
    assert re.fullmatch(r"\d\.\d\de-\d+", p_text) and float(p_text) <= 1e-6
    assert not page.is_visible("#error")

    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("ROBUSTHIDE_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["ROBUSTHIDE_SCREENSHOT"])

    # the original photo verifies as clean
    page.set_input_files("#file", str(src))
    page.click("#verify")
    sync_api.expect(page.locator("#verdict")).to_have_text("No watermark found", timeout=60_000)
    sync_api.expect(page.locator("#found-message")).to_have_text("-")


DROP = """(data) => {
  const file = new File([new TextEncoder().encode(data)], "notes.png", {type: "image/png"});
  const dt = new DataTransfer();
  dt.items.add(file);
  document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true}));
}"""


def test_dropped_file_and_the_error_line(server_url, browser_page, tmp_path):
    page = browser_page
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"not an image at all")
    page.goto(server_url + "/")
    page.evaluate(DROP, bad.read_text())  # a file dropped on the drop zone
    sync_api.expect(page.locator("#chosen")).to_contain_text("notes.png")
    page.fill("#message", "1")
    page.click("#mark")
    api = page.request.post(server_url + "/embed", multipart={
        "image": {"name": "notes.png", "mimeType": "image/png", "buffer": bad.read_bytes()}, "message": "1"})
    assert api.status == 400 and api.json()["error"].startswith("notes.png: ")
    sync_api.expect(page.locator("#error")).to_have_text("Error: " + api.json()["error"], timeout=30_000)


def test_api_docs_render_without_a_cdn(server_url, browser_page):
    pytest.importorskip("fastapi_offline")
    page = browser_page
    page.goto(server_url + "/docs")
    for path in ("/embed", "/extract", "/detect", "/capacity", "/health"):
        sync_api.expect(page.locator(f".opblock-summary-path[data-path='{path}']")).to_be_visible(timeout=30_000)
