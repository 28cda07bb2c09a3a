"""The pages: the centre's notification log and policies, and a constituent answering its
warnings in English and in Chinese; every form carries its CSRF token."""

from __future__ import annotations

import email
from datetime import timedelta

from sqlalchemy import select

from commonwatch.db import session_scope
from commonwatch.notify.config import NotifySettings
from commonwatch.notify.models import Delivery, EventWarning, Feedback, Policy
from commonwatch.notify.runner import Notifier
from tests.conftest import csrf_of, sign_in
from tests.notify.conftest import event_row, insert_events


def _seed_and_run(app, world, clock, rows=None):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, rows or [event_row(world.org_a, at=clock.now() - timedelta(hours=i), ip=f"198.51.100.{i}",
                                            severity="high", port=23) for i in range(1, 4)])
    state = app.state
    return Notifier(settings=state.settings, sessions=state.sessionmaker, clock=state.clock, env=state.jinja,
                    nset=NotifySettings()).run()


def test_without_smtp_the_messages_are_real_eml_files_in_the_outbox(app, world, clock):
    report = _seed_and_run(app, world, clock)
    assert report.sent == 1
    files = sorted((app.state.settings.data_dir / "notify" / "outbox").glob("*.eml"))
    assert len(files) == 1
    msg = email.message_from_bytes(files[0].read_bytes())
    assert msg["To"] == "noc@alpha.example" and msg.get_content_type() == "multipart/signed"


def test_coordinator_log_filters_and_resends(client, app, world, clock):
    _seed_and_run(app, world, clock)
    with session_scope(app.state.sessionmaker, actor="test") as s:
        d = s.scalar(select(Delivery))
        d.status, d.last_error = "dead", "RCPT TO: 550 no such mailbox"
    token = sign_in(client, world.users["coordinator"])
    page = client.get("/notify?status=dead")
    assert page.status_code == 200 and "550 no such mailbox" in page.text and "noc@alpha.example" in page.text
    assert "noc@alpha.example" not in client.get("/notify?status=sent").text
    detail = client.get(f"/notify/deliveries/{d.id}")
    assert "RCPT TO: 550" in detail.text and "198.51.100.1" in detail.text
    assert client.post(f"/notify/deliveries/{d.id}/resend", data={}).status_code == 403  # no CSRF token
    resp = client.post(f"/notify/deliveries/{d.id}/resend", data={"csrf_token": token}, follow_redirects=False)
    assert resp.status_code == 303
    with session_scope(app.state.sessionmaker, actor="test") as s:
        assert s.get(Delivery, d.id).status == "pending"
    resp = client.post("/notify/run", data={"csrf_token": token}, follow_redirects=True)
    assert "1 messages sent" in resp.text or "发送 1 封" in resp.text
    client.cookies.set("cw_lang", "zh-CN")
    zh = client.get("/notify")
    assert "通知" in zh.text and "已发送" in zh.text


def test_policies_are_edited_with_errors_next_to_the_field(client, app, world):
    token = sign_in(client, world.users["coordinator"])
    assert client.get("/notify/policies").status_code == 200
    resp = client.post(f"/notify/policies/{world.org_a}", data={
        "csrf_token": token, "enabled": "1", "types": "infected-system Bad_Type", "min_severity": "medium",
        "cadence": "weekly", "immediate_severity": "high", "channel": "email", "language": "",
        "repeat_window_hours": "24", "webhook_url": ""})
    assert resp.status_code == 422 and "Bad_Type" in resp.text and "must be one of immediate" in resp.text
    resp = client.post(f"/notify/policies/{world.org_a}", data={
        "csrf_token": token, "enabled": "1", "types": "infected-system", "min_severity": "medium",
        "cadence": "hourly", "immediate_severity": "critical", "channel": "email", "language": "zh-CN",
        "repeat_window_hours": "24", "webhook_url": "", "encryption_required": "1"}, follow_redirects=False)
    assert resp.status_code == 303
    with session_scope(app.state.sessionmaker, actor="test") as s:
        p = s.scalar(select(Policy).where(Policy.org_id == world.org_a))
        assert (p.types, p.cadence, p.language, p.encryption_required) == (["infected-system"], "hourly", "zh-CN",
                                                                           True)
    resp = client.post("/notify/policies/default", data={
        "csrf_token": token, "enabled": "1", "types": "", "min_severity": "low", "cadence": "daily",
        "immediate_severity": "high", "channel": "webhook", "language": "", "repeat_window_hours": "168",
        "webhook_url": "https://not-allowed.example/hook"})
    assert resp.status_code == 422 and "outbound allowlist" in resp.text
    api = client.get(f"/api/v1/notify/policies/{world.org_a}", headers=world.auth("analyst"))
    assert api.json()["own"] is True and api.json()["cadence"] == "hourly"
    assert client.put(f"/api/v1/notify/policies/{world.org_a}", json={"cadence": "daily"},
                      headers=world.auth("analyst")).status_code == 403


