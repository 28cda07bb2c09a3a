"""Incident workflows: intake, grading and re-grading, clocks, case handling, coordination tasks,
comments, attachments, links, merging and sharing with partner CERTs.

Services take plain values, a session, the acting principal, ``now`` and the rules in force; they
raise ``Invalid`` (naming each field), ``NotFound`` or ``Forbidden``. Every change is audited by the
ORM; acts that are not row changes (a re-grading, a level override, linking events in bulk) are
recorded with ``access.audit.record`` and put on the case's timeline.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import BigInteger, case, cast, func, insert, literal, or_, select
from sqlalchemy.orm import Session

from commonwatch.access import audit
from commonwatch.access.models import User
from commonwatch.access.principal import STAFF_ROLES, Principal, Role
from commonwatch.clock import ensure_utc
from commonwatch.constituency.models import Organisation, OrgKind
from commonwatch.db import get_scoped, id_relation, scope
from commonwatch.errors import FieldError, Forbidden, Invalid, NotFound
from commonwatch.events.store import event_store, records
from commonwatch.i18n import _, ngettext
from commonwatch.incidents import attachments as files
from commonwatch.incidents.clocks import CaseFacts, Clocks, reporting_clocks, route_for_org_kind
from commonwatch.incidents.grading import Grading, grade, parse_facts
from commonwatch.incidents.models import (
    COMMENT_VISIBILITY,
    STATUSES,
    TASK_STATUSES,
    TRANSITIONS,
    Incident,
    IncidentAttachment,
    IncidentComment,
    IncidentEvent,
    IncidentLink,
    IncidentTask,
    TimelineEntry,
)
from commonwatch.incidents.rules import ROUTE_KEYS, TLP_LABELS, IncidentRules
from commonwatch.incidents.timing import parse_time
from commonwatch.labels import label
from commonwatch.textio import control_char, control_char_reason

log = logging.getLogger("commonwatch.incidents")

TEXT_LIMITS = {
    "title": 300, "discovery_basis": 300, "location": 300, "reporter_name": 200, "reporter_contact": 320,
    "protection_department": 200, "operator_province": 100, "parent_department": 200,
    "ransom_amount": 200, "ransom_method": 200, "ransom_dates": 200,
    "affected_system": 20000, "effects": 20000, "measures_taken": 20000, "trend": 20000, "cause": 20000,
    "leads": 20000, "further_measures": 20000, "evidence_preservation": 20000, "other_info": 20000,
    "summary_cause": 20000, "summary_handling": 20000, "summary_harm": 20000, "summary_accountability": 20000,
    "summary_rectification": 20000, "summary_lessons": 20000,
}
#: Art. 7 items 1 and 2: enough to file on time; the rest may follow as updates.
REQUIRED_TO_FILE = ("title", "affected_system", "effects")
TIME_FIELDS = ("discovered_at", "occurred_at", "handling_closed_at")
BOOL_FIELDS = ("suspected_crime", "involves_cii")
#: Fields whose change moves the level or the clocks: changing them re-grades the case.
GRADING_FIELDS = ("impact", "route", "involves_cii", "discovered_at", "category", "suspected_crime",
                  "handling_closed_at")
MAX_EVENTS_PER_INCIDENT = 100_000
MIN_REASON = 10


@dataclass
class FilingResult:
    incident: Incident
    refused: list[files.AttachmentRefused]


# --- reading ---------------------------------------------------------------------------------------

def get_incident(session: Session, principal: Principal, incident_id: int) -> Incident:
    incident = get_scoped(session, principal, Incident, incident_id)
    if incident is None:
        raise NotFound("incident")
    return incident


@dataclass
class IncidentFilter:
    q: str = ""
    status: str = ""
    level: str = ""
    org_id: int | None = None
    open_only: bool = False
    owner_id: int | None = None


def incident_sorts(rules: IncidentRules) -> dict[str, Any]:
    """The columns the incident list may be sorted by (each never NULL); the level by its rank in
    the grading rules (most severe highest), not by the spelling of its key."""
    ranks = {lv.key: len(rules.grading.levels) - i for i, lv in enumerate(rules.grading.levels)}
    return {"discovered": Incident.discovered_at, "ref": Incident.ref, "title": Incident.title,
            "level": case(ranks, value=Incident.level, else_=0) if ranks else Incident.level,
            "status": Incident.status, "updated": Incident.updated_at}


def search_incidents(session: Session, principal: Principal, f: IncidentFilter, *, page: int = 1,
                     per_page: int = 50) -> tuple[list[Incident], int]:
    stmt = incidents_query(principal, f)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    page = max(page, 1)
    rows = session.scalars(stmt.order_by(Incident.discovered_at.desc(), Incident.id.desc())
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return list(rows), total


def incidents_query(principal: Principal, f: IncidentFilter) -> Any:
    """The incidents the principal may see that ``f`` selects, as a scoped select."""
    stmt = scope(select(Incident), principal, Incident)
    if f.q:
        like = f"%{f.q.strip()}%"
        stmt = stmt.where(or_(Incident.title.ilike(like), Incident.ref.ilike(like)))
    if f.status:
        stmt = stmt.where(Incident.status == f.status)
    if f.open_only:
        from commonwatch.incidents.models import OPEN_STATUSES

        stmt = stmt.where(Incident.status.in_(OPEN_STATUSES))
    if f.level:
        stmt = stmt.where(Incident.level == f.level)
    if f.org_id:
        stmt = stmt.where(Incident.org_id == f.org_id)
    if f.owner_id:
        stmt = stmt.where(Incident.owner_id == f.owner_id)
    return stmt


def org_name(session: Session, org_id: int) -> str:
    org = session.get(Organisation, org_id)
    return (org.name_local or org.name) if org else str(org_id)


# --- validation ------------------------------------------------------------------------------------

def _text(data: dict[str, Any], key: str, errors: list[FieldError]) -> str:
    value = data.get(key)
    text = "" if value is None else str(value).strip()
    if len(text) > TEXT_LIMITS.get(key, 20000):
        errors.append(FieldError(key, _("is longer than {n} characters").format(n=TEXT_LIMITS[key])))
    if code := control_char(text):  # a form post or a report file: refused naming the field (textio)
        errors.append(FieldError(key, control_char_reason(code)))
    return text


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in ("1", "true", "yes", "on", "y")


def validate_report(data: dict[str, Any], rules: IncidentRules, *, now: datetime, viewer_zone: str | None = None,
                    current: Incident | None = None) -> dict[str, Any]:
    """Check a report (or the changed fields of one); raises :class:`Invalid` listing every bad field.

    A contradictory report is refused: handling cannot end before the incident was discovered, an
    incident cannot be discovered before it occurred or in the future, and counts cannot be negative.
    """
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    creating = current is None
    for key in TEXT_LIMITS:
        if key in data:
            out[key] = _text(data, key, errors)
    for key in REQUIRED_TO_FILE:
        if (creating or key in data) and not out.get(key, "" if creating else getattr(current, key)):
            errors.append(FieldError(key, _("is required to file the report")))
    for key in TIME_FIELDS:
        if key in data:
            try:
                out[key] = parse_time(data[key], key, viewer_zone)
            except Invalid as exc:
                errors.extend(exc.errors)
    if creating and not out.get("discovered_at") and not any(e.field == "discovered_at" for e in errors):
        errors.append(FieldError("discovered_at", _("is required: every clock runs from it")))
    for key in BOOL_FIELDS:
        if key in data:
            out[key] = _bool(data[key])
    tax = rules.taxonomy
    category = str(data.get("category") or "").strip() if "category" in data else (current.category if current else "")
    if "category" in data or creating:
        if not category:
            errors.append(FieldError("category", _("is required")))
        elif tax.category(category) is None:
            errors.append(FieldError("category", _("“{value}” is not a GB/T 20986 category").format(value=category)))
        else:
            out["category"] = category
    if "subcategory" in data:
        sub = str(data.get("subcategory") or "").strip() or None
        if sub is not None:
            found = tax.subcategory(sub)
            if found is None:
                errors.append(FieldError("subcategory", _("“{value}” is not a GB/T 20986 subcategory").format(
                    value=sub)))
            elif found[0].code != category and tax.category(category) is not None:
                errors.append(FieldError("subcategory", _("“{value}” does not belong to category {category}").format(
                    value=sub, category=category)))
        out["subcategory"] = sub
    if "rsit_class" in data or "rsit_type" in data:
        rc, rt = str(data.get("rsit_class") or "").strip(), str(data.get("rsit_type") or "").strip()
        if rc or rt:
            entry = tax.rsit.get(rc)
            if entry is None:
                errors.append(FieldError("rsit_class", _("“{value}” is not an RSIT class").format(value=rc)))
            elif rt not in entry[1]:
                errors.append(FieldError("rsit_type", _("“{value}” is not a type of RSIT class {cls}").format(
                    value=rt, cls=rc)))
            else:
                out["rsit_class"], out["rsit_type"] = rc, rt
    if "route" in data:
        route = str(data.get("route") or "").strip()
        if route and route not in ROUTE_KEYS:
            errors.append(FieldError("route", _("must be one of {values}").format(values=", ".join(ROUTE_KEYS))))
        out["route"] = route or None
    if "tlp" in data:
        tlp = str(data.get("tlp") or "").strip().upper() or "TLP:AMBER"
        if not tlp.startswith("TLP:"):
            tlp = "TLP:" + tlp
        if tlp not in TLP_LABELS:
            errors.append(FieldError("tlp", _("must be one of {values}").format(values=", ".join(TLP_LABELS))))
        out["tlp"] = tlp
    if "impact" in data:
        raw = data.get("impact") or {}
        if not isinstance(raw, dict):
            errors.append(FieldError("impact", _("must be a mapping of facts to values")))
        else:
            try:
                out["impact"] = parse_facts(raw, {**rules.grading.inputs, **rules.reporting.duty_inputs})
            except Invalid as exc:
                errors.extend(exc.errors)
    # Contradictions between times (compare with the stored values when only one side changes).
    discovered = out.get("discovered_at", current.discovered_at if current else None)
    occurred = out.get("occurred_at", current.occurred_at if current else None)
    closed = out.get("handling_closed_at", current.handling_closed_at if current else None)
    if discovered and discovered > ensure_utc(now) + timedelta(minutes=5):
        errors.append(FieldError("discovered_at", _("is in the future")))
    if discovered and occurred and occurred > discovered:
        errors.append(FieldError("occurred_at", _("is after the incident was discovered")))
    if discovered and closed and closed < discovered:
        errors.append(FieldError("handling_closed_at", _("is before the incident was discovered")))
    if closed and closed > ensure_utc(now) + timedelta(minutes=5):
        errors.append(FieldError("handling_closed_at", _("is in the future")))
    if errors:
        raise Invalid(errors)
    return out


# --- grading and clocks ----------------------------------------------------------------------------

def case_facts(incident: Incident) -> CaseFacts:
    done = {k: ensure_utc(datetime.fromisoformat(v)) for k, v in (incident.duties_done or {}).items()}
    return CaseFacts(
        discovered_at=incident.discovered_at, route=incident.route, level=incident.level,
        category=incident.category, involves_cii=incident.involves_cii, suspected_crime=incident.suspected_crime,
        facts=dict(incident.impact or {}), first_report_at=incident.first_report_at,
        escalated_at=incident.escalated_at, handling_closed_at=incident.handling_closed_at,
        summary_report_at=incident.summary_report_at, duties_done=done,
    )


def clocks_for(incident: Incident, rules: IncidentRules) -> Clocks:
    return reporting_clocks(case_facts(incident), rules.reporting, rules.grading)


def _apply_grading(incident: Incident, rules: IncidentRules) -> Grading:
    result = grade(incident.impact or {}, rules.grading)
    incident.computed_level = result.level
    incident.grading = result.as_dict()
    incident.rules_version = rules.version
    if not incident.level_override_reason:
        incident.level = result.level
    return result


def _apply_clocks(incident: Incident, rules: IncidentRules) -> Clocks:
    clocks = clocks_for(incident, rules)
    incident.reportable = clocks.reportable
    for key, attr in (("first_report", "first_report_due"), ("escalation", "escalation_due"),
                      ("summary", "summary_due")):
        clock = clocks.get(key)
        setattr(incident, attr, clock.due_at if clock else None)
    return clocks


def _clock_snapshot(incident: Incident) -> dict[str, Any]:
    def iso(v):
        return ensure_utc(v).isoformat() if v else None

    return {"level": incident.level, "computed_level": incident.computed_level, "route": incident.route,
            "first_report_due": iso(incident.first_report_due), "escalation_due": iso(incident.escalation_due),
            "summary_due": iso(incident.summary_due), "reportable": incident.reportable}


def timeline(session: Session, incident: Incident, what: str, actor: str, now: datetime, *,
             visibility: str = "internal", **data: Any) -> TimelineEntry:
    entry = TimelineEntry(incident_id=incident.id, at=ensure_utc(now), actor=actor, kind=what,
                          visibility=visibility, data=data)
    session.add(entry)
    return entry


def list_timeline(session: Session, principal: Principal, incident: Incident) -> list[TimelineEntry]:
    """The case's timeline as the principal may see it (the reporter sees what concerns it)."""
    stmt = scope(select(TimelineEntry), principal, TimelineEntry).where(TimelineEntry.incident_id == incident.id)
    return list(session.scalars(stmt.order_by(TimelineEntry.at, TimelineEntry.id)))


