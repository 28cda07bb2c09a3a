"""Reading the rollups for a period, a principal and filters.

A period ``[since, until)`` is given in the viewer's time zone. Totals add the monthly rows of the
whole UTC months inside the period, the daily rows of the whole UTC days around them and the
part-day rows at its edges (``rollup``: a part-day lies between UTC's and the centre's zone's
midnights), so a year is a dozen month buckets and a few day ones, and a day at a UTC+8 midnight
is exact. Series per day in the viewer's zone are sums of part-days (exact in UTC and the centre's
zone; in another zone a row counts on the day its part-day starts); a period longer than
:data:`MAX_DAILY_DAYS` is shown per month of UTC days (the chart says so).

Tenancy is ``db.scope`` on the rollup tables: a constituent's rows are its organisations', a
partner's what was routed to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from sqlalchemy import BigInteger, case, cast, func, literal, select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.constituency.models import Organisation
from commonwatch.db import scope
from commonwatch.errors import Invalid
from commonwatch.i18n import _
from commonwatch.reports.models import ALL, ANY_TYPE, EventCount, HostSet
from commonwatch.reports.rollup import DAY, HOUR, MONTH, decode_hosts

#: Longest period shown per day; longer ones per month.
MAX_DAILY_DAYS = 92
#: Longest period accepted (a little over ten years).
MAX_DAYS = 3700
#: The dimensions a chart may split by: name -> rollup column (``region`` is the organisation's).
SPLITS = {"type": "type", "severity": "severity", "feed": "feed", "sector": "sector", "country": "country",
          "org": "org_id", "asn": "asn", "region": "region"}


@dataclass(frozen=True)
class Filters:
    sector: str = ""
    region: str = ""
    type: str = ""
    org_id: int | None = None

    def as_params(self) -> dict[str, str]:
        out = {"sector": self.sector, "region": self.region, "type": self.type}
        if self.org_id:
            out["org"] = str(self.org_id)
        return {k: v for k, v in out.items() if v}


@dataclass
class Period:
    """``[start, end)`` as local dates in ``tz``, and the same as UTC instants."""

    start: date
    end: date  # exclusive
    tz: str = "UTC"
    since: datetime = field(init=False)
    until: datetime = field(init=False)

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise Invalid("until", _("must be after the start of the period"))
        if (self.end - self.start).days > MAX_DAYS:
            raise Invalid("until", _("a period may span at most {days} days").format(days=MAX_DAYS))
        zone = ZoneInfo(self.tz)
        self.since = datetime.combine(self.start, datetime.min.time(), zone).astimezone(UTC)
        self.until = datetime.combine(self.end, datetime.min.time(), zone).astimezone(UTC)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def daily(self) -> bool:
        return self.days <= MAX_DAILY_DAYS

    def label(self) -> str:
        return f"{self.start.isoformat()} – {(self.end - timedelta(days=1)).isoformat()}"

    def previous(self) -> Period:
        """The period of the same kind just before (a month before a month, a year before a year)."""
        if self.start.day == 1 and self.end.day == 1:
            months = (self.end.year - self.start.year) * 12 + self.end.month - self.start.month
            y, m = divmod(self.start.year * 12 + self.start.month - 1 - months, 12)
            return Period(date(y, m + 1, 1), self.start, self.tz)
        return Period(self.start - (self.end - self.start), self.start, self.tz)


def _hours(value: datetime) -> int:
    return int(value.timestamp()) // 3600


def _first_day(month: int) -> int:
    """The first day (since the epoch) of a month since January 1970."""
    return (date(1970 + month // 12, month % 12 + 1, 1) - date(1970, 1, 1)).days


def _month_of(day: int) -> int:
    d = date(1970, 1, 1) + timedelta(days=day)
    return (d.year - 1970) * 12 + d.month - 1


def _day_ranges(d0: int, d1: int) -> list[tuple[int, int, int]]:
    """``(grain, lo, hi)`` covering the UTC days ``[d0, d1)``: whole months as months, the days
    before the first and after the last whole month as days."""
    m0 = _month_of(d0) + (0 if _first_day(_month_of(d0)) == d0 else 1)
    m1 = _month_of(d1)
    if m0 >= m1:
        return [(DAY, d0, d1)] if d0 < d1 else []
    out = [(DAY, d0, _first_day(m0))] if d0 < _first_day(m0) else []
    out.append((MONTH, m0, m1))
    if _first_day(m1) < d1:
        out.append((DAY, _first_day(m1), d1))
    return out


def _ranges(p: Period) -> list[tuple[int, int, int]]:
    """``(grain, lo, hi)`` covering ``p``: the part-days at its edges, whole UTC days, whole UTC
    months, so that a year reads a dozen month buckets and a few dozen day and part-day ones."""
    h0, h1 = _hours(p.since), _hours(p.until)
    d0, d1 = -(-h0 // 24), h1 // 24
    if d0 >= d1:
        return [(HOUR, h0, h1)]
    out = [(HOUR, h0, d0 * 24)] if h0 < d0 * 24 else []
    out += _day_ranges(d0, d1)
    if d1 * 24 < h1:
        out.append((HOUR, d1 * 24, h1))
    return out


def _centre(principal: Principal, f: Filters) -> bool:
    """Whether the centre-wide rows answer: staff, without an organisation filter."""
    return principal.sees_all_tenants and not (f.org_id or f.sector or f.region)


def _source(dim: str, principal: Principal, f: Filters) -> tuple[str, Any]:
    """The rollup dimension to read and the column holding the split's value. The organisation
    split is the centre-wide ``org`` rows (kept without the type) when they answer and no type
    is asked for, else the per-organisation ``type`` rows by their ``org_id``."""
    if dim == "org" and not (_centre(principal, f) and not f.type):
        return "type", EventCount.org_id
    return dim, EventCount.value


def _region_of(value: Any) -> tuple[Any, Any]:
    """The region of the organisation a rollup row is split by (``value``: its ``org_id``, or the
    ``org`` rows' text), looked up in the database so that a year split by thousands of
    organisations comes back as a row per region: the grouping column and the table to read."""
    key = EventCount.org_id if value is EventCount.org_id \
        else cast(func.nullif(EventCount.value, ""), BigInteger)
    table = EventCount.__table__.outerjoin(Organisation.__table__, Organisation.id == key)  # type: ignore[attr-defined]
    return func.coalesce(Organisation.region, "").label("region"), table


def _filtered(stmt: Any, model: Any, principal: Principal, f: Filters, *, centre: bool | None = None,
              dim: str = "") -> Any:
    """Tenancy, then the filters: the centre-wide rows for staff without an organisation filter
    (``centre``: force one or the other), else the rows of the organisations the filters name.
    Centre-wide event counts of ``dim`` without a type filter are its every-type rows."""
    stmt = scope(stmt, principal, model)
    if f.type:
        stmt = stmt.where(model.type == f.type)
    if model is EventCount or model is HostSet:
        centre = _centre(principal, f) if centre is None else centre
        stmt = stmt.where(model.org_id == ALL) if centre else stmt.where(model.org_id != ALL)
        if model is EventCount and centre and not f.type:
            stmt = stmt.where(model.type == ("" if dim == "org" else ANY_TYPE))
    return org_filtered(stmt, model.org_id, f)


def org_filtered(stmt: Any, org_id: Any, f: Filters) -> Any:
    """``stmt`` cut to the rows (by their ``org_id`` column) of the organisation, sector and region
    the filters name."""
    if f.org_id:
        stmt = stmt.where(org_id == f.org_id)
    if f.sector:
        stmt = stmt.where(org_id.in_(select(Organisation.id).where(Organisation.sector == f.sector)))
    if f.region:
        stmt = stmt.where(org_id.in_(select(Organisation.id).where(Organisation.region == f.region)))
    return stmt


def _dim(by: list[str]) -> tuple[str, str | None]:
    """The rollup dimension to read and the output column (None: a plain total)."""
    if len(by) > 1:
        raise Invalid("by", _("split by at most one dimension"))
    if not by:
        return "type", None
    name = by[0]
    if name not in SPLITS:
        raise Invalid("by", _("“{value}” is not one of: {choices}").format(value=name[:40], choices=", ".join(SPLITS)))
    return ("org" if name == "region" else name), name


def _shape(session: Session, frame: pl.DataFrame, name: str | None) -> pl.DataFrame:
    """``value`` as the output column: organisations and ASNs as integers, regions looked up."""
    if name is None:
        return frame.drop("value")
    if name in ("org", "asn"):
        frame = frame.with_columns(pl.col("value").replace("", None).cast(pl.Int64, strict=False))
    return frame.rename({"value": name})


def _rows(session: Session, stmt: Any, principal: Principal, *group: Any) -> list[Any]:
    """The grouped rows of a scoped rollup query. A constituent's or partner's is asked in two parts,
    its organisations' rows and the rows routed to it from others, so that each part reads a key
    range (the primary key's organisation, the partner index) instead of every organisation's rows
    of the dimension; the caller sums them."""
    conn = session.connection()
    if principal.sees_all_tenants:
        return list(conn.execute(stmt.group_by(*group)).all())
    ids = sorted(principal.org_ids)
    own = stmt.where(EventCount.org_id.in_(ids))
    routed = stmt.where(EventCount.partner_org_id.in_(ids), EventCount.org_id.not_in(ids))
    return [*conn.execute(own.group_by(*group)).all(), *conn.execute(routed.group_by(*group)).all()]


def _as_text(rows: list[Any], value: Any) -> list[Any]:
    """Rows split by ``org_id`` with the organisation as the ``value`` text (``""``: none)."""
    if value is not EventCount.org_id:
        return rows
    return [(*r[:-2], str(r[-2]) if r[-2] else "", r[-1]) for r in rows]


def _frame(rows: list[Any], names: list[str]) -> pl.DataFrame:
    schema = {n: (pl.Int64 if n == "bucket" else pl.String) for n in names}
    schema["n"] = pl.Int64
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


def totals(session: Session, principal: Principal, p: Period, by: list[str], f: Filters = Filters()) -> pl.DataFrame:
    """Events in ``p`` per value of ``by`` (at most one dimension; columns ``*by, n``), largest first."""
    dim, name = _dim(by)
    dim, value = _source(dim, principal, f)
    group, table = _region_of(value) if name == "region" else (value, EventCount.__table__)
    n = func.sum(EventCount.n)
    rows: list[Any] = []
    for grain, lo, hi in _ranges(p):
        stmt = select(group, n).select_from(table).where(EventCount.grain == grain, EventCount.dim == dim,
                                      EventCount.bucket >= lo, EventCount.bucket < hi)
        rows += _rows(session, _filtered(stmt, EventCount, principal, f,
                                         centre=_centre(principal, f) and value is EventCount.value, dim=dim),
                      principal, group)
    frame = _shape(session, _frame(_as_text(rows, group), ["value", "n"]), name)
    if name is None:
        return frame.select(pl.col("n").sum())
    frame = frame.group_by(by).agg(pl.col("n").sum())
    return frame.sort(["n", *by], descending=[True, False], nulls_last=True)


def _slots(p: Period) -> list[tuple[int, list[int], list[int]]]:
    """What a series reads: per grain ``(grain, bounds, slots)``, the buckets ``bounds[i] <= b <
    bounds[i + 1]`` going to chart slot ``slots[i]``. A daily period reads each local day as
    part-days; a long one each month of UTC days (the UTC days the period's first and last local
    days touch counted in its first and last month), its whole months as months."""
    zone = ZoneInfo(p.tz)
    if p.daily:
        days = [p.start + timedelta(days=i) for i in range(p.days + 1)]
        return [(HOUR, [_hours(datetime.combine(d, datetime.min.time(), zone)) for d in days], list(range(p.days)))]
    months = buckets(p)
    firsts = [_first_day((int(m[:4]) - 1970) * 12 + int(m[5:]) - 1) for m in months[1:]]
    starts = [_hours(p.since) // 24, *firsts, -(-_hours(p.until) // 24)]

    def slot_of(day: int) -> int:
        return max(i for i, s in enumerate(starts[:-1]) if s <= day)

    out: list[tuple[int, list[int], list[int]]] = []
    for grain, lo, hi in _day_ranges(starts[0], starts[-1]):
        if grain == MONTH:
            out.append((MONTH, list(range(lo, hi + 1)), [slot_of(_first_day(m)) for m in range(lo, hi)]))
        else:
            bounds = [lo, *[s for s in starts if lo < s < hi], hi]
            out.append((DAY, bounds, [slot_of(d) for d in bounds[:-1]]))
    return out


def series(session: Session, principal: Principal, p: Period, by: list[str], f: Filters = Filters()) -> pl.DataFrame:
    """Events per local day (or per month, for long periods) and ``by``: columns ``when, *by, n``.

    The rows are summed per chart slot in the database (a ``CASE`` over the slots' first buckets),
    so a year split by 200 organisations returns 12 x 200 rows, not 365 x 200."""
    dim, name = _dim(by)
    dim, value = _source(dim, principal, f)
    group, table = _region_of(value) if name == "region" else (value, EventCount.__table__)
    labels = buckets(p)
    bucket = EventCount.bucket
    rows: list[Any] = []
    for grain, bounds, slots in _slots(p):
        slot = case(*[(bucket < hi, s) for hi, s in zip(bounds[1:-1], slots, strict=False)], else_=slots[-1]) \
            if len(slots) > 1 else literal(slots[0])
        slot = slot.label("slot")
        stmt = select(slot, group, func.sum(EventCount.n)).select_from(table).where(
            EventCount.grain == grain, EventCount.dim == dim, bucket >= bounds[0], bucket < bounds[-1])
        rows += _rows(session, _filtered(stmt, EventCount, principal, f,
                                         centre=_centre(principal, f) and value is EventCount.value, dim=dim),
                      principal, slot, group)
    frame = _frame(_as_text(rows, group), ["bucket", "value", "n"])
    frame = frame.with_columns(pl.col("bucket").replace_strict(list(range(len(labels))), labels,
                                                               return_dtype=pl.String).alias("when")).drop("bucket")
    frame = _shape(session, frame, name)
    keys = ["when", *by]
    return frame.group_by(keys).agg(pl.col("n").sum()).sort(keys)


def buckets(p: Period) -> list[str]:
    """Every bucket label of ``p`` (so a chart shows empty days as zero)."""
    if p.daily:
        return [(p.start + timedelta(days=i)).isoformat() for i in range(p.days)]
    out, y, m = [], p.start.year, p.start.month
    while date(y, m, 1) < p.end:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def distinct_hosts(session: Session, principal: Principal, p: Period, f: Filters = Filters(), *,
                   types: tuple[str, ...] = (), per_org: bool = False) -> int:
    """Distinct affected hosts in constituents' networks on the UTC days the period touches
    (``types``: only those event types); ``per_org`` counts organisations. The union of the host
    sets of the whole UTC months inside (``HostSet``, grain month) and of the days around them:
    exact, a few sorted arrays read."""
    d0, d1 = _hours(p.since) // 24, -(-_hours(p.until) // 24)
    wanted = [t for t in types if not f.type or t == f.type] if types else [f.type]
    ranges = _day_ranges(d0, d1)
    if not ranges or not wanted:
        return 0
    f = replace(f, type="")
    # a statement per grain's range, each a range of the primary key (an OR of ranges made SQLite
    # scan every set)
    if per_org:
        found: set[int] = set()
        for grain, lo, hi in ranges:
            stmt = select(HostSet.org_id).distinct().where(HostSet.grain == grain, HostSet.bucket >= lo,
                                                          HostSet.bucket < hi, HostSet.type.in_(wanted),
                                                          HostSet.org_id != 0)
            found.update(session.execute(_filtered(stmt, HostSet, principal, f, centre=False)).scalars())
        return len(found)
    rows = []
    for grain, lo, hi in ranges:
        stmt = select(HostSet.n, HostSet.hosts).where(HostSet.grain == grain, HostSet.bucket >= lo,
                                                      HostSet.bucket < hi, HostSet.type.in_(wanted))
        if not _centre(principal, f):
            stmt = stmt.where(HostSet.org_id != 0)
        rows += session.execute(_filtered(stmt, HostSet, principal, f)).all()
    if len(rows) <= 1:
        return int(rows[0][0]) if rows else 0
    return int(np.unique(decode_hosts([r[1] for r in rows])).size)
