"""REST: incidents (intake, grading, clocks, case handling), coordination tasks, partner sharing,
deadline alerts. Times in requests need an offset (``2026-11-25T14:30+08:00``); answers are UTC."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.clock import ensure_utc
from commonwatch.constituency.models import Organisation
from commonwatch.errors import Invalid
from commonwatch.incidents import alerts, reports, sharing
from commonwatch.incidents import services as svc
from commonwatch.incidents.attachments import AttachmentRefused
from commonwatch.incidents.clocks import CaseFacts, reporting_clocks, route_for_org_kind
from commonwatch.incidents.grading import grade, parse_facts
from commonwatch.incidents.models import Incident, IncidentAttachment, IncidentShare, IncidentTask
from commonwatch.incidents.rules import IncidentRules, load_incident_rules
from commonwatch.incidents.timing import parse_time
from commonwatch.incidents.views import attachment_download, clocks_json, describe, grading_rows
from commonwatch.web.deps import SearchText, get_db, require

router = APIRouter(tags=["incidents"])


def rules_of(request: Request) -> IncidentRules:
    return load_incident_rules(request.app.state.settings.data_dir)


def now_of(request: Request) -> datetime:
    return request.app.state.clock.now()


def _iso(value: datetime | None) -> str | None:
    return ensure_utc(value).isoformat() if value else None


class ReportIn(BaseModel):
    """An incident report. Items 1 and 2 of Art. 7 (affected system; when, type, effects) are enough to
    file; the rest may follow with PATCH."""

    model_config = ConfigDict(extra="forbid")

    org_id: int | None = Field(None, description="Organisation hit (a constituent's own by default).")
    title: str | None = None
    affected_system: str | None = Field(None, description="Item 1: the facility, system or platform hit.")
    discovered_at: str | None = Field(None, description="When the operator discovered or learned of it (with offset).")
    discovery_basis: str | None = Field(None, description="How that time was established.")
    occurred_at: str | None = None
    location: str | None = None
    category: str | None = Field(None, description="GB/T 20986-2023 category code, e.g. DS.")
    subcategory: str | None = Field(None, description="GB/T 20986-2023 subcategory code, e.g. DSLEAK.")
    rsit_class: str | None = None
    rsit_type: str | None = None
    effects: str | None = Field(None, description="Item 2: effects and harm so far.")
    measures_taken: str | None = None
    ransom_amount: str | None = None
    ransom_method: str | None = None
    ransom_dates: str | None = None
    trend: str | None = None
    cause: str | None = None
    leads: str | None = None
    further_measures: str | None = None
    evidence_preservation: str | None = None
    other_info: str | None = None
    suspected_crime: bool | None = None
    involves_cii: bool | None = None
    route: str | None = Field(None, description="cii | central_state_organ | other (default from the organisation).")
    protection_department: str | None = None
    operator_province: str | None = None
    parent_department: str | None = None
    reporter_name: str | None = None
    reporter_contact: str | None = None
    tlp: str | None = None
    impact: dict[str, Any] | None = Field(None, description="Grading facts, see GET /api/v1/incidents/rules.")


class ReportPatch(ReportIn):
    handling_closed_at: str | None = None
    summary_cause: str | None = None
    summary_handling: str | None = None
    summary_harm: str | None = None
    summary_accountability: str | None = None
    summary_rectification: str | None = None
    summary_lessons: str | None = None
    reason: str | None = Field(None, description="Why, when the change moves the level or the clocks.")


class StatusIn(BaseModel):
    status: str
    note: str = ""


class AssignIn(BaseModel):
    owner_id: int | None = None


class LevelIn(BaseModel):
    level: str | None = Field(None, description="特别重大 | 重大 | 较大 | 一般; null returns to the computed level.")
    reason: str


class ReportSentIn(BaseModel):
    kind: str = Field(..., description="first_report | escalation | summary | duty:<id>")
    at: str | None = None
    channel: str = ""


class CommentIn(BaseModel):
    body: str
    visibility: str = "internal"


class EventIdsIn(BaseModel):
    event_ids: list[int]


class FromEventsIn(BaseModel):
    event_ids: list[int]
    org_id: int | None = None
    title: str | None = None
    category: str | None = None
    subcategory: str | None = None
    affected_system: str | None = None
    effects: str | None = None
    impact: dict[str, Any] | None = None


class LinkIn(BaseModel):
    other_id: int


class MergeIn(BaseModel):
    primary_id: int


class TaskIn(BaseModel):
    org_id: int
    title: str
    body: str = ""
    due_at: str | None = None


class TaskResponseIn(BaseModel):
    status: str
    response: str = ""


class ShareIn(BaseModel):
    partner_org_id: int
    tlp: str
    fields: list[str] | None = None


class UpdateIn(BaseModel):
    body: str


class GradeIn(BaseModel):
    impact: dict[str, Any] = Field(default_factory=dict)
    org_kind: str = "network-operator"
    involves_cii: bool = False
    discovered_at: str | None = None


class ReadIn(BaseModel):
    ids: list[int]


def incident_json(session: Session, incident: Incident, rules: IncidentRules, now: datetime) -> dict[str, Any]:
    level = rules.grading.level(incident.level)
    org = session.get(Organisation, incident.org_id)
    return {
        "id": incident.id, "ref": incident.ref, "org_id": incident.org_id, "org_name": org.name if org else "",
        "title": incident.title, "status": incident.status, "owner_id": incident.owner_id,
        "opened_via": incident.opened_via, "tlp": incident.tlp,
        "level": incident.level, "level_en": level.en, "computed_level": incident.computed_level,
        "level_override_reason": incident.level_override_reason, "grading_provisional": any(
            r["provisional"] for r in grading_rows(incident, rules) if r["deciding"]),
        "indicators": grading_rows(incident, rules), "rules_version": incident.rules_version,
        "route": incident.route, "route_basis": incident.route_basis, "involves_cii": incident.involves_cii,
        "reportable": incident.reportable, "clocks": clocks_json(incident, rules, now),
        "discovered_at": _iso(incident.discovered_at), "discovery_basis": incident.discovery_basis,
        "occurred_at": _iso(incident.occurred_at), "location": incident.location,
        "category": incident.category, "subcategory": incident.subcategory,
        "rsit_class": incident.rsit_class, "rsit_type": incident.rsit_type,
        "affected_system": incident.affected_system, "effects": incident.effects,
        "measures_taken": incident.measures_taken, "ransom_amount": incident.ransom_amount,
        "ransom_method": incident.ransom_method, "ransom_dates": incident.ransom_dates, "trend": incident.trend,
        "cause": incident.cause, "leads": incident.leads, "further_measures": incident.further_measures,
        "evidence_preservation": incident.evidence_preservation, "other_info": incident.other_info,
        "suspected_crime": incident.suspected_crime, "impact": incident.impact,
        "first_report_at": _iso(incident.first_report_at), "escalated_at": _iso(incident.escalated_at),
        "handling_closed_at": _iso(incident.handling_closed_at), "summary_report_at": _iso(incident.summary_report_at),
        "summary": {k: getattr(incident, f"summary_{k}") for k in
                    ("cause", "handling", "harm", "accountability", "rectification", "lessons")},
        "merged_into_id": incident.merged_into_id,
        "created_at": _iso(incident.created_at), "updated_at": _iso(incident.updated_at),
    }


def _set(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(exclude_unset=True)


# --- rules and the grading calculator --------------------------------------------------------------

@router.get("/incidents/rules")
def rules_in_force(request: Request, principal: Principal = Depends(require("incidents.read"))) -> dict[str, Any]:
    """The grading indicators, routes and duties in force, each with its citation and status."""
    rules = rules_of(request)
    g, r = rules.grading, rules.reporting
    return {
        "version": rules.version,
        "levels": [{"key": lv.key, "en": lv.en, "rank": lv.rank, "roman": lv.roman} for lv in g.levels],
        "inputs": {k: {"type": v.type, "en": v.text.en, "zh": v.text.zh, "values": v.value_keys()}
                   for k, v in {**g.inputs, **r.duty_inputs}.items()},
        "indicators": [{"id": i.id, "level": i.level, "input": i.input, "op": i.op, "threshold": i.threshold,
                        "when": {k: list(v) for k, v in i.when.items()}, "en": i.text.en, "zh": i.text.zh,
                        "citation": i.citation.en, "status": i.status, "confidence": i.confidence}
                       for i in g.indicators],
        "routes": {k: {"first_minutes": v.first_minutes, "escalation_minutes": v.escalation_minutes,
                       "recipients": [t.en for t in v.first_recipients], "citation": v.citation.en,
                       "status": v.status} for k, v in r.routes.items()},
        "org_kind_routes": r.org_kind_routes,
        "duties": [{"id": d.id, "hours": d.hours, "en": d.text.en, "citation": d.citation.en, "status": d.status}
                   for d in r.duties],
        "categories": [{"code": c.code, "en": c.text.en, "zh": c.text.zh,
                        "subcategories": [{"code": s.code, "en": s.text.en, "zh": s.text.zh,
                                           "rsit": [s.rsit_class, s.rsit_type]} for s in c.subcategories]}
                       for c in rules.taxonomy.categories],
        "taxonomy_codes_status": rules.taxonomy.codes_status,
    }


@router.post("/incidents/grade")
def grade_preview(body: GradeIn, request: Request,
                  principal: Principal = Depends(require("incidents.read"))) -> dict[str, Any]:
    """Grade facts and show the clocks without filing anything (what-if)."""
    rules = rules_of(request)
    facts = parse_facts(body.impact, {**rules.grading.inputs, **rules.reporting.duty_inputs})
    result = grade(facts, rules.grading)
    discovered = parse_time(body.discovered_at, "discovered_at") or now_of(request)
    route = route_for_org_kind(body.org_kind, body.involves_cii, rules.reporting)
    clocks = reporting_clocks(CaseFacts(discovered, route, result.level, involves_cii=body.involves_cii, facts=facts),
                              rules.reporting, rules.grading)
    return {"level": result.level, "level_en": rules.grading.level(result.level).en,
            "provisional": result.provisional, "reportable": clocks.reportable, "route": route,
            "fired": [{"id": f.indicator.id, "level": f.indicator.level, "value": f.value,
                       "citation": f.indicator.citation.en, "status": f.indicator.status} for f in result.fired],
            "clocks": [{"clock": c.key, "due_at": _iso(c.due_at), "citation": c.citation.en, "status": c.status}
                       for c in clocks.clocks]}


# --- incidents -------------------------------------------------------------------------------------

@router.get("/incidents")
def list_incidents(request: Request, q: SearchText = "", status: str = "", level: str = "", open_only: bool = False,
                   page: int = 1, per_page: int = 50, principal: Principal = Depends(require("incidents.read")),
                   db: Session = Depends(get_db)) -> dict[str, Any]:
    rules, now = rules_of(request), now_of(request)
    per_page = max(1, min(per_page, 200))
    rows, total = svc.search_incidents(db, principal, svc.IncidentFilter(q, status, level, open_only=open_only),
                                       page=page, per_page=per_page)
    return {"items": [incident_json(db, i, rules, now) for i in rows], "total": total, "page": max(page, 1),
            "per_page": per_page}


@router.post("/incidents", status_code=201)
def file_incident(body: ReportIn, request: Request, principal: Principal = Depends(require("incidents.read")),
                  db: Session = Depends(get_db)) -> dict[str, Any]:
    rules, now = rules_of(request), now_of(request)
    via = "api" if not principal.is_staff else "centre"
    incident = svc.file_incident(db, principal, _set(body), now=now, rules=rules, via=via)
    db.commit()
    return incident_json(db, incident, rules, now)


@router.post("/incidents/from-events", status_code=201)
def from_events(body: FromEventsIn, request: Request, principal: Principal = Depends(require("incidents.manage")),
                db: Session = Depends(get_db)) -> dict[str, Any]:
    """One incident from many selected events (organisation, times and class taken from them)."""
    rules, now = rules_of(request), now_of(request)
    data = {k: v for k, v in _set(body).items() if k != "event_ids" and v is not None}
    incident = svc.create_from_events(db, principal, body.event_ids, data, now=now, rules=rules)
    db.commit()
    return incident_json(db, incident, rules, now)


@router.get("/incidents/{incident_id}")
def get_incident(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.read")),
                 db: Session = Depends(get_db)) -> dict[str, Any]:
    return incident_json(db, svc.get_incident(db, principal, incident_id), rules_of(request), now_of(request))


@router.patch("/incidents/{incident_id}")
def update_incident(incident_id: int, body: ReportPatch, request: Request,
                    principal: Principal = Depends(require("incidents.read")),
                    db: Session = Depends(get_db)) -> dict[str, Any]:
    rules, now = rules_of(request), now_of(request)
    incident = svc.get_incident(db, principal, incident_id)
    data = _set(body)
    reason = data.pop("reason", "") or ""
    svc.update_report(db, principal, incident, data, now=now, rules=rules, reason=reason)
    db.commit()
    return incident_json(db, incident, rules, now)


@router.post("/incidents/{incident_id}/status")
def set_status(incident_id: int, body: StatusIn, request: Request,
               principal: Principal = Depends(require("incidents.manage")),
               db: Session = Depends(get_db)) -> dict[str, Any]:
    rules, now = rules_of(request), now_of(request)
    incident = svc.get_incident(db, principal, incident_id)
    svc.change_status(db, principal, incident, body.status, now=now, rules=rules, note=body.note)
    db.commit()
    return incident_json(db, incident, rules, now)


@router.post("/incidents/{incident_id}/assign")
def assign(incident_id: int, body: AssignIn, request: Request,
           principal: Principal = Depends(require("incidents.manage")),
           db: Session = Depends(get_db)) -> dict[str, Any]:
    incident = svc.get_incident(db, principal, incident_id)
    svc.assign(db, principal, incident, body.owner_id, now=now_of(request))
    db.commit()
    return incident_json(db, incident, rules_of(request), now_of(request))


@router.post("/incidents/{incident_id}/level")
def override_level(incident_id: int, body: LevelIn, request: Request,
                   principal: Principal = Depends(require("incidents.grade_override")),
                   db: Session = Depends(get_db)) -> dict[str, Any]:
    rules, now = rules_of(request), now_of(request)
    incident = svc.get_incident(db, principal, incident_id)
    svc.override_level(db, principal, incident, body.level, body.reason, now=now, rules=rules)
    db.commit()
    return incident_json(db, incident, rules, now)


@router.post("/incidents/{incident_id}/reports")
def report_sent(incident_id: int, body: ReportSentIn, request: Request,
                principal: Principal = Depends(require("incidents.read")),
                db: Session = Depends(get_db)) -> dict[str, Any]:
    """Record that a report went out (first, summary), an escalation was confirmed, or a duty was done."""
    rules, now = rules_of(request), now_of(request)
    incident = svc.get_incident(db, principal, incident_id)
    svc.record_report(db, principal, incident, body.kind, body.at, now=now, rules=rules, channel=body.channel)
    db.commit()
    return incident_json(db, incident, rules, now)


@router.get("/incidents/{incident_id}/clocks")
def clocks(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.read")),
           db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    incident = svc.get_incident(db, principal, incident_id)
    return clocks_json(incident, rules_of(request), now_of(request))


@router.get("/incidents/{incident_id}/timeline")
def timeline(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.read")),
             db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    incident = svc.get_incident(db, principal, incident_id)
    tz = principal.timezone or request.app.state.settings.timezone
    rules = rules_of(request)
    return [{"at": _iso(e.at), "kind": e.kind, "actor": e.actor if principal.is_staff else "",
             "text": describe(e, rules, tz), "data": e.data if principal.is_staff else {}}
            for e in svc.list_timeline(db, principal, incident)]


@router.get("/incidents/{incident_id}/comments")
def comments(incident_id: int, principal: Principal = Depends(require("incidents.read")),
             db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    incident = svc.get_incident(db, principal, incident_id)
    return [{"id": c.id, "author": c.author_name, "visibility": c.visibility, "body": c.body,
             "created_at": _iso(c.created_at)} for c in svc.list_comments(db, principal, incident)]


@router.post("/incidents/{incident_id}/comments", status_code=201)
def add_comment(incident_id: int, body: CommentIn, request: Request,
                principal: Principal = Depends(require("incidents.read")), db: Session = Depends(get_db)) -> dict:
    incident = svc.get_incident(db, principal, incident_id)
    c = svc.add_comment(db, principal, incident, body.body, body.visibility, now=now_of(request))
    db.commit()
    return {"id": c.id, "visibility": c.visibility, "created_at": _iso(c.created_at)}


def _attachment_json(a: IncidentAttachment) -> dict[str, Any]:
    return {"id": a.id, "filename": a.filename, "sha256": a.sha256, "size": a.size, "content_type": a.content_type,
            "visibility": a.visibility, "created_at": _iso(a.created_at)}


@router.get("/incidents/{incident_id}/attachments")
def attachments(incident_id: int, principal: Principal = Depends(require("incidents.read")),
                db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    incident = svc.get_incident(db, principal, incident_id)
    return [_attachment_json(a) for a in svc.list_attachments(db, principal, incident)]


@router.post("/incidents/{incident_id}/attachments", status_code=201)
async def add_attachment(incident_id: int, request: Request, file: UploadFile = File(...),
                         visibility: str = Form("shared"), principal: Principal = Depends(require("incidents.read")),
                         db: Session = Depends(get_db)) -> dict[str, Any]:
    settings = request.app.state.settings
    incident = svc.get_incident(db, principal, incident_id)
    data = await file.read(settings.max_upload_bytes + 1)
    try:
        row = svc.add_attachment(db, principal, incident, file.filename or "", data, now=now_of(request),
                                 data_dir=settings.data_dir, max_bytes=settings.max_upload_bytes,
                                 visibility=visibility)
    except AttachmentRefused as refused:
        db.commit()  # the refusal stays on the timeline
        raise Invalid("file", refused.reason) from None
    db.commit()
    return _attachment_json(row)


@router.get("/incidents/{incident_id}/attachments/{attachment_id}")
def download_attachment(incident_id: int, attachment_id: int, request: Request,
                        principal: Principal = Depends(require("incidents.read")),
                        db: Session = Depends(get_db)) -> Response:
    return attachment_download(db, principal, incident_id, attachment_id, request.app.state.settings.data_dir)


@router.get("/incidents/{incident_id}/events")
def events(incident_id: int, principal: Principal = Depends(require("incidents.read")),
           db: Session = Depends(get_db)) -> dict[str, Any]:
    incident = svc.get_incident(db, principal, incident_id)
    rows, total = svc.linked_events(db, principal, incident)
    return {"total": total, "items": [{"id": e.id, "time_source": _iso(e.time_source), "feed_name": e.feed_name,
                                       "source_ip": e.source_ip, "classification_type": e.classification_type}
                                      for e in rows]}


@router.post("/incidents/{incident_id}/events")
def link_events(incident_id: int, body: EventIdsIn, request: Request,
                principal: Principal = Depends(require("incidents.manage")),
                db: Session = Depends(get_db)) -> dict[str, Any]:
    incident = svc.get_incident(db, principal, incident_id)
    added = svc.link_events(db, principal, incident, body.event_ids, now=now_of(request))
    db.commit()
    return {"linked": added}


@router.post("/incidents/{incident_id}/links")
def link_incident(incident_id: int, body: LinkIn, request: Request,
                  principal: Principal = Depends(require("incidents.manage")),
                  db: Session = Depends(get_db)) -> dict[str, Any]:
    incident = svc.get_incident(db, principal, incident_id)
    svc.link_incidents(db, principal, incident, body.other_id, now=now_of(request))
    db.commit()
    return {"linked": body.other_id}


@router.post("/incidents/{incident_id}/merge")
def merge(incident_id: int, body: MergeIn, request: Request,
          principal: Principal = Depends(require("incidents.manage")), db: Session = Depends(get_db)) -> dict:
    """Merge this incident (a duplicate) into ``primary_id``."""
    rules, now = rules_of(request), now_of(request)
    duplicate = svc.get_incident(db, principal, incident_id)
    primary = svc.merge(db, principal, duplicate, body.primary_id, now=now, rules=rules)
    db.commit()
    return incident_json(db, primary, rules, now)


def task_json(db: Session, t: IncidentTask, principal: Principal) -> dict[str, Any]:
    incident = db.get(Incident, t.incident_id)
    return {"id": t.id, "incident_ref": incident.ref if incident else "",
            "incident_id": t.incident_id if principal.is_staff or (incident and incident.org_id in principal.org_ids)
            else None, "org_id": t.org_id, "title": t.title, "body": t.body, "due_at": _iso(t.due_at),
            "status": t.status, "response": t.response, "responded_at": _iso(t.responded_at),
            "created_at": _iso(t.created_at)}


@router.get("/incidents/{incident_id}/tasks")
def incident_tasks(incident_id: int, principal: Principal = Depends(require("incidents.read")),
                   db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    incident = svc.get_incident(db, principal, incident_id)
    return [task_json(db, t, principal) for t in svc.list_tasks(db, principal, incident=incident)]


@router.post("/incidents/{incident_id}/tasks", status_code=201)
def create_task(incident_id: int, body: TaskIn, request: Request,
                principal: Principal = Depends(require("incidents.manage")),
                db: Session = Depends(get_db)) -> dict[str, Any]:
    incident = svc.get_incident(db, principal, incident_id)
    task = svc.create_task(db, principal, incident, _set(body), now=now_of(request))
    db.commit()
    return task_json(db, task, principal)


@router.post("/incidents/{incident_id}/shares", status_code=201)
def share(incident_id: int, body: ShareIn, request: Request,
          principal: Principal = Depends(require("incidents.share")), db: Session = Depends(get_db)) -> dict:
    rules, now = rules_of(request), now_of(request)
    incident = svc.get_incident(db, principal, incident_id)
    row = sharing.share(db, principal, incident, body.partner_org_id, body.tlp, body.fields, now=now, rules=rules)
    db.commit()
    return share_json(row)


@router.post("/incidents/{incident_id}/shares/{share_id}/revoke")
def revoke_share(incident_id: int, share_id: int, request: Request,
                 principal: Principal = Depends(require("incidents.share")), db: Session = Depends(get_db)) -> dict:
    """Stop sharing: the partner no longer reads the copy (what it already read cannot be recalled)."""
    incident = svc.get_incident(db, principal, incident_id)
    row = sharing.get_share(db, principal, share_id)
    if row.incident_id != incident.id:
        from commonwatch.errors import NotFound

        raise NotFound("shared incident")
    sharing.revoke(db, principal, row, now=now_of(request))
    db.commit()
    return {"revoked": row.id}


def _report(request: Request, db: Session, principal: Principal, incident_id: int, kind: str) -> Response:
    rules, now = rules_of(request), now_of(request)
    incident = svc.get_incident(db, principal, incident_id)
    settings = request.app.state.settings
    build = reports.initial_report if kind == "initial" else reports.summary_report
    data = build(db, incident, rules, settings.timezone, now)
    pdf = reports.as_pdf(data, now, f"{settings.centre_name_zh} / {settings.centre_name}")
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{incident.ref}-{kind}.pdf"'})


@router.get("/incidents/{incident_id}/reports/initial.pdf")
def initial_pdf(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.read")),
                db: Session = Depends(get_db)) -> Response:
    return _report(request, db, principal, incident_id, "initial")


@router.get("/incidents/{incident_id}/reports/summary.pdf")
def summary_pdf(incident_id: int, request: Request, principal: Principal = Depends(require("incidents.read")),
                db: Session = Depends(get_db)) -> Response:
    return _report(request, db, principal, incident_id, "summary")


# --- tasks (the addressed organisation's side) ------------------------------------------------------

@router.get("/tasks")
def my_tasks(open_only: bool = False, principal: Principal = Depends(require("incidents.read")),
             db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    """Coordination tasks addressed to the caller's organisations (all tasks for centre staff)."""
    return [task_json(db, t, principal) for t in svc.list_tasks(db, principal, open_only=open_only)]


