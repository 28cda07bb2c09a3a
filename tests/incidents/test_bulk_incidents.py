"""The incident list sorts by its columns and changes many incidents at once (status, owner):
a confirmation that says how many and which are left alone and why, one audit record for the
act, and no bulk act at all for a constituent."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from commonwatch.access.models import AuditEntry
from commonwatch.incidents import services as svc
from commonwatch.incidents.models import Incident, TimelineEntry
from tests.conftest import sign_in
from tests.incidents.conftest import principal, report


@pytest.fixture
def cases(app_session, world, clock, rules):
    with app_session() as s:
        a, b = principal(s, world, "a"), principal(s, world, "b")
        mine = [svc.file_incident(s, a, report(title=f"Alpha case {t}"), now=clock.now(), rules=rules).id
                for t in ("delta", "alpha", "charlie")]
        theirs = svc.file_incident(s, b, report(title="Bravo case"), now=clock.now(), rules=rules).id
        return {"a": mine, "b": theirs}


def _ids(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'<tr data-id="(\d+)"', html)]


def _status(app, ids) -> dict[int, str]:
    with app.state.sessionmaker() as s:
        return dict(s.execute(select(Incident.id, Incident.status).where(Incident.id.in_(ids))).all())


def _audits(app, action: str) -> list[AuditEntry]:
    with app.state.sessionmaker() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_the_list_sorts_by_title_both_ways_and_keeps_its_filters(client, world, cases):
    sign_in(client, world.users["coordinator"])
    up = client.get("/incidents?sort=title&dir=asc")
    assert up.status_code == 200
    # "Alpha case alpha" < "Alpha case charlie" < "Alpha case delta" < "Bravo case"
    assert _ids(up.text) == [cases["a"][1], cases["a"][2], cases["a"][0], cases["b"]]
    down = client.get("/incidents?sort=title&dir=desc")
    assert _ids(down.text) == _ids(up.text)[::-1]
    assert 'data-count="4"' in up.text
    filtered = client.get("/incidents?q=Alpha&sort=title&dir=asc")
    assert _ids(filtered.text) == [cases["a"][1], cases["a"][2], cases["a"][0]]
    assert 'href="/incidents?q=Alpha&amp;sort=title&amp;dir=desc"' in filtered.text  # the header turns it round
    assert client.get("/incidents?sort=owner_secret").status_code == 422
    sign_in(client, world.users["a"])
    assert sorted(_ids(client.get("/incidents").text)) == sorted(cases["a"])  # a constituent sees its own


def test_bulk_status_confirms_refuses_and_records_one_act(client, app, world, cases, clock):
    token = sign_in(client, world.users["coordinator"])
    every = [*cases["a"], cases["b"]]
    closed = cases["a"][0]
    client.post(f"/incidents/{closed}/status", data={"csrf_token": token, "status": "closed"})
    assert _status(app, [closed]) == {closed: "closed"}
    selected = [*every, 987_654]
    confirm = client.post("/incidents/bulk", data={"csrf_token": token, "action": "status:triaged", "ids": selected})
    assert confirm.status_code == 200
    assert 'class="bulk-count" data-count="3"' in confirm.text and "3 incidents will be changed" in confirm.text
    assert 'id="bulk-refused" data-count="2"' in confirm.text
    assert f"{closed}: cannot go from" in confirm.text and "987654: not found" in confirm.text
    assert set(_status(app, every).values()) == {"new", "closed"}
    with app.state.sessionmaker() as s:
        timeline_before = s.scalar(select(func.count()).select_from(TimelineEntry))
    done = client.post("/incidents/bulk", data={"csrf_token": token, "action": "status:triaged", "confirm": "1",
                                                "ids": selected, "note": "weekly triage"}, follow_redirects=False)
    assert done.status_code == 303
    assert _status(app, every) == {**dict.fromkeys(every, "triaged"), closed: "closed"}
    (act,) = _audits(app, "incidents.bulk_status")
    assert act.entity_id == "bulk:3" and str(closed) in act.after.split('"refused"')[1]
    with app.state.sessionmaker() as s:  # each incident keeps its own history, as if changed alone
        assert s.scalar(select(func.count()).select_from(TimelineEntry)) - timeline_before == 3
    assert "3 incidents changed" in client.get("/incidents").text


def test_bulk_assign_sets_one_owner_on_every_selected_case(client, app, world, cases):
    token = sign_in(client, world.users["coordinator"])
    analyst = world.ids["user_analyst"]
    page = client.get("/incidents")
    assert f'value="assign:{analyst}"' in page.text and 'data-select-all="bulk"' in page.text
    resp = client.post("/incidents/bulk", data={"csrf_token": token, "action": f"assign:{analyst}", "confirm": "1",
                                                "ids": cases["a"]}, follow_redirects=False)
    assert resp.status_code == 303
    with app.state.sessionmaker() as s:
        owners = set(s.scalars(select(Incident.owner_id).where(Incident.id.in_(cases["a"]))))
        other = s.get(Incident, cases["b"]).owner_id
    assert owners == {analyst} and other is None
    assert len(_audits(app, "incidents.bulk_assign")) == 1
    bad = client.post("/incidents/bulk", data={"csrf_token": token, "action": "delete:all", "ids": cases["a"]})
    assert bad.status_code == 422


def test_a_constituent_has_no_bulk_acts(client, app, world, cases):
    token = sign_in(client, world.users["a"])
    page = client.get("/incidents")
    assert 'id="bulk"' not in page.text and 'name="ids"' not in page.text
    resp = client.post("/incidents/bulk", data={"csrf_token": token, "action": "status:closed", "confirm": "1",
                                                "ids": [*cases["a"], cases["b"]]}, follow_redirects=False)
    assert resp.status_code == 403
    assert set(_status(app, [*cases["a"], cases["b"]]).values()) == {"new"}
    assert _audits(app, "incidents.bulk_status") == []
