"""Organisation B's early-warning objects for the tenancy walk (every text carries SECRET-B)."""

from __future__ import annotations

from datetime import timedelta

from commonwatch.notify.models import Delivery, EventWarning, Feedback, LedgerEntry, Policy
from tests.events.eventdata import insert_events, stored_ids


def seed(session, world, clock) -> dict[str, int]:
    now = clock.now()
    row = {
        "event_key": "SECRET-B-event", "time_source": now - timedelta(hours=1), "time_observation": now,
        "feed_name": "SECRET-B feed", "source_ip": "203.0.113.66", "source_fqdn": "SECRET-B.example",
        "classification_taxonomy": "malicious-code", "classification_type": "infected-system",
        "malware_name": "SECRET-B malware", "extra": {"note": "SECRET-B"}, "org_id": world.org_b,
        "constituent_cii": True, "severity": "high", "tlp": "AMBER", "created_at": now,
    }
    insert_events(session, [row])
    event_id = stored_ids(session, [row])["SECRET-B-event"]
    warning = EventWarning(org_id=world.org_b, event_id=event_id, obs_key=42, time_source=now - timedelta(hours=1),
                           classification_type="infected-system", severity="high", feed_name="SECRET-B feed",
                           disposition="warn", status="open", comment="SECRET-B comment", created_at=now)
    session.add(warning)
    session.flush()
    delivery = Delivery(org_id=world.org_b, recipient_key=f"contact:{world.ids['contact_b']}",
                        contact_id=world.ids["contact_b"], channel="email", address="SECRET-B@bravo.example",
                        language="en", status="held", attempts=1, last_error="SECRET-B held", history=[],
                        message_id="<SECRET-B@centre.example>", event_count=1, created_at=now)
    session.add(delivery)
    session.flush()
    session.add(LedgerEntry(recipient_key=delivery.recipient_key, org_id=world.org_b,
                            contact_id=world.ids["contact_b"], channel="email", warning_id=warning.id,
                            event_id=event_id, delivery_id=delivery.id, due_at=now, created_at=now))
    session.add(Feedback(org_id=world.org_b, warning_id=warning.id, action="acknowledged",
                         comment="SECRET-B feedback", created_at=now))
    session.add(Policy(org_id=world.org_b, webhook_url="https://hooks.example/SECRET-B", types=[]))
    session.flush()
    return {"delivery_id": delivery.id, "warning_id": warning.id}