def test_a_constituent_acknowledges_in_english_and_in_chinese(client, app, world, clock):
    _seed_and_run(app, world, clock)
    sign_in(client, world.users["a"])
    client.cookies.set("cw_lang", "en")
    listing = client.get("/warnings")
    assert listing.status_code == 200 and "My warnings" in listing.text and "198.51.100.1:23" in listing.text
    with session_scope(app.state.sessionmaker, actor="test") as s:
        first, second = s.scalars(select(EventWarning.id).order_by(EventWarning.id).limit(2)).all()
    page = client.get(f"/warnings/{first}")
    assert "What to do:" in page.text and "Infected system" in page.text
    token = csrf_of(client, f"/warnings/{first}")
    resp = client.post(f"/warnings/{first}/feedback", data={"csrf_token": token, "action": "acknowledged",
                                                             "comment": "on it"})
    assert resp.status_code == 200 and "your answer was recorded" in resp.text and "acknowledged" in resp.text
    client.cookies.set("cw_lang", "zh-CN")
    zh = client.get(f"/warnings/{second}")
    assert "处置建议" in zh.text and "受感染主机" in zh.text
    resp = client.post(f"/warnings/{second}/feedback", data={"csrf_token": token, "action": "acknowledged",
                                                              "comment": "正在处理"})
    assert "已确认" in resp.text
    with session_scope(app.state.sessionmaker, actor="test") as s:
        assert [f.comment for f in s.scalars(select(Feedback).order_by(Feedback.id))] == ["on it", "正在处理"]
    stats = client.get("/api/v1/notify/stats", headers=world.auth("a")).json()
    assert stats["by_status"]["acknowledged"] == 2 and stats["feedback"]["acknowledged"] == 2


def test_a_false_positive_suppresses_the_same_observation(client, app, world, clock):
    _seed_and_run(app, world, clock, [event_row(world.org_a, at=clock.now(), ip="198.51.100.77", port=80,
                                                severity="high", kind="vulnerable-system", malware=None)])
    sign_in(client, world.users["a"])
    with session_scope(app.state.sessionmaker, actor="test") as s:
        warning_id = s.scalar(select(EventWarning.id))
    token = csrf_of(client, f"/warnings/{warning_id}")
    bad = client.post(f"/warnings/{warning_id}/feedback", data={"csrf_token": token, "action": "false-positive",
                                                                 "comment": "", "suppress": "1"})
    assert bad.status_code == 422 and "say why this is a false positive" in bad.text
    ok = client.post(f"/warnings/{warning_id}/feedback", data={"csrf_token": token, "action": "false-positive",
                                                                "comment": "honeypot of ours", "suppress": "1"})
    assert ok.status_code == 200
    clock.advance(timedelta(days=30))
    report = _seed_and_run(app, world, clock, [event_row(world.org_a, at=clock.now(), ip="198.51.100.77", port=80,
                                                         severity="high", kind="vulnerable-system", malware=None)])
    assert (report.plan.suppressed, report.plan.warned, report.sent) == (1, 0, 0)
    stats = client.get("/api/v1/notify/stats", headers=world.auth("coordinator")).json()
    assert stats["feedback"]["false-positive"] == 1 and stats["suppressed"] == 1
    assert stats["false_positives_by_feed"] == [{"feed": "shadowserver-sinkhole", "type": "vulnerable-system",
                                                 "false_positives": 1}]


def test_staff_cannot_answer_for_a_constituent_and_b_cannot_see_a(client, app, world, clock):
    _seed_and_run(app, world, clock)
    with session_scope(app.state.sessionmaker, actor="test") as s:
        warning_id = s.scalar(select(EventWarning.id))
    resp = client.post(f"/api/v1/notify/warnings/{warning_id}/feedback", json={"action": "resolved"},
                       headers=world.auth("coordinator"))
    assert resp.status_code == 403
    assert client.get(f"/api/v1/notify/warnings/{warning_id}", headers=world.auth("b")).status_code == 404
    assert client.get("/api/v1/notify/warnings", headers=world.auth("b")).json()["total"] == 0
    ok = client.post(f"/api/v1/notify/warnings/{warning_id}/feedback", json={"action": "resolved", "comment": "x"},
                     headers=world.auth("a"))
    assert ok.status_code == 200 and ok.json()["status"] == "resolved"


def test_an_answer_with_a_control_character_is_refused_naming_the_comment(client, app, world, clock):
    _seed_and_run(app, world, clock, [event_row(world.org_a, at=clock.now(), ip="198.51.100.78", port=80,
                                                severity="high", kind="vulnerable-system", malware=None)])
    sign_in(client, world.users["a"])
    with session_scope(app.state.sessionmaker, actor="test") as s:
        warning_id = s.scalar(select(EventWarning.id))
    token = csrf_of(client, f"/warnings/{warning_id}")
    resp = client.post(f"/warnings/{warning_id}/feedback", data={"csrf_token": token, "action": "false-positive",
                                                                  "comment": "our honeypot\x00", "suppress": "1"})
    assert resp.status_code == 422 and "control character (U+0000)" in resp.text
    with session_scope(app.state.sessionmaker, actor="test") as s:
        assert s.scalar(select(Feedback.id)) is None
