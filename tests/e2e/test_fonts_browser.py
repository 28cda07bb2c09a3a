"""In a real Chromium on a machine with no CJK system font: the Chinese text of a page is drawn
with the shipped Noto Sans SC (the subset for the interface, the full font for other characters)."""

import pytest

pytestmark = pytest.mark.browser


def _fonts_drawing(page, selector: str) -> dict[str, int]:
    """The fonts Chromium used for the text of ``selector``: family name -> glyph count."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    return {f["familyName"]: f["glyphCount"] for f in fonts}


def test_chinese_text_is_drawn_with_the_shipped_font(browser, live_url):
    context = browser.new_context(locale="zh-CN", extra_http_headers={"Accept-Language": "zh-CN"})
    page = context.new_page()
    page.goto(f"{live_url}/login")
    page.evaluate("document.fonts.ready.then(() => true)")
    assert "登录" in page.locator("h1").inner_text()
    used = _fonts_drawing(page, "h1")
    assert used.get("Noto Sans SC", 0) > 0, used
    # A character the interface never uses comes from the full font, not a missing-glyph box.
    page.evaluate("""() => { const p = document.createElement('p'); p.id = 'rare'; p.textContent = '龘䶮';
                            document.body.appendChild(p); return document.fonts.ready; }""")
    page.wait_for_function("document.fonts.check('16px \"Noto Sans SC Full\"', '龘')")
    used = _fonts_drawing(page, "#rare")
    assert used.get("Noto Sans SC", 0) + used.get("Noto Sans SC Full", 0) >= 2, used
    context.close()
