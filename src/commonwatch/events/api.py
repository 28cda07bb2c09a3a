"""REST: search events (filters, keyset pages, capped totals), one event, statistics, and exports
streamed as CSV, JSON or IntelMQ JSON lines. Everything is limited to what the caller may read."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.errors import Invalid
from commonwatch.events import counted, export, search, stats
from commonwatch.events.store import event_store
from commonwatch.web.deps import get_db, require, writes

router = APIRouter(tags=["events"])


class FilterParams:
    """The filter query parameters, declared once for the list, the export and the statistics."""

    def __init__(
        self,
        from_: str | None = Query(None, alias="from", description="Earliest time.source, ISO 8601 "
                                  "(e.g. 2026-11-25T10:00:00+08:00); without an offset it is UTC."),
        to: str | None = Query(None, description="Latest time.source (exclusive); a bare date includes that day."),
        org: str | None = Query(None, description="Organisation id (constituent.org_id), or `none` for "
                                "events matched to no organisation."),
        sector: str | None = Query(None, description="constituent.sector, e.g. energy."),
        cii: str | None = Query(None, description="constituent.cii: true or false."),
        type: str | None = Query(None, description="classification.type, e.g. vulnerable-system."),
        taxonomy: str | None = Query(None, description="classification.taxonomy, e.g. vulnerable."),
        feed: str | None = Query(None, description="feed.name; a trailing * matches a prefix."),
        ip: str | None = Query(None, description="source.ip: an address (/32 or /128) or a network (CIDR)."),
        asn: str | None = Query(None, description="source.asn, e.g. 4134 or AS4134."),
        country: str | None = Query(None, description="source.geolocation.cc (ISO 3166-1 alpha-2)."),
        severity: str | None = Query(None, description="Exactly this severity: info, low, medium, high, critical."),
        min_severity: str | None = Query(None, description="This severity or a higher one."),
        tlp: str | None = Query(None, description="TLP 2.0 label: CLEAR, GREEN, AMBER, AMBER+STRICT, RED."),
    ):
        self.values = {"from": from_, "to": to, "org": org, "sector": sector, "cii": cii, "type": type,
                       "taxonomy": taxonomy, "feed": feed, "ip": ip, "asn": asn, "country": country,
                       "severity": severity, "min_severity": min_severity, "tlp": tlp}


def _invalid_response(exc: Invalid) -> JSONResponse:
    return JSONResponse({"detail": exc.as_detail("query")}, status_code=422)


class EventOut(BaseModel):
    """One event; keys are the IntelMQ harmonisation names plus commonwatch's own."""

    model_config = ConfigDict(populate_by_name=True)
    id: int
    time_source: datetime = Field(alias="time.source")
    time_observation: datetime = Field(alias="time.observation")
    feed_name: str = Field(alias="feed.name")
    feed_provider: str = Field(alias="feed.provider")
    source_ip: str | None = Field(alias="source.ip")
    source_port: int | None = Field(alias="source.port")
    source_asn: int | None = Field(alias="source.asn")
    source_as_name: str | None = Field(alias="source.as_name")
    source_cc: str | None = Field(alias="source.geolocation.cc")
    source_fqdn: str | None = Field(alias="source.fqdn")
    source_url: str | None = Field(alias="source.url")
    source_reverse_dns: str | None = Field(alias="source.reverse_dns")
    destination_ip: str | None = Field(alias="destination.ip")
    destination_port: int | None = Field(alias="destination.port")
    destination_fqdn: str | None = Field(alias="destination.fqdn")
    protocol_transport: str | None = Field(alias="protocol.transport")
    protocol_application: str | None = Field(alias="protocol.application")
    classification_taxonomy: str = Field(alias="classification.taxonomy")
    classification_type: str = Field(alias="classification.type")
    classification_identifier: str | None = Field(alias="classification.identifier")
    malware_name: str | None = Field(alias="malware.name")
    extra: dict[str, Any] | None = None
    event_key: str = Field(alias="event.key")
    org_id: int | None = Field(alias="constituent.org_id")
    partner_org_id: int | None = Field(alias="constituent.partner_org_id")
    constituent_sector: str | None = Field(alias="constituent.sector")
    constituent_cii: bool = Field(alias="constituent.cii")
    severity: str
    gbt_category: str | None = Field(alias="gbt20986.category")
    tlp: str


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page; null at the end.")
    prev_cursor: str | None = Field(description="Pass as `before` for the previous (newer) page.")
    total: int | None = Field(description="Matching events, counted up to a cap (see total_exact).")
    total_exact: bool = Field(description="False when there are more than `total` matching events.")
    limit: int


