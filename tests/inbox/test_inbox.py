"""Notifications on both engines: who is told of a case assigned, a comment, a task and a deadline at
risk; following; each person's settings; marking read; tenancy; mail through a real SMTP server in
the person's language."""

from __future__ import annotations

import email
from datetime import timedelta
from email.header import decode_header, make_header

import pytest
from sqlalchemy import select

from commonwatch.access.models import User
from commonwatch.clock import FrozenClock
from commonwatch.config import Settings
from commonwatch.db import make_sessionmaker, session_scope
from commonwatch.errors import Invalid, NotFound
from commonwatch.i18n import use_language
from commonwatch.inbox import mail as inbox_mail
from commonwatch.inbox import services as inbox
from commonwatch.inbox.models import Follow, Notification
from commonwatch.incidents import alerts
from commonwatch.incidents import services as svc
from commonwatch.incidents.jobs import deliver_alerts
from commonwatch.notify.config import NotifySettings
from commonwatch.notify.runner import Notifier
from commonwatch.web.templating import make_environment
from tests.conftest import START, build_world
from tests.incidents.conftest import principal, report
from tests.notify.conftest import Sink


@pytest.fixture
def env(any_engine):
    clock = FrozenClock(START)
    factory = make_sessionmaker(any_engine)
    with session_scope(factory, actor="test") as s:
        s.info["clock"] = clock
        world = build_world(s, clock)
    return factory, world, clock


@pytest.fixture
def s(env):
    factory, _world, clock = env
    with session_scope(factory, actor="test") as session:
        session.info["clock"] = clock
        yield session


def _mine(s, world, key):
    return [(n.kind, n.channel) for n in s.scalars(select(Notification).where(
        Notification.user_id == world.ids[f"user_{key}"]).order_by(Notification.id))]


def _case(s, world, clock, rules, **kw):
    return svc.file_incident(s, principal(s, world, "a"), report(discovered_at=clock.now().isoformat(), **kw),
                             now=clock.now(), rules=rules)


def test_assigning_a_case_tells_the_new_owner_who_then_follows_it(env, s, rules):
    _f, world, clock = env
    coordinator = principal(s, world, "coordinator")
    incident = _case(s, world, clock, rules)
    svc.assign(s, coordinator, incident, world.ids["user_analyst"], now=clock.now())
    assert _mine(s, world, "analyst") == [("assigned", "both")]
    assert _mine(s, world, "coordinator") == []  # the one who assigned is not told
    analyst = principal(s, world, "analyst")
    assert inbox.is_following(s, analyst, incident.id)
    row = s.scalars(inbox.in_app(analyst)).one()
    text = inbox.text(row, "Asia/Shanghai")
    assert incident.ref in text and "coordinator user" in text and "Database leak" in text
    with use_language("zh-CN"):
        assert "分配给您" in inbox.text(row, "Asia/Shanghai")
    # assigning a case to oneself tells nobody, but one follows it
    svc.assign(s, coordinator, incident, world.ids["user_coordinator"], now=clock.now())
    assert _mine(s, world, "coordinator") == []
    assert inbox.is_following(s, coordinator, incident.id)


def test_comments_reach_followers_but_not_the_author_and_internal_ones_only_staff(env, s, rules):
    _f, world, clock = env
    coordinator, analyst, a = (principal(s, world, k) for k in ("coordinator", "analyst", "a"))
    incident = _case(s, world, clock, rules)
    svc.assign(s, coordinator, incident, world.ids["user_analyst"], now=clock.now())
    inbox.follow(s, a.user_id, incident.id, reason="explicit", now=clock.now())
    svc.add_comment(s, coordinator, incident, "Internal: looks like the CRM export job", "internal", now=clock.now())
    assert [k for k, _c in _mine(s, world, "analyst")] == ["assigned", "comment"]
    assert _mine(s, world, "a") == []  # an internal comment never reaches the constituent
    assert _mine(s, world, "coordinator") == []  # its author; now a follower
    svc.add_comment(s, coordinator, incident, "Please send the access logs", "shared", now=clock.now())
    assert [k for k, _c in _mine(s, world, "a")] == ["comment"]
    svc.add_comment(s, a, incident, "Logs attached", "shared", now=clock.now())
    assert [k for k, _c in _mine(s, world, "coordinator")] == ["comment"]  # commenters follow
    assert [k for k, _c in _mine(s, world, "a")] == ["comment"]  # not told of its own
    row = s.scalars(inbox.in_app(coordinator)).one()
    assert "a user commented on" in inbox.text(row, "UTC") and "Logs attached" in inbox.text(row, "UTC")
    assert [k for k, _c in _mine(s, world, "analyst")] == ["assigned", "comment", "comment", "comment"]
    # unfollow: no more comments
    assert inbox.unfollow(s, analyst, incident.id)
    svc.add_comment(s, a, incident, "One more log", "shared", now=clock.now())
    assert [k for k, _c in _mine(s, world, "analyst")] == ["assigned", "comment", "comment", "comment"]


