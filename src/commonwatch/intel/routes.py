"""The TAXII 2.1 server under ``/taxii2/``: discovery, one API root (``/taxii2/api/``), collections,
objects (GET with ``added_after``, ``match[...]``, ``limit``/``next``; POST of envelopes answered
with a status resource), an object and its versions, the manifest, and status.

Every read goes through ``db.scope`` (TLP) and the collection's ceiling and access rights; a
collection a reader may not use answers 404 so its existence does not leak. An indicator that has
expired by decay (``rules/indicator_decay.yaml``, or its own valid_until) is not served: not in
objects, an object, its versions nor the manifest (:func:`_page` leaves it out and reads on).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased
from starlette.concurrency import run_in_threadpool

from commonwatch.access.principal import Principal
from commonwatch.db import GroupCommit, scope, writer_turn
from commonwatch.errors import CommonwatchError, Invalid
from commonwatch.intel import services, stix
from commonwatch.intel import tlp as tlpmod
from commonwatch.intel.models import CollectionEntry, IntelCollection, IntelObject, TaxiiStatus
from commonwatch.web.deps import CsrfFailed, LoginRequired, current_principal, get_db, writes_apart

TAXII = "application/taxii+json;version=2.1"
STIX_MEDIA = "application/stix+json;version=2.1"
MAX_CONTENT_LENGTH = 10 * 1024 * 1024
BODY_LIMITS = {"/taxii2/": MAX_CONTENT_LENGTH}
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
ROOT = "/taxii2/api"


class TaxiiError(Exception):
    def __init__(self, status: int, title: str, description: str = "", headers: dict[str, str] | None = None):
        self.status, self.title, self.description, self.headers = status, title, description, headers or {}
        super().__init__(title)


def taxii_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = body if isinstance(body, str | bytes) else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(content, status_code=status, media_type=TAXII, headers=headers)


def error_response(exc: TaxiiError) -> Response:
    return taxii_response({"title": exc.title, "description": exc.description, "http_status": str(exc.status)},
                          exc.status, exc.headers)


class TaxiiRoute(APIRoute):
    """Answers every failure, including authentication, as a TAXII error message resource."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except TaxiiError as exc:
                return error_response(exc)
            except LoginRequired as exc:
                return error_response(TaxiiError(401, "Unauthorized", exc.reason, {"WWW-Authenticate": "Bearer"}))
            except CsrfFailed:
                return error_response(TaxiiError(403, "Forbidden", "CSRF token missing or invalid"))
            except CommonwatchError as exc:
                if exc.status_code == 404:
                    return error_response(TaxiiError(404, "Not Found", "not found"))
                return error_response(TaxiiError(exc.status_code, type(exc).__name__, str(exc)))

        return wrapped


router = APIRouter(route_class=TaxiiRoute, include_in_schema=False)
ROUTERS = [router]


def _accepts_taxii(request: Request) -> None:
    accept = request.headers.get("accept", "")
    if not accept:
        return
    for part in accept.split(","):
        media = part.split(";q=")[0].replace(" ", "").lower()
        if media in ("*/*", "application/*", "application/taxii+json", "application/taxii+json;version=2.1"):
            return
    raise TaxiiError(406, "Not Acceptable", f"this server speaks {TAXII}")


def taxii_principal(request: Request, principal: Principal | None = Depends(current_principal)) -> Principal:
    _accepts_taxii(request)
    if principal is None:
        raise LoginRequired("authentication required (Authorization: Bearer <token>)", bearer=True)
    if not principal.has("intel.read"):
        raise TaxiiError(403, "Forbidden", "your role may not read intelligence")
    return principal


def _now(request: Request) -> datetime:
    return request.app.state.clock.now()