class CountOut(BaseModel):
    key: dict[str, Any]
    count: int


class StatsOut(BaseModel):
    since: datetime
    until: datetime | None
    by: list[str]
    total: int
    rows: list[CountOut]


@router.get("/events", response_model=EventPage)
def list_events(request: Request, params: FilterParams = Depends(),
                limit: int = Query(search.DEFAULT_PAGE_SIZE, ge=1, le=search.MAX_PAGE_SIZE),
                cursor: str | None = Query(None, description="Continue after this position (older events)."),
                before: str | None = Query(None, description="The page before this position (newer events)."),
                count: bool = Query(True, description=f"Count matching events (up to {search.COUNT_CAP:,})."),
                sort: str | None = Query(None, description="Order by one of: " + ", ".join(search.SORT_KEYS)
                                         + " (default time). severity and tlp sort by rank, org by the "
                                         "organisation's id, source by address; ties by id."),
                dir: str | None = Query(None, description="desc (default) or asc."),
                principal: Principal = Depends(require("events.read")), db: Session = Depends(get_db)) -> Response:
    """Events newest first (time.source, then id), or in the order ``sort``/``dir`` (the key, then
    id), with keyset pagination through cursors (a cursor belongs to the order it was given in)."""
    try:
        f = search.parse_filter(params.values)
        order = search.parse_sort(sort, dir)
        page = counted.search_page(request.app.state, db, principal, f, limit=limit, after=cursor, before=before,
                                   count=count, sort=order)
    except Invalid as exc:
        return _invalid_response(exc)
    body = {"items": [export.event_record(e) for e in page.items], "next_cursor": page.next_cursor,
            "prev_cursor": page.prev_cursor, "total": page.total, "total_exact": page.total_exact,
            "limit": page.limit}
    return JSONResponse(body)


@router.get("/events/export", response_class=StreamingResponse,
            responses={200: {"content": {t: {} for t in set(export.MEDIA_TYPES.values())},
                             "description": "The selection, streamed."}})
@writes
def export_events(request: Request, params: FilterParams = Depends(),
                  format: str = Query("csv", description="csv, json (an array), jsonl (JSON lines) or intelmq "
                                      "(IntelMQ JSON lines)."),
                  principal: Principal = Depends(require("events.read")),
                  db: Session = Depends(get_db)) -> Response:
    """Export every event of the selection (up to the export limit), streamed; the export is audited."""
    state = request.app.state
    try:
        f = search.parse_filter(params.values)
        prepared = export.prepare(db, state.engine, principal, f, format,
                                  max_rows=state.settings.events_export_max_rows)
    except Invalid as exc:
        db.rollback()
        return _invalid_response(exc)
    db.commit()
    name = prepared.filename(state.clock.now())
    return StreamingResponse(prepared.stream(), media_type=export.MEDIA_TYPES[prepared.format],
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "X-Event-Count": str(prepared.rows)})


@router.get("/events/stats", response_model=StatsOut)
def event_stats(request: Request, params: FilterParams = Depends(),
                by: str = Query("type", description="Comma-separated: type, taxonomy, severity, org, feed, "
                                "country, sector, tlp, partner, hour, day."),
                principal: Principal = Depends(require("events.read")), db: Session = Depends(get_db)) -> Response:
    """Counts of matching events grouped by the dimensions in ``by``; the period defaults to 24 hours."""
    now = request.app.state.clock.now()
    try:
        f = search.parse_filter(params.values)
        dims = [d.strip() for d in by.split(",") if d.strip()]
        since = f.time_from or now - timedelta(hours=24)
        until = f.time_to
        rows = event_store(db).counts(principal, dims, since=since, until=until, f=f)
    except Invalid as exc:
        return _invalid_response(exc)
    body = StatsOut(since=since, until=until, by=dims, total=stats.totals(rows),
                    rows=[CountOut(key=dict(zip(dims, r.key, strict=True)), count=r.count) for r in rows])
    return JSONResponse(body.model_dump(mode="json"))


@router.get("/events/{event_id}", response_model=EventOut)
def get_event(event_id: int, principal: Principal = Depends(require("events.read")),
              db: Session = Depends(get_db)) -> Response:
    return JSONResponse(export.event_record(event_store(db).get(principal, event_id)))