def _regrade(session: Session, principal: Principal, incident: Incident, rules: IncidentRules, now: datetime,
             reason: str) -> bool:
    """Recompute level and clocks; if anything moved, record why (audited and on the timeline)."""
    before = _clock_snapshot(incident)
    _apply_grading(incident, rules)
    _apply_clocks(incident, rules)
    after = _clock_snapshot(incident)
    if before == after:
        return False
    audit.record(session, "incident.regrade", "incidents", incident.id,
                 before=before, after={**after, "reason": reason}, actor=principal.actor)
    timeline(session, incident, "regraded", principal.actor, now, visibility="reporter", reason=reason,
             before=before, after=after)
    log.info("incident re-graded", extra={"incident": incident.ref, "reason": reason, "level": incident.level})
    return True


def _route_for(org: Organisation, involves_cii: bool | None, route: str | None,
               rules: IncidentRules) -> tuple[bool, str, str]:
    cii = org.kind == OrgKind.CII_OPERATOR if involves_cii is None else involves_cii
    if route:
        if cii and route != "cii":
            # An incident that involves CII takes the CII route whatever else was chosen.
            return cii, "cii", "involves CII"
        return cii, route, "chosen on the incident"
    chosen = route_for_org_kind(org.kind, cii, rules.reporting)
    basis = "involves CII" if cii else f"organisation kind {org.kind}"
    return cii, chosen, basis


