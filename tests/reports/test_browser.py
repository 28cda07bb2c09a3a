"""In a real Chromium at a phone's width (375 px): every dashboard in English and Chinese, each
chart that has figures with a screenshot that is not blank, and no page wider than the screen."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.conftest import PASSWORD
from tests.e2e.conftest import CHROMIUM_ARGS, LiveServer

pytestmark = pytest.mark.browser


def _inked(png: bytes) -> float:
    """Share of pixels that are not near-white."""
    img = Image.open(io.BytesIO(png)).convert("L")
    hist = img.histogram()
    return 1 - sum(hist[235:]) / max(1, sum(hist))


def test_every_dashboard_in_both_languages_at_phone_width(app, filled, chromium_path):
    from playwright.sync_api import sync_playwright

    server = LiveServer(app)
    url = server.start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 375, "height": 800})
            page.set_default_timeout(20_000)
            page.goto(f"{url}/login")
            page.fill("input[name=email]", filled.users["coordinator"])
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{url}/")
            for lang, title in (("en", "Events by type over time"), ("zh-CN", "按类型统计的事件趋势")):
                page.goto(f"{url}/lang/{lang}?next=/reports")
                for kind in ("coordinator", "sector", "constituent"):
                    query = "?since=2026-10-01" + ("&sector=telecom" if kind == "sector" else "")
                    if kind == "constituent":
                        query += f"&org={filled.org_a}"
                    page.goto(f"{url}/reports/dashboard/{kind}{query}")
                    assert title in page.content(), (lang, kind)
                    chart = page.locator("#ind-events-type .chart")
                    chart.scroll_into_view_if_needed()
                    shot = chart.screenshot()
                    assert _inked(shot) > 0.05, (lang, kind, "the chart looks empty")
                    # every other chart with figures is drawn too (an empty one says so in its card)
                    drawn = page.locator("section.card:not(.empty):not(.absent) .chart")
                    assert drawn.count() >= 4, (lang, kind, drawn.count())
                    for i in range(drawn.count()):
                        one = drawn.nth(i)
                        one.scroll_into_view_if_needed()
                        assert _inked(one.screenshot()) > 0.02, (lang, kind, one.get_attribute("aria-label"))
                    # nothing of the dashboard reaches past the screen's edge (the shared top bar is the layout's)
                    wider = page.evaluate("""[...document.querySelectorAll('.reports *')]
                        .filter(e => e.getBoundingClientRect().right > 376 && !e.closest('.scroll'))
                        .map(e => e.tagName + '.' + e.className)""")
                    assert not wider, (lang, kind, wider[:5])
            # an empty period shows its message inside the chart, not an error
            page.goto(f"{url}/reports/dashboard/coordinator?since=2001-01-01&until=2001-01-31")
            assert page.locator("#ind-events-type .chart svg").count() == 1
            browser.close()
    finally:
        server.stop()
