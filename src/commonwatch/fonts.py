"""The CJK font every page, PDF and chart uses, shipped by a dependency (no download, no system font).

Noto Sans SC (SIL Open Font License 1.1) comes from the ``pylopdf-fonts-zh-cn`` package as a CFF
OpenType file. Browsers and vl-convert (the charts) read it as it is. ReportLab embeds only
TrueType outlines, so a PDF gets a TrueType subset of the characters it prints, converted from
the cubic CFF outlines with fontTools (cu2qu); converted glyphs are kept for the process, so later
documents convert only characters not seen before.
"""

from __future__ import annotations

import hashlib
import io
import threading
from functools import lru_cache
from pathlib import Path

FAMILY = "Noto Sans SC"
#: Characters every document may print besides its own text (digits, Latin, punctuation).
_BASE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F)) + "“”‘’—–…·•×、。，：；！？（）《》【】「」％"
_lock = threading.Lock()
_quadratic: dict[int, object] = {}  # code point -> its TrueType glyph


def font_path() -> Path:
    """The shipped Noto Sans SC Regular (OpenType/CFF)."""
    import pylopdf_fonts_zh_cn

    return Path(pylopdf_fonts_zh_cn.sans_path())


def font_dir() -> Path:
    """The folder holding the shipped font (for vl-convert's font registry)."""
    return font_path().parent


def _to_truetype(font) -> None:
    """Replace ``font``'s CFF outlines with quadratic TrueType ones, in place."""
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import newTable

    order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    # A subset renumbers its glyphs, so converted outlines are remembered by the character they draw.
    char_of = {name: code for code, name in font.getBestCmap().items()}
    glyphs = {}
    for name in order:
        key = char_of.get(name)
        cached = _quadratic.get(key) if key is not None else None
        if cached is None:
            pen = TTGlyphPen(glyph_set)
            glyph_set[name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
            cached = pen.glyph()
            if key is not None:
                _quadratic[key] = cached
        glyphs[name] = cached
    font["loca"] = newTable("loca")
    font["glyf"] = glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = {name: _copy_glyph(g) for name, g in glyphs.items()}
    for table in ("CFF ", "VORG"):
        if table in font:
            del font[table]
    glyf.compile(font)
    hmtx = font["hmtx"]
    for name, glyph in glyf.glyphs.items():
        if hasattr(glyph, "xMin"):
            hmtx[name] = (hmtx[name][0], glyph.xMin)
    font["maxp"] = maxp = newTable("maxp")
    maxp.tableVersion = 0x00010000
    maxp.maxZones = 1
    for field in ("maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
                  "maxStackElements", "maxSizeOfInstructions", "maxComponentElements"):
        setattr(maxp, field, 0)
    post = font["post"]
    post.formatType, post.extraNames, post.mapping, post.glyphOrder = 2.0, [], {}, order
    font.sfntVersion = "\000\001\000\000"


def _copy_glyph(glyph):
    # glyf.compile() packs glyphs in place; a cached glyph must stay usable by the next document.
    import copy

    return copy.deepcopy(glyph)


@lru_cache(maxsize=16)
def _subset_bytes(chars: frozenset[str], postscript_name: str) -> bytes:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.layout_features = []
    options.hinting = False
    options.glyph_names = False
    options.notdef_outline = True
    options.name_IDs = ["*"]
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "BASE", "VORG", "vhea", "vmtx", "DSIG"]
    font = TTFont(font_path())
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted({ord(c) for c in chars}))
    subsetter.subset(font)
    _to_truetype(font)
    # ReportLab keys a face by its PostScript name: each subset needs its own, or a later document
    # would be written with an earlier subset's glyph numbers.
    for record in font["name"].names:
        if record.nameID == 6:
            record.string = postscript_name
    buf = io.BytesIO()
    font.save(buf)
    return buf.getvalue()


def pdf_font(text: str) -> str:
    """Register (once) a TrueType subset of Noto Sans SC covering ``text`` with ReportLab; its name.

    The name carries a digest of the characters, so documents printed at the same time never
    share a font object that lacks their characters."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont as ReportLabTTFont

    chars = frozenset(ch for ch in text + _BASE_CHARS if ch.isprintable() and not ch.isspace() or ch == " ")
    name = "NotoSansSC-" + hashlib.sha256("".join(sorted(chars)).encode()).hexdigest()[:12]
    with _lock:
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(ReportLabTTFont(name, io.BytesIO(_subset_bytes(chars, name))))
    return name


@lru_cache(maxsize=1)
def register_for_charts() -> None:
    """Give vl-convert (the reports' charts) the shipped font, once per process."""
    import vl_convert

    vl_convert.register_font_directory(str(font_dir()))
