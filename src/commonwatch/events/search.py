"""Event search, the pure part: the filters people and scripts use, checked once, and the
cursors and pages of keyset pagination.

One parser (:func:`parse_filter`) serves the API, the pages and the command line, so a filter
means the same everywhere and a bad value is refused with the field named. The event store
(:mod:`commonwatch.events.store`) turns a filter into a query under the reader's tenancy.

The order is newest first by default: ``time_source`` descending, then ``id`` descending as the
tie break. A cursor is the position ``(time_source, id)`` of the last row shown, so the next page
starts from that point instead of an OFFSET that reads and throws away every earlier row. A page
may instead be sorted by another column (:class:`EventSort`): then the order is ``(key, id)`` and
a cursor is a :class:`SortPosition`.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from commonwatch.clock import ensure_utc
from commonwatch.errors import FieldError, Invalid
from commonwatch.events.schema import SEVERITIES, TLP_LABELS
from commonwatch.i18n import _
from commonwatch.validation import parse_asn, parse_cidr, parse_country
from commonwatch.web.templating import zone

#: Query parameter names of the filters, in the order forms and links show them.
FILTER_PARAMS: tuple[str, ...] = (
    "from", "to", "org", "sector", "cii", "type", "taxonomy", "feed", "ip", "asn", "country",
    "severity", "min_severity", "tlp",
)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
#: Totals are counted exactly up to this many rows; beyond, the answer is "more than".
COUNT_CAP = 10_000
_TOKEN_RE = re.compile(r"^[a-z0-9][a-z0-9_.:+-]{0,63}$")
_FEED_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:/+-]{0,99}\*?$")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
#: TLP 1.0 spellings people still type; stored labels are TLP 2.0.
_TLP_ALIASES = {"WHITE": "CLEAR", "TLP:WHITE": "CLEAR"}


@dataclass(frozen=True)
class EventFilter:
    """A checked selection of events; every field None means "any"."""

    time_from: datetime | None = None  # inclusive, UTC
    time_to: datetime | None = None  # exclusive, UTC
    org_id: int | None = None
    unmatched: bool = False  # only events matched to no organisation (``org=none``)
    sector: str | None = None
    cii: bool | None = None
    classification_type: str | None = None
    classification_taxonomy: str | None = None
    feed_name: str | None = None  # exact, or a prefix when it ends with ``*``
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    asn: int | None = None
    country: str | None = None
    severity: str | None = None  # exactly this level
    min_severity: str | None = None  # this level or a more severe one
    tlp: str | None = None

    def as_params(self) -> dict[str, str]:
        """The filter as query parameters (canonical spelling), for links, exports and the audit log."""
        values: dict[str, Any] = {
            "from": self.time_from.isoformat() if self.time_from else None,
            "to": self.time_to.isoformat() if self.time_to else None,
            "org": "none" if self.unmatched else self.org_id,
            "sector": self.sector,
            "cii": None if self.cii is None else ("true" if self.cii else "false"),
            "type": self.classification_type,
            "taxonomy": self.classification_taxonomy,
            "feed": self.feed_name,
            "ip": str(self.network) if self.network else None,
            "asn": self.asn,
            "country": self.country,
            "severity": self.severity,
            "min_severity": self.min_severity,
            "tlp": self.tlp,
        }
        return {k: str(v) for k, v in values.items() if v is not None}

    @property
    def empty(self) -> bool:
        return not self.as_params()


# --- parsing -----------------------------------------------------------------------------------------

def parse_time(value: str, field_name: str, naive_zone: str = "UTC", *, end_of_day: bool = False) -> datetime:
    """An ISO 8601 time (``2026-11-25T10:00+08:00``, ``...Z``) or date, as UTC.

    A time without an offset is read in ``naive_zone``: UTC for the API (a machine interface), the
    person's zone for the pages and the command line (:data:`commonwatch.terminal.TIME_RULE`). A bare
    date means the start of that day, or with ``end_of_day`` the start of the next (so
    ``to=2026-11-25`` includes it).
    """
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if end_of_day:
                day += timedelta(days=1)
            parsed = datetime.combine(day, time(0))
        else:
            parsed = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(field_name, _("“{value}” is not an ISO 8601 time, e.g. 2026-11-25T10:00:00+08:00").format(
            value=value)) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone(naive_zone))
    return ensure_utc(parsed)


def parse_bool(value: str, field_name: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise Invalid(field_name, _("“{value}” is not yes or no (true/false)").format(value=value))


def parse_ip_or_cidr(value: str, field_name: str = "ip") -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An address (taken as its /32 or /128) or a network with its host bits zero."""
    text = value.strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        if "/" not in text:
            raise Invalid(field_name, _("“{value}” is not an IPv4 or IPv6 address or network").format(
                value=value)) from None
        return parse_cidr(text, field_name)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:a.b.c.d is stored as the IPv4 address it is
    return ipaddress.ip_network(address)


