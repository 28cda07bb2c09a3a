"""The warnings list sorts by its columns and answers many warnings at once: a confirmation that
says how many, one reason for all, one audit record for the act, and another organisation's
warning refused even when its id is forged into the form."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from commonwatch.access.models import AuditEntry
from commonwatch.db import session_scope
from commonwatch.notify.config import NotifySettings
from commonwatch.notify.models import EventWarning, Feedback
from commonwatch.notify.runner import Notifier
from tests.conftest import sign_in
from tests.notify.conftest import event_row, insert_events

SEVERITIES = ("low", "critical", "medium", "high")


def _seed(app, world, clock) -> dict[int, list[int]]:
    """Four warnings for Alpha (one per severity) and two for Bravo; the warning ids by org."""
    rows = [event_row(world.org_a, at=clock.now() - timedelta(hours=i + 1), ip=f"198.51.100.{i + 1}",
                      severity=sev, port=23, kind=f"kind-{i}") for i, sev in enumerate(SEVERITIES)]
    rows += [event_row(world.org_b, at=clock.now() - timedelta(hours=i + 1), ip=f"203.0.113.{i + 1}",
                       severity="high", port=23) for i in range(2)]
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, rows)
    state = app.state
    Notifier(settings=state.settings, sessions=state.sessionmaker, clock=state.clock, env=state.jinja,
             nset=NotifySettings()).run()
    with app.state.sessionmaker() as s:
        out: dict[int, list[int]] = {}
        for w in s.scalars(select(EventWarning).where(EventWarning.disposition == "warn").order_by(EventWarning.id)):
            out.setdefault(w.org_id, []).append(w.id)
    assert len(out[world.org_a]) == 4 and len(out[world.org_b]) == 2
    return out


def _audit_count(app, action: str | None = None) -> int:
    with app.state.sessionmaker() as s:
        stmt = select(func.count()).select_from(AuditEntry)
        if action:
            stmt = stmt.where(AuditEntry.action == action)
        return s.scalar(stmt)


def _statuses(app, ids) -> dict[int, str]:
    with app.state.sessionmaker() as s:
        return dict(s.execute(select(EventWarning.id, EventWarning.status).where(EventWarning.id.in_(ids))).all())


def _row_ids(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'<tr data-id="(\d+)"', html)]


def test_the_list_sorts_by_severity_rank_and_counts(client, app, world, clock):
    ids = _seed(app, world, clock)
    sign_in(client, world.users["a"])
    page = client.get("/warnings")
    assert page.status_code == 200
    assert 'data-count="4"' in page.text and "4 warnings" in page.text
    assert sorted(_row_ids(page.text)) == ids[world.org_a]  # only Alpha's
    by_rank = client.get("/warnings?sort=severity&dir=desc")
    with app.state.sessionmaker() as s:
        sev = dict(s.execute(select(EventWarning.id, EventWarning.severity)).all())
    assert [sev[i] for i in _row_ids(by_rank.text)] == ["critical", "high", "medium", "low"]
    up = client.get("/warnings?sort=severity&dir=asc")
    assert [sev[i] for i in _row_ids(up.text)] == ["low", "medium", "high", "critical"]
    assert 'aria-sort="ascending"' in up.text
    assert client.get("/warnings?sort=comment_secret").status_code == 422


def test_bulk_acknowledge_confirms_then_acts_once_and_refuses_forged_ids(client, app, world, clock):
    ids = _seed(app, world, clock)
    mine, theirs = ids[world.org_a][:3], ids[world.org_b]
    token = sign_in(client, world.users["a"])
    selected = [*mine, theirs[0], 999_999]
    confirm = client.post("/warnings/bulk", data={"csrf_token": token, "action": "acknowledged", "ids": selected})
    assert confirm.status_code == 200
    assert 'class="bulk-count" data-count="3"' in confirm.text
    assert "3 warnings will be changed" in confirm.text
    assert 'id="bulk-refused" data-count="2"' in confirm.text and str(theirs[0]) in confirm.text
    assert _statuses(app, mine) == dict.fromkeys(mine, "open")  # nothing changes before the confirmation
    before = _audit_count(app)
    done = client.post("/warnings/bulk", data={"csrf_token": token, "action": "acknowledged", "confirm": "1",
                                               "ids": selected, "comment": "patched the lot"},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/warnings"
    assert _statuses(app, mine) == dict.fromkeys(mine, "acknowledged")
    assert _statuses(app, theirs) == dict.fromkeys(theirs, "open")  # the forged id is left alone
    assert _audit_count(app) - before == 1  # one record for the act, not one per warning
    with app.state.sessionmaker() as s:
        (entry,) = s.scalars(select(AuditEntry).where(AuditEntry.action == "warnings.bulk_respond")).all()
        fb = s.scalars(select(Feedback).where(Feedback.warning_id.in_(mine))).all()
    assert '"ids": [' in entry.after and all(str(i) in entry.after for i in mine)
    assert str(theirs[0]) in entry.after.split('"refused"')[1]
    assert entry.actor.endswith(world.users["a"]) or world.users["a"] in entry.actor
    assert {f.action for f in fb} == {"acknowledged"} and len(fb) == 3
    assert "3 warnings answered" in client.get("/warnings").text


def test_bulk_false_positive_needs_one_reason_for_all(client, app, world, clock):
    ids = _seed(app, world, clock)
    mine = ids[world.org_a]
    token = sign_in(client, world.users["a"])
    refused = client.post("/warnings/bulk", data={"csrf_token": token, "action": "false-positive", "confirm": "1",
                                                  "ids": mine, "comment": "  "})
    assert refused.status_code == 422 and 'id="err-comment"' in refused.text
    assert _statuses(app, mine) == dict.fromkeys(mine, "open")
    assert _audit_count(app, "warnings.bulk_respond") == 0
    ok = client.post("/warnings/bulk", data={"csrf_token": token, "action": "false-positive", "confirm": "1",
                                             "ids": mine, "comment": "our honeypot"}, follow_redirects=False)
    assert ok.status_code == 303
    with app.state.sessionmaker() as s:
        rows = s.scalars(select(EventWarning).where(EventWarning.id.in_(mine))).all()
    assert {(w.status, w.comment) for w in rows} == {("false-positive", "our honeypot")}
    assert _audit_count(app, "warnings.bulk_respond") == 1


def test_only_foreign_ids_change_nothing_and_need_the_csrf_token(client, app, world, clock):
    ids = _seed(app, world, clock)
    token = sign_in(client, world.users["a"])
    theirs = ids[world.org_b]
    page = client.post("/warnings/bulk", data={"csrf_token": token, "action": "resolved", "ids": theirs})
    assert page.status_code == 200 and 'data-count="0"' in page.text and 'id="bulk-do"' not in page.text
    forced = client.post("/warnings/bulk", data={"csrf_token": token, "action": "resolved", "confirm": "1",
                                                 "ids": theirs}, follow_redirects=False)
    assert forced.status_code == 303
    assert _statuses(app, theirs) == dict.fromkeys(theirs, "open")
    assert _audit_count(app, "warnings.bulk_respond") == 0
    no_token = client.post("/warnings/bulk", data={"action": "resolved", "confirm": "1", "ids": ids[world.org_a]})
    assert no_token.status_code == 403
    assert _statuses(app, ids[world.org_a]) == dict.fromkeys(ids[world.org_a], "open")
    bad = client.post("/warnings/bulk", data={"csrf_token": token, "action": "delete", "ids": ids[world.org_a]})
    assert bad.status_code == 422
