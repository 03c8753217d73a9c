"""End to end: the web UI in headless Debian Chromium (Playwright pointed at /usr/bin/chromium; nothing downloaded).

One browser session walks what a user does: search, open a model, change a condition, generate, see the new
images, download the zip and open it, and a bad value that shows the zoo's one-line error. Screenshots go to the
test's temporary folder; with MEDIGAN_ZOO_UPDATE_SCREENSHOTS=1 they refresh docs/images/ui_*.png (two of them are
in the README), so a test run never changes the checkout.
"""
from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

pytest.importorskip("gradio", reason="the web UI needs the `ui` extra (gradio)")
playwright_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need the playwright package")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Chromium flags: headless, no sandbox (containers), and nothing that reaches the network by itself
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DOC_SCREENSHOTS = REPO / "docs" / "images"
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def ui_url(tmp_path_factory):
    """The UI served in this process on 127.0.0.1 and a free port; closed after the module."""
    from medigan_zoo.ui.server import serve
    from medigan_zoo.ui.service import ZooService

    demo = serve(host="127.0.0.1", port=0, block=False)
    assert isinstance(demo.zoo_service, ZooService)
    yield demo.local_url, demo.zoo_service
    demo.close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium; .ci/run installs it)")
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def _gallery_sources(page, elem_id: str):
    return page.locator(f"#{elem_id} img").evaluate_all("els => els.map(e => e.src)")


def test_browser_search_open_generate_download_and_error(ui_url, browser, tmp_path):
    shots = DOC_SCREENSHOTS if os.environ.get("MEDIGAN_ZOO_UPDATE_SCREENSHOTS") == "1" else tmp_path
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page.set_default_timeout(TIMEOUT_MS)
    playwright_api.expect.set_options(timeout=TIMEOUT_MS)  # a shared CI machine can be slow
    url, service = ui_url
    page.goto(url)
    shots.mkdir(parents=True, exist_ok=True)

    # search: ranked cards with thumbnail, modality, shape, license and metrics
    query = "chest x-ray pneumonia"
    expected = [r.info.id for r in service.search(query)]  # the Python API's ranking
    assert expected[0].startswith("chest_xray_")
    cards = page.locator("#search-results .zoo-card")
    playwright_api.expect(cards).to_have_count(len(service.model_ids()))  # the page opens listing every model
    page.locator("#search-query textarea, #search-query input").first.fill(query)
    page.click("#search-button")
    playwright_api.expect(cards).to_have_count(len(expected))
    playwright_api.expect(cards.first).to_have_attribute("data-model", expected[0])
    assert [cards.nth(k).get_attribute("data-model") for k in range(len(expected))] == expected
    cards_text = cards.first.inner_text()
    assert "DX" in cards_text and "28x28" in cards_text and "CC-BY-4.0" in cards_text and "FID" in cards_text
    assert page.locator("#search-results .zoo-card img").first.get_attribute("src").startswith("data:image/png")
    page.screenshot(path=str(shots / "ui_search.png"), full_page=True)

    # open a model: the card, sample grid and metrics table of chest_xray_cdcgan
    page.locator("#open-choice input").click()
    page.get_by_role("option", name="chest_xray_cdcgan").click()
    page.click("#open-button")
    playwright_api.expect(page.locator("#model-card")).to_contain_text("chest_xray_cdcgan")
    playwright_api.expect(page.locator("#model-metrics")).to_contain_text("FID")
    playwright_api.expect(page.locator("#model-metrics")).to_contain_text("lower")

    # change the condition (default pneumonia -> normal), set a seed, generate: new images and a status line
    page.locator("#cond-0 input").click()
    page.get_by_role("option", name="0: normal").click()
    page.locator("#seed textarea, #seed input").first.fill("5")
    page.click("#generate-button")
    status = page.locator("#generate-status")
    playwright_api.expect(status).to_contain_text("16 SYNTHETIC samples", timeout=120_000)
    playwright_api.expect(status).to_contain_text("class_label=0")
    playwright_api.expect(page.locator("#synthetic-gallery img")).to_have_count(16)
    first_batch = _gallery_sources(page, "synthetic-gallery")
    playwright_api.expect(page.locator("#real-caption")).to_contain_text("REAL images from pneumoniamnist")
    page.click("#interp-button")  # latent interpolation: a row of 8 images between seeds 0 and 1
    playwright_api.expect(page.locator("#interp-gallery img")).to_have_count(8)
    page.screenshot(path=str(shots / "ui_model.png"), full_page=True)

    # download the batch and open the zip: 16 PNGs labelled synthetic, the manifest with this seed and condition
    with page.expect_download() as info:
        page.click("#download-button")
    zip_path = tmp_path / "batch.zip"
    info.value.save_as(zip_path)
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        pngs = [n for n in names if n.endswith(".png")]
        assert len(pngs) == 16
        records = [json.loads(line) for line in zf.read(next(n for n in names if n.endswith("manifest.jsonl")))
                   .decode().splitlines()]
        header = json.loads(zf.read(next(n for n in names if n.endswith("manifest.json"))))
        assert b"SYNTHETIC" in zf.read(pngs[0])
    assert header["synthetic"] is True and header["seed"] == 5 and header["model_id"] == "chest_xray_cdcgan"
    assert len(records) == 16 and all(r["synthetic"] and r["condition"] == {"class_label": 0} for r in records)

    # another seed gives other images
    page.locator("#seed textarea, #seed input").first.fill("6")
    page.click("#generate-button")
    playwright_api.expect(status).to_contain_text("seed 6")
    assert _gallery_sources(page, "synthetic-gallery") != first_batch

    # a bad value: the zoo's one-line error in the page, no stack trace
    page.locator("#seed textarea, #seed input").first.fill("abc")
    page.click("#generate-button")
    toast = page.get_by_text("seed must be an integer between 0 and")
    playwright_api.expect(toast.first).to_be_visible()
    text = page.inner_text("body")
    assert "Traceback" not in text and 'File "' not in text
    page.screenshot(path=str(shots / "ui_error.png"))
    assert all((shots / f"ui_{name}.png").stat().st_size > 0 for name in ("search", "model", "error"))
    page.close()
