"""REST: organisations, their networks, AS numbers, domains and contacts; lookups, overlaps,
sectors, import and export."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.constituency import services as registry
from commonwatch.constituency import transfer
from commonwatch.constituency.models import Contact, Domain, Network, OrgAsn
from commonwatch.db import scope
from commonwatch.errors import Invalid
from commonwatch.i18n import _, pick
from commonwatch.web.deps import SearchText, authorize, get_db, require

router = APIRouter(tags=["constituency"])


class OrgIn(BaseModel):
    name: str
    kind: str
    name_local: str = ""
    sector: str = "none"
    country: str = "CN"
    region: str = ""
    parent_id: int | None = None
    notes: str = ""


class OrgPatch(BaseModel):
    name: str | None = None
    kind: str | None = None
    name_local: str | None = None
    sector: str | None = None
    country: str | None = None
    region: str | None = None
    parent_id: int | None = None
    notes: str | None = None


class OrgOut(BaseModel):
    id: int
    name: str
    name_local: str
    kind: str
    sector: str
    country: str
    region: str
    parent_id: int | None
    notes: str
    cii: bool
    created_at: datetime
    updated_at: datetime


class OrgPage(BaseModel):
    items: list[OrgOut]
    total: int
    page: int
    per_page: int


class NetworkIn(BaseModel):
    cidr: str
    description: str = ""


class NetworkOut(BaseModel):
    id: int
    org_id: int
    cidr: str
    family: int
    prefixlen: int
    description: str


class AsnIn(BaseModel):
    asn: str | int
    description: str = ""


class AsnOut(BaseModel):
    id: int
    org_id: int
    asn: int
    description: str


class DomainIn(BaseModel):
    name: str


class DomainOut(BaseModel):
    id: int
    org_id: int
    name: str


class ContactIn(BaseModel):
    email: str
    name: str = ""
    role: str = "abuse"
    language: str = "zh-CN"
    phone: str = ""
    pgp_key: str = ""
    notices: list[str] = Field(default_factory=lambda: ["early-warning", "incidents", "advisories", "reports"])
    active: bool = True


class ContactPatch(BaseModel):
    email: str | None = None
    name: str | None = None
    role: str | None = None
    language: str | None = None
    phone: str | None = None
    pgp_key: str | None = None
    notices: list[str] | None = None
    active: bool | None = None


class ContactOut(BaseModel):
    id: int
    org_id: int
    email: str
    name: str
    role: str
    language: str
    phone: str
    pgp_fingerprint: str
    pgp_expires_at: datetime | None
    notices: list[str]
    active: bool


class MatchOut(BaseModel):
    org_id: int
    name: str
    by: str


class OverlapOut(BaseModel):
    outer_org_id: int
    outer_cidr: str
    inner_org_id: int
    inner_cidr: str


class SectorOut(BaseModel):
    code: str
    name: str


class ImportOut(BaseModel):
    applied: bool
    created: int
    updated: int
    errors: list[dict[str, Any]]


def _org_out(org) -> OrgOut:
    return OrgOut(id=org.id, name=org.name, name_local=org.name_local, kind=org.kind, sector=org.sector,
                  country=org.country, region=org.region, parent_id=org.parent_id, notes=org.notes, cii=org.is_cii,
                  created_at=org.created_at, updated_at=org.updated_at)


def _now(request: Request) -> datetime:
    return request.app.state.clock.now()


@router.get("/sectors", response_model=list[SectorOut])
def sectors(principal: Principal = Depends(require("registry.read"))):
    return [SectorOut(code=s["code"], name=pick(s["en"], s["zh"])) for s in registry.sector_table()]


@router.get("/organisations", response_model=OrgPage)
def list_orgs(q: SearchText = "", kind: str = "", sector: str = "", country: str = "", cii: bool | None = None,
              page: int = Query(1, ge=1), per_page: int = Query(50, ge=1, le=500),
              principal: Principal = Depends(require("registry.read")), db: Session = Depends(get_db)):
    rows, total = registry.search_orgs(db, principal, registry.OrgFilter(q, kind, sector, country, cii),
                                       page=page, per_page=per_page)
    return OrgPage(items=[_org_out(o) for o in rows], total=total, page=page, per_page=per_page)


@router.post("/organisations", response_model=OrgOut, status_code=201)
def create_org(body: OrgIn, principal: Principal = Depends(require("registry.write")), db: Session = Depends(get_db)):
    org = registry.create_org(db, body.model_dump())
    db.commit()
    return _org_out(org)


@router.get("/organisations/export")
def export_orgs(format: str = Query("json", pattern="^(json|csv)$"),
                principal: Principal = Depends(require("registry.read")), db: Session = Depends(get_db)) -> Response:
    if format == "csv":
        return Response(transfer.export_csv(db, principal), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="organisations.csv"'})
    return Response(transfer.export_json(db, principal), media_type="application/json",
                    headers={"Content-Disposition": 'attachment; filename="organisations.json"'})


@router.post("/organisations/import", response_model=ImportOut)
async def import_orgs(request: Request, format: str | None = Query(None, pattern="^(json|csv)$"),
                      partial: bool = False, principal: Principal = Depends(require("registry.write")),
                      db: Session = Depends(get_db)):
    """Body: the CSV or JSON file itself. Nothing changes if a row is bad, unless ``partial``."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "")
    fmt = format or ("csv" if "csv" in content_type else "json" if "json" in content_type else None)
    records, errors = transfer.read_file(raw, fmt)
    report = transfer.import_records(db, records, errors, now=_now(request), partial=partial, source="api")
    if report.applied:
        db.commit()
    body = ImportOut(applied=report.applied, created=report.created, updated=report.updated,
                     errors=[{"line": e.line, "field": e.field, "reason": e.reason} for e in report.errors])
    if report.errors and not report.applied:
        return Response(body.model_dump_json(), status_code=422, media_type="application/json")
    return body


