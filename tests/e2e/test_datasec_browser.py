"""In a real Chromium: a constituent uploads the sample file, sees masked findings, confirms the
asset's grade and runs a transfer assessment whose answer names its article."""

from __future__ import annotations

import threading
import time

import pytest
import uvicorn

from commonwatch.datasec.demo import sample_file
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def live_server(app):
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_constituent_scans_grades_and_assesses_in_chromium(live_server, chromium_path, world):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        page = browser.new_page()
        page.goto(f"{live_server}/login")
        page.fill("input[name=email]", world.users["a"])
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server}/")
        page.goto(f"{live_server}/datasec/assets/new")
        page.fill("#f-name", "Retail customers")
        page.click("form.stack button[type=submit]")
        page.wait_for_url("**/datasec/assets/*")
        asset_url = page.url
        page.click("text=Scan a file into this asset")
        page.set_input_files("#f-file", str(sample_file()))
        page.click("#scan-form button[type=submit]")
        page.wait_for_url("**/datasec/scans/*")
        findings = page.inner_text("#findings")
        assert "Resident identity card number" in findings and "****" in findings
        assert "1 under 14" in findings
        page.goto(asset_url)
        assert "general_sensitive_pi" in page.content()
        page.click("#grade-form button[type=submit]")
        page.wait_for_selector("#confirmed-grade")
        page.goto(f"{live_server}/crossborder/new")
        page.fill("#f-title", "Card processing abroad")
        page.check("input[name=contains_sensitive_pi]")
        page.fill("#f-persons_non_sensitive", "150000")
        page.fill("#f-persons_sensitive", "2000")
        page.click("#assessment-form button[type=submit]")
        page.wait_for_url("**/crossborder/assessments/*")
        assert "Art. 8" in page.inner_text("#article")
        assert "Standard contract" in page.inner_text("#mechanism")
        browser.close()
