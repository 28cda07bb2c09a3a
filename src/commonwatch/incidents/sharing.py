"""Sharing an incident with a partner CERT abroad at a TLP label, and taking its updates back.

The partner reads a redacted copy made when the case was shared (or shared again): only the fields
the label allows (``rules/incident_sharing.yaml``), minus any the coordinator left out. Its updates
come back as comments from the partner and appear on the case's timeline.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.access.principal import SYSTEM, Principal, Role
from commonwatch.clock import ensure_utc
from commonwatch.constituency.models import Organisation, OrgKind
from commonwatch.db import get_scoped, scope
from commonwatch.errors import Forbidden, Invalid, NotFound
from commonwatch.events.store import event_store
from commonwatch.i18n import _
from commonwatch.incidents.models import Incident, IncidentComment, IncidentEvent, IncidentShare
from commonwatch.incidents.rules import TLP_LABELS, IncidentRules
from commonwatch.incidents.services import log, timeline

MAX_INDICATORS = 500


def _indicators(session: Session, incident: Incident) -> list[str]:
    # Read as the system: what is shared is decided by the share's own rules, not the reader's tenancy.
    ids = session.scalars(select(IncidentEvent.event_id).where(IncidentEvent.incident_id == incident.id)
                          .order_by(IncidentEvent.id).limit(MAX_INDICATORS * 3)).all()
    rows = (event_store(session).fetch(SYSTEM, ids, ("source_ip", "source_fqdn", "source_url")).sort("id")
            .drop("id").rows())
    seen: list[str] = []
    for row in rows:
        for value in row:
            if value and value not in seen:
                seen.append(value)
    return seen[:MAX_INDICATORS]


def full_record(session: Session, incident: Incident, rules: IncidentRules) -> dict[str, Any]:
    """Every shareable field of the case, before redaction (both languages where the rules carry them)."""
    tax = rules.taxonomy
    cat = tax.category(incident.category)
    sub = tax.subcategory(incident.subcategory) if incident.subcategory else None
    level = rules.grading.level(incident.level)
    org = session.get(Organisation, incident.org_id)
    return {
        "ref": incident.ref,
        "title": incident.title,
        "level": {"key": level.key, "en": level.en},
        "category": {"code": incident.category, "en": cat.text.en if cat else "", "zh": cat.text.zh if cat else "",
                     "subcategory": incident.subcategory or "",
                     "subcategory_en": sub[1].text.en if sub else "", "subcategory_zh": sub[1].text.zh if sub else ""},
        "rsit": {"class": incident.rsit_class, "type": incident.rsit_type},
        "status": incident.status,
        "discovered_on": ensure_utc(incident.discovered_at).date().isoformat(),
        "discovered_at": ensure_utc(incident.discovered_at).isoformat(),
        "occurred_at": ensure_utc(incident.occurred_at).isoformat() if incident.occurred_at else None,
        "sector": org.sector if org else "",
        "country": org.country if org else "",
        "organisation": (org.name if org else ""),
        "affected_system": incident.affected_system,
        "effects": incident.effects,
        "measures_taken": incident.measures_taken,
        "trend": incident.trend,
        "cause": incident.cause,
        "leads": incident.leads,
        "indicators": _indicators(session, incident),
        "ransom": {"amount": incident.ransom_amount, "method": incident.ransom_method, "dates": incident.ransom_dates},
    }


def redact(record: dict[str, Any], tlp: str, fields: list[str] | None, rules: IncidentRules) -> dict[str, Any]:
    """Keep only what the label allows and the coordinator chose; pure."""
    allowed = rules.sharing.levels[tlp]
    chosen = [f for f in (fields or allowed) if f in allowed]
    return {k: record[k] for k in chosen if k in record}


def share(session: Session, principal: Principal, incident: Incident, partner_org_id: Any, tlp: str,
          fields: list[str] | None, *, now: datetime, rules: IncidentRules) -> IncidentShare:
    """Share (or share again) with a partner CERT: stores the redacted copy the partner will read."""
    if not principal.has("incidents.share"):
        raise Forbidden()
    tlp = (tlp or "").strip().upper()
    if tlp and not tlp.startswith("TLP:"):
        tlp = "TLP:" + tlp
    if tlp not in TLP_LABELS:
        raise Invalid("tlp", _("must be one of {values}").format(values=", ".join(TLP_LABELS)))
    try:
        partner = session.get(Organisation, int(partner_org_id))
    except (TypeError, ValueError):
        partner = None
    if partner is None or partner.kind != OrgKind.PARTNER_CERT:
        raise Invalid("partner_org_id", _("is not a partner CERT in the registry"))
    unknown = [f for f in (fields or []) if f not in rules.sharing.fields]
    if unknown:
        raise Invalid("fields", _("unknown fields: {names}").format(names=", ".join(unknown)))
    not_allowed = [f for f in (fields or []) if f not in rules.sharing.levels[tlp]]
    if not_allowed:
        raise Invalid("fields", _("{tlp} does not allow sharing: {names}").format(
            tlp=tlp, names=", ".join(not_allowed)))
    snapshot = redact(full_record(session, incident, rules), tlp, fields, rules)
    row = session.scalar(select(IncidentShare).where(IncidentShare.incident_id == incident.id,
                                                     IncidentShare.partner_org_id == partner.id,
                                                     IncidentShare.revoked_at.is_(None)))
    if row is None:
        row = IncidentShare(incident_id=incident.id, partner_org_id=partner.id)
        session.add(row)
    row.tlp, row.fields, row.snapshot = tlp, list(snapshot), snapshot
    row.shared_by, row.shared_at = principal.actor, ensure_utc(now)
    session.flush()
    timeline(session, incident, "shared", principal.actor, now, partner=partner.name, tlp=tlp, fields=list(snapshot),
             share_id=row.id)
    log.info("incident shared", extra={"incident": incident.ref, "partner": partner.id, "tlp": tlp})
    return row


def revoke(session: Session, principal: Principal, share_row: IncidentShare, *, now: datetime) -> None:
    if not principal.has("incidents.share"):
        raise Forbidden()
    share_row.revoked_at = ensure_utc(now)
    incident = session.get(Incident, share_row.incident_id)
    partner = session.get(Organisation, share_row.partner_org_id)
    timeline(session, incident, "share_revoked", principal.actor, now, partner=partner.name if partner else "")


def shares_of(session: Session, incident: Incident) -> list[IncidentShare]:
    return list(session.scalars(select(IncidentShare).where(IncidentShare.incident_id == incident.id)
                                .order_by(IncidentShare.shared_at)))


def get_share(session: Session, principal: Principal, share_id: int) -> IncidentShare:
    row = get_scoped(session, principal, IncidentShare, share_id)
    if row is None:
        raise NotFound("shared incident")
    return row


def shares_for(session: Session, principal: Principal) -> list[IncidentShare]:
    """What a partner may read (staff: every share)."""
    stmt = scope(select(IncidentShare), principal, IncidentShare).where(IncidentShare.revoked_at.is_(None))
    return list(session.scalars(stmt.order_by(IncidentShare.shared_at.desc())))


def partner_updates(session: Session, principal: Principal, share_row: IncidentShare) -> list[IncidentComment]:
    stmt = scope(select(IncidentComment), principal, IncidentComment).where(
        IncidentComment.share_id == share_row.id, IncidentComment.visibility == "partner")
    return list(session.scalars(stmt.order_by(IncidentComment.created_at)))


def partner_update(session: Session, principal: Principal, share_row: IncidentShare, body: str, *,
                   now: datetime) -> IncidentComment:
    """A partner's update comes back onto the case's timeline."""
    if principal.role != Role.PARTNER or share_row.partner_org_id not in principal.org_ids:
        raise Forbidden()
    body = (body or "").strip()
    if not body:
        raise Invalid("body", _("is required"))
    if len(body) > 20000:
        raise Invalid("body", _("is longer than {n} characters").format(n=20000))
    comment = IncidentComment(incident_id=share_row.incident_id, author_id=principal.user_id or None,
                              author_name=principal.name or principal.email, visibility="partner",
                              share_id=share_row.id, body=body, created_at=ensure_utc(now))
    session.add(comment)
    session.flush()
    incident = session.get(Incident, share_row.incident_id)
    partner = session.get(Organisation, share_row.partner_org_id)
    timeline(session, incident, "partner_update", principal.actor, now, partner=partner.name if partner else "",
             comment_id=comment.id, body=body[:2000])
    log.info("partner update received", extra={"incident": incident.ref, "partner": share_row.partner_org_id})
    return comment
