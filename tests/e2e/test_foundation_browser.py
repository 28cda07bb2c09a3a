"""In a real browser: sign in, switch to Chinese, register an organisation with a network and a
contact; a constituent then sees only its own organisation."""

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def _sign_in(page, url, email):
    page.goto(f"{url}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def test_sign_in_switch_to_chinese_and_register_an_organisation(page, live_url, world):
    _sign_in(page, live_url, world.users["coordinator"])
    assert page.locator("h1").inner_text() == "Overview"
    page.click("a[data-lang=zh-CN]")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "概览"

    page.click("nav.mainnav >> text=单位")
    page.click("text=登记单位")
    page.fill("#f-name", "Papa Metro")
    page.fill("#f-name_local", "帕帕地铁")
    page.select_option("#f-kind", "cii-operator")
    page.select_option("#f-sector", "transport")
    page.fill("#f-region", "广东")
    page.click("main form.stack button[type=submit]")
    page.wait_for_url("**/organisations/*")
    assert "单位已登记。" in page.locator(".flash").inner_text()
    assert "关键信息基础设施运营者" in page.content()

    page.fill("#f-cidr", "192.0.2.999/24")
    page.click("text=添加网段")
    assert "不是 IPv4 或 IPv6 网段" in page.locator("#err-cidr").inner_text()
    page.fill("#f-cidr", "192.0.2.0/24")
    page.click("text=添加网段")
    page.wait_for_selector("code:text('192.0.2.0/24')")

    page.fill("form[action$='/contacts'] #f-email", "noc@metro.example")
    page.click("form[action$='/contacts'] button[type=submit]")
    page.wait_for_selector("td:text('noc@metro.example')")


def test_constituent_sees_only_its_own(page, live_url, world):
    _sign_in(page, live_url, world.users["a"])
    page.goto(f"{live_url}/organisations")
    text = page.locator("main").inner_text()
    assert "Alpha Telecom" in text and "SECRET-B" not in text
    response = page.goto(f"{live_url}/organisations/{world.org_b}")
    assert response.status == 404
