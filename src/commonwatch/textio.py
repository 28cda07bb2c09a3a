"""Turning bytes from the outside world into text.

Feeds, imports and uploads arrive as UTF-8 (with or without a BOM), UTF-16, or the Chinese
GBK/GB18030 encodings common in this constituency. UTF-8 is tried first because it is strict (a
GB18030 text almost never decodes as UTF-8 by accident); then the BOMs; then GB18030, a superset of
GBK and GB2312; then charset-normalizer's guess.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Mapping
from typing import Any

from charset_normalizer import from_bytes

from commonwatch.errors import FieldError, Invalid
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


# --- control characters ---------------------------------------------------------------------------------
#
# One definition for every door text comes in by (feeds, API bodies, forms, file imports): the C0
# controls but tab, line feed and carriage return, DEL, and the C1 controls. Bulk data from other
# systems (feeds, imported files) is stripped of them with a note saying which fields; what one
# person or client sends (an API body, a form) is refused naming the field, so it can be corrected.

CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
_CONTROL_RE = re.compile(CONTROL)


def control_char(text: str) -> str | None:
    """The first control character in ``text`` as ``U+XXXX``, or None."""
    m = _CONTROL_RE.search(text)
    return f"U+{ord(m.group()):04X}" if m else None


def control_char_reason(code: str) -> str:
    return _("holds a control character ({code}), which is not text").format(code=code)


def check_text(field: str, text: str) -> str:
    """``text`` as it is, or :class:`Invalid` naming the field if it holds a control character."""
    code = control_char(text)
    if code:
        raise Invalid(field, control_char_reason(code))
    return text


def strip_control_text(text: str) -> tuple[str, int]:
    """``text`` without control characters, and how many were removed."""
    return _CONTROL_RE.subn("", text)


def control_char_errors(data: Mapping[str, Any], *, skip: Iterable[str] = ()) -> list[FieldError]:
    """One :class:`FieldError` per field of a form or record whose text (or one of whose texts,
    for a list) holds a control character; ``skip`` names fields that are not text (a key
    file, a password)."""
    skipped = set(skip)
    errors: list[FieldError] = []
    for key, value in data.items():
        if key in skipped:
            continue
        texts = value if isinstance(value, (list, tuple)) else [value]
        code = next((c for t in texts if isinstance(t, str) and (c := control_char(t))), None)
        if code:
            errors.append(FieldError(str(key), control_char_reason(code)))
    return errors
