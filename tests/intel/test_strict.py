"""Item 9 of issue 14: everything commonwatch emits as STIX 2.1 passes stix2-validator in strict mode
(UUIDv4 ids for everything but cyber-observables, indicators with name and description, commonwatch's
own properties under its STIX 2.1 extension, whose definition and JSON schema are published with the
objects), and objects stored by older versions are converted."""

from __future__ import annotations

import importlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import polars as pl
from pymisp import MISPEvent, MISPObject
from sqlalchemy import select
from stix2validator import ValidationOptions, validate_instance

from commonwatch.db import session_scope
from commonwatch.intel import exchange, jobs, services, stix
from commonwatch.intel.models import Indicator, IntelObject
from commonwatch.net import ip_key
from tests.intel.conftest import CENTRE, TAXII


def strict_errors(instance: dict) -> list[str]:
    """What stix2-validator says in strict mode (every SHOULD an error), checking commonwatch's
    extension against the JSON schema it ships."""
    options = ValidationOptions(version="2.1", strict=True, schema_dir=str(stix.SCHEMA_DIR), silent=True)
    result = validate_instance(instance, options)
    return [f"{instance.get('id')}: {e}" for e in result.errors]


def misp_event_sample() -> MISPEvent:
    """A MISP event as pymisp writes it: plain attributes with galaxy and plain tags, a whois object."""
    event = MISPEvent()
    event.uuid = str(uuid.uuid4())
    event.info = "Phishing wave against banks"
    event.add_tag("tlp:green")
    event.add_tag("campaign:bank-phish")
    a = event.add_attribute("ip-dst", "192.0.2.140", to_ids=True, category="Network activity")
    a.add_tag('misp-galaxy:malpedia="Emotet"')
    a.add_tag("kill-chain:command-and-control")
    event.add_attribute("url", "http://bank-login.example/verify", to_ids=True, comment="Landing page")
    whois = MISPObject("whois")
    whois.add_attribute("domain", value="bank-login.example")
    whois.add_attribute("registrar", value="Example Registrar Ltd")
    event.add_object(whois)
    file = MISPObject("file")
    file.add_attribute("filename", value="statement.pdf.exe")
    file.add_attribute("sha256", value="f" * 64)
    event.add_object(file)
    return event


def _events(rows: list[dict]) -> pl.DataFrame:
    cols = {c: [r.get(c) for r in rows] for c in jobs._EVENT_COLUMNS}
    return pl.DataFrame(cols, schema={"id": pl.Int64, "time_source": pl.Datetime("us", "UTC"), "feed_name": pl.String,
                                      "source_ip": pl.String, "source_ip_bin": pl.Binary, "source_fqdn": pl.String,
                                      "source_url": pl.String, "destination_ip": pl.String,
                                      "destination_fqdn": pl.String, "classification_type": pl.String,
                                      "malware_name": pl.String, "org_id": pl.Int64, "severity": pl.String,
                                      "tlp": pl.String})


def test_everything_served_passes_strict_validation(app, client, world, clock):
    staff = world.auth("analyst")
    # 1. indicators entered by people (one without a name or description), with malware and an actor
    made = client.post("/api/v1/indicators", headers=staff, json={
        "value": "198.51.100.0/24", "name": "Botnet range", "tlp": "AMBER", "malware": ["Mirai"],
        "threat_actors": ["Demo Actor"], "kill_chain_phases": ["command-and-control"]})
    bare = client.post("/api/v1/indicators", headers=staff, json={"value": "bare.example", "tlp": "GREEN"})
    assert made.status_code == 201 and bare.status_code == 201, (made.text, bare.text)
    # 2. MISP -> STIX, through the API
    imported = client.post("/api/v1/indicators/import?format=misp", headers=staff,
                           content=misp_event_sample().to_json()).json()
    assert imported["failed"] == 0 and imported["added"] >= 5, imported
    # 3. indicators promoted from events, and sightings of them
    now = clock.now()
    when = now - timedelta(hours=1)
    rows = [{"id": i + 1, "time_source": when, "feed_name": feed, "source_ip": "192.0.2.150",
             "source_ip_bin": ip_key("192.0.2.150"), "classification_type": "c2-server", "severity": "high",
             "tlp": "GREEN", "malware_name": "emotet", "org_id": world.org_a}
            for i, feed in enumerate(["feed-a", "feed-b"])]
    with session_scope(app.state.sessionmaker, actor="test") as s:
        centre_id = services.centre(s, app.state.settings)["id"]
        assert jobs.promote(s, _events(rows), jobs.promotion_rules(None), now, centre_id) == 1
        s.flush()
        events = _events(rows)
        agg = jobs.aggregate_sightings(events, jobs.match_events(events, jobs.live_indicators(s, now)))
        assert jobs.record_sightings(s, agg, now, centre_id) >= 1
        everything = [r.stix_id for r in s.scalars(select(IntelObject).where(IntelObject.latest.is_(True)))]
        collection = services.create_collection(s, "Everything", alias="everything", max_tlp="AMBER")
        services.publish(s, collection, everything, now)
        cid = collection.uuid
    # the TAXII collection's contents, object by object
    token = world.tokens["analyst"]
    served = client.get(f"/taxii2/api/collections/{cid}/objects/?limit=1000",
                        headers={"Authorization": f"Bearer {token}", "Accept": TAXII}).json()["objects"]
    kinds = {o["type"] for o in served}
    assert {"indicator", "malware", "threat-actor", "relationship", "sighting", "extension-definition",
            "identity"} <= kinds, kinds
    assert not [e for o in served for e in strict_errors(o)]
    assert not any(k.startswith("x_") for o in served for k in o)
    promoted = [o for o in served if o["type"] == "indicator" and "rule:c2-server" in o.get("labels", [])]
    assert promoted[0]["extensions"][stix.EXTENSION]["evidence"] == {
        "events": 2, "feeds": 2, "first_seen": stix.timestamp(when)}
    # the bundles: the export, one indicator's bundle
    exported = client.get("/api/v1/indicators/export?format=stix", headers=staff).json()
    assert not strict_errors(exported)
    assert stix.EXTENSION in {o["id"] for o in exported["objects"]}
    one = client.get(f"/api/v1/indicators/{made.json()['id']}/stix", headers=staff).json()
    assert not strict_errors(one)
    # the centre keeps one UUIDv4 identity
    ident = next(o for o in exported["objects"] if o["type"] == "identity" and o["id"] != stix.PROJECT_IDENTITY["id"])
    assert uuid.UUID(ident["id"].split("--")[1]).version == 4
    assert ident["id"] == centre_id


