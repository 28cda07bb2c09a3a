"""In a real Chromium: the CII operator opens Vulnerabilities, sees its findings ranked with why
they matched, marks one a false positive with a reason, and it leaves the open list; the Chinese
page says the same."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.vulns.test_api import _load

pytestmark = pytest.mark.browser


def test_operator_triages_a_finding_in_chromium(app, world, clock, live_url, page):
    _load(app, world, clock)
    page.goto(f"{live_url}/login")
    page.fill("input[name=email]", world.users["b"])
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_url}/")
    page.goto(f"{live_url}/vulns")
    rows = page.locator("#vuln-findings tr[data-vuln]")
    assert rows.count() == 2
    assert rows.nth(0).get_attribute("data-vuln") == "CVE-2021-41773"      # KEV and CVSS 9.8 first
    assert "http_server:2.4.49" in rows.nth(0).inner_text()
    lodash = page.locator("tr[data-vuln='CVE-2021-23337']")
    lodash.locator("select[name=status]").select_option("false_positive")
    lodash.locator("input[name=reason]").fill("template() is never called")
    lodash.locator("button[type=submit]").click()
    page.wait_for_url(f"{live_url}/vulns")
    assert page.locator("#vuln-findings tr[data-vuln]").count() == 1
    page.goto(f"{live_url}/vulns?status=false_positive")
    assert "template() is never called" in page.inner_text("#vuln-findings")
    page.context.add_cookies([{"name": "cw_lang", "value": "zh-CN", "url": live_url}])
    page.goto(f"{live_url}/vulns")
    assert "漏洞" in page.inner_text("h1")
