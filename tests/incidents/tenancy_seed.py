"""B-owned incident objects for the tenancy walk: an incident of B with a shared comment, an
attachment and the timeline, a task addressed to B, and a share with the partner CERT."""

from __future__ import annotations

from commonwatch.access import services as access
from commonwatch.access.models import User
from commonwatch.incidents import services as svc
from commonwatch.incidents import sharing
from commonwatch.incidents.rules import load_incident_rules


def seed(session, world, clock) -> dict[str, int]:
    rules = load_incident_rules(None)
    now = clock.now()
    b = access.principal_for(session, session.get(User, world.ids["user_b"]))
    coordinator = access.principal_for(session, session.get(User, world.ids["user_coordinator"]))
    incident = svc.file_incident(session, b, {
        "title": "SECRET-B outage", "affected_system": "SECRET-B SCADA historian", "discovered_at": now,
        "category": "DE", "subcategory": "DETECH", "effects": "SECRET-B effects",
        "impact": {"cii_full_outage_minutes": 12}}, now=now, rules=rules)
    svc.add_comment(session, b, incident, "SECRET-B comment", "shared", now=now)
    import tempfile
    from pathlib import Path

    attachment = svc.add_attachment(session, b, incident, "secret-b.txt", b"SECRET-B log line\n", now=now,
                                    data_dir=Path(tempfile.mkdtemp(prefix="cw-tenancy-")), max_bytes=10_000)
    task = svc.create_task(session, coordinator, incident, {"org_id": world.org_b, "title": "SECRET-B task",
                                                            "body": "SECRET-B details"}, now=now)
    share = sharing.share(session, coordinator, incident, world.partner, "TLP:RED", None, now=now, rules=rules)
    return {"incident_id": incident.id, "attachment_id": attachment.id, "task_id": task.id, "share_id": share.id}
