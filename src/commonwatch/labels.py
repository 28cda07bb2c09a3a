"""One registry of enumerations: every coded value a page, mail or report shows gets its label here.

A capability declares the enumerations it owns in ``<capability>/labels.py`` as ``ENUMS``:
``{"incident_status": {"open": N_("open"), ...}}`` (codes to English labels marked with ``N_``
so ``make messages`` extracts them into that folder's catalogue). A label kept in a rules file in
both languages (sectors) is an ``(english, chinese)`` pair and is chosen with ``i18n.pick``. Templates print a code with
``{{ value|label("incident_status") }}``; code calls :func:`label`. A value the registry does not
know is shown as it is, so an operator's own codes still appear.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from commonwatch import capabilities, i18n

Label = str | tuple[str, str]


class DuplicateEnumeration(ValueError):
    """Two capabilities declared the same enumeration name: one of them would silently win."""


@lru_cache(maxsize=1)
def registry() -> dict[str, dict[str, Label]]:
    """Every declared enumeration: name -> {code: English label or (english, chinese)}."""
    found: dict[str, dict[str, Label]] = {}
    owner: dict[str, str] = {}
    for cap, module in capabilities.parts("labels"):
        for name, values in getattr(module, "ENUMS", {}).items():
            if name in found:
                raise DuplicateEnumeration(f"enumeration {name!r} is declared by {owner[name]} and {cap}")
            found[name], owner[name] = dict(values), cap
    return found


def label(value: object, kind: str) -> str:
    """The label of ``value`` in enumeration ``kind``, in the current language."""
    if value is None or value == "":
        return ""
    code = value.value if hasattr(value, "value") else value
    english = registry().get(kind, {}).get(str(code))
    if english is None:
        return str(code)
    if isinstance(english, tuple):
        return i18n.pick(*english)
    return i18n.gettext(english)


def choices(kind: str, codes: list[str] | None = None) -> list[tuple[str, str]]:
    """``(code, label)`` pairs for a select box, in declaration order (or the order of ``codes``)."""
    values: Mapping[str, Label] = registry().get(kind, {})
    return [(c, label(c, kind)) for c in (codes if codes is not None else list(values))]


def all_codes() -> set[str]:
    """The union of every registered code (the zh-CN page test looks for these in page text)."""
    return {code for values in registry().values() for code in values}
