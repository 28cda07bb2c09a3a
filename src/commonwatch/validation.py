"""Pure validators for the identifiers every capability handles: each returns the normalised value
or raises :class:`Invalid` naming the field and the reason."""

from __future__ import annotations

import ipaddress
import re

import idna
from email_validator import EmailNotValidError, validate_email

from commonwatch.errors import Invalid
from commonwatch.i18n import _

ASN_MAX = 4_294_967_295
_ASN_RE = re.compile(r"^(?:AS)?\s*(\d{1,10})$", re.IGNORECASE)
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
#: AS numbers that can never name a network (RFC 7607 AS 0, RFC 6793 AS_TRANS, RFC 7300 last ones).
#: Private-use and documentation numbers stay allowed: internal and test networks use them.
_INVALID_ASN = frozenset({0, 23456, 65535, 4294967295})


def normalise_email(value: str, field: str = "email") -> str:
    """A syntactically valid address, domain lower-cased (no DNS lookup: offline first)."""
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise Invalid(field, _("is not a valid email address: {reason}").format(reason=exc)) from None
    # Lower-cased whole: mail systems treat local parts case-insensitively in practice, and one
    # spelling per address keeps contacts and sign-ins unique.
    return result.normalized.lower()


def parse_cidr(value: str, field: str = "cidr") -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An IPv4 or IPv6 network; host bits must be zero so a typo is not silently widened."""
    text = value.strip()
    if not text:
        raise Invalid(field, _("is empty"))
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise Invalid(field, _("“{value}” is not an IPv4 or IPv6 network").format(value=text)) from None
        raise Invalid(field, _("“{value}” has host bits set; did you mean {network}?").format(
            value=text, network=loose)) from None


#: IPv4-mapped IPv6 addresses (RFC 4291 2.5.5.2): the pipeline reads them as the IPv4 hosts they carry.
IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")


def parse_registry_network(value: str, field: str = "cidr") -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A network an organisation can hold: ``parse_cidr``, and no IPv6 network over the
    IPv4-mapped range, whose addresses match as IPv4 and would never reach it."""
    net = parse_cidr(value, field)
    if net.version == 6 and net.overlaps(IPV4_MAPPED):
        raise Invalid(field, _("{network} covers the IPv4-mapped addresses ::ffff:0:0/96, which are matched as "
                               "IPv4 hosts: register the IPv4 networks instead").format(network=net))
    return net


def parse_asn(value: str | int, field: str = "asn") -> int:
    """An AS number from ``64500``, ``AS64500`` or ``as 64500``."""
    match = _ASN_RE.match(str(value).strip())
    if not match:
        raise Invalid(field, _("“{value}” is not an AS number (e.g. AS4134 or 4134)").format(value=value))
    asn = int(match.group(1))
    if asn > ASN_MAX:
        raise Invalid(field, _("{asn} is larger than the largest AS number {max}").format(asn=asn, max=ASN_MAX))
    if asn in _INVALID_ASN:
        raise Invalid(field, _("AS{asn} is reserved and never names a network").format(asn=asn))
    return asn


def normalise_domain(value: str, field: str = "domain") -> str:
    """A domain in its ASCII (A-label) form, lower case, without a trailing dot.

    Internationalised names such as 例子.中国 are converted with IDNA 2008 / UTS 46.
    """
    text = value.strip().rstrip(".").lower()
    if text.startswith("*."):
        text = text[2:]
    if not text:
        raise Invalid(field, _("is empty"))
    try:
        ascii_name = idna.encode(text, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise Invalid(field, _("“{value}” is not a valid domain name").format(value=value)) from None
    labels = ascii_name.split(".")
    if len(labels) < 2 or len(ascii_name) > 253:
        raise Invalid(field, _("“{value}” is not a fully qualified domain name").format(value=value))
    for label in labels:
        if not _LABEL_RE.match(label):
            raise Invalid(field, _("“{value}” has an invalid label “{label}”").format(value=value, label=label))
    if labels[-1].isdigit():
        raise Invalid(field, _("“{value}” looks like an IP address, not a domain").format(value=value))
    return ascii_name


def parse_country(value: str, field: str = "country") -> str:
    """An ISO 3166-1 alpha-2 code, upper case."""
    text = value.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", text):
        raise Invalid(field, _("“{value}” is not a two-letter ISO 3166-1 country code").format(value=value))
    return text


def parse_language(value: str, field: str = "language") -> str:
    text = value.strip()
    mapping = {"en": "en", "zh-cn": "zh-CN", "zh_cn": "zh-CN", "zh": "zh-CN", "zh-hans": "zh-CN"}
    if text.lower() not in mapping:
        raise Invalid(field, _("“{value}” is not a supported language (en or zh-CN)").format(value=value))
    return mapping[text.lower()]