# --- intake ----------------------------------------------------------------------------------------

def _check_report_permission(principal: Principal, org_id: int) -> None:
    if principal.has("incidents.manage"):
        return
    if principal.can("incidents.report", org_id):
        return
    raise Forbidden()


def _target_org(session: Session, principal: Principal, data: dict[str, Any]) -> Organisation:
    raw = data.get("org_id")
    if raw in (None, ""):
        if not principal.is_staff and len(principal.org_ids) >= 1:
            # A constituent reports for its own organisation (the first, when it belongs to several).
            raw = min(principal.org_ids)
        else:
            raise Invalid("org_id", _("is required: which organisation was hit?"))
    try:
        org_id = int(raw)
    except (TypeError, ValueError):
        raise Invalid("org_id", _("must be an organisation id")) from None
    org = get_scoped(session, principal, Organisation, org_id)
    if org is None:
        raise Invalid("org_id", _("is not an organisation you may report for"))
    _check_report_permission(principal, org.id)
    if org.kind == OrgKind.PARTNER_CERT:
        raise Invalid("org_id", _("is a partner CERT abroad; share incidents with it instead"))
    return org


def file_incident(session: Session, principal: Principal, data: dict[str, Any], *, now: datetime,
                  rules: IncidentRules, via: str = "portal", viewer_zone: str | None = None) -> Incident:
    """File a new incident: validate, grade, start the clocks and open the timeline."""
    if not (principal.has("incidents.manage") or principal.has("incidents.report.own")):
        raise Forbidden()
    org = _target_org(session, principal, data)
    values = validate_report(data, rules, now=now, viewer_zone=viewer_zone)
    cii, route, basis = _route_for(org, values.pop("involves_cii", None), values.pop("route", None), rules)
    sub = values.get("subcategory")
    rsit = (values.pop("rsit_class", None), values.pop("rsit_type", None))
    if not rsit[0]:
        rsit = rules.taxonomy.rsit_for(values["category"], sub)
    incident = Incident(
        ref=f"pending-{uuid.uuid4().hex[:20]}", org_id=org.id, status="new", opened_via=via,
        reported_by_id=principal.user_id or None, reporter_name=values.pop("reporter_name", "") or principal.name,
        reporter_contact=values.pop("reporter_contact", "") or principal.email,
        route=route, route_basis=basis, involves_cii=cii, rsit_class=rsit[0], rsit_type=rsit[1],
        impact=values.pop("impact", {}), computed_level="", level="", created_at=ensure_utc(now),
        updated_at=ensure_utc(now), tlp=values.pop("tlp", "TLP:AMBER"),
        **{k: v for k, v in values.items() if k in TEXT_LIMITS or k in TIME_FIELDS or k in
           ("category", "subcategory", "suspected_crime")},
    )
    if not incident.operator_province:
        incident.operator_province = org.region
    result = _apply_grading(incident, rules)
    _apply_clocks(incident, rules)
    session.add(incident)
    session.flush()
    incident.ref = f"INC-{ensure_utc(now):%Y}-{incident.id:06d}"
    timeline(session, incident, "created", principal.actor, now, visibility="reporter", via=via,
             org=org.name, route=route)
    timeline(session, incident, "graded", principal.actor, now, visibility="reporter", level=result.level,
             indicators=[f.indicator.id for f in result.deciding()])
    session.flush()
    log.info("incident filed", extra={"incident": incident.ref, "level": incident.level, "route": route,
                                      "org_id": org.id, "via": via})
    return incident


