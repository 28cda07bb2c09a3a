"""In a real Chromium: a coordinator opens the Feeds page, sees the feed whose quarantine rate left
its band with the reason and its history chart, follows it to the feed's own page; the Chinese page
says the same; the page breaks no Content-Security-Policy rule."""

from __future__ import annotations

import pytest

from commonwatch.feeds.jobs import check_health
from tests.conftest import PASSWORD
from tests.feeds.test_health import FEED, healthy_history, report
from tests.pipeline.helpers import ingest

pytestmark = pytest.mark.browser


def test_coordinator_sees_a_broken_feed_in_both_languages(app, world, clock, live_url, page, tmp_path):
    healthy_history(app.state.engine, clock, tmp_path)
    ingest(app.state.engine, report(tmp_path, 50, rows=20, bad=8), "shadowserver", clock)
    assert check_health(app.state).startswith("1 fault(s) opened")
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{live_url}/login")
    page.fill("input[name=email]", world.users["coordinator"])
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_url}/")
    page.goto(f"{live_url}/feeds/health")
    card = page.locator(f"section.card[data-feed='{FEED}']")
    assert "quarantine rate 40.0% outside its usual band" in card.inner_text()
    assert "needs a look" in card.inner_text()
    assert card.locator(".chart svg").count() == 1 and card.locator(".chart svg").bounding_box()["width"] > 200
    card.locator("h2 a").click()
    page.wait_for_url(f"{live_url}/feeds/health/feed?name={FEED}")
    assert FEED in page.inner_text("h1")
    assert "open" in page.inner_text("table")
    page.context.add_cookies([{"name": "cw_lang", "value": "zh-CN", "url": live_url}])
    page.goto(f"{live_url}/feeds/health")
    assert "数据源" in page.inner_text("h1")
    text = page.locator(f"section.card[data-feed='{FEED}']").inner_text()
    assert "隔离率 40.0% 超出常规范围" in text and "需要查看" in text
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(f"{live_url}/feeds/health")
    # the cards and their charts fit a phone (the layout's own header is not this page's)
    box = page.locator(f"section.card[data-feed='{FEED}']").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375 + 1
    chart = page.locator(f"section.card[data-feed='{FEED}'] .chart svg").bounding_box()
    assert chart["x"] + chart["width"] <= 375 + 1
    assert violations == []
