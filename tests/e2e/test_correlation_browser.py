"""In a real browser, in English and in Chinese: a constituent looks up a value shared with another
tenant and sees only its own events, indicators and incidents, then follows the line beside an
event to the value's page."""

import pytest

from commonwatch.db import session_scope
from tests.conftest import PASSWORD
from tests.intel.correlation_data import VALUE, arrange

pytestmark = pytest.mark.browser


def _sign_in(page, url, email):
    page.goto(f"{url}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def test_a_constituent_correlates_a_value_in_both_languages(page, live_url, world, app, clock):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        seen = arrange(s, world, clock)
    _sign_in(page, live_url, world.users["a"])
    page.goto(f"{live_url}/correlate")
    page.fill("#f-value", f"  {VALUE} ")
    page.click("main form button[type=submit]")
    page.wait_for_selector("#summary")
    assert page.locator("#summary").inner_text() == "seen in 1 incident, 1 indicator, 5 events"
    assert page.locator("#events tr").count() == 6  # header + A's five events
    assert "Shared C2 green" in page.locator("#indicators").inner_text()
    assert "Alpha sees the C2" in page.locator("#incidents").inner_text()
    assert "SECRET-B" not in page.content()

    page.goto(f"{live_url}/events/{seen.a_events[0]}")
    page.click(f"#mentions a[href='/correlate?value={VALUE}']")
    page.wait_for_selector("#summary")

    page.click("a[data-lang=zh-CN]")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "关联"
    assert page.locator("#summary").inner_text() == "见于 1 起网络安全事件、1 个指标、5 条事件"
    assert "SECRET-B" not in page.content()
    page.fill("#f-value", "not a value!")
    page.click("main form button[type=submit]")
    page.wait_for_selector("#err-value")
    assert "SECRET-B" not in page.content()