def can_edit_report(principal: Principal, incident: Incident) -> bool:
    return principal.has("incidents.manage") or principal.can("incidents.report", incident.org_id)


def update_report(session: Session, principal: Principal, incident: Incident, data: dict[str, Any], *,
                  now: datetime, rules: IncidentRules, reason: str = "",
                  viewer_zone: str | None = None) -> Incident:
    """Change report fields (updates of Art. 7 items, facts, summary); re-grades when a fact moved."""
    if not can_edit_report(principal, incident):
        raise Forbidden()
    data = {k: v for k, v in data.items() if k != "org_id"}
    values = validate_report(data, rules, now=now, viewer_zone=viewer_zone, current=incident)
    changed: dict[str, tuple[Any, Any]] = {}
    route = values.pop("route", None) if "route" in values else None
    involves = values.pop("involves_cii", None)
    for key, value in values.items():
        old = getattr(incident, key)
        if key == "impact":
            value = {**value}
        if old != value:
            changed[key] = (old, value)
            setattr(incident, key, value)
    if ("category" in changed or "subcategory" in changed) and "rsit_class" not in values:
        incident.rsit_class, incident.rsit_type = rules.taxonomy.rsit_for(incident.category, incident.subcategory)
    cii_changed = involves is not None and involves != incident.involves_cii
    if route or cii_changed:
        # A route chosen earlier stays unless a new one is chosen or the CII question changes.
        org = session.get(Organisation, incident.org_id)
        cii, new_route, basis = _route_for(org, incident.involves_cii if involves is None else involves, route,
                                           rules)
        if (cii, new_route) != (incident.involves_cii, incident.route):
            changed["route"] = (incident.route, new_route)
            incident.involves_cii, incident.route, incident.route_basis = cii, new_route, basis
    if not changed:
        return incident
    incident.updated_at = ensure_utc(now)
    timeline(session, incident, "updated", principal.actor, now, visibility="reporter", fields=sorted(changed))
    if set(changed) & set(GRADING_FIELDS):
        why = reason.strip() or _describe_fact_changes(changed)
        _regrade(session, principal, incident, rules, now, why)
    session.flush()
    return incident


def _describe_fact_changes(changed: dict[str, tuple[Any, Any]]) -> str:
    parts = []
    for key, (old, new) in sorted(changed.items()):
        if key not in GRADING_FIELDS:
            continue
        if key == "impact":
            old, new = old or {}, new or {}
            for fact in sorted(set(old) | set(new)):
                if old.get(fact) != new.get(fact):
                    parts.append(f"{fact}: {old.get(fact, '—')} → {new.get(fact, '—')}")
        else:
            fmt = (lambda v: ensure_utc(v).isoformat(timespec="minutes")) if isinstance(new or old, datetime) \
                else (lambda v: v)
            parts.append(f"{key}: {fmt(old) if old is not None else '—'} → {fmt(new) if new is not None else '—'}")
    return "; ".join(parts) or "facts changed"


def override_level(session: Session, principal: Principal, incident: Incident, level: str | None, reason: str, *,
                   now: datetime, rules: IncidentRules) -> Incident:
    """Set the level by hand (``None`` returns to the computed level); needs a written reason, audited."""
    if not principal.has("incidents.grade_override"):
        raise Forbidden()
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON:
        raise Invalid("reason", _("a written reason of at least {n} characters is required").format(n=MIN_REASON))
    if level and level not in rules.grading.level_keys():
        raise Invalid("level", _("must be one of {values}").format(values=", ".join(rules.grading.level_keys())))
    before = {"level": incident.level, "override_reason": incident.level_override_reason}
    if level:
        incident.level = level
        incident.level_override_reason = reason
    else:
        incident.level = incident.computed_level
        incident.level_override_reason = ""
    audit.record(session, "incident.level_override", "incidents", incident.id, before=before,
                 after={"level": incident.level, "computed_level": incident.computed_level, "reason": reason},
                 actor=principal.actor)
    timeline(session, incident, "level_override", principal.actor, now, visibility="reporter",
             level=incident.level, computed=incident.computed_level, reason=reason, cleared=not level)
    _regrade(session, principal, incident, rules, now, reason)
    incident.updated_at = ensure_utc(now)
    session.flush()
    return incident


# --- case handling ---------------------------------------------------------------------------------

def change_status(session: Session, principal: Principal, incident: Incident, to: str, *, now: datetime,
                  rules: IncidentRules, note: str = "") -> Incident:
    if not principal.has("incidents.manage"):
        raise Forbidden()
    if to not in STATUSES:
        raise Invalid("status", _("must be one of {values}").format(values=", ".join(STATUSES)))
    if to not in TRANSITIONS.get(incident.status, ()):
        raise Invalid("status", _("cannot go from {old} to {new}").format(old=status_label(incident.status),
                                                                         new=status_label(to)))
    old = incident.status
    incident.status = to
    if to == "resolved" and incident.handling_closed_at is None:
        incident.handling_closed_at = ensure_utc(now)  # handling ends: the summary-report clock starts
    if to == "reopened":
        incident.handling_closed_at = None
    incident.updated_at = ensure_utc(now)
    timeline(session, incident, "status", principal.actor, now, visibility="reporter", old=old, new=to,
             note=note.strip()[:2000])
    _regrade(session, principal, incident, rules, now, f"status {old} → {to}")
    session.flush()
    return incident


def notify_people(session: Session, what: str, incident: Incident, **details: Any) -> None:
    """Tell the people concerned (``commonwatch.inbox``: in the app and by mail, as each chose)."""
    from commonwatch.inbox.services import on_case

    on_case(session, what, incident, **details)


def staff_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).where(User.role.in_([r.value for r in STAFF_ROLES if r != Role.AUDITOR]),
                                                   User.active.is_(True)).order_by(User.name, User.email)))


