"""The coordination tasks are the list component: due first (undated last), sortable both ways,
filtered by status, a constituent sees only its organisation's."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from commonwatch.incidents import services as svc
from tests.conftest import sign_in
from tests.incidents.conftest import principal, report


@pytest.fixture
def tasks(app_session, world, clock, rules):
    with app_session() as s:
        a, coordinator = principal(s, world, "a"), principal(s, world, "coordinator")
        incident = svc.file_incident(s, a, report(), now=clock.now(), rules=rules)
        out = {}
        for title, due in (("Later", 48), ("Undated", None), ("Sooner", 2)):
            data = {"org_id": world.org_a, "title": title}
            if due is not None:
                data["due_at"] = (clock.now() + timedelta(hours=due)).isoformat()
            out[title] = svc.create_task(s, coordinator, incident, data, now=clock.now()).id
        return out


def _ids(html):
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', html)]


def test_tasks_sort_by_due_with_undated_last(client, world, tasks):
    sign_in(client, world.users["coordinator"])
    page = client.get("/tasks")
    assert page.status_code == 200 and 'data-count="3"' in page.text
    assert _ids(page.text) == [tasks["Sooner"], tasks["Later"], tasks["Undated"]]
    assert _ids(client.get("/tasks?sort=due&dir=desc").text) == [tasks["Undated"], tasks["Later"], tasks["Sooner"]]
    assert _ids(client.get("/tasks?sort=title&dir=asc").text) == [tasks["Later"], tasks["Sooner"], tasks["Undated"]]
    assert _ids(client.get("/tasks?status=done").text) == []
    assert client.get("/tasks?sort=body").status_code == 422
    sign_in(client, world.users["b"])
    assert _ids(client.get("/tasks").text) == []
