"""In a real browser: an incident page is a summary with the next action, then tabs; the timeline is
the first tab, a comment posted from its tab comes back on that tab, and a constituent sees only the
tabs that are theirs, in Chinese too."""

from __future__ import annotations

import pytest

from commonwatch.db import session_scope
from commonwatch.incidents import services as svc
from commonwatch.incidents.rules import load_incident_rules
from tests.e2e.test_foundation_browser import _sign_in
from tests.incidents.conftest import principal, report

pytestmark = pytest.mark.browser


@pytest.fixture
def case_id(app, world, clock):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        incident = svc.file_incident(s, principal(s, world, "a"), report(impact={"pi_persons_leaked": 1_200_000}),
                                     now=clock.now(), rules=load_incident_rules(None))
        return incident.id


def _visible_panels(page) -> list[str]:
    return page.eval_on_selector_all("section.tabpanel", "els => els.filter(e => !e.hidden).map(e => e.id)")


def test_summary_then_tabs_and_a_comment_returns_to_its_tab(page, live_url, world, case_id):
    _sign_in(page, live_url, world.users["coordinator"])
    page.goto(f"{live_url}/incidents/{case_id}")
    assert _visible_panels(page) == ["timeline"]
    assert page.locator("#timeline ol.timeline li").count() >= 1
    # The next action names the most urgent clock and opens the clocks tab.
    page.click("#next-action a")
    assert _visible_panels(page) == ["clocks"]
    page.click("nav.tabs >> a[data-tab-link=comments]")
    assert _visible_panels(page) == ["comments"] and page.url.endswith("#comments")
    page.fill("#comments textarea[name=body]", "Checked the logs; the leak started on Monday.")
    page.click("#comments button[type=submit]")
    page.wait_for_url(f"**/incidents/{case_id}#comments")
    assert _visible_panels(page) == ["comments"]
    assert "the leak started on Monday" in page.locator("#comments").inner_text()
    assert page.locator("nav.tabs a[data-tab-link=comments] .count").inner_text() == "1"


def test_a_constituent_sees_only_its_tabs_in_chinese(page, live_url, world, case_id):
    _sign_in(page, live_url, world.users["a"])
    page.click("a[data-lang=zh-CN]")
    page.wait_for_load_state()
    page.goto(f"{live_url}/incidents/{case_id}")
    tabs = page.eval_on_selector_all("nav.tabs a", "els => els.map(e => e.getAttribute('data-tab-link'))")
    assert tabs == ["timeline", "clocks", "grading", "comments", "attachments"]
    assert page.locator("nav.tabs a[data-tab-link=timeline]").inner_text().strip() == "时间线"
    assert _visible_panels(page) == ["timeline"]