def test_a_constituent_is_told_only_of_its_own_organisations_things(env, s, rules):
    _f, world, clock = env
    coordinator, b = principal(s, world, "coordinator"), principal(s, world, "b")
    incident = _case(s, world, clock, rules)
    # B following A's case (it cannot through the pages, which answer 404; forced here) hears nothing
    inbox.follow(s, b.user_id, incident.id, reason="explicit", now=clock.now())
    svc.add_comment(s, coordinator, incident, "Shared with the reporter", "shared", now=clock.now())
    assert _mine(s, world, "b") == []
    assert _mine(s, world, "a") == []  # A's person does not follow it
    # a task sent to B about A's case reaches B's people, and only them
    svc.create_task(s, coordinator, incident, {"org_id": world.org_b, "title": "Check your upstream"},
                    now=clock.now())
    assert _mine(s, world, "b") == [("task", "both")]
    assert _mine(s, world, "a") == [] and _mine(s, world, "partner") == []
    with pytest.raises(NotFound):  # the pages' door: B cannot follow (or read) A's case
        svc.get_incident(s, b, incident.id)
    # nobody marks or sees another person's notification
    note = s.scalars(select(Notification).where(Notification.user_id == b.user_id)).one()
    assert inbox.mark_read(s, principal(s, world, "a"), [note.id], clock.now()) == 0
    assert inbox.unread_count(s, principal(s, world, "a")) == 0
    assert inbox.unread_count(s, b) == 1
    assert inbox.mark_read(s, b, [note.id], clock.now()) == 1
    assert inbox.unread_count(s, b) == 0


def test_a_deadline_at_risk_reaches_owner_and_coordinators_as_each_chose(env, s, rules, tmp_path):
    _f, world, clock = env
    coordinator = principal(s, world, "coordinator")
    incident = _case(s, world, clock, rules, impact={"pi_persons_leaked": 1_000_000})
    svc.assign(s, coordinator, incident, world.ids["user_analyst"], now=clock.now())
    inbox.set_preferences(s, coordinator, {"clock": "none"})
    inbox.set_preferences(s, principal(s, world, "analyst"), {"clock": "app"})
    clock.advance(timedelta(hours=3, minutes=1))
    assert alerts.check_clocks(s, clock.now(), rules).raised == 2
    assert _mine(s, world, "coordinator") == []
    assert _mine(s, world, "analyst")[-1] == ("clock", "app")
    row = s.scalars(inbox.in_app(principal(s, world, "analyst")).where(Notification.kind == "clock")).one()
    assert "is at risk" in inbox.text(row, "Asia/Shanghai")
    # the deadline alerts' own mail respects the choice: neither wants it by mail
    notifier = Notifier(settings=Settings(data_dir=tmp_path), sessions=None, clock=clock, env=None,
                        nset=NotifySettings())
    assert deliver_alerts(s, notifier, rules) == 0
    assert {a.delivered_via for a in s.scalars(select(alerts.IncidentAlert))} == {"none: not wanted by mail"}


def test_settings_are_checked_and_kept_per_person(env, s):
    _f, world, _clock = env
    a = principal(s, world, "a")
    assert inbox.preferences(s, a) == {"assigned": "both", "task": "both", "comment": "app", "clock": "both"}
    with pytest.raises(Invalid) as exc:
        inbox.set_preferences(s, a, {"task": "pigeon"})
    assert exc.value.errors[0].field == "task"
    assert inbox.set_preferences(s, a, {"task": "mail", "comment": "none"})["task"] == "mail"
    assert inbox.preferences(s, principal(s, world, "b"))["task"] == "both"  # B's are its own


def test_mail_reaches_the_person_in_their_language_through_smtp(env, s, rules, tmp_path):
    _f, world, clock = env
    sink = Sink()
    sink.start()
    try:
        coordinator, b = principal(s, world, "coordinator"), principal(s, world, "b")
        s.get(User, b.user_id).language = "zh-CN"
        incident = _case(s, world, clock, rules)
        inbox.set_preferences(s, principal(s, world, "analyst"), {"assigned": "app"})
        svc.assign(s, coordinator, incident, world.ids["user_analyst"], now=clock.now())  # in the app only
        svc.create_task(s, coordinator, incident, {"org_id": world.org_b, "title": "检查上游"}, now=clock.now())
        inbox.set_preferences(s, principal(s, world, "a"), {"comment": "mail"})
        inbox.follow(s, world.ids["user_a"], incident.id, reason="explicit", now=clock.now())
        svc.add_comment(s, coordinator, incident, "Please send the logs", "shared", now=clock.now())
        s.commit()
        settings = Settings(data_dir=tmp_path / "data", smtp_host="127.0.0.1", smtp_port=sink.port,
                            smtp_security="none", mail_from="cert@centre.example", base_url="https://cw.example",
                            timezone="Asia/Shanghai", gnupg_home=tmp_path / "no-gpg")
        notifier = Notifier(settings=settings, sessions=None, clock=clock,
                            env=make_environment(settings.data_dir, settings.timezone), nset=NotifySettings())
        assert inbox_mail.deliver(s, notifier) == 2
        if notifier.transport is not None:
            notifier.transport.close()
        got = {m.recipients[0]: email.message_from_bytes(m.data) for m in sink.messages}
        assert set(got) == {"b@test.example", "a@test.example"}
        zh = str(make_header(decode_header(got["b@test.example"]["Subject"])))
        assert "检查上游" in zh and "任务" in zh
        body_a = got["a@test.example"].get_payload(decode=True) or b""
        if got["a@test.example"].is_multipart():
            body_a = got["a@test.example"].get_payload(0).get_payload(decode=True)
        assert b"Please send the logs" in body_a and b"https://cw.example/incidents/" in body_a
        assert inbox_mail.pending(s) == []  # once
        assert inbox_mail.deliver(s, notifier) == 0
        # mail-only is not in the app
        assert inbox.unread_count(s, principal(s, world, "a")) == 0
        assert s.scalar(select(Follow.id).where(Follow.user_id == world.ids["user_analyst"])) is not None
    finally:
        sink.stop()