@router.get("/tasks/{task_id}")
def get_task(task_id: int, principal: Principal = Depends(require("incidents.read")),
             db: Session = Depends(get_db)) -> dict[str, Any]:
    return task_json(db, svc.get_task(db, principal, task_id), principal)


@router.post("/tasks/{task_id}/response")
def respond(task_id: int, body: TaskResponseIn, request: Request,
            principal: Principal = Depends(require("incidents.read")), db: Session = Depends(get_db)) -> dict:
    task = svc.get_task(db, principal, task_id)
    svc.respond_task(db, principal, task, body.status, body.response, now=now_of(request))
    db.commit()
    return task_json(db, task, principal)


# --- the partner CERT's side ----------------------------------------------------------------------

def share_json(row: IncidentShare) -> dict[str, Any]:
    return {"id": row.id, "tlp": row.tlp, "shared_at": _iso(row.shared_at), "fields": row.fields,
            "incident": row.snapshot}


@router.get("/shared-incidents")
def shared_list(principal: Principal = Depends(require("incidents.read")),
                db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    """Incidents shared with the caller's CERT, each redacted to its TLP label."""
    return [share_json(s) for s in sharing.shares_for(db, principal)]


@router.get("/shared-incidents/{share_id}")
def shared_one(share_id: int, principal: Principal = Depends(require("incidents.read")),
               db: Session = Depends(get_db)) -> dict[str, Any]:
    row = sharing.get_share(db, principal, share_id)
    out = share_json(row)
    out["updates"] = [{"id": c.id, "author": c.author_name, "body": c.body, "created_at": _iso(c.created_at)}
                      for c in sharing.partner_updates(db, principal, row)]
    return out


@router.post("/shared-incidents/{share_id}/updates", status_code=201)
def partner_update(share_id: int, body: UpdateIn, request: Request,
                   principal: Principal = Depends(require("incidents.read")),
                   db: Session = Depends(get_db)) -> dict[str, Any]:
    """A partner CERT's update on a shared incident; it appears on the case's timeline."""
    row = sharing.get_share(db, principal, share_id)
    c = sharing.partner_update(db, principal, row, body.body, now=now_of(request))
    db.commit()
    return {"id": c.id, "created_at": _iso(c.created_at)}


# --- deadline alerts -------------------------------------------------------------------------------

@router.get("/incident-alerts")
def my_alerts(request: Request, principal: Principal = Depends(require("incidents.read")),
              db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    rules = rules_of(request)
    tz = principal.timezone or request.app.state.settings.timezone
    return [{"id": a.id, "incident_id": a.incident_id, "clock": a.clock, "state": a.state, "due_at": _iso(a.due_at),
             "message": alerts.message(db, a, rules, tz)} for a in alerts.unread_for(db, principal)]


@router.post("/incident-alerts/read")
def read_alerts(body: ReadIn, request: Request, principal: Principal = Depends(require("incidents.read")),
                db: Session = Depends(get_db)) -> dict[str, int]:
    n = alerts.mark_read(db, principal, body.ids, now_of(request))
    db.commit()
    return {"read": n}
