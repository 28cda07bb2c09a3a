"""Global search: one box in the header takes an address, a network, a domain, a URL, a hash, an AS
number, an incident or request reference, a CVE identifier or a name, and goes to the right page or
lists a few hits across capabilities, within the searcher's tenancy.

Each capability that can answer contributes ``lookup.py`` with ``find(db, principal, query) ->
list[Hit]`` (discovered like ``dashboard.py``); each one reads through its own scoped queries or
the event store, so a hit never shows what the searcher may not see.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.errors import Invalid

#: Longest query taken; a longer one is cut (nothing this box finds is longer than a URL).
MAX_QUERY = 2048
#: Hits each capability lists at most.
HITS_PER_KIND = 10

_CVE = re.compile(r"CVE-\d{4}-\d{4,}", re.I)
_ASN = re.compile(r"AS\s?(\d{1,10})", re.I)
_REF = re.compile(r"(INC|AR)-\d{4}-\d+", re.I)


@dataclass(frozen=True)
class Query:
    """What the box was given, and what it is: ``ip``, ``network``, ``domain``, ``url``, ``hash``,
    ``email``, ``asn``, ``cve``, ``ref`` or ``text``. ``value`` is the normalised form (an address
    or network object for ``ip``/``network``, an int for ``asn``, text otherwise)."""

    text: str
    kind: str
    value: Any


@dataclass(frozen=True)
class Hit:
    """One result: what it is (``group``, a translated heading), its label, where it goes, a short
    detail; ``exact`` when it is the very object asked for (the search then goes straight to it)."""

    group: str
    label: str
    href: str
    detail: str = ""
    exact: bool = False


@dataclass
class Results:
    query: Query
    hits: list[Hit] = field(default_factory=list)

    def only_exact(self) -> Hit | None:
        """The hit to go straight to: the one exact hit, if there is exactly one."""
        exact = [h for h in self.hits if h.exact]
        return exact[0] if len(exact) == 1 else None


def parse_query(text: str) -> Query:
    """Classify a query, with the same value rules as indicators (:mod:`commonwatch.intel.stix`)."""
    from commonwatch.intel.stix import detect_kind, normalise_value

    q = " ".join((text or "").split())[:MAX_QUERY]
    if not q:
        return Query("", "text", "")
    if _CVE.fullmatch(q):
        return Query(q, "cve", q.upper())
    if m := _ASN.fullmatch(q):
        return Query(q, "asn", int(m.group(1)))
    if _REF.fullmatch(q):
        return Query(q, "ref", q.upper())
    if " " not in q:
        kind = detect_kind(q)
        try:
            value = normalise_value(kind, q)
        except Invalid:
            value = None
        if value is not None:
            if kind in ("ipv4", "ipv6"):
                return Query(q, "ip", ipaddress.ip_address(value.value))
            if kind == "cidr":
                return Query(q, "network", ipaddress.ip_network(value.value))
            if kind in ("md5", "sha1", "sha256"):
                return Query(q, "hash", value.key)
            if kind == "domain" and "." in value.key:
                return Query(q, "domain", value.key)
            if kind in ("url", "email"):
                return Query(q, kind, value.key)
    return Query(q, "text", q)


def search_everywhere(db: Session, principal: Principal, text: str) -> Results:
    """Ask every capability's ``lookup.find``; hits in capability order."""
    from commonwatch import capabilities

    results = Results(parse_query(text))
    if not results.query.text:
        return results
    for _cap, module in capabilities.parts("lookup"):
        results.hits.extend(module.find(db, principal, results.query)[:HITS_PER_KIND])
    return results
