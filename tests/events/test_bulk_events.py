"""Bulk acts on selected events: export the selection, open an incident from it or link it to one;
a confirmation first, one audit record per act, and events the reader may not see left out."""

from __future__ import annotations

import csv
import io
import json

from sqlalchemy import select

from commonwatch.access.models import AuditEntry
from commonwatch.db import session_scope
from commonwatch.incidents.models import Incident, IncidentEvent
from tests.conftest import sign_in
from tests.incidents.conftest import insert_events


def _seed(app, world, clock) -> dict[str, list[int]]:
    with session_scope(app.state.sessionmaker, actor="test") as s:
        a = insert_events(s, world.org_a, 3, clock)
        b = insert_events(s, world.org_b, 2, clock, start_ip=50)
    return {"a": a, "b": b}


def _audits(app, action: str) -> list[AuditEntry]:
    with app.state.sessionmaker() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_a_constituent_exports_its_selection_and_forged_ids_are_left_out(client, app, world, clock):
    ids = _seed(app, world, clock)
    token = sign_in(client, world.users["a"])
    page = client.get("/events")
    assert 'data-select-all="bulk"' in page.text and 'value="export-csv"' in page.text
    assert 'value="incident-new"' not in page.text  # a constituent does not manage incidents
    selected = [*ids["a"], ids["b"][0]]
    confirm = client.post("/events/bulk", data={"csrf_token": token, "action": "export-csv", "ids": selected})
    assert confirm.status_code == 200 and 'class="bulk-count" data-count="3"' in confirm.text
    assert 'id="bulk-refused" data-count="1"' in confirm.text
    assert _audits(app, "events.export_selection") == []
    resp = client.post("/events/bulk", data={"csrf_token": token, "action": "export-csv", "confirm": "1",
                                             "ids": selected})
    assert resp.status_code == 200 and resp.headers["x-event-count"] == "3"
    assert resp.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert sorted(int(r["id"]) for r in rows) == sorted(ids["a"])
    (entry,) = _audits(app, "events.export_selection")
    assert entry.entity_id == "bulk:3" and str(ids["b"][0]) in entry.after.split('"refused"')[1]
    refused = client.post("/events/bulk", data={"csrf_token": token, "action": "incident-new", "confirm": "1",
                                                "ids": ids["a"]})
    assert refused.status_code == 422


def test_staff_open_an_incident_from_selected_events_and_link_more(client, app, world, clock):
    ids = _seed(app, world, clock)
    token = sign_in(client, world.users["coordinator"])
    confirm = client.post("/events/bulk", data={"csrf_token": token, "action": "incident-new", "ids": ids["a"][:2]})
    assert confirm.status_code == 200 and "2 events are selected" in confirm.text and 'id="f-title"' in confirm.text
    made = client.post("/events/bulk", data={"csrf_token": token, "action": "incident-new", "confirm": "1",
                                             "ids": ids["a"][:2], "title": "Two infected hosts"},
                       follow_redirects=False)
    assert made.status_code == 303 and made.headers["location"].startswith("/incidents/")
    with app.state.sessionmaker() as s:
        incident = s.scalar(select(Incident).where(Incident.title == "Two infected hosts"))
        assert incident.org_id == world.org_a
    linked = client.post("/events/bulk", data={"csrf_token": token, "action": "incident-link", "confirm": "1",
                                               "ids": ids["a"], "incident": incident.ref}, follow_redirects=False)
    assert linked.status_code == 303
    with app.state.sessionmaker() as s:
        events = set(s.scalars(select(IncidentEvent.event_id).where(IncidentEvent.incident_id == incident.id)))
    assert events == set(ids["a"])
    assert len(_audits(app, "incident.link_events")) == 2  # one per act: the two linked first, then the third
    missing = client.post("/events/bulk", data={"csrf_token": token, "action": "incident-link", "confirm": "1",
                                                "ids": ids["a"], "incident": "INC-NOPE"})
    assert missing.status_code == 422 and "INC-NOPE" in missing.text


def _warn(app, world, clock, event_ids: list[int], org_id: int, status: str = "open") -> None:
    from commonwatch.notify.models import EventWarning

    with session_scope(app.state.sessionmaker, actor="test") as s:
        for event_id in event_ids:
            s.add(EventWarning(org_id=org_id, event_id=event_id, obs_key=1000 + event_id, time_source=clock.now(),
                               classification_type="infected-system", severity="high", feed_name="demo-feed",
                               status=status))


def test_a_constituent_marks_events_false_positive_through_their_warnings(client, app, world, clock):
    from commonwatch.notify.models import EventWarning, Feedback

    ids = _seed(app, world, clock)
    a = ids["a"]
    _warn(app, world, clock, a[:2], world.org_a)
    _warn(app, world, clock, [a[2]], world.org_a, status="false-positive")
    _warn(app, world, clock, [ids["b"][0]], world.org_b)
    token = sign_in(client, world.users["a"])
    page = client.get("/events")
    assert 'value="false-positive"' in page.text
    selected = [*a, ids["b"][0]]
    confirm = client.post("/events/bulk", data={"csrf_token": token, "action": "false-positive", "ids": selected})
    assert confirm.status_code == 200 and 'class="bulk-count" data-count="2"' in confirm.text
    assert "Their 2 warnings will be marked false positive" in confirm.text
    assert 'id="bulk-refused" data-count="2"' in confirm.text
    assert "already marked false positive" in confirm.text and "not an event you can see" in confirm.text
    assert 'name="comment"' in confirm.text
    no_reason = client.post("/events/bulk", data={"csrf_token": token, "action": "false-positive", "confirm": "1",
                                                  "ids": selected, "comment": " "})
    assert no_reason.status_code == 422 and "say why this is a false positive" in no_reason.text
    assert _audits(app, "warnings.bulk_respond") == []
    done = client.post("/events/bulk", data={"csrf_token": token, "action": "false-positive", "confirm": "1",
                                             "ids": selected, "comment": "our honeypot"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/events")
    with app.state.sessionmaker() as s:
        status = dict(s.execute(select(EventWarning.event_id, EventWarning.status)).all())
        feedback = s.scalars(select(Feedback)).all()
    assert status[a[0]] == status[a[1]] == "false-positive" and status[ids["b"][0]] == "open"
    assert sorted(f.warning_id is not None and f.comment for f in feedback) == ["our honeypot"] * 2
    (entry,) = _audits(app, "warnings.bulk_respond")
    after = json.loads(entry.after)
    assert after["events"] == a[:2] and sorted(after["events_refused"]) == sorted([a[2], ids["b"][0]])
    assert after["action"] == "false-positive" and len(after["ids"]) == 2
    client.cookies.set("cw_lang", "zh-CN")
    zh = client.post("/events/bulk", data={"csrf_token": token, "action": "false-positive", "ids": a})
    assert "已标记为误报" in zh.text


def test_staff_are_not_offered_the_false_positive_of_a_constituent(client, app, world, clock):
    ids = _seed(app, world, clock)
    _warn(app, world, clock, ids["a"], world.org_a)
    token = sign_in(client, world.users["coordinator"])
    assert 'value="false-positive"' not in client.get("/events").text
    refused = client.post("/events/bulk", data={"csrf_token": token, "action": "false-positive", "confirm": "1",
                                                "ids": ids["a"], "comment": "x"})
    assert refused.status_code == 422
