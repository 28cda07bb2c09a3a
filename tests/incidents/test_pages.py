"""Every incident page renders for the roles that may see it, in English and Chinese."""

from __future__ import annotations

import pytest

from commonwatch.incidents import services as svc
from commonwatch.incidents import sharing
from tests.conftest import sign_in
from tests.incidents.conftest import insert_events, principal, report


@pytest.fixture
def case(app_session, world, clock, rules):
    with app_session() as s:
        a = principal(s, world, "a")
        coordinator = principal(s, world, "coordinator")
        incident = svc.file_incident(s, a, report(impact={"pi_persons_leaked": 1_500_000}), now=clock.now(),
                                     rules=rules)
        task = svc.create_task(s, coordinator, incident, {"org_id": world.org_a_unit, "title": "Check logs"},
                               now=clock.now())
        share = sharing.share(s, coordinator, incident, world.partner, "TLP:GREEN", None, now=clock.now(), rules=rules)
        insert_events(s, world.org_a, 3, clock)
        return {"incident": incident.id, "task": task.id, "share": share.id}


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_pages_render_for_staff(client, world, case, lang):
    sign_in(client, world.users["coordinator"])
    client.get(f"/lang/{lang}")
    i = case["incident"]
    for path in ("/incidents", "/incidents/new", f"/incidents/{i}", f"/incidents/{i}/edit",
                 f"/incidents/{i}/report/initial", f"/incidents/{i}/report/summary", "/tasks", f"/tasks/{case['task']}",
                 "/shared-incidents", f"/shared-incidents/{case['share']}", "/incidents/alerts", "/incidents/rules",
                 "/incidents/from-events", "/"):
        resp = client.get(path)
        assert resp.status_code == 200, (path, resp.text[:2000])
    page = client.get(f"/incidents/{i}").text
    assert "较大" in page and 'class="countdown' in page
    assert client.get(f"/incidents/{i}/report/initial.pdf").content.startswith(b"%PDF-")


def test_pages_render_for_the_reporter_and_the_partner(client, anon, world, case):
    sign_in(client, world.users["a"])
    for path in ("/incidents", "/incidents/new", f"/incidents/{case['incident']}", "/tasks",
                 f"/tasks/{case['task']}", f"/incidents/{case['incident']}/edit"):
        assert client.get(path).status_code == 200, path
    sign_in(anon, world.users["partner"])
    assert anon.get(f"/shared-incidents/{case['share']}").status_code == 200
    # the incidents pages are hidden from a partner and refused by URL, whatever the id (no leak)
    assert anon.get(f"/incidents/{case['incident']}").status_code == 403
    assert anon.get("/incidents/999999").status_code == 403
