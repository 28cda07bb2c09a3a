"""In a real browser, in English and in Chinese: a person has their notifications page open; another
person assigns them a case; the bell's count rises and the new notification appears on the page
without a reload, and no console error (the poll holds under the Content-Security-Policy)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from commonwatch.access import services as access
from commonwatch.access.models import User
from commonwatch.config import Settings
from commonwatch.db import session_scope
from commonwatch.incidents import services as svc
from commonwatch.incidents.rules import load_incident_rules
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser
WORDS = {"en": "assigned", "zh-CN": "分配给您"}


@pytest.fixture
def settings(tmp_path, sqlite_url) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=sqlite_url, timezone="Asia/Shanghai",
                    log_format="text", inbox_poll_seconds=1)


@pytest.fixture
def case_id(app, world, clock) -> int:
    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        a = access.principal_for(s, s.get(User, world.ids["user_a"]))
        return svc.file_incident(s, a, {"title": "Mail relay abuse", "affected_system": "MTA", "category": "DS",
                                        "subcategory": "DSLEAK", "effects": "Spam sent",
                                        "discovered_at": "2026-11-25T09:30:00+08:00"}, now=clock.now(),
                                 rules=load_incident_rules(None)).id


def _sign_in(page, live_url, email, lang, then):
    page.goto(f"{live_url}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_url}/")
    page.goto(f"{live_url}/lang/{lang}?next={then}")
    page.wait_for_url(re.compile(re.escape(then) + "$"))


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_bell_rises_without_a_reload_when_another_person_assigns_a_case(browser, live_url, world, case_id,
                                                                             lang):
    errors: list[str] = []
    watcher = browser.new_context(locale="en-US", timezone_id="Asia/Shanghai")
    actor = browser.new_context(locale="en-US", timezone_id="Asia/Shanghai")
    try:
        mine = watcher.new_page()
        mine.set_default_timeout(20_000)
        mine.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        mine.on("pageerror", lambda exc: errors.append(str(exc)))
        _sign_in(mine, live_url, world.users["analyst"], lang, "/inbox")
        expect(mine.locator("[data-inbox-bell]")).to_have_attribute("data-unread", "0")
        assert mine.locator("[data-inbox-count]").is_hidden()
        mine.evaluate("window.__notReloaded = true")

        other = actor.new_page()
        other.set_default_timeout(20_000)
        _sign_in(other, live_url, world.users["coordinator"], lang, f"/incidents/{case_id}")
        other.click("a[data-tab-link=handling]")
        other.select_option(f"form[action='/incidents/{case_id}/assign'] select[name=owner_id]",
                            value=str(world.ids["user_analyst"]))
        other.click(f"form[action='/incidents/{case_id}/assign'] button[type=submit]")
        other.wait_for_url(re.compile(rf"/incidents/{case_id}"))

        expect(mine.locator("[data-inbox-bell]")).to_have_attribute("data-unread", "1", timeout=20_000)
        assert mine.locator("[data-inbox-count]").inner_text() == "1"
        expect(mine.locator("#inbox-items tr[data-notification]")).to_have_count(1)
        assert WORDS[lang] in mine.locator("#inbox-items tr[data-notification]").inner_text()
        assert mine.evaluate("window.__notReloaded === true")  # the same page, never reloaded

        # opening it marks it read; the bell goes quiet
        mine.click("#inbox-items tr[data-notification] form button")
        mine.wait_for_url(re.compile(rf"/incidents/{case_id}"))
        expect(mine.locator("[data-inbox-bell]")).to_have_attribute("data-unread", "0")
        assert errors == []
    finally:
        watcher.close()
        actor.close()
