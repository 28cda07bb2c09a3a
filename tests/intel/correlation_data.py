"""One value seen by two tenants: events of A and of B, indicators at several TLPs (one TLP:RED of
B's), an incident of each linked to its own events, and tasks. Used by the correlation tests and the
browser test."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from commonwatch.access import services as access
from commonwatch.access.models import User
from commonwatch.incidents import services as svc
from commonwatch.incidents.rules import load_incident_rules
from commonwatch.intel import services
from tests.events.eventdata import event_row, insert_events, stored_ids
from tests.intel.conftest import indicator_obj

VALUE = "198.51.100.77"
DOMAIN = "shared-c2.example"


@dataclass
class Seen:
    a_events: list[int] = field(default_factory=list)
    b_events: list[int] = field(default_factory=list)
    incident_a: int = 0
    incident_b: int = 0
    indicator_green: int = 0


def arrange(session, world, clock) -> Seen:
    from sqlalchemy import select

    from commonwatch.intel.models import Indicator

    now = clock.now()
    rows = []
    for i in range(5):  # A: source VALUE; the fifth names it as destination only
        at = now - timedelta(hours=i + 1)
        rows.append(event_row(1000 + i, at=at, org_id=world.org_a, key_prefix="corr-a", tlp="AMBER",
                              source_ip=VALUE if i < 4 else "198.51.100.20", destination_ip=VALUE if i >= 3 else None,
                              source_fqdn=DOMAIN if i == 0 else None))
    for i in range(3):  # B: the same value, in B's events (SECRET-B)
        rows.append(event_row(2000 + i, at=now - timedelta(hours=i + 1), org_id=world.org_b, key_prefix="corr-b",
                              source_ip=VALUE, source_fqdn=DOMAIN, classification_identifier="SECRET-B"))
    from commonwatch.net import ip_key

    for r in rows:
        r["source_ip_bin"] = ip_key(r["source_ip"])
    insert_events(session, rows)
    ids = stored_ids(session, rows)
    out = Seen(a_events=[ids[r["event_key"]] for r in rows[:5]], b_events=[ids[r["event_key"]] for r in rows[5:]])
    centre = services.Origin("test", None, None, may_update_any=True)
    green = indicator_obj(VALUE, "GREEN", name="Shared C2 green")
    red_b = indicator_obj(VALUE, "RED", name="SECRET-B red indicator")
    amber_b = indicator_obj(DOMAIN, "AMBER", name="SECRET-B amber domain")
    services.store_objects(session, [green], centre, now - timedelta(days=1))
    owner_b = services.Origin("test", world.org_b, world.ids["user_b"], may_update_any=True, accept_red=True)
    services.store_objects(session, [red_b, amber_b], owner_b, now - timedelta(days=1))
    out.indicator_green = session.scalar(select(Indicator.id).where(Indicator.stix_id == green["id"]))
    rules = load_incident_rules(None)
    coordinator = access.principal_for(session, session.get(User, world.ids["user_coordinator"]))
    a = access.principal_for(session, session.get(User, world.ids["user_a"]))
    b = access.principal_for(session, session.get(User, world.ids["user_b"]))
    filing = {"discovered_at": now, "category": "DE", "subcategory": "DETECH", "affected_system": "edge",
              "effects": "none"}
    inc_a = svc.file_incident(session, a, {**filing, "title": "Alpha sees the C2"}, now=now, rules=rules)
    inc_b = svc.file_incident(session, b, {**filing, "title": "SECRET-B incident", "affected_system": "SECRET-B"},
                              now=now, rules=rules)
    svc.link_events(session, coordinator, inc_a, out.a_events[:2], now=now)
    svc.link_events(session, coordinator, inc_b, out.b_events, now=now)
    svc.create_task(session, coordinator, inc_a, {"org_id": world.org_a, "title": f"Block {VALUE} at the edge"},
                    now=now)
    svc.create_task(session, coordinator, inc_b, {"org_id": world.org_b, "title": "SECRET-B task",
                                                  "body": f"SECRET-B: {VALUE}"}, now=now)
    out.incident_a, out.incident_b = inc_a.id, inc_b.id
    session.flush()
    return out
