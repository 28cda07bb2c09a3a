"""A zh-CN situation report's PDF embeds the shipped CJK font, its Chinese text extracts as written,
and its charts are drawn by vl-convert with that font."""

from __future__ import annotations

import io

import pypdf

from commonwatch import fonts
from tests.web.test_fonts import embedded, fonts_of


def test_a_zh_cn_report_pdf_embeds_the_font_and_its_charts_use_it(client, filled):
    headers = {**filled.auth("coordinator"), "Accept-Language": "zh-CN"}
    resp = client.get("/reports/report/month/2026-11?format=pdf", headers=headers)
    assert resp.status_code == 200 and resp.content.startswith(b"%PDF-"), resp.text[:300]
    reader = pypdf.PdfReader(io.BytesIO(resp.content))
    used = fonts_of(reader)
    assert any("NotoSansSC" in str(f["/BaseFont"]) and embedded(f) for f in used), used
    assert all(embedded(f) or f["/BaseFont"] == "/Helvetica" for f in used)
    text = "".join(page.extract_text() for page in reader.pages)
    assert "月度态势报告" in text and "摘要" in text, text[:400]
    charts = [image for page in reader.pages for image in page.images]
    assert charts, "the report's charts are in the PDF"


def test_the_report_charts_name_the_shipped_font():
    from commonwatch.reports import charts
    from commonwatch.reports import indicators as ind

    spec = charts.spec(ind.Result(ind.registry()["events.type"], None, ind.pl.DataFrame({"type": [], "n": []})))
    assert spec["config"]["font"] == fonts.FAMILY