def _ts(value: datetime) -> str:
    """TAXII timestamps carry microseconds, so date_added stays strictly ordered."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _collection(db: Session, principal: Principal, collection_id: str) -> IntelCollection:
    stmt = select(IntelCollection).where(or_(IntelCollection.uuid == collection_id,
                                             IntelCollection.alias == collection_id))
    row = db.scalar(scope(stmt, principal, IntelCollection))
    if row is None:
        raise TaxiiError(404, "Not Found", "no such collection")
    return row


def _collection_resource(db: Session, principal: Principal, c: IntelCollection) -> dict[str, Any]:
    can_read, can_write = services.rights(db, principal, c)
    out = {"id": c.uuid, "title": c.title, "description": c.description, "can_read": can_read,
           "can_write": can_write, "media_types": [STIX_MEDIA]}
    if c.alias:
        out["alias"] = c.alias
    return out


@router.get("/taxii2/")
def discovery(request: Request, principal: Principal = Depends(taxii_principal)) -> Response:
    settings = request.app.state.settings
    base = str(request.base_url).rstrip("/")
    return taxii_response({
        "title": f"{settings.centre_name} TAXII 2.1", "description": "commonwatch intelligence exchange",
        "contact": settings.mail_from, "default": f"{base}{ROOT}/", "api_roots": [f"{base}{ROOT}/"]})


@router.get(f"{ROOT}/")
def api_root(request: Request, principal: Principal = Depends(taxii_principal)) -> Response:
    settings = request.app.state.settings
    return taxii_response({"title": settings.centre_name, "description": "indicators, sightings and context",
                           "versions": [TAXII], "max_content_length": MAX_CONTENT_LENGTH})


@router.get(f"{ROOT}/collections/")
def collections(principal: Principal = Depends(taxii_principal), db: Session = Depends(get_db)) -> Response:
    rows = db.scalars(scope(select(IntelCollection), principal, IntelCollection).order_by(IntelCollection.id)).all()
    items = [_collection_resource(db, principal, c) for c in rows]
    return taxii_response({"collections": items} if items else {})


@router.get(f"{ROOT}/collections/{{collection_id}}/")
def collection(collection_id: str, principal: Principal = Depends(taxii_principal),
               db: Session = Depends(get_db)) -> Response:
    return taxii_response(_collection_resource(db, principal, _collection(db, principal, collection_id)))


def _readable(db: Session, principal: Principal, collection_id: str) -> IntelCollection:
    c = _collection(db, principal, collection_id)
    can_read, _w = services.rights(db, principal, c)
    if not can_read:
        raise TaxiiError(403, "Forbidden", "you may not read this collection")
    return c


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise TaxiiError(400, "Bad Request", "limit must be a positive integer") from None
    if value <= 0:
        raise TaxiiError(400, "Bad Request", "limit must be a positive integer")
    return min(value, MAX_LIMIT)


def _match(request: Request, name: str) -> list[str]:
    values: list[str] = []
    for raw in request.query_params.getlist(f"match[{name}]"):
        values += [v.strip() for v in raw.split(",") if v.strip()]
    return values


def _parse_ts(value: str, name: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise TaxiiError(400, "Bad Request", f"{name} is not a timestamp: {value}") from None


def _filtered(request: Request, principal: Principal, c: IntelCollection, columns: tuple, *,
              object_id: str | None = None, default_version: str = "last"):
    """The entries of a collection a reader may see, with the TAXII filters of the request."""
    stmt = (select(*columns).select_from(CollectionEntry)
            .join(IntelObject, IntelObject.id == CollectionEntry.object_id)
            .where(CollectionEntry.collection_id == c.id))
    stmt = scope(stmt, principal, IntelObject).where(tlpmod.at_most(IntelObject.tlp, c.max_tlp))
    params = request.query_params
    if params.get("added_after"):
        stmt = stmt.where(CollectionEntry.date_added > _parse_ts(params["added_after"], "added_after"))
    if params.get("next"):
        try:
            stmt = stmt.where(CollectionEntry.id > int(params["next"]))
        except ValueError:
            raise TaxiiError(400, "Bad Request", "next is not a value this server gave") from None
    ids = [object_id] if object_id else _match(request, "id")
    if ids:
        stmt = stmt.where(IntelObject.stix_id.in_(ids))
    types = _match(request, "type")
    if types:
        stmt = stmt.where(IntelObject.type.in_(types))
    specs = _match(request, "spec_version")
    if specs:
        stmt = stmt.where(IntelObject.spec_version.in_(specs))
    versions = _match(request, "version") or [default_version]
    if "all" not in versions:
        conds = []
        stamps = [_parse_ts(v, "match[version]") for v in versions if v not in ("last", "first")]
        if "last" in versions:
            conds.append(IntelObject.latest.is_(True))
        if "first" in versions:
            older = aliased(IntelObject)
            first = select(func.min(older.version)).where(older.stix_id == IntelObject.stix_id).scalar_subquery()
            conds.append(IntelObject.version == first)
        if stamps:
            conds.append(IntelObject.version.in_(stamps))
        stmt = stmt.where(or_(*conds))
    return stmt.order_by(CollectionEntry.id)


#: rows read at most per round when expired indicators are left out of a page
_MAX_ROUND = 5000


def _page(db: Session, request: Request, stmt, limit: int) -> tuple[list[Any], bool]:
    """One page of entries (``stmt`` is ordered by entry id and selects ``id``, ``stix_id`` and
    ``type``) without the indicators decay has expired; reads on past them until the page is full."""
    from commonwatch.intel import decay

    now, data_dir = _now(request), request.app.state.settings.data_dir
    kept: list[Any] = []
    after: int | None = None
    batch = limit + 1
    while True:
        query = stmt if after is None else stmt.where(CollectionEntry.id > after)
        rows = db.execute(query.limit(batch)).all()
        expired = decay.expired_stix_ids(db, list({r.stix_id for r in rows if r.type == "indicator"}), now,
                                         data_dir)
        kept += [r for r in rows if r.stix_id not in expired]
        if len(kept) > limit or len(rows) < batch:
            return kept[:limit], len(kept) > limit
        after = rows[-1].id
        batch = min(batch * 2, _MAX_ROUND)


def _page_headers(rows: list[Any]) -> dict[str, str]:
    if not rows:
        return {}
    return {"X-TAXII-Date-Added-First": _ts(rows[0].date_added), "X-TAXII-Date-Added-Last": _ts(rows[-1].date_added)}


def _envelope(rows: list[Any], more: bool) -> str:
    head = '{"more":' + ("true" if more else "false")
    if more:
        head += f',"next":"{rows[-1].id}"'
    if not rows:
        return head + "}"
    return head + ',"objects":[' + ",".join(r.body for r in rows) + "]}"


_ENTRY_COLUMNS = (CollectionEntry.id, CollectionEntry.date_added, IntelObject.stix_id, IntelObject.type,
                  IntelObject.body)


@router.get(f"{ROOT}/collections/{{collection_id}}/objects/")
def get_objects(collection_id: str, request: Request, principal: Principal = Depends(taxii_principal),
                db: Session = Depends(get_db)) -> Response:
    c = _readable(db, principal, collection_id)
    rows, more = _page(db, request, _filtered(request, principal, c, _ENTRY_COLUMNS), _limit(request))
    return taxii_response(_envelope(rows, more), headers=_page_headers(rows))


@router.get(f"{ROOT}/collections/{{collection_id}}/manifest/")
def manifest(collection_id: str, request: Request, principal: Principal = Depends(taxii_principal),
             db: Session = Depends(get_db)) -> Response:
    c = _readable(db, principal, collection_id)
    columns = (CollectionEntry.id, CollectionEntry.date_added, IntelObject.stix_id, IntelObject.type,
               IntelObject.version, IntelObject.spec_version)
    rows, more = _page(db, request, _filtered(request, principal, c, columns), _limit(request))
    body: dict[str, Any] = {"more": more}
    if more:
        body["next"] = str(rows[-1].id)
    if rows:
        body["objects"] = [{"id": r.stix_id, "date_added": _ts(r.date_added), "version": stix.timestamp(r.version),
                            "media_type": f"application/stix+json;version={r.spec_version}"} for r in rows]
    return taxii_response(body, headers=_page_headers(rows))


@router.get(f"{ROOT}/collections/{{collection_id}}/objects/{{object_id}}/")
def get_object(collection_id: str, object_id: str, request: Request,
               principal: Principal = Depends(taxii_principal), db: Session = Depends(get_db)) -> Response:
    c = _readable(db, principal, collection_id)
    rows, more = _page(db, request, _filtered(request, principal, c, _ENTRY_COLUMNS, object_id=object_id),
                       _limit(request))
    if not rows and not request.query_params.get("next"):
        raise TaxiiError(404, "Not Found", "no such object in this collection")
    return taxii_response(_envelope(rows, more), headers=_page_headers(rows))


@router.get(f"{ROOT}/collections/{{collection_id}}/objects/{{object_id}}/versions/")
def object_versions(collection_id: str, object_id: str, request: Request,
                    principal: Principal = Depends(taxii_principal), db: Session = Depends(get_db)) -> Response:
    c = _readable(db, principal, collection_id)
    columns = (CollectionEntry.id, CollectionEntry.date_added, IntelObject.stix_id, IntelObject.type,
               IntelObject.version)
    stmt = _filtered(request, principal, c, columns, object_id=object_id, default_version="all")
    rows, more = _page(db, request, stmt, _limit(request))
    if not rows and not request.query_params.get("next"):
        raise TaxiiError(404, "Not Found", "no such object in this collection")
    body: dict[str, Any] = {"more": more, "versions": [stix.timestamp(r.version) for r in rows]}
    if more:
        body["next"] = str(rows[-1].id)
    return taxii_response(body, headers=_page_headers(rows))


def _success_message(r: services.ObjectResult) -> str:
    message = r.status
    if r.unmapped:
        message += "; kept but not mapped to columns: " + ", ".join(r.unmapped)
    return message


def _status_resource(s: TaxiiStatus) -> dict[str, Any]:
    return {"id": s.uuid, "status": s.status, "request_timestamp": _ts(s.request_timestamp),
            "total_count": s.total_count, "success_count": s.success_count, "successes": s.successes,
            "failure_count": s.failure_count, "failures": s.failures, "pending_count": s.pending_count,
            "pendings": []}


@router.post(f"{ROOT}/collections/{{collection_id}}/objects/")
@writes_apart
async def add_objects(collection_id: str, request: Request, principal: Principal = Depends(taxii_principal),
                      db: Session = Depends(get_db)) -> Response:
    """Add an envelope's objects; 202 with the status resource once they are stored (committed).

    The body is read and every object validated and converted before the write lock is taken, and
    all of it runs outside the event loop, so reads are never held up by a write."""
    raw = await request.body()
    return await run_in_threadpool(_add_envelope, request, principal, db, collection_id, raw)


def _add_envelope(request: Request, principal: Principal, db: Session, collection_id: str, raw: bytes) -> Response:
    c = _collection(db, principal, collection_id)
    _can_read, can_write = services.rights(db, principal, c)
    if not can_write:
        raise TaxiiError(403, "Forbidden", "you may not add objects to this collection")
    content_type = request.headers.get("content-type", "").replace(" ", "").lower()
    if not content_type.startswith("application/taxii+json") or (
            "version=" in content_type and "version=2.1" not in content_type):
        raise TaxiiError(415, "Unsupported Media Type", f"send {TAXII}")
    state = request.app.state
    try:
        envelope = services.parse_json_document(raw, "envelope")
    except Invalid as exc:
        services.quarantine(state.settings.data_dir, raw, str(exc), "taxii")
        raise TaxiiError(400, "Bad Request", str(exc)) from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("objects", []), list):
        raise TaxiiError(400, "Bad Request", "the body must be a TAXII envelope: {\"objects\": [...]}")
    now = _now(request)
    direct = services.user_direct_orgs(db, principal.user_id)
    origin = services.Origin(
        source=f"taxii:{c.alias or c.uuid}", owner_org_id=None if principal.is_staff else (min(direct) if direct
                                                                                            else None),
        author_user_id=principal.user_id, default_tlp=c.default_tlp, may_update_any=principal.is_staff,
        accept_red=False, ceiling=c.max_tlp)
    work = Envelope(services.check_objects(envelope.get("objects", []), origin), origin, now, c.id,
                    principal.user_id, principal.actor)
    db.rollback()  # the request's read ends here; the write is the group commit's
    result = _writes(state).submit(work)
    if isinstance(result, TaxiiError):
        raise result
    return taxii_response(result, 202)


@dataclass(frozen=True)
class Envelope:
    """One POSTed envelope, validated and converted, waiting to be stored."""

    checked: services.CheckedObjects
    origin: services.Origin
    now: datetime
    collection_pk: int
    user_id: int | None
    actor: str


_WRITES_GUARD = threading.Lock()


def _writes(state: Any) -> GroupCommit:
    """The app's group commit of envelopes: concurrent POSTs share one transaction and one commit."""
    with _WRITES_GUARD:
        if getattr(state, "taxii_writes", None) is None:
            state.taxii_writes = GroupCommit(lambda works: _store_envelopes(state, works))
        return state.taxii_writes


