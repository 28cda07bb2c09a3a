"""Bilingual PDF records (reports for authorities and auditors), made with ReportLab.

Every document embeds the font it prints with: a subset of Noto Sans SC, the CJK font a dependency
ships (``commonwatch.fonts``), so it reads the same on a machine without Chinese fonts and the
text extracts as it was written. A document is a title plus sections of paragraphs, key/value facts
and tables; callers build it from their records.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from commonwatch import fonts


@dataclass(frozen=True)
class _Styles:
    body: ParagraphStyle
    small: ParagraphStyle
    h1: ParagraphStyle
    h2: ParagraphStyle


def _styles(font: str) -> _Styles:
    body = ParagraphStyle("body", fontName=font, fontSize=9.5, leading=14, alignment=TA_LEFT, wordWrap="CJK")
    return _Styles(
        body=body,
        small=ParagraphStyle("small", parent=body, fontSize=8, leading=11, textColor=colors.HexColor("#5d6b7c")),
        h1=ParagraphStyle("h1", parent=body, fontSize=16, leading=22, spaceAfter=6),
        h2=ParagraphStyle("h2", parent=body, fontSize=12, leading=17, spaceBefore=10, spaceAfter=4),
    )


def _texts(doc: PdfDocument) -> str:
    """Every character the document prints, so its font subset holds them all."""
    parts = [doc.title, doc.subtitle, doc.footer, doc.generated_at.isoformat() if doc.generated_at else ""]
    for section in doc.sections:
        parts.append(section.heading)
        parts.extend(section.paragraphs)
        parts.extend(f"{k}{v}" for k, v in section.facts)
        for row in section.table or []:
            parts.extend(str(cell) for cell in row)
    return "".join(parts)


@dataclass
class Section:
    heading: str
    paragraphs: list[str] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)  # label, value
    table: list[Sequence[str]] | None = None  # first row is the header
    images: list[bytes] = field(default_factory=list)  # PNG charts, drawn at the text width


@dataclass
class PdfDocument:
    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)
    footer: str = ""
    generated_at: datetime | None = None


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    # Paragraph takes mini-markup; escape so record text can never inject markup.
    return Paragraph(escape(str(text)).replace("\n", "<br/>"), style)


def render_pdf(doc: PdfDocument) -> bytes:
    """The PDF bytes of a document."""
    buf = io.BytesIO()
    frame = SimpleDocTemplate(buf, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                              bottomMargin=16 * mm, title=doc.title, author="commonwatch")
    st = _styles(fonts.pdf_font(_texts(doc)))
    story: list = [_p(doc.title, st.h1)]
    if doc.subtitle:
        story.append(_p(doc.subtitle, st.small))
    story.append(Spacer(1, 4 * mm))
    for section in doc.sections:
        story.append(_p(section.heading, st.h2))
        for text in section.paragraphs:
            story.append(_p(text, st.body))
        for png in section.images:
            story.append(_image(png, frame.width))
        if section.facts:
            rows = [[_p(label, st.small), _p(value, st.body)] for label, value in section.facts]
            story.append(_table(rows, [45 * mm, None], header=False))
        if section.table:
            rows = [[_p(cell, st.small if i == 0 else st.body) for cell in row] for i, row in enumerate(section.table)]
            story.append(_table(rows, None, header=True))
    if doc.footer or doc.generated_at:
        story.append(Spacer(1, 6 * mm))
        stamp = doc.generated_at.isoformat(timespec="minutes") if doc.generated_at else ""
        story.append(_p(" · ".join(x for x in (doc.footer, stamp) if x), st.small))
    frame.build(story)
    return buf.getvalue()


def _image(png: bytes, width: float) -> Image:
    reader = ImageReader(io.BytesIO(png))
    w, h = reader.getSize()
    scale = min(1.0, width / w) if w else 1.0
    return Image(io.BytesIO(png), width=w * scale, height=h * scale, hAlign="LEFT")


def _table(rows: list[list[Paragraph]], widths, *, header: bool) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0, hAlign="LEFT")
    style = [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#d8dee6")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 4),
        ("RIGHTPADDING", (0, 0), (-1, -1), 4),
    ]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef2f6")))
    table.setStyle(TableStyle(style))
    return table
