"""Pages: incident list, the guided report form, the case page (clocks, grading, tasks, comments,
attachments, links, sharing, timeline), reports, the coordination tasks portal, the partner's view
of shared incidents, deadline alerts and the rules in force."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from commonwatch.access.models import User
from commonwatch.access.principal import Principal, Role
from commonwatch.constituency.models import Organisation, OrgKind
from commonwatch.db import scope
from commonwatch.errors import Forbidden, Invalid
from commonwatch.events.search import EventFilter
from commonwatch.events.store import event_store
from commonwatch.i18n import N_, _
from commonwatch.incidents import alerts, reports, sharing
from commonwatch.incidents import services as svc
from commonwatch.incidents.attachments import AttachmentRefused
from commonwatch.incidents.models import STATUSES, TASK_STATUSES, TRANSITIONS, Incident, IncidentTask
from commonwatch.incidents.rules import ROUTE_KEYS, TLP_LABELS, IncidentRules, load_incident_rules
from commonwatch.incidents.timing import to_local_input
from commonwatch.incidents.views import (
    attachment_download,
    clock_rows,
    describe,
    grading_rows,
    level_label,
    next_action,
    state_label,
)
from commonwatch.web.deps import get_db, require
from commonwatch.web.listing import ListSpec, empty_page, list_page, parse_bulk_ids, parse_list_query
from commonwatch.web.nav import PARTNER, NavItem
from commonwatch.web.pages import redirect, render

router = APIRouter()
NAV = [
    NavItem(label=N_("Incidents"), path="/incidents", permission="incidents.read", order=20,
            hidden_from=PARTNER),
    NavItem(label=N_("Coordination tasks"), path="/tasks", permission="incidents.read", order=21),
    NavItem(label=N_("Shared incidents"), path="/shared-incidents", permission="cooperation.read", order=22),
]

REPORT_TEXTS = ("title", "affected_system", "discovery_basis", "location", "effects", "measures_taken",
                "ransom_amount", "ransom_method", "ransom_dates", "trend", "cause", "leads", "further_measures",
                "evidence_preservation", "other_info", "protection_department", "operator_province",
                "parent_department", "reporter_name", "reporter_contact")
SUMMARY_TEXTS = ("summary_cause", "summary_handling", "summary_harm", "summary_accountability",
                 "summary_rectification", "summary_lessons")


def _ctx(request: Request) -> tuple[IncidentRules, datetime, str]:
    state = request.app.state
    principal: Principal | None = getattr(request.state, "principal", None)
    tz = (principal.timezone if principal else None) or state.settings.timezone
    return load_incident_rules(state.settings.data_dir), state.clock.now(), tz


def _choices(rules: IncidentRules) -> dict[str, Any]:
    tax = rules.taxonomy
    return {
        "levels": [(lv.key, lv.label) for lv in rules.grading.levels],
        "categories": [(c.code, f"{c.code} {c.text}") for c in tax.categories],
        "subcategory_groups": [(f"{c.code} {c.text}", [(s.code, f"{s.code} {s.text}") for s in c.subcategories])
                               for c in tax.categories if c.subcategories],
        "statuses": [(s, svc.status_label(s)) for s in STATUSES],
        "task_statuses": [(s, svc.task_status_label(s)) for s in TASK_STATUSES if s != "open"],
        "routes": [(k, str(rules.reporting.routes[k].text)) for k in ROUTE_KEYS],
        "tlps": list(TLP_LABELS),
        "grading_inputs": list(rules.grading.inputs.values()),
        "duty_inputs": list(rules.reporting.duty_inputs.values()),
        "status_label": svc.status_label, "task_status_label": svc.task_status_label,
        "level_label": lambda k: level_label(k, rules), "rules": rules,
    }


# --- list and intake -------------------------------------------------------------------------------

def _incident_list_spec(rules: IncidentRules) -> ListSpec:
    return ListSpec(path="/incidents", id_column=Incident.id, sorts=svc.incident_sorts(rules),
                    default_sort="discovered", filters=("q", "status", "level"))


@router.get("/incidents")
def incident_list(request: Request, principal: Principal = Depends(require("incidents.read")),
                  db: Session = Depends(get_db)) -> HTMLResponse:
    rules, now, tz = _ctx(request)
    spec = _incident_list_spec(rules)
    errors: dict[str, str] = {}
    try:
        lq = parse_list_query(spec, request.query_params)
        f = svc.IncidentFilter(lq.params.get("q", ""), lq.params.get("status", ""), lq.params.get("level", ""))
        lst = list_page(db, svc.incidents_query(principal, f), spec, lq)
    except Invalid as exc:
        errors = exc.by_field()
        lst = empty_page(spec, request.query_params)
    items = []
    for incident in lst.items:
        clocks = [c for c in clock_rows(incident, rules, now) if c["live"]]
        items.append({"incident": incident, "org": svc.org_name(db, incident.org_id),
                      "next_clock": min(clocks, key=lambda c: c["due_at"]) if clocks else None})
    can_manage = principal.has("incidents.manage")
    return render(request, "incidents/list.html", {
        "title": _("Incidents"), "items": items, "lst": lst, "errors": errors,
        "f": {k: lst.query.params.get(k, "") for k in ("q", "status", "level")},
        "can_report": can_manage or principal.has("incidents.report.own"),
        "can_manage": can_manage, "now": now,
        "bulk_actions": _bulk_choices(db) if can_manage else [],
        "my_alerts": alerts.unread_for(db, principal), **_choices(rules),
    }, status_code=422 if errors else 200)


def _bulk_choices(db: Session) -> list[tuple[str, str]]:
    """One choice per bulk act: ``status:<status>`` or ``assign:<user id>`` (``assign:`` for nobody)."""
    choices = [(f"status:{s}", _("Change status to {status}").format(status=svc.status_label(s))) for s in STATUSES]
    choices += [(f"assign:{u.id}", _("Assign to {name}").format(name=u.name or u.email)) for u in svc.staff_users(db)]
    choices.append(("assign:", _("Assign to nobody")))
    return choices


def _bulk_action(raw: str) -> tuple[str, str, str]:
    """``(act, value, label)`` of a bulk choice; :class:`Invalid` naming ``action`` if unknown."""
    act, _sep, value = raw.partition(":")
    if act not in svc.BULK_ACTIONS or (act == "status" and value not in STATUSES) \
            or (act == "assign" and value and not value.isdigit()):
        raise Invalid("action", _("“{value}” is not one of: {choices}").format(
            value=raw, choices="status:<status>, assign:<user id>"))
    if act == "status":
        return act, value, _("Change status to {status}").format(status=svc.status_label(value))
    return act, value, _("Assign")


def _incident_bulk_confirm(request: Request, db: Session, principal: Principal, *, raw: str, ids: list[int],
                           form: dict, errors: dict, status_code: int = 200) -> HTMLResponse:
    act, value, label = _bulk_action(raw)
    outcome = svc.plan_bulk(db, principal, ids, act, value)
    n = len(outcome.done)
    fields = [{"name": "note", "label": _("Note"), "options": None, "required": False, "blank": None,
               "type": "textarea", "help": _("One note for all the selected incidents.")}] if act == "status" else []
    return render(request, "web/bulk_confirm.html", {
        "title": _("Confirm: {action}").format(action=label),
        "summary": (_("{action}: {n} incident will be changed.") if n == 1
                    else _("{action}: {n} incidents will be changed.")).format(action=label, n=n),
        "allowed": outcome.done, "refused": sorted(outcome.refused), "reasons": outcome.refused,
        "url": "/incidents/bulk", "action": raw, "back": "/incidents",
        "button": (_("{action}: {n} incident") if n == 1 else _("{action}: {n} incidents")).format(action=label, n=n),
        "fields": fields, "form": form, "errors": errors, "hidden": {},
    }, status_code=status_code)


@router.post("/incidents/bulk")
async def incident_bulk(request: Request, principal: Principal = Depends(require("incidents.manage")),
                        db: Session = Depends(get_db)) -> Response:
    """Change the status of, or assign, the selected incidents: a confirmation first, then the act."""
    rules, now, _tz = _ctx(request)
    form = await request.form()
    raw = str(form.get("action", ""))
    act, value, _label = _bulk_action(raw)
    ids = parse_bulk_ids(form.getlist("ids"))
    data = {"note": str(form.get("note", ""))}
    if not form.get("confirm"):
        return _incident_bulk_confirm(request, db, principal, raw=raw, ids=ids, form=data, errors={})
    try:
        outcome = svc.bulk_act(db, principal, ids, act, value, now=now, rules=rules, note=data["note"])
    except Invalid as exc:
        db.rollback()
        return _incident_bulk_confirm(request, db, principal, raw=raw, ids=ids, form=data,
                                      errors=exc.by_field(), status_code=422)
    db.commit()
    n = len(outcome.done)
    message = (_("{n} incident changed.") if n == 1 else _("{n} incidents changed.")).format(n=n)
    if outcome.refused:
        message += " " + _("Left alone: {items}").format(
            items="; ".join(f"{i} ({why})" for i, why in sorted(outcome.refused.items())))
    return redirect("/incidents", message)


def _reportable_orgs(db: Session, principal: Principal) -> list[tuple[int, str]]:
    stmt = scope(select(Organisation), principal, Organisation).where(Organisation.kind != OrgKind.PARTNER_CERT)
    orgs = db.scalars(stmt.order_by(Organisation.name)).all()
    return [(o.id, f"{o.name} {o.name_local}".strip()) for o in orgs
            if principal.has("incidents.manage") or principal.can("incidents.report", o.id)]


def _form_page(request: Request, db: Session, principal: Principal, *, form: dict, errors: dict,
               refused: list | None = None, status_code: int = 200) -> HTMLResponse:
    rules, now, tz = _ctx(request)
    return render(request, "incidents/form.html", {
        "title": _("Report an incident"), "form": form, "errors": errors, "orgs": _reportable_orgs(db, principal),
        "tz": tz, "refused": refused or [], "is_staff": principal.is_staff,
        "can_manage": principal.has("incidents.manage"), **_choices(rules),
    }, status_code=status_code)


@router.get("/incidents/new")
def incident_new(request: Request, principal: Principal = Depends(require("incidents.read")),
                 db: Session = Depends(get_db)) -> HTMLResponse:
    if not (principal.has("incidents.manage") or principal.has("incidents.report.own")):
        raise Forbidden()
    _rules, now, tz = _ctx(request)
    return _form_page(request, db, principal, form={"discovered_at": to_local_input(now, tz), "impact": {}},
                      errors={})


async def _report_form(request: Request, keys: tuple[str, ...], rules: IncidentRules) -> tuple[dict, list]:
    form = await request.form()
    data: dict[str, Any] = {k: str(form.get(k, "")) for k in keys if k in form}
    for key in ("discovered_at", "occurred_at", "handling_closed_at", "category", "subcategory", "route", "org_id",
                "tlp"):
        if key in form:
            data[key] = str(form.get(key, ""))
    for key in ("suspected_crime",):
        data[key] = bool(form.get(key))
    if "involves_cii" in form and form.get("involves_cii") in ("yes", "no"):
        data["involves_cii"] = form.get("involves_cii") == "yes"
    impact = {}
    for spec in [*rules.grading.inputs.values(), *rules.reporting.duty_inputs.values()]:
        name = f"impact.{spec.name}"
        if spec.type == "bool":
            impact[spec.name] = bool(form.get(name)) or None
        elif name in form:
            impact[spec.name] = str(form.get(name, ""))
    if any(f"impact.{s}" in form for s in [*rules.grading.inputs, *rules.reporting.duty_inputs]) or \
            "impact_present" in form:
        data["impact"] = {k: v for k, v in impact.items() if v not in (None, "", "none")}
    uploads = [f for f in form.getlist("attachments") if isinstance(f, UploadFile) and f.filename]
    return data, uploads


async def _store_uploads(request: Request, db: Session, principal: Principal, incident: Incident,
                         uploads: list[UploadFile], now: datetime) -> list[AttachmentRefused]:
    settings = request.app.state.settings
    refused = []
    for upload in uploads:
        data = await upload.read(settings.max_upload_bytes + 1)
        try:
            svc.add_attachment(db, principal, incident, upload.filename or "", data, now=now,
                               data_dir=settings.data_dir, max_bytes=settings.max_upload_bytes)
        except AttachmentRefused as exc:
            refused.append(exc)
    return refused


@router.post("/incidents")
async def incident_create(request: Request, principal: Principal = Depends(require("incidents.read")),
                          db: Session = Depends(get_db)) -> Response:
    rules, now, tz = _ctx(request)
    data, uploads = await _report_form(request, REPORT_TEXTS, rules)
    try:
        incident = svc.file_incident(db, principal, data, now=now, rules=rules, viewer_zone=tz,
                                     via="centre" if principal.is_staff else "portal")
    except Invalid as exc:
        db.rollback()
        form = {**data, "impact": data.get("impact", {})}
        errors = exc.by_field()
        if uploads:
            errors["attachments"] = _("Choose the files again: the report was not saved yet.")
        return _form_page(request, db, principal, form=form, errors=errors, status_code=422)
    # The report is kept whatever happens to the files: each refused file is named with its reason.
    refused = await _store_uploads(request, db, principal, incident, uploads, now)
    db.commit()
    message = _("Incident {ref} filed.").format(ref=incident.ref)
    if refused:
        message += " " + _("Not attached: {files}").format(files="; ".join(f"{r.filename} ({r.reason})"
                                                                          for r in refused))
    return redirect(f"/incidents/{incident.id}", message)


# --- from events -----------------------------------------------------------------------------------

@router.get("/incidents/from-events")
def from_events_page(request: Request, org_id: int | None = None, type: str = "", ids: str = "",
                     principal: Principal = Depends(require("incidents.manage")),
                     db: Session = Depends(get_db)) -> HTMLResponse:
    f = EventFilter(org_id=org_id or None, classification_type=type or None)
    events = event_store(db).ordered(principal, f, limit=200)
    orgs = [(o.id, o.name) for o in db.scalars(select(Organisation).order_by(Organisation.name))
            if o.kind != OrgKind.PARTNER_CERT]
    preselected = {p for p in ids.replace(",", " ").split() if p.isdigit()}
    return render(request, "incidents/from_events.html", {
        "title": _("New incident from events"), "events": events, "orgs": orgs,
        "f": {"org_id": org_id or "", "type": type}, "preselected": preselected, "errors": {},
    })


@router.post("/incidents/from-events")
async def from_events_create(request: Request, principal: Principal = Depends(require("incidents.manage")),
                             db: Session = Depends(get_db)) -> Response:
    rules, now, _tz = _ctx(request)
    form = await request.form()
    ids = [str(v) for v in form.getlist("event_ids")] + str(form.get("more_ids", "")).replace(",", " ").split()
    data = {k: str(form.get(k)) for k in ("title", "org_id") if form.get(k)}
    try:
        incident = svc.create_from_events(db, principal, ids, data, now=now, rules=rules)
    except Invalid as exc:
        db.rollback()
        return render(request, "incidents/from_events.html", {
            "title": _("New incident from events"), "events": [], "orgs": [], "f": {}, "preselected": set(ids),
            "errors": exc.by_field()}, status_code=422)
    db.commit()
    return redirect(f"/incidents/{incident.id}", _("Incident {ref} filed.").format(ref=incident.ref))


# --- alerts and rules ------------------------------------------------------------------------------

@router.get("/incidents/alerts")
def alerts_page(request: Request, principal: Principal = Depends(require("incidents.read")),
                db: Session = Depends(get_db)) -> HTMLResponse:
    rules, _now, tz = _ctx(request)
    rows = [(a, alerts.message(db, a, rules, tz)) for a in alerts.unread_for(db, principal)]
    return render(request, "incidents/alerts.html", {"title": _("Deadline alerts"), "rows": rows})


@router.post("/incidents/alerts/read")
async def alerts_read(request: Request, principal: Principal = Depends(require("incidents.read")),
                      db: Session = Depends(get_db)) -> Response:
    form = await request.form()
    ids = [int(v) for v in form.getlist("ids") if str(v).isdigit()]
    alerts.mark_read(db, principal, ids, request.app.state.clock.now())
    db.commit()
    return redirect("/incidents/alerts", _("Marked as read."))


@router.get("/incidents/rules")
def rules_page(request: Request, principal: Principal = Depends(require("incidents.read"))) -> HTMLResponse:
    rules, _now, _tz = _ctx(request)
    return render(request, "incidents/rules.html", {"title": _("Incident rules in force"), **_choices(rules)})


# --- the case page ---------------------------------------------------------------------------------

def _case_page(request: Request, db: Session, principal: Principal, incident_id: int, *, errors: dict | None = None,
               form: dict | None = None, section: str = "", status_code: int = 200) -> HTMLResponse:
    rules, now, tz = _ctx(request)
    incident = svc.get_incident(db, principal, incident_id)
    events, event_total = svc.linked_events(db, principal, incident, limit=50)
    owner = db.get(User, incident.owner_id) if incident.owner_id else None
    partners = [(o.id, o.name) for o in db.scalars(select(Organisation).where(
        Organisation.kind == OrgKind.PARTNER_CERT).order_by(Organisation.name))] if principal.is_staff else []
    task_orgs = [(o.id, o.name) for o in db.scalars(select(Organisation).order_by(Organisation.name))] \
        if principal.has("incidents.manage") else []
    from commonwatch.intel import correlation  # intel builds on incidents: the "seen in" lines of its observables

    mention_lines = correlation.lines_for_page(request, db, principal,
                                               correlation.incident_values(db, principal, incident.id))
    clocks = clock_rows(incident, rules, now)
    return render(request, "incidents/case.html", {
        "mention_lines": mention_lines, "following": _following(db, principal, incident.id),
        "title": f"{incident.ref} · {incident.title}", "incident": incident,
        "org": db.get(Organisation, incident.org_id),
        "owner": owner, "clocks": clocks, "grading": grading_rows(incident, rules),
        "next_action": next_action(incident, clocks, staff=principal.is_staff,
                                   can_edit=svc.can_edit_report(principal, incident)),
        "timeline": [(e, describe(e, rules, tz)) for e in svc.list_timeline(db, principal, incident)],
        "comments": svc.list_comments(db, principal, incident),
        "attachments": svc.list_attachments(db, principal, incident),
        "tasks": svc.list_tasks(db, principal, incident=incident) if principal.is_staff else [],
        "links": svc.linked_incidents(db, principal, incident), "events": events, "event_total": event_total,
        "shares": sharing.shares_of(db, incident) if principal.is_staff else [],
        "partners": partners, "task_orgs": task_orgs,
        "staff": [(u.id, u.name or u.email) for u in svc.staff_users(db)] if principal.is_staff else [],
        "transitions": [(s, svc.status_label(s)) for s in TRANSITIONS.get(incident.status, ())],
        "my_alerts": alerts.unread_for(db, principal, incident.id),
        "alert_text": lambda a: alerts.message(db, a, rules, tz),
        "route": rules.reporting.routes[incident.route], "now": now, "errors": errors or {}, "form": form or {},
        "section": section, "can_manage": principal.has("incidents.manage"),
        "can_override": principal.has("incidents.grade_override"), "can_share": principal.has("incidents.share"),
        "can_edit": svc.can_edit_report(principal, incident), "is_staff": principal.is_staff,
        "sharing_fields": rules.sharing.fields, "duties": rules.reporting.duties,
        "channels": rules.reporting.channels, "channels_provisional": rules.reporting.channels_status == "provisional",
        **_choices(rules),
    }, status_code=status_code)


def _following(db: Session, principal: Principal, incident_id: int) -> bool | None:
    """Whether the person follows the case (the inbox's follow button), None without an inbox."""
    try:
        from commonwatch.inbox.services import is_following
    except ImportError:
        return None
    return is_following(db, principal, incident_id) if principal.user_id else None


@router.get("/incidents/{incident_id}")
def incident_view(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.read")),
                  db: Session = Depends(get_db)) -> HTMLResponse:
    return _case_page(request, db, principal, incident_id)


async def _act(request: Request, db: Session, principal: Principal, incident_id: int, section: str, action,
               message: str) -> Response:
    """Run one case action from a form; on bad input show the case page with the reason at the field."""
    form = dict(await request.form())
    try:
        incident = svc.get_incident(db, principal, incident_id)
        action(incident, {k: (v if isinstance(v, UploadFile) else str(v)) for k, v in form.items()})
    except Invalid as exc:
        db.rollback()
        return _case_page(request, db, principal, incident_id, errors=exc.by_field(),
                          form={k: str(v) for k, v in form.items() if not isinstance(v, UploadFile)},
                          section=section, status_code=422)
    db.commit()
    return redirect(f"/incidents/{incident_id}#{section}", message)


@router.post("/incidents/{incident_id}/status")
async def status_post(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.manage")),
                      db: Session = Depends(get_db)) -> Response:
    rules, now, _tz = _ctx(request)
    return await _act(request, db, principal, incident_id, "handling", lambda i, f: svc.change_status(
        db, principal, i, f.get("status", ""), now=now, rules=rules, note=f.get("note", "")), _("Status changed."))


@router.post("/incidents/{incident_id}/assign")
async def assign_post(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.manage")),
                      db: Session = Depends(get_db)) -> Response:
    _rules, now, _tz = _ctx(request)

    def act(i, f):
        owner = f.get("owner_id", "")
        svc.assign(db, principal, i, int(owner) if owner.isdigit() else None, now=now)

    return await _act(request, db, principal, incident_id, "handling", act, _("Owner set."))


@router.post("/incidents/{incident_id}/level")
async def level_post(incident_id: int, request: Request,
                     principal: Principal = Depends(require("incidents.grade_override")),
                     db: Session = Depends(get_db)) -> Response:
    rules, now, _tz = _ctx(request)
    return await _act(request, db, principal, incident_id, "grading", lambda i, f: svc.override_level(
        db, principal, i, f.get("level") or None, f.get("reason", ""), now=now, rules=rules), _("Level changed."))


@router.post("/incidents/{incident_id}/reports")
async def report_post(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.read")),
                      db: Session = Depends(get_db)) -> Response:
    rules, now, tz = _ctx(request)
    return await _act(request, db, principal, incident_id, "clocks", lambda i, f: svc.record_report(
        db, principal, i, f.get("kind", ""), f.get("at", ""), now=now, rules=rules, channel=f.get("channel", ""),
        viewer_zone=tz), _("Recorded."))


@router.post("/incidents/{incident_id}/comments")
async def comment_post(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.read")),
                       db: Session = Depends(get_db)) -> Response:
    _rules, now, _tz = _ctx(request)
    return await _act(request, db, principal, incident_id, "comments", lambda i, f: svc.add_comment(
        db, principal, i, f.get("body", ""), f.get("visibility", "internal"), now=now), _("Comment added."))


@router.post("/incidents/{incident_id}/attachments")
async def attachment_post(incident_id: int, request: Request,
                          principal: Principal = Depends(require("incidents.read")),
                          db: Session = Depends(get_db)) -> Response:
    _rules, now, _tz = _ctx(request)
    incident = svc.get_incident(db, principal, incident_id)
    if not svc.can_edit_report(principal, incident):
        raise Forbidden()
    form = await request.form()
    uploads = [f for f in form.getlist("attachments") if isinstance(f, UploadFile) and f.filename]
    if not uploads:
        return _case_page(request, db, principal, incident_id, errors={"attachments": _("choose a file")},
                          section="attachments", status_code=422)
    refused = await _store_uploads(request, db, principal, incident, uploads, now)
    db.commit()
    if refused:
        return _case_page(request, db, principal, incident_id, section="attachments", status_code=422, errors={
            "attachments": "; ".join(f"{r.filename}: {r.reason}" for r in refused)})
    return redirect(f"/incidents/{incident_id}#attachments", _("Attached."))


@router.get("/incidents/{incident_id}/attachments/{attachment_id}")
def attachment_get(incident_id: int, attachment_id: int, request: Request,
                   principal: Principal = Depends(require("incidents.read")),
                   db: Session = Depends(get_db)) -> Response:
    return attachment_download(db, principal, incident_id, attachment_id, request.app.state.settings.data_dir)


@router.post("/incidents/{incident_id}/events")
async def events_post(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.manage")),
                      db: Session = Depends(get_db)) -> Response:
    _rules, now, _tz = _ctx(request)
    return await _act(request, db, principal, incident_id, "events", lambda i, f: svc.link_events(
        db, principal, i, f.get("event_ids", ""), now=now), _("Events linked."))


@router.post("/incidents/{incident_id}/links")
async def link_post(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.manage")),
                    db: Session = Depends(get_db)) -> Response:
    _rules, now, _tz = _ctx(request)

    def act(i, f):
        other = _incident_by_ref_or_id(db, principal, f.get("other", ""))
        svc.link_incidents(db, principal, i, other, now=now)

    return await _act(request, db, principal, incident_id, "links", act, _("Linked."))


@router.post("/incidents/{incident_id}/merge")
async def merge_post(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.manage")),
                     db: Session = Depends(get_db)) -> Response:
    rules, now, _tz = _ctx(request)
    form = await request.form()
    try:
        duplicate = svc.get_incident(db, principal, incident_id)
        target = _incident_by_ref_or_id(db, principal, str(form.get("primary", "")))
        primary = svc.merge(db, principal, duplicate, target, now=now, rules=rules)
    except Invalid as exc:
        db.rollback()
        return _case_page(request, db, principal, incident_id, errors=exc.by_field(), section="links",
                          status_code=422)
    db.commit()
    return redirect(f"/incidents/{primary.id}", _("Merged into {ref}.").format(ref=primary.ref))


def _incident_by_ref_or_id(db: Session, principal: Principal, value: str) -> int:
    value = value.strip()
    if value.isdigit():
        return int(value)
    found = db.scalar(scope(select(Incident.id), principal, Incident).where(Incident.ref == value.upper()))
    if found is None:
        raise Invalid("other", _("no incident {ref}").format(ref=value))
    return found


@router.post("/incidents/{incident_id}/tasks")
async def task_post(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.manage")),
                    db: Session = Depends(get_db)) -> Response:
    _rules, now, tz = _ctx(request)
    return await _act(request, db, principal, incident_id, "tasks", lambda i, f: svc.create_task(
        db, principal, i, f, now=now, viewer_zone=tz), _("Task sent."))


@router.post("/incidents/{incident_id}/shares")
async def share_post(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.share")),
                     db: Session = Depends(get_db)) -> Response:
    rules, now, _tz = _ctx(request)
    form = await request.form()
    fields = [str(v) for v in form.getlist("fields")]
    return await _act(request, db, principal, incident_id, "sharing", lambda i, f: sharing.share(
        db, principal, i, f.get("partner_org_id", ""), f.get("tlp", ""), fields or None, now=now, rules=rules),
        _("Shared."))


@router.get("/incidents/{incident_id}/edit")
def edit_page(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.read")),
              db: Session = Depends(get_db)) -> HTMLResponse:
    rules, _now, tz = _ctx(request)
    incident = svc.get_incident(db, principal, incident_id)
    if not svc.can_edit_report(principal, incident):
        raise Forbidden()
    form = {k: getattr(incident, k) for k in (*REPORT_TEXTS, *SUMMARY_TEXTS, "category", "subcategory", "route",
                                              "suspected_crime", "tlp")}
    for key in ("discovered_at", "occurred_at", "handling_closed_at"):
        form[key] = to_local_input(getattr(incident, key), tz)
    form["impact"] = dict(incident.impact or {})
    form["involves_cii"] = "yes" if incident.involves_cii else "no"
    return _edit_page(request, incident, form, {})


def _edit_page(request: Request, incident: Incident, form: dict, errors: dict, status_code: int = 200) -> HTMLResponse:
    rules, _now, tz = _ctx(request)
    return render(request, "incidents/edit.html", {
        "title": _("Update report {ref}").format(ref=incident.ref), "incident": incident, "form": form,
        "errors": errors, "tz": tz, "is_staff": request.state.principal.is_staff, **_choices(rules)},
        status_code=status_code)


@router.post("/incidents/{incident_id}/edit")
async def edit_post(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.read")),
                    db: Session = Depends(get_db)) -> Response:
    rules, now, tz = _ctx(request)
    incident = svc.get_incident(db, principal, incident_id)
    data, _uploads = await _report_form(request, (*REPORT_TEXTS, *SUMMARY_TEXTS), rules)
    form = await request.form()
    reason = str(form.get("reason", ""))
    try:
        svc.update_report(db, principal, incident, data, now=now, rules=rules, reason=reason, viewer_zone=tz)
    except Invalid as exc:
        db.rollback()
        incident = svc.get_incident(db, principal, incident_id)
        return _edit_page(request, incident, {**data, "impact": data.get("impact", {}), "reason": reason},
                          exc.by_field(), status_code=422)
    db.commit()
    return redirect(f"/incidents/{incident_id}", _("Report updated."))


# --- reports ---------------------------------------------------------------------------------------

def _report(request: Request, db: Session, principal: Principal, incident_id: int, kind: str, pdf: bool) -> Response:
    rules, now, tz = _ctx(request)
    settings = request.app.state.settings
    incident = svc.get_incident(db, principal, incident_id)
    build = reports.initial_report if kind == "initial" else reports.summary_report
    data = build(db, incident, rules, tz, now)
    if pdf:
        body = reports.as_pdf(data, now, f"{settings.centre_name_zh} / {settings.centre_name}")
        return Response(body, media_type="application/pdf", headers={
            "Content-Disposition": f'inline; filename="{incident.ref}-{kind}.pdf"'})
    return render(request, "incidents/report.html", {"title": data["title"], "report": data, "incident": incident,
                                                      "kind": kind})


@router.get("/incidents/{incident_id}/report/initial")
def initial_html(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.read")),
                 db: Session = Depends(get_db)) -> Response:
    return _report(request, db, principal, incident_id, "initial", pdf=False)


@router.get("/incidents/{incident_id}/report/initial.pdf")
def initial_pdf(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.read")),
                db: Session = Depends(get_db)) -> Response:
    return _report(request, db, principal, incident_id, "initial", pdf=True)


@router.get("/incidents/{incident_id}/report/summary")
def summary_html(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.read")),
                 db: Session = Depends(get_db)) -> Response:
    return _report(request, db, principal, incident_id, "summary", pdf=False)


@router.get("/incidents/{incident_id}/report/summary.pdf")
def summary_pdf(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.read")),
                db: Session = Depends(get_db)) -> Response:
    return _report(request, db, principal, incident_id, "summary", pdf=True)


# --- coordination tasks portal ---------------------------------------------------------------------

TASKS_LIST = ListSpec(path="/tasks", id_column=IncidentTask.id, sorts=svc.TASK_SORTS, default_sort="due",
                      default_desc=False, filters=("q", "status"))


@router.get("/tasks")
def tasks_page(request: Request, principal: Principal = Depends(require("incidents.read")),
               db: Session = Depends(get_db)) -> HTMLResponse:
    rules, now, _tz = _ctx(request)
    errors: dict[str, str] = {}
    try:
        lq = parse_list_query(TASKS_LIST, request.query_params)
        lst = list_page(db, svc.tasks_query(principal, lq.params.get("q", ""), lq.params.get("status", "")),
                        TASKS_LIST, lq)
    except Invalid as exc:
        errors = exc.by_field()
        lst = empty_page(TASKS_LIST, request.query_params)
    tasks = list(lst.items)
    refs = {t.incident_id: db.get(Incident, t.incident_id).ref for t in tasks}
    return render(request, "incidents/tasks.html", {
        "title": _("Coordination tasks"), "tasks": tasks, "refs": refs, "now": now, "lst": lst, "errors": errors,
        "f": {"status": lst.query.params.get("status", "")},
        "all_task_statuses": [(s, svc.task_status_label(s)) for s in TASK_STATUSES],
        "org_name": lambda i: svc.org_name(db, i), **_choices(rules)}, status_code=422 if errors else 200)


@router.get("/tasks/{task_id}")
def task_page(task_id: int, request: Request, principal: Principal = Depends(require("incidents.read")),
              db: Session = Depends(get_db)) -> HTMLResponse:
    return _task_page(request, db, principal, task_id, {})


def _task_page(request: Request, db: Session, principal: Principal, task_id: int, errors: dict,
               form: dict | None = None, status_code: int = 200) -> HTMLResponse:
    rules, now, _tz = _ctx(request)
    task = svc.get_task(db, principal, task_id)
    incident = db.get(Incident, task.incident_id)
    own_case = principal.is_staff or incident.org_id in principal.org_ids
    return render(request, "incidents/task.html", {
        "title": task.title, "task": task, "ref": incident.ref, "incident_id": incident.id if own_case else None,
        "org": svc.org_name(db, task.org_id), "errors": errors, "form": form or {}, "now": now,
        "can_respond": principal.has("incidents.manage") or principal.can("tasks.respond", task.org_id),
        **_choices(rules)}, status_code=status_code)


@router.post("/tasks/{task_id}")
async def task_respond(task_id: int, request: Request, principal: Principal = Depends(require("incidents.read")),
                       db: Session = Depends(get_db)) -> Response:
    _rules, now, _tz = _ctx(request)
    form = await request.form()
    data = {"status": str(form.get("status", "")), "response": str(form.get("response", ""))}
    task = svc.get_task(db, principal, task_id)
    try:
        svc.respond_task(db, principal, task, data["status"], data["response"], now=now)
    except Invalid as exc:
        db.rollback()
        return _task_page(request, db, principal, task_id, exc.by_field(), data, status_code=422)
    db.commit()
    return redirect(f"/tasks/{task_id}", _("Answer sent."))


# --- partner CERT view -----------------------------------------------------------------------------

#: Snapshot fields that hold a moment (stored as UTC ISO text): the page shows them in local time.
SHARED_TIMES = ("discovered_at", "occurred_at")


def shared_times(snapshot: dict[str, Any]) -> dict[str, datetime | None]:
    """The snapshot's moments as aware datetimes, for the ``dt`` filter (the viewer's zone)."""
    return {key: datetime.fromisoformat(snapshot[key]) if snapshot.get(key) else None
            for key in SHARED_TIMES if key in snapshot}


@router.get("/shared-incidents")
def shared_page(request: Request, principal: Principal = Depends(require("cooperation.read")),
                db: Session = Depends(get_db)) -> HTMLResponse:
    rules, _now, _tz = _ctx(request)
    rows = sharing.shares_for(db, principal)
    return render(request, "incidents/shared_list.html", {"title": _("Shared incidents"), "shares": rows,
                                                           **_choices(rules)})


@router.get("/shared-incidents/{share_id}")
def shared_one(share_id: int, request: Request, principal: Principal = Depends(require("cooperation.read")),
               db: Session = Depends(get_db)) -> HTMLResponse:
    return _shared_page(request, db, principal, share_id, {})


def _shared_page(request: Request, db: Session, principal: Principal, share_id: int, errors: dict,
                 status_code: int = 200) -> HTMLResponse:
    rules, _now, _tz = _ctx(request)
    row = sharing.get_share(db, principal, share_id)
    return render(request, "incidents/shared.html", {
        "title": row.snapshot.get("ref", ""), "share": row, "times": shared_times(row.snapshot),
        "updates": sharing.partner_updates(db, principal, row),
        "errors": errors, "can_update": principal.role == Role.PARTNER, **_choices(rules)}, status_code=status_code)


@router.post("/shared-incidents/{share_id}")
async def shared_update(share_id: int, request: Request, principal: Principal = Depends(require("cooperation.read")),
                        db: Session = Depends(get_db)) -> Response:
    _rules, now, _tz = _ctx(request)
    form = await request.form()
    row = sharing.get_share(db, principal, share_id)
    try:
        sharing.partner_update(db, principal, row, str(form.get("body", "")), now=now)
    except Invalid as exc:
        db.rollback()
        return _shared_page(request, db, principal, share_id, exc.by_field(), status_code=422)
    db.commit()
    return redirect(f"/shared-incidents/{share_id}", _("Update sent."))


__all__ = ["router", "NAV", "state_label"]