def _parse_choice(value: str, field_name: str, choices: tuple[str, ...]) -> str:
    text = value.strip().lower()
    if text not in choices:
        raise Invalid(field_name, _("“{value}” is not one of: {choices}").format(value=value,
                                                                               choices=", ".join(choices)))
    return text


def parse_tlp(value: str, field_name: str = "tlp") -> str:
    text = value.strip().upper().removeprefix("TLP:")
    text = _TLP_ALIASES.get(text, text)
    if text not in TLP_LABELS:
        raise Invalid(field_name, _("“{value}” is not one of: {choices}").format(value=value,
                                                                               choices=", ".join(TLP_LABELS)))
    return text


def _parse_token(value: str, field_name: str) -> str:
    text = value.strip().lower()
    if not _TOKEN_RE.match(text):
        raise Invalid(field_name, _("“{value}” is not a valid value (letters, digits, - _ . : +)").format(
            value=value))
    return text


def _parse_org(value: str, field_name: str) -> tuple[int | None, bool]:
    text = value.strip().lower()
    if text == "none":
        return None, True
    if not text.isdigit() or int(text) <= 0 or len(text) > 18:
        raise Invalid(field_name, _("“{value}” is not an organisation id (a number, or none)").format(value=value))
    return int(text), False


def parse_filter(params: Mapping[str, Any], naive_zone: str = "UTC") -> EventFilter:
    """Check every filter parameter; raise :class:`Invalid` listing each bad one with its reason.

    ``params`` maps the names in :data:`FILTER_PARAMS` to strings; empty values mean "any".
    """
    raw = {k: str(params[k]).strip() for k in FILTER_PARAMS if params.get(k) not in (None, "")}
    raw = {k: v for k, v in raw.items() if v}
    errors: list[FieldError] = []
    values: dict[str, Any] = {}

    def check(name: str, fn) -> None:
        if name in raw:
            try:
                fn(raw[name])
            except Invalid as exc:
                errors.extend(exc.errors)

    check("from", lambda v: values.__setitem__("time_from", parse_time(v, "from", naive_zone)))
    check("to", lambda v: values.__setitem__("time_to", parse_time(v, "to", naive_zone, end_of_day=True)))
    check("org", lambda v: values.update(zip(("org_id", "unmatched"), _parse_org(v, "org"), strict=True)))
    check("sector", lambda v: values.__setitem__("sector", _parse_token(v, "sector")))
    check("cii", lambda v: values.__setitem__("cii", parse_bool(v, "cii")))
    check("type", lambda v: values.__setitem__("classification_type", _parse_token(v, "type")))
    check("taxonomy", lambda v: values.__setitem__("classification_taxonomy", _parse_token(v, "taxonomy")))
    check("feed", lambda v: values.__setitem__("feed_name", _parse_feed(v)))
    check("ip", lambda v: values.__setitem__("network", parse_ip_or_cidr(v, "ip")))
    check("asn", lambda v: values.__setitem__("asn", parse_asn(v, "asn")))
    check("country", lambda v: values.__setitem__("country", parse_country(v, "country")))
    check("severity", lambda v: values.__setitem__("severity", _parse_choice(v, "severity", SEVERITIES)))
    check("min_severity", lambda v: values.__setitem__("min_severity",
                                                       _parse_choice(v, "min_severity", SEVERITIES)))
    check("tlp", lambda v: values.__setitem__("tlp", parse_tlp(v)))
    start, end = values.get("time_from"), values.get("time_to")
    if start and end and start >= end:
        errors.append(FieldError("to", _("must be later than “from”")))
    if errors:
        raise Invalid(errors)
    return EventFilter(**values)


def _parse_feed(value: str) -> str:
    if not _FEED_RE.match(value):
        raise Invalid("feed", _("“{value}” is not a feed name").format(value=value))
    return value


#: Filters whose column has an index of its own but not in time order: when many events match,
#: a store may read that index differently (see ``SqlEventStore.is_dense``).
UNORDERED_INDEXED = ("feed", "ip", "asn", "country", "severity", "min_severity")


# --- cursors and pages ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Position:
    """Where a page starts or ends in the (time_source desc, id desc) order."""

    time_source: datetime
    id: int

    def encode(self) -> str:
        micros = (ensure_utc(self.time_source) - _EPOCH) // timedelta(microseconds=1)
        return base64.urlsafe_b64encode(f"{micros}.{self.id}".encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, field_name: str = "cursor") -> Position:
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
            micros, ident = text.split(".")
            return cls(_EPOCH + timedelta(microseconds=int(micros)), int(ident))
        except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError):
            raise Invalid(field_name, _("is not a cursor this server gave out")) from None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- the order of a page ------------------------------------------------------------------------------------

