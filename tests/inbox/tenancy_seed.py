"""B-owned inbox objects for the tenancy walk: a notification addressed to B's person (a task sent
to B) and B's follow of its case."""

from __future__ import annotations

from sqlalchemy import select

from commonwatch.access import services as access
from commonwatch.access.models import User
from commonwatch.inbox.models import Notification
from commonwatch.incidents import services as svc
from commonwatch.incidents.rules import load_incident_rules


def seed(session, world, clock) -> dict[str, int]:
    now = clock.now()
    b = access.principal_for(session, session.get(User, world.ids["user_b"]))
    coordinator = access.principal_for(session, session.get(User, world.ids["user_coordinator"]))
    incident = svc.file_incident(session, b, {
        "title": "SECRET-B inbox case", "affected_system": "SECRET-B historian", "discovered_at": now,
        "category": "DE", "subcategory": "DETECH", "effects": "SECRET-B effects",
        "impact": {"cii_full_outage_minutes": 12}}, now=now, rules=load_incident_rules(None))
    svc.create_task(session, coordinator, incident, {"org_id": world.org_b, "title": "SECRET-B inbox task"}, now=now)
    note = session.scalar(select(Notification).where(Notification.user_id == world.ids["user_b"])
                          .order_by(Notification.id.desc()))
    return {"notification_id": note.id}
