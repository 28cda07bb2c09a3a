"""In a real browser: the header's search box takes an organisation's name to a short list of hits,
an AS number to its organisation, and says so in Chinese when nothing is found."""

import pytest

from tests.e2e.test_foundation_browser import _sign_in

pytestmark = pytest.mark.browser


def test_global_search_from_the_header_in_both_languages(page, live_url, world):
    _sign_in(page, live_url, world.users["coordinator"])
    box = page.locator("header form.globalsearch input[name=q]")
    box.fill("Alpha")
    box.press("Enter")
    page.wait_for_url("**/search?q=Alpha")
    page.click("ul.hits >> text=Alpha Telecom Labs")
    page.wait_for_url(f"**/organisations/{world.org_a_unit}")

    page.click("a[data-lang=zh-CN]")
    page.wait_for_load_state()
    box = page.locator("header form.globalsearch input[name=q]")
    box.fill("no-such-thing-anywhere")
    box.press("Enter")
    page.wait_for_url("**/search?q=no-such-thing-anywhere")
    assert page.locator("h1").inner_text() == "搜索"
    assert "没有找到" in page.locator("main").inner_text()


def test_a_constituent_does_not_find_another_tenant(page, live_url, world):
    _sign_in(page, live_url, world.users["a"])
    box = page.locator("header form.globalsearch input[name=q]")
    box.fill("Bravo")
    box.press("Enter")
    page.wait_for_url("**/search?q=Bravo")
    assert "SECRET-B" not in page.content()
