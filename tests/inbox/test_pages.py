"""The inbox's pages: the bell in the header and its unread count, the notifications list (mark
read, mark all read, open), following a case, the settings on the account page; each person sees
only their own."""

from __future__ import annotations

from fastapi.testclient import TestClient

from commonwatch.db import session_scope
from commonwatch.incidents import services as svc
from commonwatch.incidents.rules import load_incident_rules
from tests.conftest import sign_in
from tests.incidents.conftest import principal, report


def _case_assigned_to_analyst(app, world, clock) -> int:
    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        incident = svc.file_incident(s, principal(s, world, "a"), report(discovered_at=clock.now().isoformat()),
                                     now=clock.now(), rules=load_incident_rules(None))
        svc.assign(s, principal(s, world, "coordinator"), incident, world.ids["user_analyst"], now=clock.now())
        return incident.id


def test_bell_count_list_and_mark_read(app, client, world, clock):
    csrf = sign_in(client, world.users["analyst"])
    page = client.get("/")
    assert 'data-inbox-bell' in page.text and 'href="/inbox"' in page.text
    assert client.get("/inbox/unread").json() == {"unread": 0}
    incident_id = _case_assigned_to_analyst(app, world, clock)
    assert client.get("/inbox/unread").json() == {"unread": 1}  # the cache sees the new row at once
    listing = client.get("/inbox")
    assert listing.status_code == 200 and "assigned INC-" in listing.text and 'class="unread"' in listing.text
    assert "assigned INC-" in client.get("/inbox/items?state=unread").text
    note_id = int(listing.text.split('data-notification="', 1)[1].split('"', 1)[0])
    opened = client.post(f"/inbox/open/{note_id}", data={"csrf_token": csrf}, follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == f"/incidents/{incident_id}"
    assert client.get("/inbox/unread").json() == {"unread": 0}
    assert "assigned INC-" not in client.get("/inbox?state=unread").text
    assert client.get("/inbox?state=bogus").status_code == 422
    assert client.get("/inbox?sort=user_id").status_code == 422


def test_mark_all_read_needs_csrf_and_touches_only_ones_own(app, client, world, clock):
    _case_assigned_to_analyst(app, world, clock)
    csrf = sign_in(client, world.users["coordinator"])
    with TestClient(app) as other:
        sign_in(other, world.users["analyst"])
        assert other.get("/inbox/unread").json() == {"unread": 1}
        assert other.post("/inbox/read", data={"all": "1"}).status_code == 403  # no CSRF token
        client.post("/inbox/read", data={"all": "1", "csrf_token": csrf})  # the coordinator's own: none
        assert other.get("/inbox/unread").json() == {"unread": 1}
        note_id = int(other.get("/inbox").text.split('data-notification="', 1)[1].split('"', 1)[0])
        assert client.post(f"/inbox/open/{note_id}", data={"csrf_token": csrf}).status_code == 404
        client.post("/inbox/read", data={"ids": str(note_id), "csrf_token": csrf})
        assert other.get("/inbox/unread").json() == {"unread": 1}
        other_csrf = other.get("/inbox").text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        done = other.post("/inbox/read", data={"all": "1", "csrf_token": other_csrf}, follow_redirects=False)
        assert done.status_code == 303
        assert other.get("/inbox/unread").json() == {"unread": 0}


def test_follow_and_settings_pages(app, client, world, clock):
    incident_id = _case_assigned_to_analyst(app, world, clock)
    csrf = sign_in(client, world.users["a"])
    case = client.get(f"/incidents/{incident_id}")
    assert 'data-following="no"' in case.text
    client.post(f"/incidents/{incident_id}/follow", data={"follow": "1", "csrf_token": csrf})
    assert 'data-following="yes"' in client.get(f"/incidents/{incident_id}").text
    client.post(f"/incidents/{incident_id}/follow", data={"follow": "0", "csrf_token": csrf})
    assert 'data-following="no"' in client.get(f"/incidents/{incident_id}").text
    account = client.get("/account")
    assert 'id="notifications"' in account.text and 'name="comment" value="app"' in account.text
    saved = client.post("/account/notifications", data={"comment": "both", "task": "none", "csrf_token": csrf},
                        follow_redirects=False)
    assert saved.status_code == 303
    text = client.get("/account").text
    assert 'value="both" id="pref-comment-both" aria-label' in text and 'id="pref-comment-both"' in text
    assert 'id="pref-task-none" aria-label="A task is sent to my organisation: Not at all" checked' in text
    client.post("/account/notifications", data={"comment": "pigeon", "csrf_token": csrf})
    assert 'id="pref-comment-both" aria-label="A new comment on a case I follow: In the app and by mail" checked' \
        in client.get("/account").text


def test_b_cannot_follow_as_case_and_the_pages_speak_chinese(app, client, world, clock):
    incident_id = _case_assigned_to_analyst(app, world, clock)
    csrf = sign_in(client, world.users["b"])
    assert client.post(f"/incidents/{incident_id}/follow", data={"follow": "1", "csrf_token": csrf}).status_code \
        == 404
    client.cookies.set("cw_lang", "zh-CN")
    page = client.get("/inbox")
    assert "通知" in page.text and "全部标为已读" in page.text


def test_the_api_answers_only_about_the_caller(app, client, world, clock):
    _case_assigned_to_analyst(app, world, clock)
    mine = client.get("/api/v1/inbox", headers=world.auth("analyst")).json()
    assert [n["kind"] for n in mine] == ["assigned"] and mine[0]["link"].startswith("/incidents/")
    assert client.get("/api/v1/inbox", headers=world.auth("coordinator")).json() == []
    assert client.post("/api/v1/inbox/read", json={"ids": [mine[0]["id"]]},
                       headers=world.auth("coordinator")).json() == {"marked": 0}
    assert client.get("/api/v1/inbox/unread", headers=world.auth("analyst")).json() == {"unread": 1}
    assert client.post("/api/v1/inbox/read", json={}, headers=world.auth("analyst")).json() == {"marked": 1}
    assert client.get("/api/v1/inbox?unread=true", headers=world.auth("analyst")).json() == []
    assert client.put("/api/v1/inbox/preferences", json={"task": "pigeon"}, headers=world.auth("a")).status_code \
        == 422
    assert client.put("/api/v1/inbox/preferences", json={"task": "none"}, headers=world.auth("a")).json()["task"] \
        == "none"
    assert client.get("/api/v1/inbox/preferences", headers=world.auth("b")).json()["task"] == "both"
