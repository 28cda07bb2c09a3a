"""Dashboards and situation reports: which indicators each shows, periods and filters from
request values, the comparison with the previous period and its generated summary."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.errors import Invalid, NotFound
from commonwatch.i18n import N_, _
from commonwatch.labels import label
from commonwatch.reports import indicators as ind
from commonwatch.reports.query import Filters, Period

EVENT_SERIES = ("events.type", "events.severity", "events.feed", "events.sector", "events.region")
FIGURES = ("events.hosts", "events.orgs", "events.c2", "events.phishing", "events.defaced")
DASHBOARDS: dict[str, dict[str, Any]] = {
    "coordinator": {
        "title": N_("Coordinator dashboard"), "permission": "reports.read",
        "indicators": (*FIGURES, *EVENT_SERIES, "events.top_asns", "events.top_orgs", "notify.deliveries",
                       "notify.acknowledged", "notify.time_to_ack", "incidents.level", "incidents.category",
                       "incidents.status", "incidents.time_to_first_report", "incidents.time_to_close",
                       "incidents.clocks", "vulns.by_severity", "vulns.kev_cii", "vulns.time_to_remediate",
                       "cooperation.exchanges", "cooperation.assistance"),
    },
    "sector": {
        "title": N_("Sector dashboard"), "permission": "reports.read",
        "indicators": (*FIGURES, "events.type", "events.severity", "events.region", "events.top_orgs",
                       "events.top_asns", "notify.acknowledged", "notify.time_to_ack", "incidents.level",
                       "incidents.category", "incidents.clocks", "vulns.kev_cii"),
    },
    "constituent": {
        "title": N_("My organisation's figures"), "permission": "events.read",
        "indicators": ("events.hosts", "events.c2", "events.phishing", "events.defaced", "events.type",
                       "events.severity", "events.feed", "events.top_asns", "notify.acknowledged",
                       "notify.time_to_ack", "incidents.level", "incidents.status", "incidents.time_to_first_report"),
    },
}
REPORT_INDICATORS = (*FIGURES, "events.type", "events.severity", "events.sector", "events.region", "events.top_asns",
                     "events.top_orgs", "notify.deliveries", "notify.acknowledged", "notify.time_to_ack",
                     "incidents.level", "incidents.category", "incidents.status", "incidents.time_to_first_report",
                     "incidents.time_to_close", "incidents.clocks", "vulns.by_severity", "vulns.kev_cii",
                     "cooperation.exchanges", "cooperation.assistance")
PERIOD_KINDS = {"week": N_("Weekly situation report"), "month": N_("Monthly situation report"),
                "year": N_("Annual situation report")}
_IDENT = re.compile(r"^[A-Za-z0-9_.:+\-\u4e00-\u9fff ]{0,100}$")


def zone_name(tz: str | None) -> str:
    try:
        ZoneInfo(tz or "UTC")
        return tz or "UTC"
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"


def local_today(now: datetime, tz: str) -> date:
    return now.astimezone(ZoneInfo(tz)).date()


def parse_day(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid(name, _("“{value}” is not a date (YYYY-MM-DD)").format(value=value[:40])) from None


def period_from(since: str, until: str, tz: str, today: date, days: int = 30) -> Period:
    """A dashboard's period: ``since`` and ``until`` inclusive local dates, by default the last
    ``days`` days up to today."""
    end = parse_day("until", until) + timedelta(days=1) if until else today + timedelta(days=1)
    start = parse_day("since", since) if since else end - timedelta(days=days)
    if end <= start:
        raise Invalid("until", _("must not be before “since”"))
    return Period(start, end, tz)


def report_period(kind: str, value: str, tz: str) -> Period:
    """The period of a report: ``week`` 2026-W47 (or any day in it), ``month`` 2026-11, ``year`` 2026."""
    try:
        if kind == "month":
            y, m = (int(x) for x in value.split("-"))
            start = date(y, m, 1)
            end = date(y + (m == 12), m % 12 + 1, 1)
        elif kind == "year":
            start, end = date(int(value), 1, 1), date(int(value) + 1, 1, 1)
        elif kind == "week":
            if "W" in value:
                y, w = value.split("-W")
                start = date.fromisocalendar(int(y), int(w), 1)
            else:
                d = date.fromisoformat(value)
                start = d - timedelta(days=d.weekday())
            end = start + timedelta(days=7)
        else:
            raise Invalid("period", _("“{value}” is not one of: {choices}").format(
                value=kind[:20], choices=", ".join(PERIOD_KINDS)))
    except (ValueError, TypeError):
        examples = {"month": "2026-11", "year": "2026", "week": "2026-W47"}
        raise Invalid(kind, _("“{value}” is not a {kind} (e.g. {example})").format(
            value=value[:40], kind=kind, example=examples[kind])) from None
    return Period(start, end, tz)


def filters_from(sector: str = "", region: str = "", type: str = "", org: int | None = None,
                 principal: Principal | None = None) -> Filters:
    for name, value in (("sector", sector), ("region", region), ("type", type)):
        if not _IDENT.match(value or ""):
            raise Invalid(name, _("is not a valid value"))
    if org is not None and principal is not None and not principal.sees_all_tenants and org not in principal.org_ids:
        raise NotFound(_("organisation not found"))
    return Filters(sector=sector or "", region=region or "", type=type or "", org_id=org)


def dashboard(session: Session, principal: Principal, kind: str, period: Period, filters: Filters,
              now: datetime) -> list[ind.Result]:
    if kind not in DASHBOARDS:
        raise NotFound(_("no such dashboard"))
    ctx = ind.Context(session, principal, period, filters, now)
    return [ind.compute(key, ctx) for key in DASHBOARDS[kind]["indicators"]]


def indicator(session: Session, principal: Principal, key: str, period: Period, filters: Filters,
              now: datetime) -> ind.Result:
    if key not in ind.registry():
        raise NotFound(_("no such indicator"))
    return ind.compute(key, ind.Context(session, principal, period, filters, now))


@dataclass
class Report:
    kind: str
    period: Period
    previous: Period
    results: list[ind.Result]
    before: dict[str, ind.Result]
    summary: list[str] = field(default_factory=list)
    generated_at: datetime | None = None

    @property
    def title(self) -> str:
        return _(PERIOD_KINDS[self.kind])


def _change(now: float, before: float) -> str:
    if before == 0:
        return _("new this period") if now else _("none in either period")
    pct = (now - before) / before * 100
    return _("{change} against the previous period").format(change=f"{pct:+.0f}%")


def summarise(results: list[ind.Result], before: dict[str, ind.Result]) -> list[str]:
    """A few sentences on what changed: totals of the main figures and the largest movers by type."""
    lines = []
    for r in results:
        if r.absent or r.value is None or r.indicator.key not in (
                "events.type", "events.hosts", "events.c2", "events.phishing", "incidents.level"):
            continue
        prev = before.get(r.indicator.key)
        old = prev.value if prev and prev.value is not None else 0.0
        lines.append(_("{name}: {value} ({change}; previously {old}).").format(
            name=r.indicator.name(), value=f"{r.value:,.0f}", change=_change(r.value, old), old=f"{old:,.0f}"))
    cur = next((r for r in results if r.indicator.key == "events.type"), None)
    if cur is not None and cur.data.height and "events.type" in before:
        old = before["events.type"].data
        now_t = dict(cur.data.group_by("type").agg(n=pl.col("n").sum()).iter_rows())
        old_t = dict(old.group_by("type").agg(n=pl.col("n").sum()).iter_rows()) if old.height else {}
        moves = sorted(((now_t.get(t, 0) - old_t.get(t, 0), t) for t in set(now_t) | set(old_t)), reverse=True)
        if moves and moves[0][0] > 0:
            lines.append(_("The largest rise was in “{type}” events (+{n}).").format(
                type=label(moves[0][1], "event_type"), n=f"{moves[0][0]:,}"))
        if moves and moves[-1][0] < 0:
            lines.append(_("The largest fall was in “{type}” events ({n}).").format(
                type=label(moves[-1][1], "event_type"), n=f"{moves[-1][0]:,}"))
    return lines


def build_report(session: Session, principal: Principal, kind: str, value: str, tz: str, now: datetime,
                 filters: Filters | None = None) -> Report:
    period = report_period(kind, value, tz)
    previous = period.previous()
    filters = filters or Filters()
    ctx = ind.Context(session, principal, period, filters, now)
    prev_ctx = ind.Context(session, principal, previous, filters, now)
    results = [ind.compute(k, ctx) for k in REPORT_INDICATORS]
    before = {k: ind.compute(k, prev_ctx) for k in ("events.type", "events.hosts", "events.c2", "events.phishing",
                                                   "incidents.level")}
    return Report(kind, period, previous, results, before, summarise(results, before), now)