@router.get("/organisations/{org_id}", response_model=OrgOut)
def get_org(org_id: int, principal: Principal = Depends(require("registry.read")), db: Session = Depends(get_db)):
    return _org_out(registry.get_org(db, principal, org_id))


@router.patch("/organisations/{org_id}", response_model=OrgOut)
def patch_org(org_id: int, body: OrgPatch, principal: Principal = Depends(require("registry.write")),
              db: Session = Depends(get_db)):
    org = registry.update_org(db, registry.get_org(db, principal, org_id), body.model_dump(exclude_unset=True))
    db.commit()
    return _org_out(org)


@router.delete("/organisations/{org_id}", status_code=204)
def delete_org(org_id: int, principal: Principal = Depends(require("registry.write")),
               db: Session = Depends(get_db)) -> Response:
    db.delete(registry.get_org(db, principal, org_id))
    db.commit()
    return Response(status_code=204)


def _children(db: Session, principal: Principal, model, org_id: int):
    registry.get_org(db, principal, org_id)
    return db.scalars(scope(select(model), principal, model).where(model.org_id == org_id).order_by(model.id))


@router.get("/organisations/{org_id}/networks", response_model=list[NetworkOut])
def list_networks(org_id: int, principal: Principal = Depends(require("registry.read")),
                  db: Session = Depends(get_db)):
    return [NetworkOut.model_validate(n, from_attributes=True) for n in _children(db, principal, Network, org_id)]


@router.post("/organisations/{org_id}/networks", response_model=NetworkOut, status_code=201)
def add_network(org_id: int, body: NetworkIn, principal: Principal = Depends(require("registry.write")),
                db: Session = Depends(get_db)):
    net = registry.add_network(db, registry.get_org(db, principal, org_id), body.cidr, body.description)
    db.commit()
    return NetworkOut.model_validate(net, from_attributes=True)


@router.delete("/networks/{network_id}", status_code=204)
def delete_network(network_id: int, principal: Principal = Depends(require("registry.write")),
                   db: Session = Depends(get_db)) -> Response:
    db.delete(registry.get_child(db, principal, Network, network_id))
    db.commit()
    return Response(status_code=204)


@router.get("/organisations/{org_id}/asns", response_model=list[AsnOut])
def list_asns(org_id: int, principal: Principal = Depends(require("registry.read")), db: Session = Depends(get_db)):
    return [AsnOut.model_validate(a, from_attributes=True) for a in _children(db, principal, OrgAsn, org_id)]


@router.post("/organisations/{org_id}/asns", response_model=AsnOut, status_code=201)
def add_asn(org_id: int, body: AsnIn, principal: Principal = Depends(require("registry.write")),
            db: Session = Depends(get_db)):
    row = registry.add_asn(db, registry.get_org(db, principal, org_id), body.asn, body.description)
    db.commit()
    return AsnOut.model_validate(row, from_attributes=True)


