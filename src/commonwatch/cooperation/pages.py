"""Pages: the partner directory with counts by country and region, a partner's profile and agreements,
and the assistance requests (need-to-know: every view audited) with their workflow and PDF record."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from commonwatch.access.models import User
from commonwatch.access.principal import Principal, Role
from commonwatch.cooperation import services as coop
from commonwatch.cooperation.models import CHANNELS, PARTNER_KINDS, TI_LEVELS, InboundReport, PartnerMail
from commonwatch.db import get_scoped, scope
from commonwatch.errors import Invalid, NotFound
from commonwatch.i18n import N_, _, pick
from commonwatch.labels import label
from commonwatch.web.deps import get_db, require, writes, writes_apart
from commonwatch.web.listing import ListSpec, empty_page, list_page, parse_list_query
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
    from commonwatch.cooperation.mailing import partner_language
    from commonwatch.i18n import LANGUAGES

    org = coop.partner_org(db, principal, org_id)
    profile = coop.profile_of(db, org)
    helpers = _helpers(request)
    mails = list(db.scalars(scope(select(PartnerMail).where(PartnerMail.partner_org_id == org.id), principal,
                                  PartnerMail).order_by(PartnerMail.id.desc()).limit(50)))
    by_rule = partner_language(org, None, helpers["rules"])
    return render(request, "cooperation/partner.html", {
        "title": org.name, "org": org, "profile": profile, "keys": coop.partner_keys(org),
        "mails": mails, "mail_counts": _mail_counts(db, principal, org.id),
        "language_choices": [("", _("by its country: {language}").format(language=LANGUAGES[by_rule]))]
                     + list(LANGUAGES.items()), **_report_labels(),
        "agreements": [(a, coop.renewal_state(a, helpers["today"], helpers["rules"]))
                       for a in coop.agreements(db, principal, org.id)],
        "errors": errors or {}, "form": form or {}, "can_write": principal.has("cooperation.write"),
        **helpers}, status_code=status_code)


def _mail_counts(db: Session, principal: Principal, org_id: int) -> dict[str, int]:
    stmt = scope(select(PartnerMail.status, func.count()).where(PartnerMail.partner_org_id == org_id), principal,
                 PartnerMail).group_by(PartnerMail.status)
    return {status: n for status, n in db.execute(stmt)}


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

REPORT_STATUSES = ("held", "ingested", "discarded")
REPORT_SORTS = {"received": InboundReport.received_at, "size": InboundReport.size, "events": InboundReport.rows,
                "status": InboundReport.status}
REPORTS_LIST = ListSpec(path="/cooperation/reports", id_column=InboundReport.id, sorts=REPORT_SORTS,
                        default_sort="received", filters=("q", "status", "partner", "format"))
MAIL_STATUSES = ("pending", "sending", "sent", "retry", "held", "dead")


def report_status_label(status: str) -> str:
    return {"held": _("Held"), "ingested": _("Ingested"), "discarded": _("Discarded")}.get(status, status)


def mail_status_label(status: str) -> str:
    return {"pending": _("queued"), "sending": _("handed to the server, reply not seen"), "sent": _("sent"),
            "retry": _("failed for now, will be retried"), "held": _("held: in doubt"),
            "dead": _("failed")}.get(status, status)


def _report_labels() -> dict[str, Any]:
    return {"report_status_label": report_status_label, "mail_status_label": mail_status_label,
            "mail_kind_label": lambda k: {"ack": _("acknowledgement"), "document": _("document")}.get(k, k)}


def _names(db: Session, ids: set[int | None]) -> dict[int, str]:
    from commonwatch.constituency.models import Organisation

    ids = {i for i in ids if i}
    if not ids:
        return {}
    return {o.id: o.name for o in db.scalars(select(Organisation).where(Organisation.id.in_(sorted(ids))))}


def reports_query(principal: Principal, params: dict[str, str]) -> Any:
    """The partners' reports the filters select, under the reader's scope."""
    stmt = scope(select(InboundReport), principal, InboundReport)
    if params.get("status"):
        if params["status"] not in REPORT_STATUSES:
            raise Invalid("status", _("“{value}” is not one of: {choices}").format(
                value=params["status"], choices=", ".join(REPORT_STATUSES)))
        stmt = stmt.where(InboundReport.status == params["status"])
    if params.get("partner"):
        if not params["partner"].isdigit():
            raise Invalid("partner", _("“{value}” is not an id").format(value=params["partner"]))
        stmt = stmt.where(InboundReport.partner_org_id == int(params["partner"]))
    if params.get("format"):
        stmt = stmt.where(InboundReport.format == params["format"])
    if params.get("q"):
        like = "%" + params["q"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(or_(InboundReport.sender.ilike(like, escape="\\"),
                              InboundReport.subject.ilike(like, escape="\\"),
                              InboundReport.reason.ilike(like, escape="\\"),
                              InboundReport.message_id.ilike(like, escape="\\")))
    return stmt


@router.get("/cooperation/reports")
def reports(request: Request, principal: Principal = Depends(require("cooperation.write")),
            db: Session = Depends(get_db)) -> HTMLResponse:
    params = request.query_params
    errors: dict[str, str] = {}
    try:
        lq = parse_list_query(REPORTS_LIST, params)
        lst = list_page(db, reports_query(principal, dict(lq.params)), REPORTS_LIST, lq)
    except Invalid as exc:
        errors = exc.by_field()
        lst = empty_page(REPORTS_LIST, params)
    rows = list(lst.items)
    held_count = db.scalar(select(func.count()).select_from(
        scope(select(InboundReport.id).where(InboundReport.status == "held"), principal, InboundReport).subquery()))
    partners = [(o.id, o.name) for o, _p in coop.list_partners(db, principal)]
    return render(request, "cooperation/reports.html", {
        "title": _("Reports from partners"), "rows": rows, "lst": lst, "errors": errors,
        "f": {k: lst.query.params.get(k, "") for k in ("q", "status", "partner", "format")},
        "names": _names(db, {r.partner_org_id for r in rows}), "held_count": held_count or 0,
        "statuses": [(s, report_status_label(s)) for s in REPORT_STATUSES], "partners": partners,
        "formats": [("iodef", "IODEF"), ("xarf", "X-ARF"), ("arf", "ARF"), ("text", _("plain text"))],
        **_report_labels()}, status_code=422 if errors else 200)


def _report(db: Session, principal: Principal, report_id: int) -> InboundReport:
    row = get_scoped(db, principal, InboundReport, report_id)
    if row is None:
        raise NotFound()
    return row


def _report_page(request: Request, db: Session, principal: Principal, report_id: int, *,
                 errors: dict | None = None, form: dict | None = None, status_code: int = 200) -> HTMLResponse:
    from commonwatch.cooperation.mailing import mails_for_report, report_ref

    row = _report(db, principal, report_id)
    return render(request, "cooperation/report.html", {
        "title": _("Report {ref}").format(ref=report_ref(row)), "r": row, "ref": report_ref(row),
        "mails": mails_for_report(db, row.id), "names": _names(db, {row.partner_org_id}),
        "errors": errors or {}, "form": form or {}, **_report_labels()}, status_code=status_code)


@router.get("/cooperation/reports/{report_id}")
def report_view(report_id: int, request: Request, principal: Principal = Depends(require("cooperation.write")),
                db: Session = Depends(get_db)) -> HTMLResponse:
    return _report_page(request, db, principal, report_id)


@router.get("/cooperation/reports/{report_id}/raw")
@writes
def report_raw(report_id: int, principal: Principal = Depends(require("cooperation.write")),
               db: Session = Depends(get_db)) -> Response:
    """The report's bytes as they arrived, as a file to save: never shown by the browser (it may be a
    hostile mail), so an attachment of an opaque type, not sniffed, sandboxed."""
    from commonwatch.access import audit

    row = _report(db, principal, report_id)
    if row.raw is None:
        raise NotFound()
    audit.record(db, "cooperation.report_raw_downloaded", "coop_inbound_reports", row.id,
                 after={"size": len(row.raw)})
    db.commit()
    return Response(bytes(row.raw), media_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="partner-report-{row.id}.eml"',
        "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "no-store"})


@router.post("/cooperation/reports/{report_id}/release")
@writes_apart
async def report_release(report_id: int, request: Request,
                         principal: Principal = Depends(require("cooperation.write")),
                         db: Session = Depends(get_db)) -> Response:
    """Read a held report again (once the partner's key or contact is registered): readable, it is
    ingested and acknowledged; still not, it stays held with the new reason."""
    from starlette.concurrency import run_in_threadpool

    from commonwatch.cooperation.reports import CannotResolve, release

    data = await _form(request)
    _report(db, principal, report_id)
    note = str(data.get("note") or "").strip()[:2000]
    db.rollback()
    state = request.app.state
    try:
        row = await run_in_threadpool(release, state.engine, state.sessionmaker, report_id, principal.actor,
                                      state.clock, state.settings.data_dir, note=note, settings=state.settings)
    except CannotResolve as exc:
        return _report_page(request, db, principal, report_id, errors={"release": str(exc)}, status_code=422)
    if row.status == "ingested":
        return redirect(f"/cooperation/reports/{report_id}", _("Read again and taken: {n} event(s).").format(
            n=row.rows))
    return redirect(f"/cooperation/reports/{report_id}", _("Read again, still held: {reason}").format(
        reason=row.reason))


@router.post("/cooperation/reports/{report_id}/discard")
async def report_discard(report_id: int, request: Request,
                         principal: Principal = Depends(require("cooperation.write")),
                         db: Session = Depends(get_db)) -> Response:
    from commonwatch.cooperation.reports import discard

    data = await _form(request)
    row = _report(db, principal, report_id)
    try:
        discard(db, row, str(data.get("reason") or ""), principal.actor, request.app.state.clock.now())
    except Invalid as exc:
        db.rollback()
        return _report_page(request, db, principal, report_id, errors=exc.by_field(), form=data, status_code=422)
    db.commit()
    return redirect(f"/cooperation/reports/{report_id}", _("Report discarded."))
