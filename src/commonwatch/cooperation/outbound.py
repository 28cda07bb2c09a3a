"""Outbound exchange: an incident's events about hosts abroad, rendered for the partner CERT of each
country as IODEF v2 JSON (RFC 8727 binding) or XARF v4, and recorded on the case's timeline (what was
made for whom, its digest and event count), so the thread with the partner stays on the case."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.constituency.models import Organisation, OrgKind
from commonwatch.cooperation.models import PartnerProfile
from commonwatch.errors import Forbidden, Invalid
from commonwatch.i18n import _

COLUMNS = ("time_source", "source_ip", "source_fqdn", "source_url", "source_cc", "classification_type")
FORMATS = ("iodef", "xarf")
_XARF_CATEGORY = {"spam": ("messaging", "spam"), "ddos": ("connection", "ddos"), "phishing": ("content", "phishing"),
                  "scanner": ("connection", "port_scan"), "brute-force": ("connection", "login_attack"),
                  "infected-system": ("infrastructure", "botnet"), "c2-server": ("infrastructure", "botnet"),
                  "malware-distribution": ("content", "malware")}


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value


def render_iodef(ref: str, centre: str, frame: pl.DataFrame, now: datetime) -> dict[str, Any]:
    """One IODEF-Document with one Incident whose EventData lists each source system."""
    nodes = frame.select(
        pl.struct(
            pl.when(pl.col("source_ip").is_not_null()).then(pl.concat_list(pl.struct(
                pl.col("source_ip").alias("value"), pl.lit("ipv4-addr").alias("category")))).alias("Address"),
            pl.when(pl.col("source_fqdn").is_not_null()).then(pl.concat_list(pl.struct(
                pl.col("source_fqdn").alias("Name")))).alias("DomainData"),
        ).alias("Node"),
        pl.col("classification_type"), pl.col("time_source"))
    events = [{"DetectTime": _iso(t), "Description": [c or "undetermined"],
               "Flow": [{"System": [{"category": "source", "Node": {k: v for k, v in node.items() if v}}]}]}
              for node, c, t in nodes.iter_rows()]
    return {"IODEF-Document": {"version": "2.0", "lang": "en", "Incident": [{
        "purpose": "mitigation", "status": "new", "IncidentID": {"id": ref, "name": centre},
        "ReportTime": _iso(now), "GenerateTime": _iso(now),
        "Contact": [{"role": "creator", "type": "organization", "ContactName": [centre]}],
        "EventData": events}]}}


def render_xarf(ref: str, centre: str, contact: str, frame: pl.DataFrame, now: datetime) -> list[dict[str, Any]]:
    """One XARF v4 report per event."""
    out = []
    for ip, fqdn, url, t, ctype in frame.select("source_ip", "source_fqdn", "source_url", "time_source",
                                                "classification_type").iter_rows():
        category, kind = _XARF_CATEGORY.get(ctype or "", ("infrastructure", "other"))
        party = {"org": centre, "contact": contact, "domain": contact.rpartition("@")[2] or centre}
        out.append({"xarf_version": "4.0.0", "report_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ref}/{ip}/{url}/{t}")),
                    "timestamp": _iso(t) or _iso(now), "reporter": party, "sender": party,
                    "source_identifier": ip or url or fqdn, "category": category, "type": kind,
                    "evidence_source": "commonwatch", "description": f"{ref}"})
    return out


def exchange(db: Session, principal: Principal, incident_id: int, fmt: str, now: datetime, *, centre: str,
             contact: str, transmit: bool = False) -> list[dict[str, Any]]:
    """Render the incident's events abroad for each country's partner CERT; record each on the timeline.

    With ``transmit`` each document is also queued as a mail to the partner (``mailing.queue_document``);
    the caller delivers it after the commit (``mailing.deliver_pending``) and the outcome goes on the
    timeline too."""
    from commonwatch.cooperation.mailing import queue_document
    from commonwatch.events.store import event_store
    from commonwatch.incidents import services as incidents
    from commonwatch.incidents.models import IncidentEvent

    if not principal.has("incidents.share"):
        raise Forbidden()
    if fmt not in FORMATS:
        raise Invalid("format", _("must be one of {values}").format(values=", ".join(FORMATS)))
    incident = incidents.get_incident(db, principal, incident_id)
    ids = db.scalars(select(IncidentEvent.event_id).where(IncidentEvent.incident_id == incident.id)).all()
    frame = event_store(db).fetch(principal, ids, COLUMNS)
    abroad = frame.filter(pl.col("source_cc").is_not_null() & (pl.col("source_cc") != "CN"))
    if abroad.height == 0:
        raise Invalid("incident_id", _("no linked event is about a host abroad"))
    partners = {o.country: o for o in db.scalars(select(Organisation).where(
        Organisation.kind == OrgKind.PARTNER_CERT, Organisation.country.in_(abroad["source_cc"].unique().to_list()))
        .order_by(Organisation.id.desc()))}
    channels = {p.org_id: p.channels or [] for p in db.scalars(select(PartnerProfile).where(
        PartnerProfile.org_id.in_([o.id for o in partners.values()])))} if partners else {}
    out = []
    for (country,), part in abroad.group_by(["source_cc"], maintain_order=True):
        org = partners.get(country)
        if org is None:
            out.append({"country": country, "partner_org_id": None, "events": part.height, "document": None,
                        "reason": _("no partner CERT in {country}").format(country=country)})
            continue
        doc = render_iodef(incident.ref, centre, part, now) if fmt == "iodef" else render_xarf(
            incident.ref, centre, contact, part, now)
        text = json.dumps(doc, ensure_ascii=False, sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()
        entry = incidents.timeline(db, incident, "partner_exchange", principal.actor, now, partner=org.name,
                                   partner_org_id=org.id, format=fmt, events=part.height, digest=digest,
                                   channel_ok=("iodef" if fmt == "iodef" else "xarf") in channels.get(org.id, []))
        item = {"country": country, "partner_org_id": org.id, "partner": org.name, "events": part.height,
                "format": fmt, "digest": digest, "document": doc}
        if transmit:
            db.flush()
            queued = queue_document(db, entry_id=entry.id, incident_id=incident.id, incident_ref=incident.ref,
                                    org=org, fmt=fmt, document=text.encode(), events=part.height)
            item["mail_id"] = queued.id if queued is not None else None
            if queued is None:
                item["reason"] = _("{partner} has no e-mail contact").format(partner=org.name)
        out.append(item)
    db.flush()
    return out
