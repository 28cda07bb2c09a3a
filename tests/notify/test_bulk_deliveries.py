"""The notification log sorts by its columns and retries many deliveries at once: a confirmation
that names the ones left alone and why, and one audit record for the act."""

from __future__ import annotations

import re

from sqlalchemy import select

from commonwatch.access.models import AuditEntry
from commonwatch.db import session_scope
from commonwatch.notify.models import Delivery
from tests.conftest import sign_in


def _seed(app, world, clock) -> list[int]:
    """Two dead deliveries, one held, one already pending (attempts 5, 1, 3, 0)."""
    with session_scope(app.state.sessionmaker, actor="test") as s:
        rows = [Delivery(org_id=org, recipient_key=f"contact:{contact}", contact_id=contact, channel="email",
                         address=f"noc{i}@example.org", status=status, attempts=attempts, history=[],
                         message_id=f"<m{i}@centre.example>", event_count=1, created_at=clock.now())
                for i, (org, contact, status, attempts) in enumerate([
                    (world.org_a, world.ids["contact_a"], "dead", 5), (world.org_b, world.ids["contact_b"], "dead", 1),
                    (world.org_a, world.ids["contact_a"], "held", 3), (world.org_a, world.ids["contact_a"], "pending", 0)])]
        s.add_all(rows)
        s.flush()
        return [d.id for d in rows]


def _audits(app, action):
    with app.state.sessionmaker() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_the_log_sorts_by_attempts(client, app, world, clock):
    ids = _seed(app, world, clock)
    sign_in(client, world.users["coordinator"])
    page = client.get("/notify?sort=attempts&dir=desc")
    assert page.status_code == 200
    assert [int(i) for i in re.findall(r'<tr data-id="(\d+)"', page.text)] == [ids[0], ids[2], ids[1], ids[3]]
    assert 'data-count="4"' in page.text
    assert client.get("/notify?sort=address").status_code == 422


def test_bulk_retry_confirms_then_records_one_act(client, app, world, clock):
    ids = _seed(app, world, clock)
    token = sign_in(client, world.users["coordinator"])
    selected = [*ids, 424_242]
    confirm = client.post("/notify/deliveries/bulk", data={"csrf_token": token, "action": "resend", "ids": selected})
    assert confirm.status_code == 200 and 'class="bulk-count" data-count="3"' in confirm.text
    assert 'id="bulk-refused" data-count="2"' in confirm.text and "424242: " in confirm.text
    with app.state.sessionmaker() as s:
        assert s.get(Delivery, ids[0]).status == "dead"  # nothing changes before the confirmation
    done = client.post("/notify/deliveries/bulk", data={"csrf_token": token, "action": "resend", "confirm": "1",
                                                         "ids": selected}, follow_redirects=False)
    assert done.status_code == 303
    with app.state.sessionmaker() as s:
        assert {s.get(Delivery, i).status for i in ids} == {"pending"}
    (act,) = _audits(app, "notify.bulk_resend")
    assert act.entity_id == "bulk:3"
    assert _audits(app, "notify.resend") == []  # not one record per delivery
    token = sign_in(client, world.users["a"])
    assert client.post("/notify/deliveries/bulk", data={"csrf_token": token, "action": "resend", "confirm": "1",
                                                        "ids": ids}).status_code == 403
