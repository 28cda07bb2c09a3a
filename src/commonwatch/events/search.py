"""Event search: the filters people and scripts use, checked once and turned into SQL conditions,
and keyset pagination that stays fast however deep the page.

One parser (:func:`parse_filter`) serves the API, the pages and the command line, so a filter
means the same everywhere and a bad value is refused with the field named. Every query is built
through ``db.scope``: a constituent reads only its organisations' events, a partner only what is
routed to it.

Order is always newest first: ``time_source`` descending, then ``id`` descending as the tie
break. A cursor is the position ``(time_source, id)`` of the last row shown, so the next page is
an index range scan from that point (``WHERE time_source <= t AND (time_source < t OR id < i)``)
instead of an OFFSET that reads and throws away every earlier row.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, union_all
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from commonwatch.access.principal import Principal
from commonwatch.clock import ensure_utc
from commonwatch.db import read_only_engine, scope
from commonwatch.errors import FieldError, Invalid
from commonwatch.events.models import Event
from commonwatch.events.schema import FIELDS, SEVERITIES, TLP_LABELS
from commonwatch.i18n import _
from commonwatch.net import network_bounds
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

    A time without an offset is read in ``naive_zone`` (UTC for the API and the command line, the
    viewer's zone for the pages, whose date-time fields carry none). A bare date means the start
    of that day, or with ``end_of_day`` the start of the next (so ``to=2026-11-25`` includes it).
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


# --- conditions ----------------------------------------------------------------------------------------

def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


#: Filters whose column has an index of its own but not in time order: when many events match,
#: reading that index means sorting all of them for one page (see :func:`is_dense`).
_UNORDERED_INDEXED = ("feed", "ip", "asn", "country", "severity", "min_severity")


class _Columns:
    """The event columns a filter compares; ``walk_time`` hides the single-column indexes of
    :data:`_UNORDERED_INDEXED` behind ``coalesce(col, col)`` (the same value, but no index on
    either engine) so the planner reads the ``time_source`` index in order and stops after a page."""

    def __init__(self, walk_time: bool):
        def hide(col):
            return func.coalesce(col, col) if walk_time else col

        self.feed_name = hide(Event.feed_name)
        self.source_asn = hide(Event.source_asn)
        self.source_cc = hide(Event.source_cc)
        self.severity = hide(Event.severity)
        self.source_ip_bin = hide(Event.source_ip_bin)


def conditions(f: EventFilter, *, walk_time: bool = False) -> list[ColumnElement[bool]]:
    """The WHERE conditions of a filter (tenancy is added separately, by ``db.scope``).

    ``walk_time`` asks for conditions that leave the time index to the planner (for a filter
    that many events match); the rows selected are the same.
    """
    c = Event
    h = _Columns(walk_time)
    out: list[ColumnElement[bool]] = []
    if f.time_from is not None:
        out.append(c.time_source >= f.time_from)
    if f.time_to is not None:
        out.append(c.time_source < f.time_to)
    if f.unmatched:
        out.append(c.org_id.is_(None))
    elif f.org_id is not None:
        out.append(c.org_id == f.org_id)
    if f.sector is not None:
        out.append(c.constituent_sector == f.sector)
    if f.cii is not None:
        out.append(c.constituent_cii.is_(f.cii))
    if f.classification_type is not None:
        out.append(c.classification_type == f.classification_type)
    if f.classification_taxonomy is not None:
        out.append(c.classification_taxonomy == f.classification_taxonomy)
    if f.feed_name is not None:
        if f.feed_name.endswith("*"):
            out.append(h.feed_name.like(_like_prefix(f.feed_name[:-1]), escape="\\"))
        else:
            out.append(h.feed_name == f.feed_name)
    if f.network is not None:
        low, high = network_bounds(f.network)
        out.append(h.source_ip_bin.between(low, high))
    if f.asn is not None:
        out.append(h.source_asn == f.asn)
    if f.country is not None:
        out.append(h.source_cc == f.country)
    if f.severity is not None:
        out.append(h.severity == f.severity)
    if f.min_severity is not None:
        out.append(h.severity.in_(SEVERITIES[SEVERITIES.index(f.min_severity):]))
    if f.tlp is not None:
        out.append(c.tlp == f.tlp)
    return out


def selection(principal: Principal, f: EventFilter, *columns: Any, up_to_id: int | None = None,
              walk_time: bool = False) -> Select:
    """``SELECT columns FROM events`` limited to the filter and to what ``principal`` may read.

    ``up_to_id`` freezes a selection: events stored after it was taken are left out.
    """
    stmt = select(*(columns or (Event,))).select_from(Event)
    stmt = scope(stmt, principal, Event).where(*conditions(f, walk_time=walk_time))
    return stmt if up_to_id is None else stmt.where(Event.id <= up_to_id)


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


def older_than(pos: Position) -> ColumnElement[bool]:
    """Rows after ``pos`` in newest-first order. The leading ``<=`` bounds the index range scan."""
    return and_(Event.time_source <= pos.time_source,
                or_(Event.time_source < pos.time_source, Event.id < pos.id))


def newer_than(pos: Position) -> ColumnElement[bool]:
    return and_(Event.time_source >= pos.time_source,
                or_(Event.time_source > pos.time_source, Event.id > pos.id))


NEWEST_FIRST = (Event.time_source.desc(), Event.id.desc())
OLDEST_FIRST = (Event.time_source.asc(), Event.id.asc())


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


def _position(row: Any) -> Position:
    return Position(row.time_source, row.id)


#: A non-staff principal's page is found per (organisation, column) pair while there are at most
#: this many pairs; beyond, one query with the plain tenancy condition.
SPLIT_MAX = 64


def _branches(principal: Principal) -> list[ColumnElement[bool]] | None:
    """Disjoint, index-friendly parts of a principal's tenancy condition, or None to use it whole.

    ``visible_to`` for events is ``org_id IN (..) OR partner_org_id IN (..)``. Ordered by time
    with a LIMIT, that OR makes SQLite gather every visible row and sort it (seconds on
    millions of rows). Split into one ``col = org`` branch per pair, each branch reads its
    ``(col, time_source)`` index in order and stops after one page. A routed event whose
    organisation is also the principal's belongs to the organisation branch only, so no event
    is found twice.
    """
    if principal.sees_all_tenants or not principal.org_ids:
        return None
    if 2 * len(principal.org_ids) > SPLIT_MAX:
        return None
    orgs = sorted(principal.org_ids)
    own = [Event.org_id == org for org in orgs]
    routed = [and_(Event.partner_org_id == org, or_(Event.org_id.is_(None), Event.org_id.not_in(orgs)))
              for org in orgs]
    return own + routed


def is_dense(conn: Session | Connection, principal: Principal, f: EventFilter, *,
             up_to_id: int | None = None) -> bool:
    """True when more than :data:`COUNT_CAP` events match a filter on an unordered index.

    Then one page is found fastest by reading the time index and skipping non-matching rows;
    with fewer matches, by the filter's index and a sort of at most that many rows. The count
    stops at the cap, so asking costs little (planner statistics cannot be relied on: SQLite
    has none unless ANALYZE ran).
    """
    if not any(f.as_params().get(k) for k in _UNORDERED_INDEXED):
        return False
    return not count_capped(conn, principal, f, up_to_id=up_to_id)[1]


def ordered(conn: Session | Connection, principal: Principal, f: EventFilter, *, limit: int,
            after: Position | None = None, before: Position | None = None,
            up_to_id: int | None = None, dense: bool | None = None) -> list[Row]:
    """Up to ``limit`` matching rows of :data:`EXPORT_COLUMNS`, newest first after ``after`` (or
    oldest first after ``before``).

    Staff read one query on the time index. For other principals the query is the union of one
    small ordered query per organisation (see :func:`_branches`), each built through
    ``db.scope`` like every other read.
    """
    order = OLDEST_FIRST if before is not None else NEWEST_FIRST
    keyset = newer_than(before) if before is not None else older_than(after) if after is not None else None
    if dense is None:
        dense = is_dense(conn, principal, f, up_to_id=up_to_id)
    stmt = selection(principal, f, *EXPORT_COLUMNS, up_to_id=up_to_id, walk_time=dense)
    if keyset is not None:
        stmt = stmt.where(keyset)
    branches = _branches(principal)
    if branches is None:
        return list(conn.execute(stmt.order_by(*order).limit(limit)))
    parts = [select(*stmt.where(branch).order_by(*order).limit(limit).subquery().c) for branch in branches]
    merged = union_all(*parts).subquery()
    direction = (lambda c: c.asc()) if before is not None else (lambda c: c.desc())
    return list(conn.execute(select(*merged.c).order_by(direction(merged.c.time_source), direction(merged.c.id))
                             .limit(limit)))


def search_page(session: Session, principal: Principal, f: EventFilter, *, limit: int = DEFAULT_PAGE_SIZE,
                after: str | None = None, before: str | None = None, count: bool = True) -> Page:
    """One page of events, newest first: after the ``after`` cursor, or before the ``before`` one."""
    if after and before:
        raise Invalid("before", _("give either “cursor” or “before”, not both"))
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise Invalid("limit", _("must be between 1 and {max}").format(max=MAX_PAGE_SIZE))
    total, exact = count_capped(session, principal, f) if count else (None, True)
    dense = (not exact) if count and any(f.as_params().get(k) for k in _UNORDERED_INDEXED) else None
    if before:
        rows = ordered(session, principal, f, limit=limit + 1, before=Position.decode(before, "before"),
                       dense=dense)
        more_newer = len(rows) > limit
        rows = rows[:limit][::-1]
        page = Page(rows, limit=limit)
        page.prev_cursor = _position(rows[0]).encode() if rows and more_newer else None
        page.next_cursor = _position(rows[-1]).encode() if rows else None
    else:
        start = Position.decode(after, "cursor") if after else None
        rows = ordered(session, principal, f, limit=limit + 1, after=start, dense=dense)
        more_older = len(rows) > limit
        rows = rows[:limit]
        page = Page(rows, limit=limit)
        page.next_cursor = _position(rows[-1]).encode() if rows and more_older else None
        page.prev_cursor = _position(rows[0]).encode() if rows and after else None
    page.total, page.total_exact = total, exact
    return page


def count_capped(session: Session | Connection, principal: Principal, f: EventFilter,
                 cap: int = COUNT_CAP, *, up_to_id: int | None = None) -> tuple[int, bool]:
    """How many events match, counted up to ``cap``: ``(n, True)`` or ``(cap, False)`` for more.

    The inner LIMIT keeps the cost bounded on any selection, however large the table.
    """
    inner = selection(principal, f, Event.id, up_to_id=up_to_id).limit(cap + 1).subquery()
    n = session.execute(select(func.count()).select_from(inner)).scalar_one()
    return (n, True) if n <= cap else (cap, False)


def get_event(session: Session, principal: Principal, event_id: int) -> Event:
    """One event the principal may read, else NotFound (another tenant's event looks absent)."""
    from commonwatch.db import get_scoped
    from commonwatch.errors import NotFound

    event = get_scoped(session, principal, Event, event_id)
    if event is None:
        raise NotFound("event")
    return event


# --- streaming for exports -------------------------------------------------------------------------------

#: Every stored field plus the row id, in schema order: what exports and the API return.
EXPORT_COLUMNS: tuple[Any, ...] = (Event.id, *(getattr(Event, f.column) for f in FIELDS))


@dataclass
class StreamState:
    """What a stream has done so far (for the audit record and the CLI summary)."""

    rows: int = 0
    batches: int = 0


def latest_id(session: Session | Connection, principal: Principal, f: EventFilter) -> int:
    """The highest id in a selection (0 if empty): freezes it for a count and a stream."""
    return session.execute(selection(principal, f, func.max(Event.id))).scalar_one() or 0


def iter_rows(engine: Engine, principal: Principal, f: EventFilter, *, max_rows: int, batch: int = 2000,
              up_to_id: int | None = None, state: StreamState | None = None) -> Iterator[Row]:
    """Every matching row, newest first, fetched ``batch`` rows at a time by keyset.

    Each batch is its own short read on its own connection, so a long export neither holds
    the whole selection in memory nor keeps a transaction (on SQLite: the write lock) open.
    """
    state = state if state is not None else StreamState()
    last: Position | None = None
    engine = read_only_engine(engine)
    with engine.connect() as conn:
        dense = is_dense(conn, principal, f, up_to_id=up_to_id)
    while state.rows < max_rows:
        size = min(batch, max_rows - state.rows)
        with engine.connect() as conn:
            rows = ordered(conn, principal, f, limit=size, after=last, up_to_id=up_to_id, dense=dense)
        if not rows:
            return
        state.batches += 1
        state.rows += len(rows)
        last = _position(rows[-1])
        yield from rows
        if len(rows) < size:
            return
