"""REST: indicators (search, create, edit, expire, export, import), collections, partner feeds."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch import outbound
from commonwatch.access.principal import Principal
from commonwatch.db import scope
from commonwatch.errors import Invalid, NotFound
from commonwatch.exports import csv_text
from commonwatch.intel import exchange, services, stix
from commonwatch.intel.models import Indicator, IntelCollection, MispPeer, Subscription
from commonwatch.web.deps import SearchText, get_db, require

router = APIRouter(tags=["intel"])


class IndicatorIn(BaseModel):
    value: str = ""
    kind: str = ""
    name: str = ""
    description: str = ""
    tlp: str = "AMBER"
    confidence: int | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    indicator_types: list[str] = Field(default_factory=lambda: ["malicious-activity"])
    labels: list[str] = Field(default_factory=list)
    kill_chain_phases: list[str] = Field(default_factory=list)
    malware: list[str] = Field(default_factory=list)
    threat_actors: list[str] = Field(default_factory=list)
    source: str = ""
    share_orgs: list[int] = Field(default_factory=list)
    share_users: list[str] = Field(default_factory=list)
    owner_org_id: int | None = None


class IndicatorOut(BaseModel):
    id: int
    stix_id: str
    kind: str
    value: str
    pattern: str
    name: str
    description: str
    tlp: str
    confidence: int | None
    valid_from: datetime
    valid_until: datetime | None
    indicator_types: list[str]
    labels: list[str]
    kill_chain_phases: list[dict[str, str]]
    related: list[str]
    source: str
    revoked: bool
    live: bool
    sighting_count: int
    last_seen: datetime | None
    unmapped: dict[str, Any]
    modified: datetime


class IndicatorPage(BaseModel):
    items: list[IndicatorOut]
    total: int
    page: int
    per_page: int


def _out(ind: Indicator, now: datetime) -> IndicatorOut:
    return IndicatorOut(
        id=ind.id, stix_id=ind.stix_id, kind=ind.kind, value=ind.value, pattern=ind.pattern, name=ind.name,
        description=ind.description, tlp=ind.tlp, confidence=ind.confidence, valid_from=ind.valid_from,
        valid_until=ind.valid_until, indicator_types=ind.indicator_types or [], labels=ind.labels or [],
        kill_chain_phases=ind.kill_chain_phases or [], related=ind.related or [], source=ind.source,
        revoked=ind.revoked, live=ind.is_live(now), sighting_count=ind.sighting_count or 0, last_seen=ind.last_seen,
        unmapped=ind.extra or {}, modified=ind.modified)


def centre_of(request: Request) -> dict[str, Any]:
    """The centre's STIX identity (its id read once from the database, then kept on the app)."""
    state = request.app.state
    ident = getattr(state, "intel_centre_uuid", None)
    if ident is None:
        from commonwatch.db import read_only_engine, session_scope
        from commonwatch.intel.models import IntelState

        # The migration made it: a read that never waits behind the request's own write lock.
        with state.sessionmaker(bind=read_only_engine(state.engine)) as session:
            row = session.get(IntelState, services.CENTRE_KEY)
            ident = row.value if row is not None else None
        if ident is None:
            with session_scope(state.sessionmaker, actor="system intel") as session:
                ident = services.centre_uuid(session)
        state.intel_centre_uuid = ident
    s = state.settings
    return stix.centre_identity(s.centre_name, s.base_url, ident)


def _filter(q: str, kind: str, tlp: str, status: str, source: str) -> services.IndicatorFilter:
    return services.IndicatorFilter(q=q, kind=kind, tlp=tlp, status=status, source=source)


@router.get("/indicators", response_model=IndicatorPage)
def list_indicators(request: Request, q: SearchText = "", kind: str = "", tlp: str = "", status: str = "",
                    source: str = "", page: int = Query(1, ge=1), per_page: int = Query(50, ge=1, le=500),
                    principal: Principal = Depends(require("intel.read")), db: Session = Depends(get_db)):
    now = request.app.state.clock.now()
    rows, total = services.search_indicators(db, principal, _filter(q, kind, tlp, status, source), now,
                                             page=page, per_page=per_page)
    return IndicatorPage(items=[_out(r, now) for r in rows], total=total, page=page, per_page=per_page)


