"""REST: the partner directory (profiles, agreements, import/export), assistance requests (need-to-know,
every view audited), and the counts the statistics work reads."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.constituency.models import Organisation
from commonwatch.cooperation import services as coop
from commonwatch.cooperation.models import AssistanceRequest, PartnerAgreement, PartnerProfile
from commonwatch.errors import Invalid
from commonwatch.exports import csv_text
from commonwatch.web.deps import get_db, require, writes

router = APIRouter(tags=["cooperation"])


def _now(request: Request) -> datetime:
    return request.app.state.clock.now()


def _dd(request: Request):
    return request.app.state.settings.data_dir


class PartnerIn(BaseModel):
    name: str
    country: str
    name_local: str = ""
    region: str = ""
    kind: str = "national"
    short_name: str = ""
    first_member: bool = False
    apcert_member: bool = False
    ti_level: str = ""
    constituency: str = ""
    hours: str = ""
    timezone: str = ""
    emergency_contact: str = ""
    rfc2350_url: str = ""
    channels: list[str] = Field(default_factory=list)


class ProfilePatch(BaseModel):
    kind: str | None = None
    short_name: str | None = None
    first_member: bool | None = None
    apcert_member: bool | None = None
    ti_level: str | None = None
    constituency: str | None = None
    hours: str | None = None
    timezone: str | None = None
    emergency_contact: str | None = None
    rfc2350_url: str | None = None
    channels: list[str] | None = None


class AgreementIn(BaseModel):
    title: str
    signed_on: str
    scope: str = ""
    renews_on: str | None = None


def profile_out(p: PartnerProfile | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"kind": p.kind, "short_name": p.short_name, "first_member": p.first_member,
            "apcert_member": p.apcert_member, "ti_level": p.ti_level or None, "constituency": p.constituency,
            "hours": p.hours, "timezone": p.timezone, "emergency_contact": p.emergency_contact,
            "rfc2350_url": p.rfc2350_url, "channels": list(p.channels or [])}


def agreement_out(a: PartnerAgreement) -> dict[str, Any]:
    return {"id": a.id, "org_id": a.org_id, "title": a.title, "signed_on": a.signed_on.isoformat(),
            "scope": a.scope, "renews_on": a.renews_on.isoformat() if a.renews_on else None}


def partner_out(org: Organisation, p: PartnerProfile | None) -> dict[str, Any]:
    return {"org_id": org.id, "name": org.name, "name_local": org.name_local, "country": org.country,
            "region": org.region, "profile": profile_out(p), "pgp_keys": coop.partner_keys(org)}


@router.get("/cooperation/partners")
def partners_list(country: str | None = None, region: str | None = None,
                  principal: Principal = Depends(require("cooperation.read")),
                  db: Session = Depends(get_db)) -> dict[str, Any]:
    rows = coop.list_partners(db, principal, country=country, region=region)
    return {"items": [partner_out(o, p) for o, p in rows], "counts": coop.directory_counts(db, principal)}


@router.post("/cooperation/partners", status_code=201)
def partner_create(body: PartnerIn, principal: Principal = Depends(require("cooperation.write")),
                   db: Session = Depends(get_db)) -> dict[str, Any]:
    org = coop.create_partner(db, principal, body.model_dump())
    db.commit()
    return partner_out(org, coop.profile_of(db, org))


@router.get("/cooperation/partners/export")
@writes
def partners_export(format: str = Query("json", description="json or csv"),
                    principal: Principal = Depends(require("cooperation.read")),
                    db: Session = Depends(get_db)) -> Response:
    """The directory as CSV (spreadsheet-safe) or JSON (with agreements); the export is audited."""
    from commonwatch.access.audit import record

    if format not in ("json", "csv"):
        raise Invalid("format", "must be json or csv")
    records = coop.export_records(db, principal)
    record(db, "cooperation.partners.export", "coop_partner_profiles", "", after={"format": format,
                                                                                   "count": len(records)})
    db.commit()
    if format == "csv":
        return Response(csv_text(coop.EXPORT_FIELDS, coop.export_csv_rows(records)),
                        media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="partners.csv"'})
    return Response(json.dumps({"items": records}, ensure_ascii=False, indent=1), media_type="application/json")


@router.post("/cooperation/partners/import")
async def partners_import(request: Request, file: UploadFile = File(...),
                          principal: Principal = Depends(require("cooperation.write")),
                          db: Session = Depends(get_db)) -> dict[str, Any]:
    from commonwatch.textio import decode_bytes

    raw = await file.read(5 * 1024 * 1024 + 1)
    if len(raw) > 5 * 1024 * 1024:
        raise Invalid("file", "is larger than 5 MB")
    fmt = "json" if (file.filename or "").lower().endswith(".json") else "csv"
    records = coop.parse_import(decode_bytes(raw), fmt)
    result = coop.import_records(db, principal, records, coop.local_today(_now(request)))
    db.commit()
    return result


@router.get("/cooperation/partners/{org_id}")
def partner_get(org_id: int, principal: Principal = Depends(require("cooperation.read")),
                db: Session = Depends(get_db)) -> dict[str, Any]:
    org = coop.partner_org(db, principal, org_id)
    out = partner_out(org, coop.profile_of(db, org))
    out["agreements"] = [agreement_out(a) for a in coop.agreements(db, principal, org.id)]
    return out


@router.patch("/cooperation/partners/{org_id}")
def partner_patch(org_id: int, body: ProfilePatch, principal: Principal = Depends(require("cooperation.write")),
                  db: Session = Depends(get_db)) -> dict[str, Any]:
    coop.save_profile(db, principal, org_id, body.model_dump(exclude_unset=True))
    db.commit()
    org = coop.partner_org(db, principal, org_id)
    return partner_out(org, coop.profile_of(db, org))


@router.post("/cooperation/partners/{org_id}/agreements", status_code=201)
def agreement_create(org_id: int, body: AgreementIn, request: Request,
                     principal: Principal = Depends(require("cooperation.write")),
                     db: Session = Depends(get_db)) -> dict[str, Any]:
    row = coop.add_agreement(db, principal, org_id, body.model_dump(), coop.local_today(_now(request)))
    db.commit()
    return agreement_out(row)


# --- assistance requests -----------------------------------------------------------------------------------

class ConcernIn(BaseModel):
    type: str
    ref: str


class RequestIn(BaseModel):
    direction: str
    country: str
    authority: str
    legal_basis: str
    legal_basis_detail: str = ""
    kind: str
    subject: str
    body: str = ""
    contents: dict[str, str] = Field(default_factory=dict)
    concerns: list[ConcernIn] = Field(default_factory=list)
    received_on: str | None = None
    deadline: str | None = None
    partner_org_id: int | None = None
    assignees: list[int] = Field(default_factory=list)


class TransitionIn(BaseModel):
    status: str
    note: str = ""
    reason: str = ""
    ground: str = ""


class AssignIn(BaseModel):
    user_id: int


def request_out(db: Session, r: AssistanceRequest, rules: dict[str, Any], *, full: bool = True) -> dict[str, Any]:
    clocks = coop.deadlines(r, rules)
    out = {"id": r.id, "ref": r.ref, "direction": r.direction, "country": r.country, "authority": r.authority,
           "partner_org_id": r.partner_org_id, "legal_basis": r.legal_basis,
           "legal_basis_detail": r.legal_basis_detail, "kind": r.kind, "subject": r.subject,
           "received_on": r.received_on.isoformat(), "deadline": r.deadline.isoformat() if r.deadline else None,
           "acknowledge_by": clocks["acknowledge_by"].isoformat() if clocks["acknowledge_by"] else None,
           "preserve_until": clocks["preserve_until"].isoformat() if clocks["preserve_until"] else None,
           "status": r.status, "decline_reason": r.decline_reason or None,
           "answered_at": r.answered_at.isoformat() if r.answered_at else None,
           "missing_contents": coop.missing_contents(r, rules),
           "rules_status": rules["contents"][r.legal_basis]["status"],
           "pi_flagged": bool(r.pi_findings) or any(a.pi_findings for a in r.attachments)}
    if full:
        out.update(body=r.body, contents=r.contents, concerns=r.concerns, pi_findings=r.pi_findings,
                   assignees=[u.email for u in coop.assignees(db, r)],
                   attachments=[{"id": a.id, "filename": a.filename, "size": a.size, "pi_findings": a.pi_findings}
                                for a in r.attachments],
                   history=[{"status": h.status, "note": h.note, "actor": h.actor, "at": h.at.isoformat()}
                            for h in r.history])
    return out


@router.get("/cooperation/requests")
@writes
def requests_list(request: Request, status: str | None = None, direction: str | None = None,
                  principal: Principal = Depends(require("cooperation.requests")),
                  db: Session = Depends(get_db)) -> dict[str, Any]:
    rules = coop.request_rules(_dd(request))
    rows = coop.list_requests(db, principal, status=status, direction=direction)
    out = {"items": [request_out(db, r, rules, full=False) for r in rows]}
    db.commit()
    return out


@router.post("/cooperation/requests", status_code=201)
def request_create(body: RequestIn, request: Request, principal: Principal = Depends(require("cooperation.requests")),
                   db: Session = Depends(get_db)) -> dict[str, Any]:
    data = body.model_dump()
    req = coop.create_request(db, principal, data, _now(request), _dd(request))
    db.commit()
    return request_out(db, req, coop.request_rules(_dd(request)))


@router.get("/cooperation/requests/{request_id}")
@writes
def request_get(request_id: int, request: Request, principal: Principal = Depends(require("cooperation.requests")),
                db: Session = Depends(get_db)) -> dict[str, Any]:
    req = coop.get_request(db, principal, request_id)
    out = request_out(db, req, coop.request_rules(_dd(request)))
    db.commit()
    return out


@router.post("/cooperation/requests/{request_id}/status")
def request_transition(request_id: int, body: TransitionIn, request: Request,
                       principal: Principal = Depends(require("cooperation.requests")),
                       db: Session = Depends(get_db)) -> dict[str, Any]:
    req = coop.get_request(db, principal, request_id)
    coop.transition(db, principal, req, body.status, _now(request), note=body.note, reason=body.reason,
                    ground=body.ground, data_dir=_dd(request))
    db.commit()
    return request_out(db, req, coop.request_rules(_dd(request)))


@router.post("/cooperation/requests/{request_id}/assignees")
def request_assign(request_id: int, body: AssignIn, request: Request,
                   principal: Principal = Depends(require("cooperation.requests")),
                   db: Session = Depends(get_db)) -> dict[str, Any]:
    req = coop.get_request(db, principal, request_id)
    coop.assign(db, principal, req, body.user_id)
    db.commit()
    return request_out(db, req, coop.request_rules(_dd(request)))


@router.post("/cooperation/requests/{request_id}/attachments", status_code=201)
async def request_attach(request_id: int, request: Request, file: UploadFile = File(...),
                         principal: Principal = Depends(require("cooperation.requests")),
                         db: Session = Depends(get_db)) -> dict[str, Any]:
    req = coop.get_request(db, principal, request_id)
    raw = await file.read(coop.MAX_ATTACHMENT + 1)
    row = coop.add_attachment(db, principal, req, file.filename or "", raw, _now(request), _dd(request))
    db.commit()
    return {"id": row.id, "filename": row.filename, "size": row.size, "pi_findings": row.pi_findings}


@router.get("/cooperation/requests/{request_id}/record.pdf")
@writes
def request_pdf(request_id: int, request: Request, principal: Principal = Depends(require("cooperation.requests")),
                db: Session = Depends(get_db)) -> Response:
    req = coop.get_request(db, principal, request_id)
    pdf = coop.request_record(req, coop.assignees(db, req), coop.request_rules(_dd(request)), _now(request))
    db.commit()
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{req.ref}.pdf"'})


@router.get("/cooperation/counts")
def counts(year: int | None = Query(None, ge=1990, le=9999), period: str = Query("month"),
           principal: Principal = Depends(require("reports.read")), db: Session = Depends(get_db)) -> dict[str, Any]:
    """Cross-border exchanges and assistance requests by country, kind, outcome and time to answer."""
    return coop.counts(db, principal, year=year, period=period)


# --- reports from partners ----------------------------------------------------------------------------------

def report_out(r) -> dict[str, Any]:
    return {"id": r.id, "origin": r.origin, "origin_ref": r.origin_ref, "message_id": r.message_id,
            "sender": r.sender, "subject": r.subject, "partner_org_id": r.partner_org_id, "format": r.format or None,
            "signature": r.signature, "signer": r.signer or None, "status": r.status, "reason": r.reason or None,
            "size": r.size, "rows": r.rows, "run_id": r.run_id, "received_at": r.received_at.isoformat(),
            "respond_by": r.respond_by.isoformat() if r.respond_by else None, "encrypted": r.encrypted,
            "resolution": r.resolution or None, "resolved_by": r.resolved_by or None,
            "resolved_at": r.resolved_at.isoformat() if r.resolved_at else None}


@router.get("/cooperation/reports")
def reports_list(status: str | None = Query(None, description="ingested or held"), limit: int = Query(100, ge=1,
                 le=1000), principal: Principal = Depends(require("cooperation.write")),
                 db: Session = Depends(get_db)) -> dict[str, Any]:
    from sqlalchemy import select

    from commonwatch.cooperation.models import InboundReport

    stmt = select(InboundReport).order_by(InboundReport.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(InboundReport.status == status)
    return {"items": [report_out(r) for r in db.scalars(stmt)]}


@router.post("/cooperation/reports", status_code=201)
async def report_submit(request: Request, file: UploadFile = File(...), partner_org_id: int | None = Form(None),
                        principal: Principal = Depends(require("cooperation.write")),
                        db: Session = Depends(get_db)) -> dict[str, Any]:
    """A partner's report as a mail (.eml) or a bare IODEF/XARF JSON or text document."""
    from starlette.concurrency import run_in_threadpool

    from commonwatch.cooperation.reports import Mail, ingest_mails

    state = request.app.state
    limit = int(coop.request_rules(_dd(request))["inbound"]["max_bytes"])
    raw = await file.read(limit + 1)
    name = (file.filename or "").lower()
    if not name.endswith(".eml") and not raw.lstrip()[:64].lower().startswith((b"from:", b"received:", b"return-path:",
                                                                              b"message-id:", b"mime-version:")):
        from email.message import EmailMessage

        msg = EmailMessage()
        msg["From"] = principal.email
        msg["Subject"] = f"API submission {file.filename or ''}".strip()
        msg.set_content(raw, maintype="application", subtype="json" if name.endswith(".json") else "octet-stream",
                        filename=file.filename or "report")
        raw = msg.as_bytes()
    partner = coop.partner_org(db, principal, partner_org_id).id if partner_org_id is not None else None
    db.rollback()
    mail = Mail(raw, "api", f"api:{principal.email}:{file.filename or ''}", partner_org_id=partner)
    rows = await run_in_threadpool(ingest_mails, state.engine, state.sessionmaker, [mail], state.clock, _dd(request),
                                   settings=state.settings)
    return {"items": [report_out(r) for r in rows]}