def assign(session: Session, principal: Principal, incident: Incident, owner_id: int | None, *,
           now: datetime) -> Incident:
    if not principal.has("incidents.manage"):
        raise Forbidden()
    owner = None
    if owner_id is not None:
        owner = session.get(User, owner_id)
        if owner is None or not owner.active or owner.role not in (Role.ADMIN, Role.COORDINATOR, Role.ANALYST):
            raise Invalid("owner_id", _("must be an active member of the centre's staff"))
    incident.owner_id = owner.id if owner else None
    incident.updated_at = ensure_utc(now)
    timeline(session, incident, "assigned", principal.actor, now, owner=(owner.name or owner.email) if owner else "")
    if incident.status == "new":
        incident.status = "triaged"
        timeline(session, incident, "status", principal.actor, now, visibility="reporter", old="new", new="triaged",
                 note="")
    session.flush()
    notify_people(session, "assigned", incident, now=now, actor_id=principal.user_id)
    return incident


REPORT_KINDS = ("first_report", "escalation", "summary")


def record_report(session: Session, principal: Principal, incident: Incident, kind: str, at: Any, *,
                  now: datetime, rules: IncidentRules, channel: str = "", viewer_zone: str | None = None) -> Incident:
    """Record that a report went out (first, escalation confirmed, summary) or a parallel duty was done."""
    if not can_edit_report(principal, incident):
        raise Forbidden()
    duty_ids = [d.id for d in rules.reporting.duties]
    if kind not in REPORT_KINDS and not (kind.startswith("duty:") and kind[5:] in duty_ids):
        raise Invalid("kind", _("must be one of {values}").format(values=", ".join([*REPORT_KINDS, "duty:<id>"])))
    if kind == "escalation" and not principal.is_staff:
        raise Forbidden()
    when = parse_time(at, "at", viewer_zone) if at not in (None, "") else ensure_utc(now)
    errors = []
    if when < incident.discovered_at:
        errors.append(FieldError("at", _("is before the incident was discovered")))
    if when > ensure_utc(now) + timedelta(minutes=5):
        errors.append(FieldError("at", _("is in the future")))
    if kind == "summary" and incident.handling_closed_at is None:
        errors.append(FieldError("kind", _("the summary report follows the end of handling; resolve the case first")))
    if errors:
        raise Invalid(errors)
    if kind == "first_report":
        incident.first_report_at, incident.first_report_channel = when, channel.strip()[:200]
    elif kind == "escalation":
        incident.escalated_at = when
    elif kind == "summary":
        incident.summary_report_at = when
    else:
        incident.duties_done = {**(incident.duties_done or {}), kind[5:]: when.isoformat()}
    incident.updated_at = ensure_utc(now)
    timeline(session, incident, "report_submitted", principal.actor, now, visibility="reporter", report=kind,
             at=when.isoformat(), channel=channel.strip()[:200])
    _apply_clocks(incident, rules)
    session.flush()
    return incident


# --- comments and attachments ---------------------------------------------------------------------

def add_comment(session: Session, principal: Principal, incident: Incident, body: str, visibility: str, *,
                now: datetime) -> IncidentComment:
    body = (body or "").strip()
    if not body:
        raise Invalid("body", _("is required"))
    if len(body) > 20000:
        raise Invalid("body", _("is longer than {n} characters").format(n=20000))
    if visibility not in COMMENT_VISIBILITY or visibility == "partner":
        raise Invalid("visibility", _("must be internal or shared"))
    if principal.is_staff:
        if not principal.has("incidents.manage"):
            raise Forbidden()
    else:
        if not principal.can("incidents.report", incident.org_id):
            raise Forbidden()
        visibility = "shared"  # the reporter's words are always visible to the reporter
    comment = IncidentComment(incident_id=incident.id, author_id=principal.user_id or None,
                              author_name=principal.name or principal.email, visibility=visibility, body=body,
                              created_at=ensure_utc(now))
    session.add(comment)
    session.flush()
    timeline(session, incident, "comment", principal.actor, now,
             visibility="reporter" if visibility == "shared" else "internal", comment_id=comment.id,
             author=comment.author_name, shared=visibility == "shared")
    notify_people(session, "comment", incident, now=now, actor_id=principal.user_id, comment=comment)
    return comment


def list_comments(session: Session, principal: Principal, incident: Incident) -> list[IncidentComment]:
    stmt = scope(select(IncidentComment), principal, IncidentComment).where(IncidentComment.incident_id == incident.id)
    return list(session.scalars(stmt.order_by(IncidentComment.created_at, IncidentComment.id)))


def attachment_root(data_dir: Path) -> Path:
    return data_dir / "incidents" / "blobs"


def add_attachment(session: Session, principal: Principal, incident: Incident, filename: str, data: bytes, *,
                   now: datetime, data_dir: Path, max_bytes: int, visibility: str = "shared") -> IncidentAttachment:
    """Store one attachment; raises :class:`attachments.AttachmentRefused` (nothing stored) when refused."""
    if not can_edit_report(principal, incident):
        raise Forbidden()
    if visibility not in ("internal", "shared") or (visibility == "internal" and not principal.is_staff):
        visibility = "shared"
    try:
        stored = files.store(attachment_root(data_dir), filename, data, max_bytes)
    except files.AttachmentRefused as refused:
        timeline(session, incident, "attachment_refused", principal.actor, now, visibility="reporter",
                 filename=refused.filename, reason=refused.reason)
        log.warning("attachment refused", extra={"incident": incident.ref, "file": refused.filename,
                                                 "reason": refused.reason})
        raise
    row = IncidentAttachment(incident_id=incident.id, filename=stored.filename, sha256=stored.sha256,
                             size=stored.size, content_type=stored.content_type, visibility=visibility,
                             uploaded_by=principal.actor, created_at=ensure_utc(now))
    session.add(row)
    session.flush()
    timeline(session, incident, "attachment", principal.actor, now,
             visibility="reporter" if visibility == "shared" else "internal", attachment_id=row.id,
             filename=row.filename, sha256=row.sha256, size=row.size)
    return row


def list_attachments(session: Session, principal: Principal, incident: Incident) -> list[IncidentAttachment]:
    stmt = scope(select(IncidentAttachment), principal, IncidentAttachment).where(
        IncidentAttachment.incident_id == incident.id)
    return list(session.scalars(stmt.order_by(IncidentAttachment.created_at)))


def get_attachment(session: Session, principal: Principal, attachment_id: int) -> IncidentAttachment:
    row = get_scoped(session, principal, IncidentAttachment, attachment_id)
    if row is None or get_scoped(session, principal, Incident, row.incident_id) is None:
        raise NotFound("attachment")
    return row