#: What the events list may be sorted by, and the stored column each key stands for. A key's value
#: is never NULL in the order (an empty text, 0, or rank 0 stands for "none"), so every store walks
#: the same ``(key, id)`` keyset. ``severity`` and ``tlp`` sort by rank (see :data:`RANKS`), not by
#: spelling; ``org`` sorts by the organisation's number (the store joins no other table);
#: ``source`` by the 16-byte address key, so addresses sort as numbers, IPv4 before IPv6.
SORT_COLUMNS: dict[str, str] = {
    "time": "time_source",
    "severity": "severity",
    "type": "classification_type",
    "source": "source_ip_bin",
    "asn": "source_asn",
    "country": "source_cc",
    "org": "org_id",
    "feed": "feed_name",
    "tlp": "tlp",
}
SORT_KEYS: tuple[str, ...] = tuple(SORT_COLUMNS)
#: Ranked keys: the stored label's position in this tuple plus one (0 for none or unknown).
RANKS: dict[str, tuple[str, ...]] = {"severity": SEVERITIES, "tlp": TLP_LABELS}
TEXT_KEYS = frozenset({"type", "country", "feed"})
NUMBER_KEYS = frozenset({"asn", "org", *RANKS})


@dataclass(frozen=True)
class EventSort:
    """The order of an events page: ``key`` (one of :data:`SORT_KEYS`), then ``id``, both in the
    same direction. The default is newest first."""

    key: str = "time"
    descending: bool = True

    @property
    def is_default(self) -> bool:
        return self.key == "time" and self.descending

    def as_params(self) -> dict[str, str]:
        """``sort``/``dir`` for links (nothing for the default order)."""
        return {} if self.is_default else {"sort": self.key, "dir": "desc" if self.descending else "asc"}

    def position(self, value: Any, ident: int) -> SortPosition:
        return SortPosition(self.key, value, ident)

    def decode(self, token: str, field_name: str = "cursor") -> Position | SortPosition:
        """A cursor of this order: a :class:`Position` for time, else a :class:`SortPosition`
        whose value has the key's type (a cursor of another order is refused)."""
        if self.key == "time":
            return Position.decode(token, field_name)
        return SortPosition.decode(token, self.key, field_name)


NEWEST_FIRST = EventSort()


def parse_sort(sort: str | None, direction: str | None) -> EventSort:
    """``sort`` (a key of :data:`SORT_KEYS`, default ``time``) and ``dir`` (``asc``/``desc``;
    by default newest first for time, and largest first for the others)."""
    errors: list[FieldError] = []
    key = (sort or "").strip().lower() or "time"
    if key not in SORT_COLUMNS:
        errors.append(FieldError("sort", _("“{value}” is not one of: {choices}").format(
            value=sort, choices=", ".join(SORT_KEYS))))
    text = (direction or "").strip().lower()
    if text not in ("", "asc", "desc"):
        errors.append(FieldError("dir", _("“{value}” is not one of: {choices}").format(
            value=direction, choices="asc, desc")))
    if errors:
        raise Invalid(errors)
    return EventSort(key, text != "asc")


@dataclass(frozen=True)
class SortPosition:
    """Where a page starts or ends in a ``(key, id)`` order other than time: the key's value as
    every store compares it (text, a number or rank, or for ``source`` the 16-byte key, ``b""``
    for none)."""

    key: str
    value: Any
    id: int

    def encode(self) -> str:
        value = self.value.hex() if isinstance(self.value, bytes | bytearray | memoryview) else self.value
        raw = json.dumps([self.key, value, self.id], ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, token: str, key: str, field_name: str = "cursor") -> SortPosition:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            got, value, ident = json.loads(raw.decode("utf-8"))
            if got != key or not isinstance(ident, int) or isinstance(ident, bool):
                raise ValueError(got)
            if key == "source":
                value = bytes.fromhex(value)
            elif key in NUMBER_KEYS:
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError(value)
            elif not isinstance(value, str):
                raise ValueError(value)
            return cls(key, value, ident)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
            raise Invalid(field_name, _("is not a cursor this server gave out")) from None


def rank_of(key: str, label: str | None) -> int:
    """The rank of a stored severity or TLP label (0 for none)."""
    labels = RANKS[key]
    return labels.index(label) + 1 if label in labels else 0


@dataclass
class Page:
    items: list[Any]
    #: Cursor of the page after this one (older events), or None at the end.
    next_cursor: str | None = None
    #: Cursor of the page before this one (newer events), or None on the first page.
    prev_cursor: str | None = None
    total: int | None = None
    total_exact: bool = True
    limit: int = DEFAULT_PAGE_SIZE
