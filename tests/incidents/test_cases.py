"""Case workflows on both engines: filing, re-grading and overrides (audited), status, tasks across
organisations, comments, events, merging, sharing with partners, deadline alerts, attachments."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from commonwatch.access.models import AuditEntry
from commonwatch.clock import FrozenClock
from commonwatch.db import make_sessionmaker, session_scope
from commonwatch.errors import Forbidden, Invalid, NotFound
from commonwatch.incidents import alerts, sharing
from commonwatch.incidents import services as svc
from commonwatch.incidents.attachments import AttachmentRefused, blob_path
from commonwatch.incidents.models import Incident, IncidentEvent, TimelineEntry
from tests.conftest import START, build_world
from tests.incidents.conftest import insert_events, principal, report


@pytest.fixture
def env(any_engine):
    clock = FrozenClock(START)
    factory = make_sessionmaker(any_engine)
    with session_scope(factory, actor="test") as s:
        s.info["clock"] = clock
        world = build_world(s, clock)
    return factory, world, clock


def _session(factory, clock):
    scope = session_scope(factory, actor="test")
    s = scope.__enter__()
    s.info["clock"] = clock
    return scope, s


class Sess:
    def __init__(self, env):
        self.factory, self.world, self.clock = env

    def __enter__(self):
        self._scope, s = _session(self.factory, self.clock)
        return s

    def __exit__(self, *exc):
        return self._scope.__exit__(*exc)


def _kinds(s, incident):
    return [e.kind for e in s.scalars(select(TimelineEntry).where(TimelineEntry.incident_id == incident.id)
                                      .order_by(TimelineEntry.id))]


def test_filing_regrading_and_override_are_recorded_and_audited(env, rules):
    _f, world, clock = env
    with Sess(env) as s:
        a = principal(s, world, "a")
        incident = svc.file_incident(s, a, report(impact={"pi_persons_leaked": 500_000}), now=clock.now(),
                                     rules=rules)
        assert incident.ref.startswith("INC-2026-") and incident.level == "一般" and not incident.reportable
        assert incident.route == "other" and incident.route_basis == "organisation kind network-operator"
        assert incident.first_report_due is None
        svc.update_report(s, a, incident, {"impact": {"pi_persons_leaked": 1_200_000}}, now=clock.now(), rules=rules)
        assert incident.level == "较大" and incident.reportable
        assert incident.first_report_due == incident.discovered_at + timedelta(hours=4)
        regrade = s.scalars(select(AuditEntry).where(AuditEntry.action == "incident.regrade")).all()
        assert len(regrade) == 1 and "pi_persons_leaked: 500000 → 1200000" in regrade[0].after
        svc.update_report(s, a, incident, {"discovered_at": "2026-11-25T08:00:00+08:00"}, now=clock.now(),
                          rules=rules, reason="Logs show the alert was seen at 08:00")
        assert incident.first_report_due.isoformat() == "2026-11-25T04:00:00+00:00"
        entries = s.scalars(select(TimelineEntry).where(TimelineEntry.kind == "regraded")).all()
        assert entries[-1].data["reason"] == "Logs show the alert was seen at 08:00"

        coordinator = principal(s, world, "coordinator")
        with pytest.raises(Forbidden):
            svc.override_level(s, a, incident, "重大", "we think it is worse", now=clock.now(), rules=rules)
        with pytest.raises(Invalid) as err:
            svc.override_level(s, coordinator, incident, "重大", "  ", now=clock.now(), rules=rules)
        assert "reason" in err.value.by_field()
        svc.override_level(s, coordinator, incident, "重大", "Sensitive health data among the records",
                           now=clock.now(), rules=rules)
        assert incident.level == "重大" and incident.computed_level == "较大"
        assert incident.escalation_due is not None
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "incident.level_override")).one()
        assert "Sensitive health data" in audit.after and coordinator.email in audit.actor
        # Facts that change keep the override; removing it returns to the computed level.
        svc.update_report(s, a, incident, {"impact": {"pi_persons_leaked": 1_300_000}}, now=clock.now(), rules=rules)
        assert incident.level == "重大"
        svc.override_level(s, coordinator, incident, None, "Health data turned out to be test data",
                           now=clock.now(), rules=rules)
        assert incident.level == "较大" and incident.escalation_due is None
        assert _kinds(s, incident)[:2] == ["created", "graded"]


def test_status_workflow_and_the_summary_clock(env, rules):
    _f, world, clock = env
    with Sess(env) as s:
        coordinator = principal(s, world, "coordinator")
        incident = svc.file_incident(s, principal(s, world, "a"), report(impact={"pi_persons_leaked": 2_000_000}),
                                     now=clock.now(), rules=rules)
        with pytest.raises(Invalid, match="cannot go from"):
            svc.change_status(s, coordinator, incident, "resolved", now=clock.now(), rules=rules)
        with pytest.raises(Forbidden):
            svc.change_status(s, principal(s, world, "a"), incident, "triaged", now=clock.now(), rules=rules)
        svc.assign(s, coordinator, incident, world.ids["user_analyst"], now=clock.now())
        assert incident.status == "triaged" and incident.owner_id == world.ids["user_analyst"]
        with pytest.raises(Invalid, match="staff"):
            svc.assign(s, coordinator, incident, world.ids["user_a"], now=clock.now())
        for to in ("in_progress", "contained"):
            svc.change_status(s, coordinator, incident, to, now=clock.now(), rules=rules)
        clock.advance(timedelta(days=2))
        svc.change_status(s, coordinator, incident, "resolved", now=clock.now(), rules=rules)
        assert incident.handling_closed_at == clock.now()
        assert incident.summary_due == clock.now() + timedelta(days=30)
        with pytest.raises(Invalid, match="before the incident was discovered"):
            svc.record_report(s, coordinator, incident, "summary", "2026-01-01T00:00+08:00", now=clock.now(),
                              rules=rules)
        svc.record_report(s, coordinator, incident, "summary", None, now=clock.now(), rules=rules, channel="e-mail")
        assert incident.summary_report_at == clock.now()
        svc.change_status(s, coordinator, incident, "closed", now=clock.now(), rules=rules)
        svc.change_status(s, coordinator, incident, "reopened", now=clock.now(), rules=rules)
        assert incident.handling_closed_at is None and incident.summary_due is None


BAD_REPORTS = [
    ({"handling_closed_at": "2026-11-25T08:00:00+08:00"}, {"handling_closed_at"}),
    ({"impact": {"pi_persons_leaked": -1}}, {"impact.pi_persons_leaked"}),
    ({"category": "XX"}, {"category"}),
    ({"subcategory": "MPRANS"}, {"subcategory"}),
    ({"occurred_at": "2026-11-25T10:00:00+08:00"}, {"occurred_at"}),
    ({"discovered_at": "2026-11-26T09:30:00+08:00"}, {"discovered_at"}),
    ({"discovered_at": "2026-11-25T09:30:00"}, {"discovered_at"}),
    ({"title": "", "effects": "  "}, {"title", "effects"}),
    ({"category": "XX", "impact": {"cii_full_outage_minutes": -3}, "route": "nowhere"},
     {"category", "impact.cii_full_outage_minutes", "route"}),
    ({"discovered_at": "2026-11-25T09:30:00+08:00", "occurred_at": "2026-11-25T09:00:00+08:00",
      "handling_closed_at": "2026-11-25T09:45:00+08:00", "impact": {"pi_persons_leaked": 0}}, set()),
]


def test_malformed_or_contradictory_reports_are_refused_naming_each_field(env, rules):
    _f, world, clock = env
    with Sess(env) as s:
        a = principal(s, world, "a")
        for changes, fields in BAD_REPORTS:
            if not fields:  # the control case: a consistent report is accepted
                assert svc.file_incident(s, a, report(**changes), now=clock.now(), rules=rules).id
                continue
            with pytest.raises(Invalid) as err:
                svc.file_incident(s, a, report(**changes), now=clock.now(), rules=rules)
            assert set(err.value.by_field()) == fields, (changes, err.value.by_field())
        assert len(s.scalars(select(Incident.id)).all()) == 1  # nothing of the refused reports was written


def test_a_constituent_reports_only_for_its_own_organisations(env, rules):
    _f, world, clock = env
    with Sess(env) as s:
        a = principal(s, world, "a")
        with pytest.raises(Invalid) as err:
            svc.file_incident(s, a, report(org_id=world.org_b), now=clock.now(), rules=rules)
        assert "org_id" in err.value.by_field()
        unit = svc.file_incident(s, a, report(org_id=world.org_a_unit), now=clock.now(), rules=rules)
        assert unit.org_id == world.org_a_unit
        grid = svc.file_incident(s, principal(s, world, "b"), report(), now=clock.now(), rules=rules)
        assert grid.route == "cii" and grid.involves_cii  # B is a CII operator in the registry
        with pytest.raises(NotFound):
            svc.get_incident(s, a, grid.id)
        with pytest.raises(NotFound):
            svc.get_incident(s, principal(s, world, "partner"), unit.id)


def test_tasks_comments_and_timeline_across_organisations(env, rules):
    _f, world, clock = env
    with Sess(env) as s:
        a, b = principal(s, world, "a"), principal(s, world, "b")
        coordinator = principal(s, world, "coordinator")
        incident = svc.file_incident(s, a, report(title="Alpha's own problem"), now=clock.now(), rules=rules)
        with pytest.raises(Invalid) as err:
            svc.create_task(s, coordinator, incident, {"org_id": world.org_b, "title": "x", "due_at":
                                                       "2020-01-01T00:00+00:00"}, now=clock.now())
        assert "due_at" in err.value.by_field()
        task = svc.create_task(s, coordinator, incident, {"org_id": world.org_b, "title": "Block 203.0.113.9",
                                                          "due_at": "2026-11-26T18:00+08:00"}, now=clock.now())
        # B sees the task addressed to it, not the case it belongs to.
        assert [t.id for t in svc.list_tasks(s, b)] == [task.id]
        with pytest.raises(NotFound):
            svc.get_incident(s, b, incident.id)
        assert svc.list_tasks(s, a) == []
        with pytest.raises(Invalid, match="say what was done"):
            svc.respond_task(s, b, task, "done", "", now=clock.now())
        svc.respond_task(s, b, task, "done", "Blocked at the border routers", now=clock.now())
        assert task.status == "done" and task.responded_at == clock.now()
        with pytest.raises(NotFound):
            svc.get_task(s, a, task.id)

        svc.add_comment(s, coordinator, incident, "Looks like the same actor as last month", "internal",
                        now=clock.now())
        svc.add_comment(s, coordinator, incident, "Please send the web server logs", "shared", now=clock.now())
        own = svc.add_comment(s, a, incident, "Logs attached", "internal", now=clock.now())
        assert own.visibility == "shared"  # the reporter's words are always visible to the reporter
        assert [c.body for c in svc.list_comments(s, a, incident)] == ["Please send the web server logs",
                                                                         "Logs attached"]
        assert len(svc.list_comments(s, coordinator, incident)) == 3
        reporter_view = {e.kind for e in svc.list_timeline(s, a, incident)}
        assert "task_created" not in reporter_view and "task_answered" not in reporter_view
        assert {"created", "graded", "comment"} <= reporter_view
        staff_view = {e.kind for e in svc.list_timeline(s, coordinator, incident)}
        assert {"task_created", "task_answered"} <= staff_view


def test_one_incident_from_many_events_and_merging_a_duplicate(env, rules):
    _f, world, clock = env
    with Sess(env) as s:
        coordinator = principal(s, world, "coordinator")
        ids = insert_events(s, world.org_a, 40, clock)
        with pytest.raises(Forbidden):
            svc.create_from_events(s, principal(s, world, "a"), ids, {}, now=clock.now(), rules=rules)
        with pytest.raises(Invalid, match="unknown event ids: 999999"):
            svc.create_from_events(s, coordinator, [*ids, 999999], {}, now=clock.now(), rules=rules)
        incident = svc.create_from_events(s, coordinator, ids, {}, now=clock.now(), rules=rules)
        assert incident.org_id == world.org_a and incident.opened_via == "events"
        assert (incident.category, incident.subcategory) == ("MP", "MPEVIR")
        assert (incident.rsit_class, incident.rsit_type) == ("malicious-code", "infected-system")
        assert incident.discovered_at == clock.now() - timedelta(hours=2, minutes=39)
        assert len(s.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident.id)).all()) == 40
        assert svc.link_events(s, coordinator, incident, ids[:5], now=clock.now()) == 0  # already linked

        other_ids = insert_events(s, world.org_b, 2, clock, start_ip=100)
        with pytest.raises(Invalid) as err:
            svc.create_from_events(s, coordinator, [ids[0], *other_ids], {}, now=clock.now(), rules=rules)
        assert "org_id" in err.value.by_field()

        earlier = svc.file_incident(s, principal(s, world, "a"), report(
            discovered_at=(clock.now() - timedelta(hours=3)).isoformat(), impact={"pi_persons_leaked": 1_000_000}),
            now=clock.now(), rules=rules)
        svc.link_events(s, coordinator, earlier, ids[:3] + other_ids[:1], now=clock.now())
        primary = svc.merge(s, coordinator, earlier, incident.id, now=clock.now(), rules=rules)
        assert primary.id == incident.id
        assert earlier.status == "closed" and earlier.merged_into_id == incident.id
        assert primary.discovered_at == earlier.discovered_at  # the clock started at the earlier discovery
        assert len(s.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident.id)).all()) == 41
        assert "merged_from" in _kinds(s, primary) and "merged_into" in _kinds(s, earlier)
        with pytest.raises(Invalid, match="already merged"):
            svc.merge(s, coordinator, earlier, incident.id, now=clock.now(), rules=rules)


def test_sharing_redacts_by_tlp_and_partner_updates_come_back(env, rules):
    _f, world, clock = env
    with Sess(env) as s:
        coordinator = principal(s, world, "coordinator")
        partner = principal(s, world, "partner")
        incident = svc.file_incident(s, principal(s, world, "a"), report(leads="C2 at 192.0.2.7"), now=clock.now(),
                                     rules=rules)
        insert_events(s, world.org_a, 2, clock)
        svc.link_events(s, coordinator, incident, [1, 2], now=clock.now())
        clear = sharing.share(s, coordinator, incident, world.partner, "TLP:CLEAR", None, now=clock.now(), rules=rules)
        assert "effects" not in clear.snapshot and "organisation" not in clear.snapshot
        assert clear.snapshot["level"] == {"key": "一般", "en": "General"}
        amber = sharing.share(s, coordinator, incident, world.partner, "amber", ["ref", "leads", "indicators"],
                              now=clock.now(), rules=rules)
        assert amber.id == clear.id  # sharing again refreshes the partner's copy
        assert set(amber.snapshot) == {"ref", "leads", "indicators"} and "198.51.100.10" in amber.snapshot["indicators"]
        with pytest.raises(Invalid, match="does not allow"):
            sharing.share(s, coordinator, incident, world.partner, "TLP:GREEN", ["organisation"], now=clock.now(),
                          rules=rules)
        with pytest.raises(Invalid) as err:
            sharing.share(s, coordinator, incident, world.org_b, "TLP:RED", None, now=clock.now(), rules=rules)
        assert "partner_org_id" in err.value.by_field()
        red = sharing.share(s, coordinator, incident, world.partner, "TLP:RED", None, now=clock.now(), rules=rules)
        assert red.snapshot["organisation"] == "Alpha Telecom"

        assert [x.id for x in sharing.shares_for(s, partner)] == [red.id]
        assert sharing.shares_for(s, principal(s, world, "a")) == []
        with pytest.raises(Forbidden):
            sharing.partner_update(s, coordinator, red, "not a partner", now=clock.now())
        sharing.partner_update(s, partner, red, "Hosting provider in DE notified", now=clock.now())
        entry = [e for e in svc.list_timeline(s, coordinator, incident) if e.kind == "partner_update"]
        assert entry and entry[0].data["body"] == "Hosting provider in DE notified"
        assert [c.body for c in sharing.partner_updates(s, partner, red)] == ["Hosting provider in DE notified"]
        assert svc.list_comments(s, principal(s, world, "a"), incident) == []  # partner words stay with the centre


def test_deadline_alerts_reach_owner_and_coordinators_once(env, rules):
    _f, world, clock = env
    with Sess(env) as s:
        coordinator = principal(s, world, "coordinator")
        incident = svc.file_incident(s, principal(s, world, "a"), report(
            discovered_at=clock.now().isoformat(), impact={"pi_persons_leaked": 1_000_000}), now=clock.now(),
            rules=rules)
        svc.assign(s, coordinator, incident, world.ids["user_analyst"], now=clock.now())
        assert alerts.check_clocks(s, clock.now(), rules).raised == 0
        clock.advance(timedelta(hours=3, minutes=1))  # 59 minutes left of 4 hours
        result = alerts.check_clocks(s, clock.now(), rules)
        assert result.raised == 2  # the owner (analyst) and the coordinator
        assert alerts.check_clocks(s, clock.now(), rules).raised == 0  # once per state
        clock.advance(timedelta(hours=1))
        assert alerts.check_clocks(s, clock.now(), rules).raised == 2
        states = sorted((a.state, a.user_id) for a in alerts.pending(s))
        assert states == sorted([("at_risk", world.ids["user_analyst"]), ("at_risk", world.ids["user_coordinator"]),
                                 ("missed", world.ids["user_analyst"]), ("missed", world.ids["user_coordinator"])])
        mine = alerts.unread_for(s, coordinator)
        assert len(mine) == 2 and all(a.user_id == world.ids["user_coordinator"] for a in mine)
        assert "INC-2026-" in alerts.message(s, mine[0], rules, "Asia/Shanghai")
        alerts.mark_delivered(s, mine[0].id, clock.now(), "email")
        assert len(alerts.pending(s)) == 3
        assert alerts.unread_for(s, principal(s, world, "a")) == []
        assert [e.data["state"] for e in svc.list_timeline(s, coordinator, incident)
                if e.kind == "clock_alert"] == ["at_risk", "missed"]
        svc.record_report(s, principal(s, world, "a"), incident, "first_report", None, now=clock.now(), rules=rules)
        clock.advance(timedelta(hours=1))
        assert alerts.check_clocks(s, clock.now(), rules).raised == 0


def test_attachments_are_type_checked_size_limited_and_stored_once(env, rules, tmp_path):
    _f, world, clock = env
    with Sess(env) as s:
        a = principal(s, world, "a")
        incident = svc.file_incident(s, a, report(), now=clock.now(), rules=rules)
        kw = {"now": clock.now(), "data_dir": tmp_path, "max_bytes": 1000}
        ok = svc.add_attachment(s, a, incident, "../../etc/fw.log", "拒绝 198.51.100.7\n".encode("gb18030"), **kw)
        assert ok.filename == "fw.log" and ok.content_type == "text/plain"
        path = blob_path(svc.attachment_root(tmp_path), ok.sha256)
        assert path.read_bytes().decode("gb18030").startswith("拒绝")
        assert ok.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        again = svc.add_attachment(s, a, incident, "copy.txt", path.read_bytes(), **kw)
        assert again.sha256 == ok.sha256 and len(list(path.parent.iterdir())) == 1
        refused = [
            ("big.txt", b"x" * 1001, "larger than the limit"),
            ("tool.exe", b"MZ\x90\x00" + b"\x00" * 50, "not accepted"),
            ("report.pdf", b"MZ\x90\x00" + b"\x00" * 50, "not of an accepted type"),
            ("photo.png", b"%PDF-1.7\n", "the content is pdf"),
            ("page.txt", b"<html><script>alert(1)</script>", "not of an accepted type"),
            ("run.txt", b"#!/bin/sh\nrm -rf /\n", "not of an accepted type"),
            ("empty.txt", b"", "is empty"),
        ]
        for name, data, reason in refused:
            with pytest.raises(AttachmentRefused) as err:
                svc.add_attachment(s, a, incident, name, data, **kw)
            assert reason in err.value.reason, name
        assert len(svc.list_attachments(s, a, incident)) == 2
        assert sum(1 for e in svc.list_timeline(s, a, incident) if e.kind == "attachment_refused") == len(refused)
        png = svc.add_attachment(s, a, incident, "screen.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, **kw)
        assert png.content_type == "image/png"


def test_a_route_chosen_by_hand_survives_later_updates(env, rules):
    _f, world, clock = env
    with Sess(env) as s:
        coordinator, a = principal(s, world, "coordinator"), principal(s, world, "a")
        incident = svc.file_incident(s, coordinator, report(org_id=world.org_a, route="central_state_organ",
                                                            impact={"pi_persons_leaked": 1_000_000}),
                                     now=clock.now(), rules=rules)
        assert incident.route == "central_state_organ" and incident.route_basis == "chosen on the incident"
        assert incident.first_report_due == incident.discovered_at + timedelta(hours=2)
        svc.update_report(s, a, incident, {"involves_cii": False, "route": "", "cause": "weak password"},
                          now=clock.now(), rules=rules)
        assert incident.route == "central_state_organ"
        svc.update_report(s, a, incident, {"involves_cii": True}, now=clock.now(), rules=rules)
        assert incident.route == "cii" and incident.first_report_due == incident.discovered_at + timedelta(hours=1)
        assert "route: central_state_organ → cii" in [e for e in svc.list_timeline(s, coordinator, incident)
                                                      if e.kind == "regraded"][-1].data["reason"]
