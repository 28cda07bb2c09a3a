"""A constituent acknowledges a warning in its portal, in English and in Chinese, in a real
Chromium against the app served on loopback."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import uvicorn
from sqlalchemy import select

from commonwatch.db import session_scope
from commonwatch.notify.config import NotifySettings
from commonwatch.notify.models import EventWarning
from commonwatch.notify.runner import Notifier
from tests.conftest import PASSWORD
from tests.notify.conftest import event_row, free_port, insert_events

pytestmark = pytest.mark.browser


@pytest.fixture
def live(app):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_constituent_acknowledges_in_english_and_chinese(live, app, world, clock, chromium_path, tmp_path):
    from playwright.sync_api import sync_playwright

    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, [event_row(world.org_a, at=clock.now() - timedelta(hours=i), ip=f"198.51.100.{i}",
                                    port=23, severity="high") for i in (1, 2)])
    st = app.state
    assert Notifier(settings=st.settings, sessions=st.sessionmaker, clock=st.clock, env=st.jinja,
                    nset=NotifySettings()).run().sent == 1
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        page = browser.new_context(locale="en-GB").new_page()
        page.goto(f"{live}/login?next=/warnings")
        page.fill("input[name=email]", world.users["a"])
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live}/warnings")
        assert page.locator("h1").inner_text().startswith("My warnings")
        page.locator("table a", has_text="Infected system").first.click()
        page.check("input[value=acknowledged]")
        page.fill("textarea[name=comment]", "Looking at the router now")
        page.click("text=Send answer")
        assert "your answer was recorded" in page.locator(".flash").inner_text()
        page.screenshot(path=str(tmp_path / "warning-en.png"), full_page=True)

        page.click("a[data-lang=zh-CN]")
        page.goto(f"{live}/warnings?status=open")
        assert page.locator("h1").inner_text().startswith("我的预警")
        page.locator("table a", has_text="受感染主机").first.click()
        page.check("input[value=acknowledged]")
        page.fill("textarea[name=comment]", "已通知机房值班人员")
        page.click("text=提交答复")
        assert "您的答复已记录" in page.locator(".flash").inner_text()
        assert "已确认" in page.locator("main").inner_text()
        page.screenshot(path=str(tmp_path / "warning-zh.png"), full_page=True)
        browser.close()
    with session_scope(app.state.sessionmaker, actor="test") as s:
        answered = s.execute(select(EventWarning.status, EventWarning.comment)).all()
    assert sorted(answered) == [("acknowledged", "Looking at the router now"), ("acknowledged", "已通知机房值班人员")]
