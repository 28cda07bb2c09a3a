"""Outbound exchange: an incident's events about hosts abroad become IODEF v2 JSON / XARF documents
for the partner CERT of each country, and each is recorded on the incident's timeline; the documents
read back with the inbound parsers."""

from __future__ import annotations

from datetime import timedelta

from commonwatch.access import services as access
from commonwatch.access.models import User
from commonwatch.cooperation.reports import parse_iodef_json, parse_xarf
from commonwatch.db import session_scope
from commonwatch.incidents import services as svc
from commonwatch.incidents.rules import load_incident_rules


def _incident(app, world, clock) -> int:
    from tests.events.eventdata import insert_events, stored_ids

    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        rows = [{"event_key": f"coop-{i}", "time_source": clock.now() - timedelta(hours=3), "feed_name": "demo",
                 "time_observation": clock.now(), "source_ip": f"198.51.100.{10 + i}", "source_cc": cc,
                 "classification_taxonomy": "malicious-code", "classification_type": "infected-system",
                 "org_id": world.org_a, "created_at": clock.now()} for i, cc in enumerate(["DE", "DE", "FR", "CN"])]
        insert_events(s, rows)
        by_key = stored_ids(s, rows)
        ids = [by_key[r["event_key"]] for r in rows]
        coordinator = access.principal_for(s, s.get(User, world.ids["user_coordinator"]))
        incident = svc.create_from_events(s, coordinator, ids, {}, now=clock.now(), rules=load_incident_rules(None))
        return incident.id


def test_exchange_renders_per_partner_country_and_keeps_the_thread(app, client, world, clock):
    iid = _incident(app, world, clock)
    resp = client.post(f"/api/v1/cooperation/incidents/{iid}/exchange?format=iodef", headers=world.auth("coordinator"))
    assert resp.status_code == 200, resp.text
    items = {i["country"]: i for i in resp.json()["items"]}
    assert set(items) == {"DE", "FR"}  # CN is not abroad
    assert items["DE"]["partner_org_id"] == world.partner and items["DE"]["events"] == 2
    assert items["FR"]["document"] is None and "no partner CERT in FR" in items["FR"]["reason"]
    parsed = parse_iodef_json(items["DE"]["document"])
    assert sorted(r["source.ip"] for r in parsed.records) == ["198.51.100.10", "198.51.100.11"]
    xarf = client.post(f"/api/v1/cooperation/incidents/{iid}/exchange?format=xarf", headers=world.auth("coordinator"))
    docs = {i["country"]: i for i in xarf.json()["items"]}["DE"]["document"]
    assert len(docs) == 2 and parse_xarf(docs).records[0]["classification.type"] == "infected-system"
    timeline = client.get(f"/api/v1/incidents/{iid}/timeline", headers=world.auth("coordinator")).json()
    exchanges = [e for e in timeline if e["kind"] == "partner_exchange"]
    assert [e["data"]["format"] for e in exchanges] == ["iodef", "xarf"]
    assert all(e["data"]["partner"] == "CERT Partner DE" and len(e["data"]["digest"]) == 64 for e in exchanges)
    bad = client.post(f"/api/v1/cooperation/incidents/{iid}/exchange?format=stix", headers=world.auth("coordinator"))
    assert bad.status_code == 422 and "format" in bad.text
    assert client.post(f"/api/v1/cooperation/incidents/{iid}/exchange", headers=world.auth("a")).status_code == 403


def test_exchange_reads_as_a_sentence_on_the_timeline_in_both_languages(app, client, world, clock):
    iid = _incident(app, world, clock)
    assert client.post(f"/api/v1/cooperation/incidents/{iid}/exchange?format=xarf",
                       headers=world.auth("coordinator")).status_code == 200
    en = client.get(f"/api/v1/incidents/{iid}/timeline", headers=world.auth("coordinator")).json()
    [entry] = [e for e in en if e["kind"] == "partner_exchange"]
    assert entry["text"] == "2 events sent to CERT Partner DE as X-ARF."
    zh = client.get(f"/api/v1/incidents/{iid}/timeline",
                    headers={**world.auth("coordinator"), "Accept-Language": "zh-CN"}).json()
    [entry] = [e for e in zh if e["kind"] == "partner_exchange"]
    assert entry["text"] == "已将 2 条事件以 X-ARF 格式发送给 CERT Partner DE。"
