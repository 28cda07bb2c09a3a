"""Asset identifiers: CPE 2.3 formatted strings (NISTIR 7695 grammar, as the CSAF 2.0 §3.1.3.3.1
pattern writes it), CPE 2.2 URIs converted to the formatted string (what nmap ``-sV`` prints), and
purls parsed and made canonical with packageurl-python.

Each function returns the normalised string or raises :class:`IdentifierError` with the reason."""

from __future__ import annotations

import re
from urllib.parse import unquote

from packageurl import PackageURL

from commonwatch.i18n import _

# One attribute value of the formatted string: optional leading ``?``s or one ``*``, characters
# (alphanumerics, ``-._`` or a backslash-escaped punctuation mark), optional trailing ``?``s or
# ``*``; or the logical values ``*`` (ANY) and ``-`` (NA) alone.
_PUNCT = r"\\[\\\*\?!\"#\$%&'\(\)\+,/:;<=>@\[\]\^`\{\|\}~]"
_VALUE = rf"(?:(?:\?*|\*?)(?:[a-zA-Z0-9\-\._]|{_PUNCT})+(?:\?*|\*?)|[\*\-])"
_LANG = r"(?:[a-zA-Z]{2,3}(?:-(?:[a-zA-Z]{2}|[0-9]{3}))?|[\*\-])"
CPE23 = re.compile(rf"cpe:2\.3:[aho\*\-](?::{_VALUE}){{5}}:{_LANG}(?::{_VALUE}){{4}}")
CPE22 = re.compile(r"[cC][pP][eE]:/[aAhHoO]?(?::[^:]*){0,6}")

ATTRIBUTES = ("part", "vendor", "product", "version", "update", "edition", "language", "sw_edition",
              "target_sw", "target_hw", "other")
MAX_LENGTH = 1000


class IdentifierError(ValueError):
    pass


def normalise_cpe(text: str) -> str:
    """A CPE 2.3 formatted string, lowercased (matching is case-insensitive); a CPE 2.2 URI
    (``cpe:/a:vendor:product:version``) is converted to it."""
    value = (text or "").strip()
    if not value:
        raise IdentifierError(_("is empty"))
    if len(value) > MAX_LENGTH:
        raise IdentifierError(_("is longer than {n} characters").format(n=MAX_LENGTH))
    if value.lower().startswith("cpe:/"):
        return uri_to_formatted(value)
    if not value.lower().startswith("cpe:2.3:"):
        raise IdentifierError(_("is not a CPE name: it must start with cpe:2.3: (or cpe:/ for a CPE 2.2 URI)"))
    if not CPE23.fullmatch(value):
        if value.count(":") - value.count("\\:") != 12:
            raise IdentifierError(_("must have 11 attributes after cpe:2.3 (part to other), separated by colons"))
        raise IdentifierError(_("does not follow the CPE 2.3 formatted-string grammar (NISTIR 7695): check "
                                "the part (a, o or h), wildcards only at the start or end of a value, and "
                                "escaped special characters"))
    return "cpe:2.3:" + value[8:].lower()


def _uri_value(raw: str) -> str:
    """One URI attribute as a formatted-string value (NISTIR 7695 §6.1.3: percent-decoding, %01 is
    ``?`` and %02 is ``*``, the other punctuation escaped with a backslash)."""
    if raw == "":
        return "*"
    if raw == "-":
        return "-"
    out = []
    i = 0
    while i < len(raw):
        if raw[i] == "%":
            code = raw[i:i + 3].lower()
            if code == "%01":
                out.append("?")
            elif code == "%02":
                out.append("*")
            else:
                ch = unquote(raw[i:i + 3])
                if len(ch) != 1 or ch == raw[i:i + 3]:
                    raise IdentifierError(_("has a bad percent-encoding {code}").format(code=raw[i:i + 3]))
                out.append(ch if (ch.isalnum() or ch in "-._") else "\\" + ch)
            i += 3
            continue
        ch = raw[i]
        out.append(ch if (ch.isalnum() or ch in "-._") else "\\" + ch)
        i += 1
    return "".join(out).lower()


def uri_to_formatted(text: str) -> str:
    """A CPE 2.2 URI as a CPE 2.3 formatted string (a packed edition ``~e~swe~tsw~thw~o`` unpacked)."""
    value = text.strip()
    if not CPE22.fullmatch(value):
        raise IdentifierError(_("is not a CPE 2.2 URI (cpe:/part:vendor:product:version:update:edition:language)"))
    parts = value[5:].split(":")
    parts += [""] * (7 - len(parts))
    part, vendor, product, version, update, edition, language = parts
    extra = ["", "", "", ""]
    if edition.startswith("~"):
        packed = edition.split("~")
        if len(packed) != 6:
            raise IdentifierError(_("has a packed edition that is not ~edition~sw_edition~target_sw~target_hw~other"))
        edition, extra = packed[1], packed[2:]
    values = [part.lower() or "*"] + [_uri_value(v) for v in (vendor, product, version, update, edition, language)]
    values += [_uri_value(v) for v in extra]
    formatted = "cpe:2.3:" + ":".join(values)
    if not CPE23.fullmatch(formatted):
        raise IdentifierError(_("does not give a valid CPE 2.3 name: {name}").format(name=formatted[:200]))
    return formatted


def cpe_attributes(cpe: str) -> dict[str, str]:
    """The 11 attributes of a formatted string (escaped colons kept inside their value)."""
    values = re.split(r"(?<!\\):", cpe)[2:]
    return dict(zip(ATTRIBUTES, values, strict=True))


def normalise_purl(text: str) -> str:
    """The canonical purl string (type lowercased, qualifiers sorted, as packageurl-python writes it)."""
    value = (text or "").strip()
    if not value:
        raise IdentifierError(_("is empty"))
    if len(value) > MAX_LENGTH:
        raise IdentifierError(_("is longer than {n} characters").format(n=MAX_LENGTH))
    try:
        purl = PackageURL.from_string(value)
    except ValueError as exc:
        raise IdentifierError(_("is not a valid purl: {reason}").format(reason=str(exc)[:300])) from None
    return purl.to_string()


def purl_parts(purl: str) -> PackageURL:
    return PackageURL.from_string(purl)
