"""Bilingual PDFs render Chinese and English text and never interpret record text as markup."""

from commonwatch.pdf import PdfDocument, Section, render_pdf


def test_bilingual_pdf_renders_text_and_escapes_markup():
    doc = PdfDocument("事件总结报告 / Summary report", "demo", [
        Section("一、基本情况 / Basics", ["<b>not bold</b> & 中文"], [("单位 / Organisation", "东部演示电网")],
                [["列 / Column", "值 / Value"], ["a", "二"]]),
    ])
    data = render_pdf(doc)
    assert data.startswith(b"%PDF-")
    assert b"NotoSansSC" in data  # the embedded CJK font (tests/web/test_fonts.py reads it back)
    assert len(data) > 1000