@router.get("/cooperation/reports/{report_id}")
def report_get(report_id: int, principal: Principal = Depends(require("cooperation.write")),
               db: Session = Depends(get_db)) -> dict[str, Any]:
    """One partner report with the mails sent back about it (its acknowledgement: both sides' references)."""
    from commonwatch.cooperation.mailing import mail_out, mails_for_report
    from commonwatch.cooperation.models import InboundReport
    from commonwatch.errors import NotFound

    row = db.get(InboundReport, report_id)
    if row is None:
        raise NotFound()
    return {**report_out(row), "mails": [mail_out(m) for m in mails_for_report(db, row.id)]}


@router.post("/cooperation/incidents/{incident_id}/exchange")
def incident_exchange(incident_id: int, request: Request, format: str = Query("iodef", description="iodef or xarf"),
                      transmit: bool = Query(False, description="also mail each document to the partner"),
                      principal: Principal = Depends(require("incidents.share")),
                      db: Session = Depends(get_db)) -> dict[str, Any]:
    """The incident's events about hosts abroad, as a document for the partner CERT of each country; each is
    recorded on the incident's timeline."""
    from commonwatch.cooperation.outbound import exchange

    settings = request.app.state.settings
    centre = getattr(settings, "centre_name", "") or "commonwatch"
    items = exchange(db, principal, incident_id, format, _now(request), centre=centre,
                     contact=getattr(settings, "centre_email", "") or "cert@localhost", transmit=transmit)
    db.commit()
    ids = [i["mail_id"] for i in items if i.get("mail_id")]
    if ids:
        from commonwatch.cooperation.mailing import deliver_pending

        state = request.app.state
        done = {r["id"]: r for r in deliver_pending(state.sessionmaker, settings, state.clock, ids)}
        for item in items:
            if item.get("mail_id") in done:
                item["delivery"] = done[item["mail_id"]]["status"]
                item["delivery_error"] = done[item["mail_id"]]["error"] or None
    return {"items": items}


@router.get("/cooperation/incidents/{incident_id}/mails")
def incident_mails(incident_id: int, principal: Principal = Depends(require("incidents.share")),
                   db: Session = Depends(get_db)) -> dict[str, Any]:
    """The documents mailed to partners about the incident, with their delivery state."""
    from sqlalchemy import select

    from commonwatch.cooperation.mailing import mail_out
    from commonwatch.cooperation.models import PartnerMail
    from commonwatch.incidents import services as incidents

    incident = incidents.get_incident(db, principal, incident_id)
    rows = db.scalars(select(PartnerMail).where(PartnerMail.incident_id == incident.id).order_by(PartnerMail.id))
    return {"items": [mail_out(m) for m in rows]}
