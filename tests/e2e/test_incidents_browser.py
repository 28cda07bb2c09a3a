"""In a real browser (Debian's Chromium): an operator files an incident on the guided form and sees
its level and the live countdown of its first-report clock."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from commonwatch.clock import FrozenClock
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]


@pytest.fixture
def clock():
    # The page's countdown runs on the browser's own clock, so the server's frozen clock starts at real time.
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def server(app):
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start")
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def test_operator_files_an_incident_and_sees_its_countdown(chromium_path, server, world, clock):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, headless=True, args=ARGS)
        page = browser.new_page(locale="zh-CN", timezone_id="Asia/Shanghai")
        page.goto(f"{server}/login")
        page.fill("input[name=email]", world.users["a"])
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"/$"))
        page.goto(f"{server}/lang/zh-CN?next=/incidents/new")  # the Chinese form, whatever the account's language
        expect(page.locator("h1")).to_have_text("报告网络安全事件")
        page.fill("#f-title", "客户数据泄露")
        page.fill("#f-affected_system", "CRM 数据库")
        page.fill("#f-effects", "约120万条客户记录在论坛出售")
        page.select_option("#f-category", "DS")
        page.select_option("#f-subcategory", "DSLEAK")
        page.fill("[name='impact.pi_persons_leaked']", "1200000")
        page.click("button:has-text('提交报告')")
        page.wait_for_url(re.compile(r"/incidents/\d+$"))
        expect(page.locator("#level")).to_contain_text("较大")
        countdown = page.locator("#clock-first_report .countdown")
        expect(countdown).to_have_text(re.compile(r"^0[34]:\d\d:\d\d$"))
        due = datetime.fromisoformat(countdown.get_attribute("data-deadline"))
        discovered = clock.now().replace(second=0)  # the form's default, to the minute
        assert due == discovered + timedelta(hours=4)
        first = countdown.text_content()
        page.wait_for_function("(t) => document.querySelector('#clock-first_report .countdown').textContent !== t",
                               arg=first, timeout=10_000)
        # The deadline is shown in the viewer's zone (Beijing time on this account's default zone).
        expect(page.locator("#clock-first_report")).to_contain_text(
            due.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M CST"))
        browser.close()