def test_misp_conversion_is_strictly_valid():
    objects, unmapped = exchange.stix_from_misp(misp_event_sample(), default_tlp="AMBER",
                                                now=datetime(2026, 12, 1, tzinfo=UTC))
    bundle = services.bundle_of(objects, CENTRE)
    assert not strict_errors(bundle)
    versions = {o["type"]: uuid.UUID(o["id"].split("--")[1]).version for o in bundle["objects"]}
    assert versions.pop("file") == 5 and set(versions.values()) == {4}  # UUIDv5 only for the observable
    assert [u["relation"] for u in unmapped] == ["registrar"]


def test_the_shipped_schema_catches_a_wrong_extension():
    obj = stix.with_extension({
        "type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}", "name": "n",
        "description": "d", "created": "2026-12-01T00:00:00.000Z", "modified": "2026-12-01T00:00:00.000Z",
        "pattern": "[ipv4-addr:value = '192.0.2.1']", "pattern_type": "stix", "valid_from": "2026-12-01T00:00:00Z",
        "indicator_types": ["malicious-activity"]}, evidence={"events": "many"})
    assert strict_errors(obj)  # the validator reads our schema: the test can fail
    assert json.loads(stix.EXTENSION_OBJECT["schema"]) == json.loads(
        (stix.SCHEMA_DIR / f"{stix.EXTENSION}.json").read_text())


LEGACY_PROMOTED = {
    "type": "indicator", "spec_version": "2.1", "id": "indicator--5b0b4a2e-6f43-4d0e-9a0c-2f7a6f5e4d11",
    "created": "2026-11-30T10:00:00.000Z", "modified": "2026-11-30T10:00:00.000Z",
    "name": "Confirmed command-and-control server: 192.0.2.160", "pattern": "[ipv4-addr:value = '192.0.2.160']",
    "pattern_type": "stix", "valid_from": "2026-11-30T10:00:00.000Z", "indicator_types": ["malicious-activity"],
    "labels": ["rule:c2-server"], "object_marking_refs": [stix.TLP2_MARKINGS["GREEN"]],
    "x_commonwatch_evidence": {"events": 3, "feeds": 2, "first_seen": "2026-11-30T09:00:00.000Z"}}
LEGACY_MISP = {
    "type": "indicator", "spec_version": "2.1", "id": "indicator--7d2f7c1e-1b1a-4f5e-8a77-0c9b2b3c4d22",
    "created": "2026-11-30T10:00:00.000Z", "modified": "2026-11-30T10:00:00.000Z",
    "pattern": "[domain-name:value = 'old-misp.example']", "pattern_type": "stix",
    "valid_from": "2026-11-30T10:00:00.000Z", "indicator_types": ["anomalous-activity"],
    "object_marking_refs": [stix.TLP2_MARKINGS["GREEN"]], "x_misp_type": "hostname",
    "x_misp_category": "Network activity", "x_misp_to_ids": False,
    "x_misp_event_uuid": "0a9e3f1c-5d1e-4b7e-9c55-2d3e4f5a6b7c"}


def test_objects_stored_by_older_versions_are_converted(app, world, clock):
    migration = importlib.import_module("commonwatch.migrations.versions.0008_intel_stix_extension")
    with session_scope(app.state.sessionmaker, actor="test") as s:
        origin = services.Origin("rule:c2-server", None, None, may_update_any=True)
        services.store_objects(s, [LEGACY_PROMOTED, LEGACY_MISP], origin, clock.now())
        old = s.scalar(select(Indicator).where(Indicator.value == "old-misp.example"))
        # read side: the old custom properties still read as the extension's
        assert stix.extension_of(old.extra)["misp"]["attribute_type"] == "hostname"
        assert exchange.misp_event(s, [old], info="x", now=clock.now()).attributes[0].type == "hostname"
    with app.state.engine.begin() as conn:
        assert migration.convert(conn) == 2
        assert migration.convert(conn) == 0
    with session_scope(app.state.sessionmaker, actor="test") as s:
        for sid in (LEGACY_PROMOTED["id"], LEGACY_MISP["id"]):
            body = json.loads(s.scalar(select(IntelObject.body).where(IntelObject.stix_id == sid)))
            assert not [k for k in body if k.startswith("x_")]
            assert not strict_errors(body)
        promoted = s.scalar(select(Indicator).where(Indicator.stix_id == LEGACY_PROMOTED["id"]))
        assert stix.extension_of(promoted.extra)["evidence"]["events"] == 3 and promoted.description
        converted = s.scalar(select(Indicator).where(Indicator.value == "old-misp.example"))
        assert exchange.misp_event(s, [converted], info="x", now=clock.now()).attributes[0].type == "hostname"
