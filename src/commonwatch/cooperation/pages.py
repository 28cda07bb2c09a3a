"""Pages: the partner directory with counts by country and region, a partner's profile and agreements,
and the assistance requests (need-to-know: every view audited) with their workflow and PDF record."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from commonwatch.access.models import User
from commonwatch.access.principal import Principal, Role
from commonwatch.cooperation import services as coop
from commonwatch.cooperation.models import CHANNELS, PARTNER_KINDS, TI_LEVELS
from commonwatch.errors import Invalid
from commonwatch.i18n import N_, _, pick
from commonwatch.labels import label
from commonwatch.web.deps import get_db, require, writes
from commonwatch.web.nav import NavItem
from commonwatch.web.pages import redirect, render

router = APIRouter()
NAV = [
    NavItem(label=N_("Partner CERTs"), path="/cooperation", permission="cooperation.read", order=60),
    NavItem(label=N_("Assistance requests"), path="/cooperation/requests", permission="cooperation.requests",
            order=61),
    NavItem(label=N_("Reports from partners"), path="/cooperation/reports", permission="cooperation.write",
            order=62),
]


def _rules(request: Request) -> dict[str, Any]:
    return coop.request_rules(request.app.state.settings.data_dir)


def _helpers(request: Request) -> dict[str, Any]:
    rules = _rules(request)
    return {
        "rules": rules,
        "status_label": coop.status_label, "direction_label": coop.direction_label,
        "partner_kind_label": coop.partner_kind_label,
        "kind_label": lambda k: coop.label(rules["kinds"], k),
        "basis_label": lambda k: coop.label(rules["legal_bases"], k),
        "item_label": lambda basis, k: coop.label(rules["contents"][basis]["items"], k),
        "source_label": lambda k: coop.label(rules["sources"], k),
        "ground_choices": [(k, pick(v["en"], v["zh"])) for k, v in rules["refusal_grounds"]["grounds"].items()],
        "kind_choices": [(k, pick(v["en"], v["zh"])) for k, v in rules["kinds"].items()],
        "basis_choices": [(k, pick(v["en"], v["zh"])) for k, v in rules["legal_bases"].items()],
        "partner_kinds": [(k, coop.partner_kind_label(k)) for k in PARTNER_KINDS],
        "ti_levels": [("", _("none"))] + [(k, label(k, "ti_level")) for k in TI_LEVELS if k],
        "channels": CHANNELS,
        "today": coop.local_today(request.app.state.clock.now()),
    }


async def _form(request: Request) -> dict[str, Any]:
    form = await request.form()
    out: dict[str, Any] = {}
    for key in form:
        values = form.getlist(key)
        out[key] = values if len(values) > 1 or key in ("channels",) else values[0]
    return out


# --- directory ---------------------------------------------------------------------------------------------

@router.get("/cooperation")
def directory(request: Request, country: str | None = None, principal: Principal = Depends(require("cooperation.read")),
              db: Session = Depends(get_db)) -> HTMLResponse:
    partners = coop.list_partners(db, principal, country=country or None)
    helpers = _helpers(request)
    return render(request, "cooperation/directory.html", {
        "title": _("Partner CERTs"), "partners": partners, "counts": coop.directory_counts(db, principal),
        "country": country or "", "reminders": coop.renewal_reminders(db, principal),
        "renewals": [(a, coop.renewal_state(a, helpers["today"], helpers["rules"]))
                     for a in coop.agreements(db, principal)],
        "can_write": principal.has("cooperation.write"), "keys": coop.partner_keys, **helpers})


@router.post("/cooperation/partners")
async def partner_create(request: Request, principal: Principal = Depends(require("cooperation.write")),
                         db: Session = Depends(get_db)) -> Response:
    data = await _form(request)
    try:
        org = coop.create_partner(db, principal, data)
    except Invalid as exc:
        db.rollback()
        return render(request, "cooperation/directory.html", {
            "title": _("Partner CERTs"), "partners": coop.list_partners(db, principal),
            "counts": coop.directory_counts(db, principal), "country": "", "reminders": [], "renewals": [],
            "can_write": True, "keys": coop.partner_keys, "errors": exc.by_field(), "form": data,
            **_helpers(request)}, status_code=422)
    db.commit()
    return redirect(f"/cooperation/partners/{org.id}", _("Partner added."))


def _partner_page(request: Request, db: Session, principal: Principal, org_id: int, *, errors: dict | None = None,
                  form: dict | None = None, status_code: int = 200) -> HTMLResponse:
    org = coop.partner_org(db, principal, org_id)
    profile = coop.profile_of(db, org)
    helpers = _helpers(request)
    return render(request, "cooperation/partner.html", {
        "title": org.name, "org": org, "profile": profile, "keys": coop.partner_keys(org),
        "agreements": [(a, coop.renewal_state(a, helpers["today"], helpers["rules"]))
                       for a in coop.agreements(db, principal, org.id)],
        "errors": errors or {}, "form": form or {}, "can_write": principal.has("cooperation.write"),
        **helpers}, status_code=status_code)


@router.get("/cooperation/partners/{org_id}")
def partner_view(org_id: int, request: Request, principal: Principal = Depends(require("cooperation.read")),
                 db: Session = Depends(get_db)) -> HTMLResponse:
    return _partner_page(request, db, principal, org_id)


@router.post("/cooperation/partners/{org_id}")
async def partner_save(org_id: int, request: Request, principal: Principal = Depends(require("cooperation.write")),
                       db: Session = Depends(get_db)) -> Response:
    data = await _form(request)
    data.setdefault("channels", [])
    for key in ("first_member", "apcert_member"):
        data.setdefault(key, "")
    try:
        coop.save_profile(db, principal, org_id, data)
    except Invalid as exc:
        db.rollback()
        return _partner_page(request, db, principal, org_id, errors=exc.by_field(), form=data, status_code=422)
    db.commit()
    return redirect(f"/cooperation/partners/{org_id}", _("Saved."))


@router.post("/cooperation/partners/{org_id}/agreements")
async def agreement_add(org_id: int, request: Request, principal: Principal = Depends(require("cooperation.write")),
                        db: Session = Depends(get_db)) -> Response:
    data = await _form(request)
    try:
        coop.add_agreement(db, principal, org_id, data, coop.local_today(request.app.state.clock.now()))
    except Invalid as exc:
        db.rollback()
        return _partner_page(request, db, principal, org_id, errors=exc.by_field(), form=data, status_code=422)
    db.commit()
    return redirect(f"/cooperation/partners/{org_id}", _("Agreement added."))


# --- assistance requests ---------------------------------------------------------------------------------

def _staff(db: Session) -> list[User]:
    return list(db.scalars(select(User).where(User.active.is_(True), User.role.in_(
        [Role.COORDINATOR.value, Role.ADMIN.value])).order_by(User.email)))


@router.get("/cooperation/requests")
@writes
def requests_list(request: Request, status: str | None = None,
                  principal: Principal = Depends(require("cooperation.requests")),
                  db: Session = Depends(get_db)) -> HTMLResponse:
    rows = coop.list_requests(db, principal, status=status or None)
    db.commit()
    return render(request, "cooperation/requests.html", {
        "title": _("Assistance requests"), "requests": rows, "status": status or "",
        "statuses": [(s, coop.status_label(s)) for s in coop.STATUSES], **_helpers(request)})


def _new_form(request: Request, db: Session, principal: Principal, *, form: dict, errors: dict,
              status_code: int = 200) -> HTMLResponse:
    return render(request, "cooperation/request_form.html", {
        "title": _("New assistance request"), "form": form, "errors": errors,
        "partners": coop.list_partners(db, principal), "staff": _staff(db), **_helpers(request)},
        status_code=status_code)


@router.get("/cooperation/requests/new")
def request_new(request: Request, principal: Principal = Depends(require("cooperation.requests")),
                db: Session = Depends(get_db)) -> HTMLResponse:
    return _new_form(request, db, principal, form={"direction": "incoming", "legal_basis": "preservation_request",
                                                   "kind": "preservation"}, errors={})


@router.post("/cooperation/requests")
async def request_create(request: Request, principal: Principal = Depends(require("cooperation.requests")),
                         db: Session = Depends(get_db)) -> Response:
    data = await _form(request)
    basis = str(data.get("legal_basis") or "")
    items = (_rules(request)["contents"].get(basis) or {}).get("items") or {}
    data["contents"] = {k: data.pop(f"c_{k}") for k in list(items) if str(data.get(f"c_{k}") or "").strip()}
    for k in [k for k in data if k.startswith("c_")]:
        data.pop(k)
    concerns = []
    for line in str(data.pop("concerns", "") or "").splitlines():
        if line.strip():
            kind, _sep, ref = line.partition(":")
            concerns.append({"type": kind.strip(), "ref": ref.strip()})
    data["concerns"] = concerns
    assignees = data.pop("assignees", [])
    data["assignees"] = assignees if isinstance(assignees, list) else [assignees] if assignees else []
    try:
        req = coop.create_request(db, principal, data, request.app.state.clock.now(),
                                  request.app.state.settings.data_dir)
    except Invalid as exc:
        db.rollback()
        return _new_form(request, db, principal, form=data, errors=exc.by_field(), status_code=422)
    db.commit()
    return redirect(f"/cooperation/requests/{req.id}", _("Request recorded."))


def _request_page(request: Request, db: Session, principal: Principal, request_id: int, *,
                  errors: dict | None = None, status_code: int = 200) -> HTMLResponse:
    req = coop.get_request(db, principal, request_id)
    rules = _rules(request)
    page = render(request, "cooperation/request.html", {
        "title": req.ref, "req": req, "errors": errors or {}, "missing": coop.missing_contents(req, rules),
        "clocks": coop.deadlines(req, rules), "assigned": coop.assignees(db, req), "staff": _staff(db),
        "next_statuses": [(s, coop.status_label(s)) for s in coop.TRANSITIONS[req.status]],
        "basis": rules["contents"][req.legal_basis], **_helpers(request)}, status_code=status_code)
    db.commit()
    return page


@router.get("/cooperation/requests/{request_id}")
@writes
def request_view(request_id: int, request: Request, principal: Principal = Depends(require("cooperation.requests")),
                 db: Session = Depends(get_db)) -> HTMLResponse:
    return _request_page(request, db, principal, request_id)


@router.post("/cooperation/requests/{request_id}/status")
async def request_status(request_id: int, request: Request,
                         principal: Principal = Depends(require("cooperation.requests")),
                         db: Session = Depends(get_db)) -> Response:
    data = await _form(request)
    req = coop.get_request(db, principal, request_id, audit=False)
    try:
        coop.transition(db, principal, req, str(data.get("status") or ""), request.app.state.clock.now(),
                        note=str(data.get("note") or ""), reason=str(data.get("reason") or ""),
                        ground=str(data.get("ground") or ""), data_dir=request.app.state.settings.data_dir)
    except Invalid as exc:
        db.rollback()
        return _request_page(request, db, principal, request_id, errors=exc.by_field(), status_code=422)
    db.commit()
    return redirect(f"/cooperation/requests/{request_id}", _("Status changed."))


@router.post("/cooperation/requests/{request_id}/assign")
async def request_assign(request_id: int, request: Request,
                         principal: Principal = Depends(require("cooperation.requests")),
                         db: Session = Depends(get_db)) -> Response:
    data = await _form(request)
    req = coop.get_request(db, principal, request_id, audit=False)
    try:
        coop.assign(db, principal, req, data.get("user_id"))
    except Invalid as exc:
        db.rollback()
        return _request_page(request, db, principal, request_id, errors=exc.by_field(), status_code=422)
    db.commit()
    return redirect(f"/cooperation/requests/{request_id}", _("Assigned."))


@router.post("/cooperation/requests/{request_id}/attachments")
async def request_attach(request_id: int, request: Request,
                         principal: Principal = Depends(require("cooperation.requests")),
                         db: Session = Depends(get_db)) -> Response:
    form = await request.form()
    upload = form.get("file")
    req = coop.get_request(db, principal, request_id, audit=False)
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Invalid("file", _("choose a file"))
        raw = await upload.read(coop.MAX_ATTACHMENT + 1)
        coop.add_attachment(db, principal, req, upload.filename, raw, request.app.state.clock.now(),
                            request.app.state.settings.data_dir)
    except Invalid as exc:
        db.rollback()
        return _request_page(request, db, principal, request_id, errors=exc.by_field(), status_code=422)
    db.commit()
    return redirect(f"/cooperation/requests/{request_id}", _("Attachment added."))


@router.get("/cooperation/requests/{request_id}/record.pdf")
@writes
def request_pdf(request_id: int, request: Request, principal: Principal = Depends(require("cooperation.requests")),
                db: Session = Depends(get_db)) -> Response:
    req = coop.get_request(db, principal, request_id)
    pdf = coop.request_record(req, coop.assignees(db, req), _rules(request), request.app.state.clock.now())
    db.commit()
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{req.ref}.pdf"'})


# --- reports from partners -------------------------------------------------------------------------------

@router.get("/cooperation/reports")
def reports(request: Request, status: str | None = None, principal: Principal = Depends(require("cooperation.write")),
            db: Session = Depends(get_db)) -> HTMLResponse:
    from commonwatch.constituency.models import Organisation
    from commonwatch.cooperation.models import InboundReport

    stmt = select(InboundReport).order_by(InboundReport.id.desc()).limit(200)
    if status in ("held", "ingested"):
        stmt = stmt.where(InboundReport.status == status)
    rows = list(db.scalars(stmt))
    names = {o.id: o.name for o in db.scalars(select(Organisation).where(
        Organisation.id.in_({r.partner_org_id for r in rows if r.partner_org_id})))}
    return render(request, "cooperation/reports.html", {
        "title": _("Reports from partners"), "reports": rows, "status": status or "", "names": names,
        "held_count": sum(1 for r in rows if r.status == "held")})