# --- links, events, merge --------------------------------------------------------------------------

_CHUNK = 5000  # ids per IN list: well under SQLite's and PostgreSQL's parameter limits


def _chunks(ids: list[int]) -> list[list[int]]:
    unique = sorted(set(ids))
    return [unique[i:i + _CHUNK] for i in range(0, len(unique), _CHUNK)]


def _missing_events(session: Session, principal: Principal, ids: list[int]) -> list[int]:
    """The ids that are not stored events the principal may see (set-based: no row loaded as an object)."""
    seen = set(event_store(session).fetch(principal, ids, ())["id"].to_list())
    return sorted(set(ids) - seen)


def _refuse_missing(missing: list[int]) -> None:
    if missing:
        raise Invalid("event_ids", _("unknown event ids: {ids}").format(ids=", ".join(map(str, missing[:20]))))


#: The event columns an incident filed from events is built from.
_SUMMARY_COLUMNS = ("org_id", "classification_taxonomy", "classification_type", "feed_name", "time_observation",
                    "time_source", "source_ip", "source_fqdn")
#: The event columns shown beside an incident (its page, its API, the from-events form).
LINKED_COLUMNS = ("time_source", "feed_name", "source_ip", "source_fqdn", "classification_taxonomy",
                  "classification_type", "org_id")


def _event_summary(events: pl.DataFrame) -> pl.DataFrame:
    """Per organisation, class, type and feed: how many of the events, and their earliest times
    (columnar: 100,000 selected events come back as a few rows)."""
    return (events.group_by(["org_id", "classification_taxonomy", "classification_type", "feed_name"])
            .agg(pl.len().alias("n"), pl.col("time_observation").min().alias("first_seen"),
                 pl.col("time_source").min().alias("first_time"))
            .rename({"classification_taxonomy": "taxonomy", "classification_type": "type", "feed_name": "feed"}))


def _parse_ids(raw: Any, field: str) -> list[int]:
    if isinstance(raw, str):
        raw = [p for p in raw.replace(",", " ").split() if p]
    if not isinstance(raw, list | tuple) or not raw:
        raise Invalid(field, _("must list at least one id"))
    out = []
    for item in raw:
        try:
            value = int(item)
        except (TypeError, ValueError):
            raise Invalid(field, _("“{value}” is not an id").format(value=item)) from None
        if value <= 0:
            raise Invalid(field, _("“{value}” is not an id").format(value=item))
        out.append(value)
    if len(out) > MAX_EVENTS_PER_INCIDENT:
        raise Invalid(field, _("lists more than {n} ids").format(n=MAX_EVENTS_PER_INCIDENT))
    return out


def link_events(session: Session, principal: Principal, incident: Incident, event_ids: Any, *,
                now: datetime) -> int:
    """Link stored events to the incident; returns how many were new.

    The store confirms the principal may see every id; the links not made yet are inserted in one set operation.
    """
    if not principal.has("incidents.manage"):
        raise Forbidden()
    ids = _parse_ids(event_ids, "event_ids")
    _refuse_missing(_missing_events(session, principal, ids))
    return _link_visible(session, principal, incident, ids, now=now)


def _link_visible(session: Session, principal: Principal, incident: Incident, ids: list[int], *,
                  now: datetime) -> int:
    """Link ``ids`` (already checked visible to ``principal``) in one set operation: an
    INSERT ... SELECT of the ids not linked yet. Returns how many were new."""
    stamp = ensure_utc(now)
    table = IncidentEvent.__table__
    rows = id_relation(session.get_bind().dialect.name, sorted(set(ids)))
    event_id = cast(rows.c.value, BigInteger)
    linked = select(table.c.event_id).where(table.c.incident_id == incident.id, table.c.event_id == event_id)
    chosen = select(literal(incident.id, table.c.incident_id.type), event_id,
                    literal(stamp, table.c.linked_at.type), literal(principal.actor, table.c.linked_by.type)
                    ).select_from(rows).where(~linked.exists())
    count = select(func.count()).select_from(table).where(table.c.incident_id == incident.id)
    before = session.scalar(count) or 0
    session.execute(insert(table).from_select(["incident_id", "event_id", "linked_at", "linked_by"], chosen))
    # Counted, not the rowcount: drivers differ on it for INSERT ... SELECT (psycopg says -1 for none).
    added = (session.scalar(count) or 0) - before
    if added:
        audit.record(session, "incident.link_events", "incidents", incident.id,
                     after={"events": added, "first": min(ids)}, actor=principal.actor)
        timeline(session, incident, "events_linked", principal.actor, now, count=added)
    return added


def linked_events(session: Session, principal: Principal, incident: Incident,
                  limit: int = 200) -> tuple[list[Any], int]:
    """The newest ``limit`` linked events the principal may see, and how many it may see in all."""
    ids = session.scalars(select(IncidentEvent.event_id).where(IncidentEvent.incident_id == incident.id)).all()
    store = event_store(session)
    total = store.fetch(principal, ids, ()).height
    return records(store.fetch(principal, ids, LINKED_COLUMNS, newest_first=True, limit=limit)), total


