"""In a real browser, in English and in Chinese: on the exchange page a coordinator adds a partner's
MISP instance (a MISP-like server on loopback), tests the connection, pauses and resumes it and
removes it (accepting the confirmation), with no console error."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.intel.peers import MispPeer as MispServer

pytestmark = [pytest.mark.browser, pytest.mark.in_process_server]  # it changes app.state's allowlist
WORDS = {"en": {"works": "works", "paused": "paused", "active": "active", "removed": "removed"},
         "zh-CN": {"works": "正常", "paused": "已暂停", "active": "启用中", "removed": "已删除"}}


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_add_test_pause_resume_and_remove_a_misp_instance(page, live_url, app, world, lang):
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: dialog.accept())
    words = WORDS[lang]
    server = MispServer("misp-key")
    with server.serve() as base:
        app.state.settings.outbound_allowlist = [base + "/"]
        page.goto(f"{live_url}/login")
        page.fill("#email", world.users["coordinator"])
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_url}/")
        page.goto(f"{live_url}/lang/{lang}?next=/intel-exchange")
        page.wait_for_url(re.compile(r"/intel-exchange$"))

        page.fill("#m-name", "DE MISP")
        page.select_option("#m-org_id", value=str(world.partner))
        page.fill("#m-url", base)
        page.fill("#m-api_key", "misp-key")
        page.click("#add-misp button[type=submit]")
        row = page.locator("#misp-list tr[data-peer]")
        expect(row).to_have_count(1)
        expect(row.locator("td[data-state]")).to_have_text(words["active"])

        row.locator("button[data-act=test]").click()
        expect(page.locator(".flash")).to_contain_text(words["works"])
        expect(page.locator(".flash")).to_contain_text("2.4.190")
        assert ("GET", "/servers/getVersion") in server.requests

        page.locator("#misp-list tr[data-peer] button[data-act=pause]").click()
        expect(page.locator("#misp-list tr[data-peer] td[data-state]")).to_have_text(words["paused"])
        page.locator("#misp-list tr[data-peer] button[data-act=resume]").click()
        expect(page.locator("#misp-list tr[data-peer] td[data-state]")).to_have_text(words["active"])

        page.locator("#misp-list tr[data-peer] button[data-act=remove]").click()
        expect(page.locator(".flash")).to_contain_text(words["removed"])
        expect(page.locator("#misp-list tr[data-peer]")).to_have_count(0)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert errors == []
