"""CPE 2.3 names: the formatted-string binding and the 2.2 URI binding, parsed into attribute values.

A value is one of ANY (``*``), NA (``-``), a literal, or a literal with leading and/or trailing
unquoted wildcards (``*`` many characters, ``?`` one), which NISTIR 7695 allows only at the start
or end of a value. Escaped characters (``\\*``, ``\\:``, ``\\.`` ...) are literal. Matching compares
the unescaped, lower-cased literal, so ``\\.`` and ``.`` are the same character.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

ATTRS: tuple[str, ...] = ("part", "vendor", "product", "version", "update", "edition", "language",
                          "sw_edition", "target_sw", "target_hw", "other")
PARTS = frozenset({"a", "o", "h"})
# Characters allowed unescaped inside a formatted-string value besides ASCII letters and digits.
_PLAIN = frozenset("_-.")


class CpeError(ValueError):
    """A CPE string that is not a well-formed CPE 2.3 formatted string or 2.2 URI."""


@dataclass(frozen=True)
class Value:
    """One attribute value. ``kind``: ``a`` ANY, ``n`` NA, ``l`` literal, ``w`` literal with wildcards."""

    kind: str
    lit: str = ""
    lead_q: int = 0      # number of leading '?'
    lead_star: bool = False
    trail_q: int = 0     # number of trailing '?'
    trail_star: bool = False


ANY = Value("a")
NA = Value("n")


def _is_plain(c: str) -> bool:
    return (c.isascii() and c.isalnum()) or c in _PLAIN


def parse_value(raw: str, attr: str) -> Value:
    """A formatted-string value (escaped) -> :class:`Value`; :class:`CpeError` names the attribute."""
    if raw == "*":
        return ANY
    if raw == "-":
        return NA
    if raw == "":
        raise CpeError(f"{attr}: empty value")
    n = len(raw)
    i = 0
    lead_q, lead_star = 0, False
    while i < n and raw[i] in "*?":
        lead_star = lead_star or raw[i] == "*"
        lead_q += raw[i] == "?"
        i += 1
    out: list[str] = []
    trail_q, trail_star = 0, False
    while i < n:
        c = raw[i]
        if c == "\\":
            if i + 1 >= n:
                raise CpeError(f"{attr}: a backslash at the end of {raw!r} escapes nothing")
            nxt = raw[i + 1]
            if _is_plain(nxt) and nxt not in "-.":
                raise CpeError(f"{attr}: {nxt!r} must not be escaped in {raw!r}")
            out.append(nxt)
            i += 2
            continue
        if c in "*?":
            rest = raw[i:]
            if rest.strip("*?"):
                raise CpeError(f"{attr}: an unescaped wildcard may stand only at the start or end of {raw!r}")
            trail_q, trail_star = rest.count("?"), "*" in rest
            break
        if not _is_plain(c):
            raise CpeError(f"{attr}: {c!r} must be escaped in {raw!r}")
        out.append(c)
        i += 1
    lit = "".join(out).lower()
    wild = lead_q or lead_star or trail_q or trail_star
    if attr == "part" and (wild or lit not in PARTS):
        raise CpeError(f"part: {raw!r} is not a, o, h or *")
    return Value("w" if wild else "l", lit, lead_q, lead_star, trail_q, trail_star)


def _split_fs(text: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur.append(text[i:i + 2])
            i += 2
            continue
        if c == ":":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _uri_component_to_fs(comp: str, attr: str) -> str:
    """A 2.2 URI component (percent-encoded; %01 = ?, %02 = *) -> a formatted-string value."""
    if comp == "":
        return "*"
    if comp == "-":
        return "-"
    out: list[str] = []
    i = 0
    while i < len(comp):
        if comp[i] == "%":
            code = comp[i + 1:i + 3].lower()
            if len(code) != 2:
                raise CpeError(f"{attr}: truncated percent-encoding in {comp!r}")
            if code == "01":
                out.append("?")
            elif code == "02":
                out.append("*")
            else:
                ch = unquote("%" + code)
                if len(ch) != 1 or ch == "%" + code:
                    raise CpeError(f"{attr}: bad percent-encoding %{code} in {comp!r}")
                out.append(ch if _is_plain(ch) else "\\" + ch)
            i += 3
            continue
        ch = comp[i]
        out.append(ch if _is_plain(ch) else "\\" + ch)
        i += 1
    return "".join(out)


@lru_cache(maxsize=1_000_000)
def parse(text: str) -> tuple[Value, ...]:
    """A CPE 2.3 formatted string or a CPE 2.2 URI -> its 11 attribute values."""
    if not isinstance(text, str) or not text:
        raise CpeError("cpe: empty")
    if len(text) > 2000:
        raise CpeError("cpe: longer than 2,000 characters")
    low = text[:8].lower()
    if low.startswith("cpe:2.3:"):
        raws = _split_fs(text[8:])
        if len(raws) != 11:
            raise CpeError(f"cpe: {len(raws)} attributes after 'cpe:2.3:', 11 expected")
    elif low.startswith("cpe:/"):
        comps = text[5:].split(":")
        if len(comps) > 7:
            raise CpeError(f"cpe: {len(comps)} components in a 2.2 URI, at most 7 expected")
        comps += [""] * (7 - len(comps))
        edition, packed = comps[5], ["", "", "", ""]
        if edition.startswith("~"):
            pieces = edition.split("~")
            if len(pieces) != 6:
                raise CpeError(f"edition: a packed edition needs 5 '~' fields, got {edition!r}")
            edition, packed = pieces[1], pieces[2:]
        uri = [*comps[:5], edition, comps[6], *packed]
        raws = [_uri_component_to_fs(c, a) for c, a in zip(uri, ATTRS, strict=True)]
    else:
        raise CpeError(f"cpe: {text[:40]!r} starts with neither 'cpe:2.3:' nor 'cpe:/'")
    return tuple(parse_value(raw, attr) for raw, attr in zip(raws, ATTRS, strict=True))


def check(text: str) -> str | None:
    """None when ``text`` is a well-formed CPE name, else the reason."""
    try:
        parse(text)
    except CpeError as exc:
        return str(exc)
    return None