@router.delete("/asns/{asn_id}", status_code=204)
def delete_asn(asn_id: int, principal: Principal = Depends(require("registry.write")),
               db: Session = Depends(get_db)) -> Response:
    db.delete(registry.get_child(db, principal, OrgAsn, asn_id))
    db.commit()
    return Response(status_code=204)


@router.get("/organisations/{org_id}/domains", response_model=list[DomainOut])
def list_domains(org_id: int, principal: Principal = Depends(require("registry.read")),
                 db: Session = Depends(get_db)):
    return [DomainOut.model_validate(d, from_attributes=True) for d in _children(db, principal, Domain, org_id)]


@router.post("/organisations/{org_id}/domains", response_model=DomainOut, status_code=201)
def add_domain(org_id: int, body: DomainIn, principal: Principal = Depends(require("registry.write")),
               db: Session = Depends(get_db)):
    row = registry.add_domain(db, registry.get_org(db, principal, org_id), body.name)
    db.commit()
    return DomainOut.model_validate(row, from_attributes=True)


@router.delete("/domains/{domain_id}", status_code=204)
def delete_domain(domain_id: int, principal: Principal = Depends(require("registry.write")),
                  db: Session = Depends(get_db)) -> Response:
    db.delete(registry.get_child(db, principal, Domain, domain_id))
    db.commit()
    return Response(status_code=204)


@router.get("/organisations/{org_id}/contacts", response_model=list[ContactOut])
def list_contacts(org_id: int, principal: Principal = Depends(require("registry.read")),
                  db: Session = Depends(get_db)):
    return [ContactOut.model_validate(c, from_attributes=True) for c in _children(db, principal, Contact, org_id)]


@router.post("/organisations/{org_id}/contacts", response_model=ContactOut, status_code=201)
def add_contact(org_id: int, body: ContactIn, request: Request,
                principal: Principal = Depends(require("contacts.write")), db: Session = Depends(get_db)):
    org = registry.get_org(db, principal, org_id)
    authorize(principal, "contacts.write", org.id)
    contact = registry.add_contact(db, org, body.model_dump(), _now(request))
    db.commit()
    return ContactOut.model_validate(contact, from_attributes=True)


@router.get("/contacts/{contact_id}", response_model=ContactOut)
def get_contact(contact_id: int, principal: Principal = Depends(require("registry.read")),
                db: Session = Depends(get_db)):
    return ContactOut.model_validate(registry.get_child(db, principal, Contact, contact_id), from_attributes=True)


@router.patch("/contacts/{contact_id}", response_model=ContactOut)
def patch_contact(contact_id: int, body: ContactPatch, request: Request,
                  principal: Principal = Depends(require("contacts.write")), db: Session = Depends(get_db)):
    contact = registry.get_child(db, principal, Contact, contact_id)
    authorize(principal, "contacts.write", contact.org_id)
    registry.update_contact(db, contact, body.model_dump(exclude_unset=True), _now(request))
    db.commit()
    return ContactOut.model_validate(contact, from_attributes=True)


@router.delete("/contacts/{contact_id}", status_code=204)
def delete_contact(contact_id: int, principal: Principal = Depends(require("contacts.write")),
                   db: Session = Depends(get_db)) -> Response:
    contact = registry.get_child(db, principal, Contact, contact_id)
    authorize(principal, "contacts.write", contact.org_id)
    db.delete(contact)
    db.commit()
    return Response(status_code=204)


@router.get("/constituency/lookup", response_model=list[MatchOut])
def lookup(ip: str | None = None, asn: str | None = None, domain: str | None = None,
           principal: Principal = Depends(require("registry.read")), db: Session = Depends(get_db)):
    """Who owns an IP address (most specific network), an AS number, or a domain (longest suffix)."""
    if not (ip or asn or domain):
        raise Invalid("ip", _("give an IP address, an AS number or a domain"))
    return [MatchOut(org_id=m.org.id, name=m.org.name, by=m.by)
            for m in registry.lookup(db, principal, ip=ip, asn=asn, domain=domain)]


@router.get("/constituency/overlaps", response_model=list[OverlapOut])
def overlaps(principal: Principal = Depends(require("registry.read")), db: Session = Depends(get_db)):
    """Networks registered to more than one organisation (the most specific one wins when matching)."""
    return [OverlapOut(outer_org_id=o.outer.org_id, outer_cidr=o.outer.cidr, inner_org_id=o.inner.org_id,
                       inner_cidr=o.inner.cidr) for o in registry.find_overlaps(db, principal)]