@router.post("/indicators", response_model=IndicatorOut, status_code=201)
def create_indicator(body: IndicatorIn, request: Request, principal: Principal = Depends(require("intel.write")),
                     db: Session = Depends(get_db)):
    now = request.app.state.clock.now()
    ind = services.save_indicator(db, principal, services.IndicatorForm(**body.model_dump()), now,
                                  centre_id=centre_of(request)["id"])
    db.commit()
    return _out(ind, now)


@router.get("/indicators/export")
def export_indicators(request: Request, format: str = "stix", q: SearchText = "", kind: str = "", tlp: str = "",
                      status: str = "", source: str = "", principal: Principal = Depends(require("intel.read")),
                      db: Session = Depends(get_db)) -> Response:
    """The selection as a STIX 2.1 bundle, MISP event JSON or CSV; only what the reader may see."""
    now = request.app.state.clock.now()
    rows = services.indicator_rows_for_export(db, principal, _filter(q, kind, tlp, status, source), now)
    return export_response(db, principal, rows, format, centre_of(request), now,
                           data_dir=request.app.state.settings.data_dir)


def export_response(db: Session, principal: Principal, rows: list[Indicator], format: str, centre: dict,
                    now: datetime, *, data_dir: Path | None = None) -> Response:
    """The selection in ``format``. The CSV lists every selected indicator (a working list); the
    STIX and MISP files are for sharing, so indicators decay has expired are left out of them."""
    import json

    stamp = now.strftime("%Y%m%d-%H%M%S")
    if format in ("stix", "misp"):
        rows = services.unexpired(db, rows, now, data_dir)
    if format == "csv":
        return Response(csv_text(services.CSV_HEADER, services.csv_rows(rows)), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="indicators-{stamp}.csv"'})
    if format == "misp":
        event = exchange.misp_event(db, rows, info=f"commonwatch indicators {stamp}", now=now)
        return Response(json.dumps({"Event": json.loads(event.to_json())}, ensure_ascii=False),
                        media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="indicators-{stamp}.misp.json"'})
    if format != "stix":
        raise Invalid("format", "must be stix, misp or csv")
    bundle = services.export_bundle(db, principal, [r.stix_id for r in rows], centre=centre)
    return Response(json.dumps(bundle, ensure_ascii=False), media_type="application/stix+json;version=2.1",
                    headers={"Content-Disposition": f'attachment; filename="indicators-{stamp}.stix.json"'})


@router.post("/indicators/import")
async def import_indicators(request: Request, format: str = "stix",
                            principal: Principal = Depends(require("intel.write")),
                            db: Session = Depends(get_db)) -> dict[str, Any]:
    """Import a STIX 2.1 bundle (or MISP event JSON with ``format=misp``) from the request body."""
    raw = await request.body()
    now = request.app.state.clock.now()
    origin = services.Origin("api", None, principal.user_id, may_update_any=True)
    if format == "misp":
        report, unmapped = exchange.import_misp_json(db, raw, origin, now)
        db.commit()
        return {**report.as_dict(), "unmapped": unmapped}
    report = services.import_bundle(db, raw, origin, now, request.app.state.settings.data_dir)
    db.commit()
    return report.as_dict()


@router.get("/indicators/{indicator_id}", response_model=IndicatorOut)
def get_indicator(indicator_id: int, request: Request, principal: Principal = Depends(require("intel.read")),
                  db: Session = Depends(get_db)):
    return _out(services.get_indicator(db, principal, indicator_id), request.app.state.clock.now())


@router.patch("/indicators/{indicator_id}", response_model=IndicatorOut)
def update_indicator(indicator_id: int, body: IndicatorIn, request: Request,
                     principal: Principal = Depends(require("intel.write")), db: Session = Depends(get_db)):
    now = request.app.state.clock.now()
    current = services.get_indicator(db, principal, indicator_id)
    data = body.model_dump(exclude_unset=True)
    form = services.IndicatorForm(**{**_form_of(db, current), **data})
    ind = services.save_indicator(db, principal, form, now, centre_id=centre_of(request)["id"], current=current)
    db.commit()
    return _out(ind, now)


def _form_of(db: Session, ind: Indicator) -> dict[str, Any]:
    from commonwatch.access.models import User

    orgs, users = services.shares_of(db, ind.stix_id)
    emails = [db.get(User, u).email for u in users]
    return {"value": ind.value, "kind": ind.kind, "name": ind.name, "description": ind.description, "tlp": ind.tlp,
            "confidence": ind.confidence, "valid_from": ind.valid_from, "valid_until": ind.valid_until,
            "indicator_types": ind.indicator_types or [], "labels": ind.labels or [],
            "kill_chain_phases": [p["phase_name"] if p["kill_chain_name"] == services.KILL_CHAIN else
                                  f"{p['kill_chain_name']}:{p['phase_name']}" for p in ind.kill_chain_phases or []],
            "source": ind.source, "share_orgs": orgs, "share_users": emails, "owner_org_id": ind.owner_org_id}


@router.post("/indicators/{indicator_id}/expire", response_model=IndicatorOut)
def expire(indicator_id: int, request: Request, principal: Principal = Depends(require("intel.write")),
           db: Session = Depends(get_db)):
    now = request.app.state.clock.now()
    ind = services.expire_indicator(db, principal, services.get_indicator(db, principal, indicator_id), now,
                                    centre_id=centre_of(request)["id"])
    db.commit()
    return _out(ind, now)


@router.get("/indicators/{indicator_id}/stix")
def indicator_bundle(indicator_id: int, request: Request, principal: Principal = Depends(require("intel.read")),
                     db: Session = Depends(get_db)) -> Response:
    import json

    ind = services.get_indicator(db, principal, indicator_id)
    bundle = services.export_bundle(db, principal, [ind.stix_id], centre=centre_of(request))
    return Response(json.dumps(bundle, ensure_ascii=False), media_type="application/stix+json;version=2.1")


# --- collections and partner feeds (centre staff) ----------------------------------------------------------

class CollectionIn(BaseModel):
    title: str
    description: str = ""
    alias: str | None = None
    max_tlp: str = "AMBER"
    default_tlp: str = "AMBER"
    readers: list[int] = Field(default_factory=list)
    writers: list[int] = Field(default_factory=list)


class PublishIn(BaseModel):
    stix_ids: list[str]


@router.get("/intel/collections")
def list_collections(principal: Principal = Depends(require("intel.read")),
                     db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    rows = db.scalars(scope(select(IntelCollection), principal, IntelCollection).order_by(IntelCollection.id))
    out = []
    for c in rows:
        can_read, can_write = services.rights(db, principal, c)
        out.append({"id": c.uuid, "title": c.title, "alias": c.alias, "max_tlp": c.max_tlp, "can_read": can_read,
                    "can_write": can_write, "url": f"/taxii2/api/collections/{c.uuid}/"})
    return out


@router.post("/intel/collections", status_code=201)
def create_collection(body: CollectionIn, principal: Principal = Depends(require("intel.exchange")),
                      db: Session = Depends(get_db)) -> dict[str, Any]:
    c = services.create_collection(db, body.title, description=body.description, alias=body.alias,
                                   max_tlp=body.max_tlp, default_tlp=body.default_tlp)
    for org_id in set(body.readers) | set(body.writers):
        services.grant(db, c, org_id, read=org_id in body.readers or org_id in body.writers,
                       write=org_id in body.writers)
    db.commit()
    return {"id": c.uuid, "title": c.title, "url": f"/taxii2/api/collections/{c.uuid}/"}


def _collection_for(db: Session, principal: Principal, collection_id: str) -> IntelCollection:
    c = db.scalar(scope(select(IntelCollection).where(
        (IntelCollection.uuid == collection_id) | (IntelCollection.alias == collection_id)), principal,
        IntelCollection))
    if c is None:
        raise NotFound("collection")
    return c


@router.post("/intel/collections/{collection_id}/publish")
def publish(collection_id: str, body: PublishIn, request: Request,
            principal: Principal = Depends(require("intel.exchange")), db: Session = Depends(get_db)) -> dict:
    c = _collection_for(db, principal, collection_id)
    visible = {r.stix_id for r in services._latest_visible(db, principal, body.stix_ids)}
    added = services.publish(db, c, [s for s in body.stix_ids if s in visible], request.app.state.clock.now())
    db.commit()
    return {"added": added, "not_found": sorted(set(body.stix_ids) - visible)}


class SubscriptionIn(BaseModel):
    name: str
    org_id: int
    collection_url: str
    username: str = ""
    secret: str = ""
    every_minutes: int = 60
    default_tlp: str = "AMBER"


class MispPeerIn(BaseModel):
    name: str
    org_id: int
    url: str
    api_key: str
    default_tlp: str = "AMBER"


@router.get("/intel/subscriptions")
def list_subscriptions(principal: Principal = Depends(require("intel.exchange")),
                       db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    return [{"id": s.id, "name": s.name, "org_id": s.org_id, "collection_url": s.collection_url,
             "added_after": s.added_after, "last_polled_at": s.last_polled_at, "last_error": s.last_error}
            for s in db.scalars(select(Subscription).order_by(Subscription.name))]


@router.post("/intel/subscriptions", status_code=201)
def create_subscription(body: SubscriptionIn, request: Request,
                        principal: Principal = Depends(require("intel.exchange")),
                        db: Session = Depends(get_db)) -> dict[str, Any]:
    outbound.check(body.collection_url, request.app.state.settings.outbound_allowlist, "collection_url")
    sub = Subscription(**body.model_dump())
    db.add(sub)
    db.commit()
    return {"id": sub.id, "name": sub.name}


@router.post("/intel/subscriptions/{subscription_id}/poll")
def poll(subscription_id: int, request: Request, principal: Principal = Depends(require("intel.exchange")),
         db: Session = Depends(get_db)) -> dict[str, Any]:
    if db.get(Subscription, subscription_id) is None:
        raise NotFound("subscription")
    db.rollback()  # end this request's transaction: the poll commits page by page in its own (SQLite: one writer)
    state = request.app.state
    return exchange.poll_subscription(state.sessionmaker, state.settings, state.clock, subscription_id)


@router.post("/intel/subscriptions/{subscription_id}/push")
def push(subscription_id: int, body: PublishIn, request: Request,
         principal: Principal = Depends(require("intel.exchange")), db: Session = Depends(get_db)) -> dict[str, Any]:
    sub = db.get(Subscription, subscription_id)
    if sub is None:
        raise NotFound("subscription")
    result = exchange.push_to_subscription(db, request.app.state.settings, sub, body.stix_ids,
                                           request.app.state.clock.now())
    db.commit()
    return result


@router.post("/intel/misp-peers", status_code=201)
def create_peer(body: MispPeerIn, request: Request, principal: Principal = Depends(require("intel.exchange")),
                db: Session = Depends(get_db)) -> dict[str, Any]:
    outbound.check(body.url, request.app.state.settings.outbound_allowlist, "url")
    peer = MispPeer(**body.model_dump())
    db.add(peer)
    db.commit()
    return {"id": peer.id, "name": peer.name}


@router.post("/intel/misp-peers/{peer_id}/pull")
def pull(peer_id: int, request: Request, principal: Principal = Depends(require("intel.exchange")),
         db: Session = Depends(get_db)) -> dict[str, Any]:
    peer = db.get(MispPeer, peer_id)
    if peer is None:
        raise NotFound("MISP peer")
    result = exchange.misp_pull(db, request.app.state.settings, peer, request.app.state.clock.now())
    db.commit()
    return result


@router.post("/intel/misp-peers/{peer_id}/push")
def misp_push(peer_id: int, body: PublishIn, request: Request,
              principal: Principal = Depends(require("intel.exchange")), db: Session = Depends(get_db)) -> dict:
    peer = db.get(MispPeer, peer_id)
    if peer is None:
        raise NotFound("MISP peer")
    result = exchange.misp_push(db, request.app.state.settings, peer, body.stix_ids, info="commonwatch indicators",
                                now=request.app.state.clock.now())
    db.commit()
    return result
