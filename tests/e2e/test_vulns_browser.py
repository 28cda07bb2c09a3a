"""In a real Chromium: the CII operator opens Vulnerabilities, sees its findings ranked with why
they matched, marks one a false positive with a reason, and it leaves the open list; the Chinese
page says the same."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

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
    # the form posts to and comes back at the same URL: wait for the list itself, not the URL
    expect(page.locator("#vuln-findings tr[data-vuln]")).to_have_count(1)
    page.goto(f"{live_url}/vulns?status=false_positive")
    assert "template() is never called" in page.inner_text("#vuln-findings")
    page.context.add_cookies([{"name": "cw_lang", "value": "zh-CN", "url": live_url}])
    page.goto(f"{live_url}/vulns")
    assert "漏洞" in page.inner_text("h1")


def _login(page, live_url, email):
    page.goto(f"{live_url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_url}/")


def _no_sideways_scroll(page):
    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll <= inner, (width, scroll, inner)


def test_operator_marks_a_false_positive_in_chinese(app, world, clock, live_url, page):
    _load(app, world, clock)
    _login(page, live_url, world.users["b"])
    page.context.add_cookies([{"name": "cw_lang", "value": "zh-CN", "url": live_url}])
    page.goto(f"{live_url}/vulns")
    assert "漏洞" in page.inner_text("h1")
    rows = page.locator("#vuln-findings tr[data-vuln]")
    assert rows.count() == 2 and "待处理" in rows.nth(0).inner_text()
    lodash = page.locator("tr[data-vuln='CVE-2021-23337']")
    lodash.locator("select[name=status]").select_option("false_positive")
    lodash.locator("input[name=reason]").fill("未调用 template()")
    lodash.locator("button[type=submit]").click()
    # the form posts to and comes back at the same URL: wait for the list itself, not the URL
    expect(page.locator("#vuln-findings tr[data-vuln]")).to_have_count(1)
    page.goto(f"{live_url}/vulns?status=false_positive")
    marked = page.locator("tr[data-vuln='CVE-2021-23337']").inner_text()
    assert "误报" in marked and "未调用 template()" in marked
    _no_sideways_scroll(page)


def test_coordinator_sees_the_sector_in_both_languages(app, world, clock, live_url, page):
    _load(app, world, clock)
    _login(page, live_url, world.users["coordinator"])
    page.goto(f"{live_url}/vulns")
    page.select_option("#sector", "energy")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/vulns?*sector=energy*")
    rows = page.locator("#vuln-findings tr[data-vuln]")
    assert [rows.nth(i).get_attribute("data-vuln") for i in range(rows.count())] == ["CVE-2021-41773",
                                                                                      "CVE-2021-23337"]
    text = page.inner_text("#vuln-findings")
    assert "Critical" in text and "Bravo Grid" in text
    page.context.add_cookies([{"name": "cw_lang", "value": "zh-CN", "url": live_url}])
    page.reload()
    zh = page.inner_text("#vuln-findings")
    assert "严重" in zh and "修复期限" in page.inner_text("#vuln-findings tr:first-child")
    # the coordinator triages across organisations too: mitigated leaves the open list
    first = page.locator("tr[data-vuln='CVE-2021-41773']")
    first.locator("select[name=status]").select_option("mitigated")
    first.locator("button[type=submit]").click()
    expect(page.locator("tr[data-vuln='CVE-2021-41773']")).to_have_count(0)
    _no_sideways_scroll(page)