def create_from_events(session: Session, principal: Principal, event_ids: Any, data: dict[str, Any], *,
                       now: datetime, rules: IncidentRules) -> Incident:
    """One incident from many selected events: organisation, times and class come from the events."""
    if not principal.has("incidents.manage"):
        raise Forbidden()
    ids = _parse_ids(event_ids, "event_ids")
    # One read through the store: the events the principal may see are those it returns.
    events = event_store(session).fetch(principal, ids, _SUMMARY_COLUMNS)
    _refuse_missing(sorted(set(ids) - set(events["id"].to_list())))
    summary = _event_summary(events)
    report = dict(data)
    if not report.get("org_id"):
        orgs = summary["org_id"].drop_nulls().unique().to_list()
        if len(orgs) != 1:
            raise Invalid("org_id", _("the events belong to {n} organisations; choose the one hit").format(
                n=len(orgs)))
        report["org_id"] = orgs[0]
    top = (summary.group_by(["taxonomy", "type"]).agg(pl.col("n").sum())
           .sort(["n", "type"], descending=[True, False]).row(0))
    rsit_class, rsit_type = top[0], top[1]
    category, sub = rules.taxonomy.from_rsit(rsit_class, rsit_type)
    report.setdefault("category", category)
    report.setdefault("subcategory", sub)
    report.setdefault("discovered_at", ensure_utc(min(summary["first_seen"].to_list())))
    report.setdefault("occurred_at", ensure_utc(min(summary["first_time"].to_list())))
    feeds = sorted(summary["feed"].unique().to_list())
    hosts = (events.sort("id").head(_CHUNK).select(pl.coalesce("source_ip", "source_fqdn").alias("host"))
             .drop_nulls().unique()["host"].head(50).to_list())
    n = int(summary["n"].sum())
    report.setdefault("title", ngettext("{n} event: {type}", "{n} events: {type}", n).format(
        n=n, type=label(rsit_type, "event_type")))
    report.setdefault("affected_system", ", ".join(sorted(hosts)))
    report.setdefault("effects", _("Observed in feeds: {feeds}").format(feeds=", ".join(feeds[:20])))
    report.setdefault("discovery_basis", _("earliest observation among the linked events"))
    incident = file_incident(session, principal, report, now=now, rules=rules, via="events")
    _link_visible(session, principal, incident, ids, now=now)
    return incident


def link_incidents(session: Session, principal: Principal, incident: Incident, other_id: int, *, now: datetime,
                   kind: str = "related") -> IncidentLink:
    if not principal.has("incidents.manage"):
        raise Forbidden()
    other = get_scoped(session, principal, Incident, other_id)
    if other is None or other.id == incident.id:
        raise Invalid("other_id", _("is not another incident"))
    existing = session.scalar(select(IncidentLink).where(IncidentLink.incident_id == incident.id,
                                                         IncidentLink.other_id == other.id))
    if existing:
        return existing
    link = IncidentLink(incident_id=incident.id, other_id=other.id, kind=kind, created_at=ensure_utc(now))
    session.add(link)
    session.add(IncidentLink(incident_id=other.id, other_id=incident.id, kind=kind, created_at=ensure_utc(now)))
    timeline(session, incident, "incident_linked", principal.actor, now, other=other.ref, kind=kind)
    timeline(session, other, "incident_linked", principal.actor, now, other=incident.ref, kind=kind)
    session.flush()
    return link


def linked_incidents(session: Session, principal: Principal, incident: Incident) -> list[tuple[IncidentLink, Incident]]:
    stmt = scope(select(IncidentLink, Incident).join(Incident, Incident.id == IncidentLink.other_id), principal,
                 Incident).where(IncidentLink.incident_id == incident.id)
    return [(row[0], row[1]) for row in session.execute(stmt.order_by(IncidentLink.created_at))]


def merge(session: Session, principal: Principal, duplicate: Incident, primary_id: int, *, now: datetime,
          rules: IncidentRules) -> Incident:
    """Fold a duplicate into the primary case: events, comments, attachments and tasks move; the
    duplicate is closed and points at the primary. The earlier discovery time wins (the clock started then)."""
    if not principal.has("incidents.manage"):
        raise Forbidden()
    primary = get_scoped(session, principal, Incident, primary_id)
    if primary is None or primary.id == duplicate.id:
        raise Invalid("primary_id", _("is not another incident"))
    if primary.merged_into_id or duplicate.merged_into_id:
        raise Invalid("primary_id", _("one of the two was already merged"))
    moved_events = 0
    primary_events = set(session.scalars(select(IncidentEvent.event_id).where(IncidentEvent.incident_id == primary.id)))
    for link in session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == duplicate.id)):
        if link.event_id in primary_events:
            session.delete(link)
        else:
            link.incident_id = primary.id
            moved_events += 1
    for model in (IncidentComment, IncidentAttachment, IncidentTask):
        for row in session.scalars(select(model).where(model.incident_id == duplicate.id)):
            row.incident_id = primary.id
    if duplicate.discovered_at < primary.discovered_at:
        primary.discovered_at = duplicate.discovered_at
        primary.discovery_basis = _("discovered earlier as {ref}").format(ref=duplicate.ref)
    duplicate.merged_into_id = primary.id
    old_status = duplicate.status
    duplicate.status = "closed"
    duplicate.updated_at = primary.updated_at = ensure_utc(now)
    session.flush()
    link_incidents(session, principal, primary, duplicate.id, now=now, kind="duplicate")
    timeline(session, duplicate, "merged_into", principal.actor, now, visibility="reporter", other=primary.ref,
             old_status=old_status)
    timeline(session, primary, "merged_from", principal.actor, now, visibility="reporter", other=duplicate.ref,
             events=moved_events)
    audit.record(session, "incident.merge", "incidents", primary.id,
                 after={"duplicate": duplicate.id, "events_moved": moved_events}, actor=principal.actor)
    _regrade(session, principal, primary, rules, now, f"merged {duplicate.ref}")
    session.flush()
    return primary


# --- coordination tasks ----------------------------------------------------------------------------

def create_task(session: Session, principal: Principal, incident: Incident, data: dict[str, Any], *,
                now: datetime, viewer_zone: str | None = None) -> IncidentTask:
    if not principal.has("incidents.manage"):
        raise Forbidden()
    errors: list[FieldError] = []
    title = str(data.get("title") or "").strip()
    body = str(data.get("body") or "").strip()
    if not title:
        errors.append(FieldError("title", _("is required")))
    elif len(title) > 300:
        errors.append(FieldError("title", _("is longer than {n} characters").format(n=300)))
    if len(body) > 20000:
        errors.append(FieldError("body", _("is longer than {n} characters").format(n=20000)))
    org = None
    with contextlib.suppress(TypeError, ValueError):
        org = session.get(Organisation, int(data.get("org_id") or 0))
    if org is None:
        errors.append(FieldError("org_id", _("is not a registered organisation")))
    due = None
    try:
        due = parse_time(data.get("due_at"), "due_at", viewer_zone)
    except Invalid as exc:
        errors.extend(exc.errors)
    if due is not None and due <= ensure_utc(now):
        errors.append(FieldError("due_at", _("is already past")))
    if errors:
        raise Invalid(errors)
    task = IncidentTask(incident_id=incident.id, org_id=org.id, title=title, body=body, due_at=due, status="open",
                        created_by=principal.actor, created_at=ensure_utc(now))
    session.add(task)
    session.flush()
    timeline(session, incident, "task_created", principal.actor, now, task_id=task.id, org=org.name, title=title,
             due_at=due.isoformat() if due else None)
    log.info("coordination task sent", extra={"incident": incident.ref, "task": task.id, "org_id": org.id})
    notify_people(session, "task", incident, now=now, actor_id=principal.user_id, task=task)
    return task


