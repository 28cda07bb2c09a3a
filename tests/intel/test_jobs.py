"""Events -> indicators by rule, and sightings of live indicators in new events, past a watermark,
on SQLite and PostgreSQL. Events are stored through the configured event store, as the pipeline stores them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from commonwatch.clock import FrozenClock
from commonwatch.config import Settings
from commonwatch.db import make_sessionmaker, session_scope
from commonwatch.intel import jobs, services
from commonwatch.intel.models import Indicator, IntelObject, IntelShare, Sighting
from commonwatch.net import ip_key
from commonwatch.rules import RulesError
from tests.conftest import START
from tests.events.eventdata import insert_events
from tests.intel.conftest import indicator_obj

_n = 0


def event(clock, **kw) -> dict:
    global _n
    _n += 1
    ip = kw.pop("ip", None)
    row = {"event_key": f"k{_n}", "time_source": clock.now() - timedelta(hours=1), "time_observation": clock.now(),
           "feed_name": "feed-a", "classification_taxonomy": "malicious-code", "classification_type": "infected-system",
           "severity": "medium", "tlp": "AMBER", "source_ip": ip, "source_ip_bin": ip_key(ip) if ip else None,
           "constituent_cii": False}
    row.update(kw)
    return row


@pytest.fixture
def env(any_engine, tmp_path):
    from commonwatch.constituency import services as registry

    sm = make_sessionmaker(any_engine)
    clock = FrozenClock(START)
    settings = Settings(data_dir=tmp_path / "data", log_format="text")
    with session_scope(sm, actor="test") as s:
        org = registry.create_org(s, {"name": "Org X", "kind": "network-operator"}).id
    return sm, clock, settings, org


def test_promotion_and_sightings(env):
    sm, clock, settings, org = env
    with session_scope(sm, actor="test") as s:
        live = indicator_obj("203.0.113.5", "GREEN")
        cidr = indicator_obj("198.51.100.0/24", "AMBER")
        dom = indicator_obj("bad.example", "RED")
        expired = indicator_obj("192.0.2.99", "GREEN", valid_until="2026-01-01T00:00:00Z")
        services.store_objects(s, [live, cidr, dom, expired], services.Origin("t", None, None, may_update_any=True),
                               clock.now())
        services.set_shares(s, dom["id"], [], [])
        insert_events(s, [
            # C2 seen by two feeds -> promoted; by one untrusted feed -> not
            event(clock, ip="192.0.2.10", classification_type="c2-server", feed_name="feed-a", org_id=org),
            event(clock, ip="192.0.2.10", classification_type="c2-server", feed_name="feed-b", tlp="GREEN"),
            event(clock, ip="192.0.2.11", classification_type="c2-server", feed_name="feed-a"),
            event(clock, ip="192.0.2.12", classification_type="c2-server", feed_name="abusech-feodotracker",
                  severity="low"),  # below the rule's min_severity
            event(clock, ip="192.0.2.13", classification_type="c2-server", feed_name="abusech-feodotracker",
                  malware_name="emotet"),
            event(clock, classification_type="malware-distribution", source_url="http://x.example/a.exe"),
            # sightings: exact, inside the CIDR, destination, domain (case), expired indicator
            event(clock, ip="203.0.113.5", org_id=org, tlp="AMBER"),
            event(clock, ip="203.0.113.5", org_id=org),
            event(clock, ip="198.51.100.77", tlp="AMBER+STRICT"),
            event(clock, ip="192.0.2.200", destination_ip="203.0.113.5"),
            event(clock, source_fqdn="Bad.Example.", org_id=org),
            event(clock, ip="192.0.2.99"),
        ])
    result = jobs.process_events(sm, settings, clock, chunk=5)
    assert result.events == 12 and result.chunks == [5, 5, 2]
    with session_scope(sm) as s:
        promoted = {i.value: i for i in s.scalars(select(Indicator).where(Indicator.source.like("rule:%")))}
        assert set(promoted) == {"192.0.2.10", "192.0.2.13", "http://x.example/a.exe"}
        assert promoted["192.0.2.13"].labels == ["rule:c2-server", "malware:emotet"]
        sightings = {(s.get(Indicator, x.indicator_id).value, x.org_key): x for x in s.scalars(select(Sighting))}
    assert sightings[("203.0.113.5", org)].count == 2
    assert sightings[("203.0.113.5", 0)].count == 1  # the destination match, outside the constituency
    assert sightings[("198.51.100.0/24", 0)].count == 1 and sightings[("198.51.100.0/24", 0)].tlp == "AMBER+STRICT"
    assert sightings[("bad.example", org)].tlp == "RED"
    assert ("192.0.2.99", 0) not in sightings
    again = jobs.process_events(sm, settings, clock)
    assert again.events == 0 and again.watermark == result.watermark
    with session_scope(sm, actor="test") as s:
        insert_events(s, [event(clock, ip="203.0.113.5", org_id=org)])
    clock.advance(timedelta(minutes=5))
    jobs.process_events(sm, settings, clock)
    with session_scope(sm) as s:
        sg = s.scalar(select(Sighting).join(Indicator).where(Indicator.value == "203.0.113.5", Sighting.org_key == org))
        assert sg.count == 3
        versions = s.scalars(select(IntelObject).where(IntelObject.stix_id == sg.stix_id)).all()
        assert len(versions) == 2 and sum(v.latest for v in versions) == 1
        assert s.scalar(select(IntelShare.org_id).where(IntelShare.stix_id == sg.stix_id)) == org
        ind = s.scalar(select(Indicator).where(Indicator.value == "203.0.113.5"))
        assert ind.sighting_count == 4


def test_two_feeds_in_one_run_confirm_a_c2(env):
    sm, clock, settings, org = env
    with session_scope(sm, actor="test") as s:
        insert_events(s, [
            event(clock, ip="192.0.2.10", classification_type="c2-server", feed_name="feed-a", org_id=org),
            event(clock, ip="192.0.2.10", classification_type="c2-server", feed_name="feed-b", tlp="GREEN")])
    assert jobs.process_events(sm, settings, clock).promoted == 1
    with session_scope(sm) as s:
        ind = s.scalar(select(Indicator).where(Indicator.value == "192.0.2.10"))
        assert ind.tlp == "AMBER" and ind.kill_chain_phases[0]["phase_name"] == "command-and-control"
        assert s.scalar(select(IntelShare.org_id).where(IntelShare.stix_id == ind.stix_id)) == org
        insert_events(s, [event(clock, ip="192.0.2.10", classification_type="c2-server",
                                        feed_name="feed-c"),
                                  event(clock, ip="192.0.2.10", classification_type="c2-server",
                                        feed_name="feed-d")])
    assert jobs.process_events(sm, settings, clock).promoted == 0  # never twice


def test_malformed_rules_are_refused(tmp_path):
    with pytest.raises(RulesError, match="rule 1 .*lacks"):
        jobs.parse_promotion_rules({"rules": [{"id": "x"}]}, "f.yaml")
    rule = {"id": "x", "en": "x", "zh": "x", "citation": {"en": "c"}, "status": "verified", "types": ["c2-server"],
            "value": "source.nowhere"}
    with pytest.raises(RulesError, match="value must be one of"):
        jobs.parse_promotion_rules({"rules": [rule]}, "f.yaml")
    with pytest.raises(RulesError, match="tlp"):
        jobs.parse_promotion_rules({"rules": [{**rule, "value": "source.ip", "tlp": "BLUE"}]}, "f.yaml")
    assert len(jobs.promotion_rules(None)) == 4