def _store_envelopes(state: Any, works: list[Envelope]) -> list[dict[str, Any] | TaxiiError]:
    """Store the envelopes and their status resources in one transaction; each one's status
    resource (or the error to answer), in order. Only after the commit does anyone answer 202."""
    out: list[TaxiiStatus | TaxiiError] = []
    # Envelopes of this process store one after another, waiting on a lock rather than in SQLite's busy handler.
    with writer_turn(state.engine), state.sessionmaker() as session:
        session.info["clock"] = state.clock
        # Consecutive envelopes of one sender into one collection are stored as one: one set of
        # statements and one audit entry (with the sender as the actor), one status resource each.
        for (collection_pk, origin, actor), group in groupby(works, key=lambda w: (w.collection_pk, w.origin, w.actor)):
            group = list(group)
            session.info["actor"] = actor
            target = session.get(IntelCollection, collection_pk)
            if target is None:  # removed while the envelopes were being checked
                out.extend(TaxiiError(404, "Not Found", "no such collection") for _w in group)
                continue
            reports = services.store_checked_together(session, [w.checked for w in group], origin,
                                                      max(w.now for w in group), target)
            for work, report in zip(group, reports, strict=True):
                status = _status_row(report, work)
                session.add(status)
                out.append(status)
            session.flush()
        session.commit()  # durable: only now is each envelope's status "complete"
    return [r if isinstance(r, TaxiiError) else _status_resource(r) for r in out]


def _status_row(report: services.StoreReport, work: Envelope) -> TaxiiStatus:
    successes = [{"id": r.stix_id, "version": r.version, "message": _success_message(r)}
                 for r in report.results if r.status != "failed"]
    failures = [{"id": r.stix_id or f"object {r.index}", "message": r.reason} | (
        {"version": r.version} if r.version else {}) for r in report.failures]
    return TaxiiStatus(uuid=str(uuid.uuid4()), collection_id=work.collection_pk, user_id=work.user_id,
                       status="complete", request_timestamp=work.now, total_count=len(report.results),
                       success_count=len(successes), failure_count=len(failures), pending_count=0,
                       successes=successes, failures=failures)


@router.get(f"{ROOT}/status/{{status_id}}/")
def get_status(status_id: str, principal: Principal = Depends(taxii_principal),
               db: Session = Depends(get_db)) -> Response:
    stmt = select(TaxiiStatus).where(TaxiiStatus.uuid == status_id)
    if not principal.is_staff:
        stmt = stmt.where(TaxiiStatus.user_id == principal.user_id)
    row = db.scalar(stmt)
    if row is None:
        raise TaxiiError(404, "Not Found", "no such status")
    return taxii_response(_status_resource(row))
