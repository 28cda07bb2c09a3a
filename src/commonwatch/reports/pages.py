"""Pages: the dashboards (coordinator, sector, constituent) with charts, their numbers as tables
and a CSV per indicator; situation reports as HTML and bilingual PDF."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.constituency.services import sector_label, sector_table
from commonwatch.errors import NotFound
from commonwatch.i18n import N_, _, current_language
from commonwatch.reports import charts, render
from commonwatch.reports import indicators as ind
from commonwatch.reports import services as svc
from commonwatch.web.deps import get_db, require
from commonwatch.web.nav import PARTNER, NavItem
from commonwatch.web.pages import render as render_page

router = APIRouter()
NAV = [NavItem(label=N_("Statistics"), path="/reports", permission="events.read", order=80,
               hidden_from=PARTNER)]


def card(result: ind.Result, query: dict[str, str]) -> dict[str, Any]:
    """What the page shows of one indicator: chart (inline SVG), figure, table and CSV link."""
    i = result.indicator
    result = dataclasses.replace(result, data=ind.labelled(result.data, indicator=i.key))
    labels = {**{c: _(label) for c, label in ind.COLUMN_LABELS.items()}, "other": _("other")}
    message = result.absent or _("No data for this period")
    svg = ""
    if i.chart not in ("figure", "table"):
        svg = charts.svg(charts.spec(result, message=message, labels=labels))
    return {
        "key": i.key, "name": i.name(), "what": i.what(), "source": i.source, "chart": i.chart, "svg": svg,
        "value": result.value, "unit": i.unit_label(), "note": result.note, "absent": result.absent,
        "empty": result.empty,
        "columns": [(c, labels.get(c, c)) for c in result.data.columns], "rows": result.data.rows()[:500],
        "more": max(0, result.data.height - 500),
        "csv": "/api/v1/reports/indicator?" + urlencode({"key": i.key, **query, "format": "csv"}),
    }


def _tz(request: Request, principal: Principal) -> str:
    return svc.zone_name(principal.timezone or request.app.state.settings.timezone)


@router.get("/reports", response_class=HTMLResponse)
def index(request: Request, principal: Principal = Depends(require("events.read"))) -> HTMLResponse:
    if not principal.has("reports.read"):
        return render_page(request, "reports/index.html", {"title": _("Statistics"), "boards": ["constituent"],
                                                           "reports": False})
    today = svc.local_today(request.app.state.clock.now(), _tz(request, principal))
    last_month = (today.replace(day=1) - timedelta(days=1))
    return render_page(request, "reports/index.html", {
        "title": _("Statistics"), "boards": list(svc.DASHBOARDS), "reports": True,
        "month": f"{last_month.year:04d}-{last_month.month:02d}", "year": str(today.year - 1),
        "week": f"{today.isocalendar().year}-W{max(1, today.isocalendar().week - 1):02d}",
    })


@router.get("/reports/dashboard/{kind}", response_class=HTMLResponse)
def dashboard(request: Request, kind: str, since: str = "", until: str = "", sector: str = "", region: str = "",
              type: str = "", org: int | None = None, principal: Principal = Depends(require("events.read")),
              db: Session = Depends(get_db)) -> HTMLResponse:
    if kind not in svc.DASHBOARDS or not principal.has(svc.DASHBOARDS[kind]["permission"]):
        raise NotFound(_("no such dashboard"))
    tz = _tz(request, principal)
    clock = request.app.state.clock
    period = svc.period_from(since, until, tz, svc.local_today(clock.now(), tz))
    if kind == "sector" and not sector:
        sector = sector_table()[0]["code"]
    filters = svc.filters_from(sector, region, type, org, principal)
    results = svc.dashboard(db, principal, kind, period, filters, clock.now())
    query = {"since": period.start.isoformat(), "until": (period.end - timedelta(days=1))
             .isoformat(), "tz": tz, **filters.as_params()}
    return render_page(request, "reports/dashboard.html", {
        "title": _(svc.DASHBOARDS[kind]["title"]), "kind": kind, "cards": [card(r, query) for r in results],
        "period": period, "filters": filters, "query": query,
        "sectors": [(s["code"], sector_label(s["code"])) for s in sector_table()],
    })


@router.get("/reports/report/{period}/{value}")
def report(request: Request, period: str, value: str, format: str = "html",
           principal: Principal = Depends(require("reports.read")), db: Session = Depends(get_db)) -> Response:
    tz = _tz(request, principal)
    built = svc.build_report(db, principal, period, value, tz, request.app.state.clock.now())
    if format == "pdf":
        pdf = render.report_pdf(built)
        return Response(pdf, media_type="application/pdf", headers={
            "Content-Disposition": f'inline; filename="commonwatch-{period}-{built.period.start.isoformat()}.pdf"'})
    query = {"since": built.period.start.isoformat(),
             "until": (built.period.end - timedelta(days=1)).isoformat(), "tz": tz}
    return render_page(request, "reports/report.html", {
        "title": built.title, "report": built, "cards": [card(r, query) for r in built.results],
        "pdf": f"/reports/report/{period}/{value}?format=pdf", "lang_now": current_language(),
    })