def get_task(session: Session, principal: Principal, task_id: int) -> IncidentTask:
    task = get_scoped(session, principal, IncidentTask, task_id)
    if task is None:
        raise NotFound("task")
    return task


def list_tasks(session: Session, principal: Principal, *, incident: Incident | None = None,
               open_only: bool = False) -> list[IncidentTask]:
    stmt = scope(select(IncidentTask), principal, IncidentTask)
    if incident is not None:
        stmt = stmt.where(IncidentTask.incident_id == incident.id)
    if open_only:
        stmt = stmt.where(IncidentTask.status.in_(("open", "acknowledged", "in_progress")))
    return list(session.scalars(stmt.order_by(IncidentTask.due_at.is_(None), IncidentTask.due_at, IncidentTask.id)))


#: Tasks without a due date sort after every dated one (a NULL would break the keyset order).
_NO_DUE_DATE = datetime(9999, 12, 31, tzinfo=UTC)
#: The columns the task list may be sorted by (each never NULL).
TASK_SORTS = {"due": func.coalesce(IncidentTask.due_at, _NO_DUE_DATE, type_=IncidentTask.due_at.type),
              "created": IncidentTask.created_at, "title": IncidentTask.title, "status": IncidentTask.status}


def tasks_query(principal: Principal, q: str = "", status: str = "") -> Any:
    """The tasks the principal may see (its organisations' for a constituent), by title text and status."""
    stmt = scope(select(IncidentTask), principal, IncidentTask)
    if q.strip():
        stmt = stmt.where(IncidentTask.title.ilike(f"%{q.strip()}%"))
    if status:
        stmt = stmt.where(IncidentTask.status == status)
    return stmt


def respond_task(session: Session, principal: Principal, task: IncidentTask, status: str, response: str, *,
                 now: datetime) -> IncidentTask:
    """The addressed organisation answers in its portal (or the centre updates the task)."""
    if not (principal.has("incidents.manage") or principal.can("tasks.respond", task.org_id)):
        raise Forbidden()
    if status not in TASK_STATUSES or status == "open":
        raise Invalid("status", _("must be one of {values}").format(values=", ".join(TASK_STATUSES[1:])))
    response = (response or "").strip()
    if len(response) > 20000:
        raise Invalid("response", _("is longer than {n} characters").format(n=20000))
    if status in ("done", "declined") and not response:
        raise Invalid("response", _("say what was done, or why the task is declined"))
    task.status = status
    if response:
        task.response = response
    task.responded_at = ensure_utc(now)
    task.responded_by = principal.actor
    incident = session.get(Incident, task.incident_id)
    timeline(session, incident, "task_answered", principal.actor, now, task_id=task.id,
             org=org_name(session, task.org_id), status=status, response=response[:2000])
    session.flush()
    return task


# --- helpers for labels ----------------------------------------------------------------------------

BULK_ACTIONS = ("status", "assign")


@dataclass
class BulkOutcome:
    """What a bulk act on incidents did: the ids changed, and the ids left alone with why."""

    done: list[int]
    refused: dict[int, str]


def plan_bulk(session: Session, principal: Principal, ids: list[int], action: str, value: str) -> BulkOutcome:
    """Which of the selected incidents a bulk act would change (``done``) and which it would leave
    (``refused``: not visible to the principal, or a status they cannot move to from theirs).
    Nothing is changed."""
    if not principal.has("incidents.manage"):
        raise Forbidden()
    if action not in BULK_ACTIONS:
        raise Invalid("action", _("must be one of {values}").format(values=", ".join(BULK_ACTIONS)))
    if action == "status" and value not in STATUSES:
        raise Invalid("status", _("must be one of {values}").format(values=", ".join(STATUSES)))
    if action == "assign" and value and not value.isdigit():
        raise Invalid("owner_id", _("must be an active member of the centre's staff"))
    stmt = scope(select(Incident), principal, Incident).where(Incident.id.in_(ids))
    visible = {i.id: i for i in session.scalars(stmt)}
    done: list[int] = []
    refused: dict[int, str] = {}
    for ident in ids:
        incident = visible.get(ident)
        if incident is None:
            refused[ident] = _("not found")
        elif action == "status" and value not in TRANSITIONS.get(incident.status, ()):
            refused[ident] = _("cannot go from {old} to {new}").format(old=status_label(incident.status),
                                                                       new=status_label(value))
        else:
            done.append(ident)
    return BulkOutcome(done, refused)


def bulk_act(session: Session, principal: Principal, ids: list[int], action: str, value: str, *, now: datetime,
             rules: IncidentRules, note: str = "") -> BulkOutcome:
    """Change the status of, or assign, many incidents in one act: each incident changes as it
    would alone (its timeline, its clocks), and the act itself is one audit record naming them all."""
    outcome = plan_bulk(session, principal, ids, action, value)
    for ident in outcome.done:
        incident = get_incident(session, principal, ident)
        if action == "status":
            change_status(session, principal, incident, value, now=now, rules=rules, note=note)
        else:
            assign(session, principal, incident, int(value) if value else None, now=now)
    if outcome.done:
        audit.record(session, f"incidents.bulk_{action}", "incidents", f"bulk:{len(outcome.done)}",
                     after={"value": value, "ids": outcome.done, "refused": sorted(outcome.refused)},
                     actor=principal.actor)
    session.flush()
    return outcome


def status_label(status: str) -> str:
    return label(status, "incident_status")


def task_status_label(status: str) -> str:
    return label(status, "task_status")


def route_label(route: str, rules: IncidentRules) -> str:
    r = rules.reporting.routes.get(route)
    return str(r.text) if r else route
