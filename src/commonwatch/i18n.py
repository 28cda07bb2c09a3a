"""English and Simplified Chinese for every page, message and report.

Messages are written in English in the code and templates and translated through Babel
catalogues: one ``locale/zh_CN.po`` per capability folder, merged at start-up. The current
language is a context variable set per request (or with :func:`use_language` for reports and
notifications), so services can produce messages without passing the language around.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGUAGES: dict[str, str] = {"en": "English", "zh-CN": "简体中文"}
DEFAULT_LANGUAGE = "en"
PACKAGE_DIR = Path(__file__).resolve().parent

_current: ContextVar[str] = ContextVar("commonwatch_language", default=DEFAULT_LANGUAGE)


def catalogue_files() -> list[Path]:
    """Every capability's Chinese catalogue, in a stable order."""
    return sorted(PACKAGE_DIR.glob("**/locale/zh_CN.po"))


@lru_cache(maxsize=1)
def _zh_translations() -> NullTranslations:
    merged = Catalog(locale="zh_CN")
    for path in catalogue_files():
        with path.open("rb") as fh:
            for message in read_po(fh, locale="zh_CN"):
                if message.id and message.string and not message.fuzzy:
                    merged.add(message.id, message.string)
    buf = io.BytesIO()
    write_mo(buf, merged)
    buf.seek(0)
    return Translations(buf)


def translations(language: str) -> NullTranslations:
    return _zh_translations() if language == "zh-CN" else NullTranslations()


def current_language() -> str:
    return _current.get()


def gettext(message: str) -> str:
    if _current.get() == "zh-CN":
        return _zh_translations().gettext(message)
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    if _current.get() == "zh-CN":
        # Chinese has one form (Plural-Forms: nplurals=1), so the catalogues keep the singular msgid
        # and its one translation serves every count.
        return _zh_translations().gettext(singular)
    return singular if n == 1 else plural


_ = gettext


def N_(message: str) -> str:
    """Mark a message for extraction without translating it now (labels in module constants)."""
    return message


def pick(en: str, zh: str) -> str:
    """Choose between the two spellings a data file carries (rules, sector names)."""
    return zh if _current.get() == "zh-CN" and zh else en


@contextmanager
def use_language(language: str) -> Iterator[None]:
    token = _current.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)
    try:
        yield
    finally:
        _current.reset(token)


def set_language(language: str) -> None:
    """Set the language for the rest of this context (a request)."""
    _current.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)


def normalise_language(value: str | None) -> str | None:
    if not value:
        return None
    v = value.strip().replace("_", "-").lower()
    if v.startswith("zh"):
        # Traditional-script requests still get Simplified Chinese, the only Chinese we ship.
        return "zh-CN"
    if v.startswith("en"):
        return "en"
    return None


def negotiate(accept_language: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The best of our languages for an Accept-Language header (RFC 9110 quality values)."""
    if not accept_language:
        return default
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _sep, params = piece.partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _eq, val = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(val)
                except ValueError:
                    quality = 0.0
        lang = normalise_language(tag)
        if lang and quality > 0:
            choices.append((-quality, index, lang))
    return min(choices)[2] if choices else default
