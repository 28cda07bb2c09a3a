"""Turning bytes from the outside world into text.

Feeds, imports and uploads arrive as UTF-8 (with or without a BOM), UTF-16, or the Chinese
GBK/GB18030 encodings common in this constituency. UTF-8 is tried first because it is strict (a
GB18030 text almost never decodes as UTF-8 by accident); then the BOMs; then GB18030, a superset of
GBK and GB2312; then charset-normalizer's guess.
"""

from __future__ import annotations

import codecs

from charset_normalizer import from_bytes

from commonwatch.errors import Invalid
from commonwatch.i18n import _

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def detect_encoding(raw: bytes) -> str:
    """The encoding a sample of bytes is most likely in."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            return name
    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # A sample cut in the middle of a multi-byte character is still UTF-8.
        if exc.start >= len(raw) - 3 and exc.reason == "unexpected end of data":
            return "utf-8"
    try:
        raw.decode("gb18030")
        return "gb18030"
    except UnicodeDecodeError:
        pass
    guess = from_bytes(raw[:1_000_000]).best()
    if guess is None:
        raise Invalid("file", _("is not text in a known encoding"))
    return guess.encoding


def decode_bytes(raw: bytes) -> str:
    """Decode a whole document; raises :class:`Invalid` naming the problem if it is not text."""
    encoding = detect_encoding(raw[:1_000_000])
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise Invalid("file", _("could not be decoded as {encoding} at byte {pos}").format(
            encoding=encoding, pos=exc.start)) from None
