"""The CJK font ships with the project: PDFs embed it and their Chinese text extracts as written,
the reports' charts draw Chinese with it (this machine has no CJK system font), and the pages serve
it by @font-face from the package's static files."""

from __future__ import annotations

import io
import re

import numpy as np
import pypdf
from PIL import Image

from commonwatch import fonts
from commonwatch.pdf import PdfDocument, Section, render_pdf

CHINESE = "网络安全事件总结报告"


def fonts_of(reader: pypdf.PdfReader) -> list[dict]:
    out = []
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            out.append(font.get_object())
    return out


def embedded(font) -> bool:
    desc = font.get("/FontDescriptor")
    return bool(desc) and any(k in desc.get_object() for k in ("/FontFile", "/FontFile2", "/FontFile3"))


def test_the_font_ships_with_a_dependency():
    assert fonts.font_path().is_file() and fonts.font_path().stat().st_size > 1_000_000
    assert fonts.FAMILY == "Noto Sans SC"


def test_a_pdf_embeds_the_cjk_font_and_its_chinese_text_extracts():
    doc = PdfDocument(f"{CHINESE} / Summary report", "演示", [
        Section("一、基本情况 / Basics", ["受影响单位：东部演示电网（甲）"], [("状态 / Status", "已解决")],
                [["列 / Column", "值 / Value"], ["级别", "较大"]])])
    reader = pypdf.PdfReader(io.BytesIO(render_pdf(doc)))
    used = fonts_of(reader)
    noto = [f for f in used if "NotoSansSC" in str(f["/BaseFont"])]
    assert noto and all(embedded(f) for f in noto), [f["/BaseFont"] for f in used]
    # ReportLab names Helvetica as every page's initial font; nothing is drawn with it.
    assert all(embedded(f) or f["/BaseFont"] == "/Helvetica" for f in used)
    text = reader.pages[0].extract_text()
    for expected in (CHINESE, "东部演示电网（甲）", "已解决", "较大", "Summary report"):
        assert expected in text, text


def test_a_pdf_holds_characters_outside_the_common_set():
    rare = "䶮龘"  # CJK Extension A and a rare Unified ideograph
    reader = pypdf.PdfReader(io.BytesIO(render_pdf(PdfDocument(f"罕见字 {rare}", "", []))))
    assert rare in reader.pages[0].extract_text()


def ink(png: bytes) -> int:
    """How many clearly dark pixels an image has: without the font, vl-convert draws no Chinese
    glyph for the family (0) and tofu boxes for a generic one (about 270 here)."""
    return int((np.asarray(Image.open(io.BytesIO(png)).convert("L")) < 128).sum())


def test_charts_draw_chinese_with_the_shipped_font():
    from commonwatch.reports import charts

    def spec(font: str) -> dict:
        return {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "width": 200, "height": 40,
                "background": "white", "config": {"font": font},
                "data": {"values": [{"m": CHINESE}]}, "mark": {"type": "text", "fontSize": 20, "color": "#000"},
                "encoding": {"text": {"field": "m"}}}

    import json

    drawn = charts._png(json.dumps(spec(fonts.FAMILY), sort_keys=True))
    assert ink(drawn) > 800
    svg = charts._svg(json.dumps(spec(fonts.FAMILY), sort_keys=True))
    assert fonts.FAMILY in svg


def test_pages_serve_the_font_by_font_face(anon):
    css = anon.get("/static/web/fonts.css")
    assert css.status_code == 200
    assert re.search(r'font-family:\s*"Noto Sans SC"', css.text)
    urls = re.findall(r'url\("?([^")]+)"?\)', css.text)
    assert urls
    for url in urls:
        font = anon.get(url)
        assert font.status_code == 200 and len(font.content) > 50_000, url
    page = anon.get("/login", headers={"Accept-Language": "zh-CN"})
    assert 'href="/static/web/fonts.css"' in page.text


def test_the_pages_subset_holds_every_character_of_the_interface():
    """A catalogue that gains a character the subset lacks: run `python -m commonwatch.tools.fonts`."""
    from fontTools.ttLib import TTFont

    from commonwatch.tools.fonts import SUBSET, interface_characters

    cmap = TTFont(SUBSET).getBestCmap()
    missing = sorted(c for c in interface_characters() if ord(c) not in cmap)
    assert not missing, "".join(missing[:80])
    assert SUBSET.stat().st_size < 600_000
