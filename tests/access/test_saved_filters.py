"""Named saved filters: save a list's filter set under a name from the list itself, open it,
rename and delete it; each person's own (another person's is not found), audited, in both
languages; forged paths and duplicate names refused with the field named."""

from __future__ import annotations

import re
from html import unescape

from sqlalchemy import select

from commonwatch.access.models import AuditEntry
from commonwatch.access.saved_filters import SavedFilter
from tests.conftest import sign_in


def _audits(app, entity="saved_filters") -> list[AuditEntry]:
    with app.state.sessionmaker() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.entity == entity).order_by(AuditEntry.seq)))


def test_save_open_rename_and_delete_a_filter_set(client, app, world):
    token = sign_in(client, world.users["coordinator"])
    page = client.get("/events?type=scanner&sort=severity&dir=asc&cursor=abc")
    assert 'action="/filters" class="save-filter"' in page.text
    path = unescape(re.search(r'name="path" value="([^"]+)"', page.text).group(1))
    assert path.startswith("/events?") and "type=scanner" in path and "sort=severity" in path
    saved = client.post("/filters", data={"csrf_token": token, "name": "Scanners by severity", "path": path},
                        follow_redirects=False)
    assert saved.status_code == 303
    assert saved.headers["location"] == "/events?type=scanner&sort=severity&dir=asc"
    listing = client.get("/filters")
    assert "Scanners by severity" in listing.text and 'href="/events?type=scanner&amp;sort=severity' in listing.text
    # One per name; a path that is not a page of this site is refused.
    again = client.post("/filters", data={"csrf_token": token, "name": "Scanners by severity", "path": "/warnings"})
    assert again.status_code == 422 and 'id="err-name"' in again.text
    forged = client.post("/filters", data={"csrf_token": token, "name": "Away", "path": "//evil.example/x"})
    assert forged.status_code == 422 and 'id="err-path"' in forged.text
    with app.state.sessionmaker() as s:
        row = s.scalars(select(SavedFilter)).one()
    renamed = client.post(f"/filters/{row.id}/rename", data={"csrf_token": token, "name": "Scanners"},
                          follow_redirects=False)
    assert renamed.status_code == 303
    assert ">Scanners</a>" in client.get("/filters").text
    gone = client.post(f"/filters/{row.id}/delete", data={"csrf_token": token}, follow_redirects=False)
    assert gone.status_code == 303
    assert "No saved filters yet." in client.get("/filters").text
    actions = [e.action for e in _audits(app)]
    assert actions == ["create", "update", "delete"], actions


def test_each_person_keeps_their_own(client, app, world):
    token = sign_in(client, world.users["a"])
    client.post("/filters", data={"csrf_token": token, "name": "Mine", "path": "/warnings?status=open"})
    with app.state.sessionmaker() as s:
        mine = s.scalars(select(SavedFilter)).one()
    client.cookies.clear()
    token = sign_in(client, world.users["admin"])
    assert "Mine" not in client.get("/filters").text  # not even an administrator reads it
    assert client.post(f"/filters/{mine.id}/rename", data={"csrf_token": token, "name": "Theirs"}).status_code == 404
    assert client.post(f"/filters/{mine.id}/delete", data={"csrf_token": token}).status_code == 404
    # Without the CSRF token nothing is saved.
    assert client.post("/filters", data={"name": "No token", "path": "/warnings"}).status_code in (403, 422)
    client.cookies.set("cw_lang", "zh-CN")
    zh = client.get("/filters")
    assert "已保存的筛选条件" in zh.text
    with app.state.sessionmaker() as s:
        assert [r.name for r in s.scalars(select(SavedFilter))] == ["Mine"]
