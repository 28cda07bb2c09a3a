"""In a real Chromium: a coordinator records an incoming assistance request, sees its PI flag and the
missing contents, takes it through acknowledged and under review, declines it with a ground and a
reason; an analyst then cannot open it."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def _sign_in(page, url, email):
    page.goto(f"{url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def test_request_workflow_in_chromium(live_url, browser, page, world):
    _sign_in(page, live_url, world.users["coordinator"])
    page.goto(f"{live_url}/cooperation/requests/new")
    page.select_option("#f-direction", "incoming")
    page.fill("#f-country", "DE")
    page.fill("#f-authority", "BKA")
    page.select_option("#f-legal_basis", "preservation_request")
    page.select_option("#f-kind", "preservation")
    page.fill("#f-subject", "Preserve logs of 198.51.100.7")
    page.fill("#f-body", "Operator contact 13812345678")
    page.fill("#f-concerns", "network:198.51.100.7")
    page.click("form.stack button[type=submit]")
    page.wait_for_url("**/cooperation/requests/*")
    url = page.url
    assert "cn_mobile" in page.inner_text("#pi-flag")
    assert page.inner_text("#req-status") == "Received"
    for status, label in (("acknowledged", "Acknowledged"), ("under_review", "Under review")):
        page.select_option("#status-form #f-status", status)
        page.click("#status-form button[type=submit]")
        page.wait_for_load_state()
        assert page.inner_text("#req-status") == label
    page.select_option("#status-form #f-status", "declined")
    page.click("#status-form button[type=submit]")
    assert "reason" in page.inner_text("#status-form")
    page.select_option("#status-form #f-status", "declined")
    page.select_option("#status-form #f-ground", "no_link")
    page.fill("#status-form #f-reason", "No data held for this address")
    page.click("#status-form button[type=submit]")
    page.wait_for_load_state()
    assert page.inner_text("#req-status") == "Declined"
    assert "No data held" in page.inner_text("#decline-reason")
    assert "Declined" in page.inner_text("#history")

    other = browser.new_context(locale="en-US").new_page()
    _sign_in(other, live_url, world.users["analyst"])
    resp = other.goto(url)
    assert resp.status in (403, 404)
    other.context.close()
