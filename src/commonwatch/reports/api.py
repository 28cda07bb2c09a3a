"""REST: the indicator registry, each indicator's figures as JSON or CSV, a dashboard's figures,
and a situation report's figures. Everything is read from the rollups under the caller's tenancy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.errors import Forbidden
from commonwatch.exports import csv_text
from commonwatch.i18n import _
from commonwatch.reports import indicators as ind
from commonwatch.reports import services as svc
from commonwatch.web.deps import get_db, require

router = APIRouter(tags=["reports"])


def _tz(request: Request, principal: Principal, tz: str) -> str:
    return svc.zone_name(tz or principal.timezone or request.app.state.settings.timezone)


def _definition(i: ind.Indicator) -> dict[str, Any]:
    return {"key": i.key, "name": {"en": i.en, "zh-CN": i.zh}, "counts": {"en": i.counts_en, "zh-CN": i.counts_zh},
            "source": i.source, "chart": i.chart, "unit": i.unit, "available": ind.available(i)}


def csv_of(result: ind.Result) -> str:
    """One indicator's table as CSV, its first lines naming the indicator and period."""
    cols = result.data.columns
    meta = [["# indicator", result.indicator.key], ["# period", result.period.start.isoformat(),
                                                     result.period.end.isoformat(), result.period.tz]]
    if result.absent:
        meta.append(["# absent", result.absent])
    body = csv_text(cols, result.data.rows())
    return csv_text(["# commonwatch"], meta) + body


@router.get("/reports/indicators")
def indicator_list(principal: Principal = Depends(require("events.read"))) -> dict[str, Any]:
    return {"items": [_definition(i) for i in ind.registry().values()]}


@router.get("/reports/indicator")
def indicator_get(request: Request, key: str = Query(..., max_length=100), since: str = "", until: str = "",
                  tz: str = "", sector: str = "", region: str = "", type: str = "", org: int | None = None,
                  format: str = Query("json", pattern="^(json|csv)$"),
                  principal: Principal = Depends(require("events.read")),
                  db: Session = Depends(get_db)) -> Any:
    zone = _tz(request, principal, tz)
    clock = request.app.state.clock
    period = svc.period_from(since, until, zone, svc.local_today(clock.now(), zone))
    filters = svc.filters_from(sector, region, type, org, principal)
    result = svc.indicator(db, principal, key, period, filters, clock.now())
    if format == "csv":
        return Response(csv_of(result), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{key}.csv"'})
    return result.to_json()


@router.get("/reports/dashboards/{kind}")
def dashboard_get(request: Request, kind: str, since: str = "", until: str = "", tz: str = "", sector: str = "",
                  region: str = "", type: str = "", org: int | None = None,
                  principal: Principal = Depends(require("events.read")),
                  db: Session = Depends(get_db)) -> dict[str, Any]:
    if kind in svc.DASHBOARDS and not principal.has(svc.DASHBOARDS[kind]["permission"]):
        raise Forbidden(_("this dashboard is for the centre's staff"))
    zone = _tz(request, principal, tz)
    clock = request.app.state.clock
    period = svc.period_from(since, until, zone, svc.local_today(clock.now(), zone))
    filters = svc.filters_from(sector, region, type, org, principal)
    results = svc.dashboard(db, principal, kind, period, filters, clock.now())
    return {"dashboard": kind, "items": [r.to_json() for r in results]}


@router.get("/reports/{period}/{value}")
def report_get(request: Request, period: str, value: str, tz: str = "",
               principal: Principal = Depends(require("reports.read")),
               db: Session = Depends(get_db)) -> dict[str, Any]:
    report = svc.build_report(db, principal, period, value, _tz(request, principal, tz), request.app.state.clock.now())
    return {"period": period, "start": report.period.start.isoformat(), "end": report.period.end.isoformat(),
            "previous": {"start": report.previous.start.isoformat(), "end": report.previous.end.isoformat()},
            "summary": report.summary, "items": [r.to_json() for r in report.results]}
