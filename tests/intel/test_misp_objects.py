"""Item 10 of issue 14: MISP objects' attributes are imported (indicators where they map, otherwise
reported as not mapped with the reason, never dropped silently), event tags other than TLP become
labels, and malware names go out in one tag form (the galaxy tag). Samples in pymisp's event JSON."""

from __future__ import annotations

import json
import uuid

from pymisp import MISPEvent, MISPObject
from sqlalchemy import select

from commonwatch.db import session_scope
from commonwatch.intel import exchange, services, stix
from commonwatch.intel.models import Indicator, IntelObject

EVENT_UUID = "5f8c2b1e-4c3d-4e6f-9a1b-2c3d4e5f6a7b"
#: A MISP event as MISP and pymisp write it, with a custom object (no template pymisp knows).
CUSTOM_OBJECT_EVENT = {"Event": {
    "uuid": EVENT_UUID, "info": "Beacon seen at a member", "date": "2026-11-28", "threat_level_id": "2",
    "analysis": "1", "distribution": "1", "timestamp": "1764300000",
    "Tag": [{"name": "tlp:amber"}, {"name": "admiralty-scale:source-reliability=\"b\""}, {"name": "sector:energy"}],
    "Object": [{
        "name": "acme-beacon", "meta-category": "network", "description": "A member's own object template",
        "template_uuid": "8a2b6a3e-1c4d-4f5e-9b7a-6c5d4e3f2a1b", "template_version": "1",
        "uuid": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f", "distribution": "5", "sharing_group_id": "0",
        "timestamp": "1764300000",
        "Attribute": [
            {"uuid": "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", "object_relation": "beacon-host", "type": "hostname",
             "category": "Network activity", "to_ids": True, "value": "beacon.example", "timestamp": "1764300000"},
            {"uuid": "1c2d3e4f-5a6b-4c7d-9e8f-0a1b2c3d4e5f", "object_relation": "beacon-interval", "type": "counter",
             "category": "Other", "to_ids": False, "value": "60", "timestamp": "1764300000"},
            {"uuid": "2d3e4f5a-6b7c-4d8e-8f9a-0b1c2d3e4f5a", "object_relation": "jitter", "type": "text",
             "category": "Other", "to_ids": False, "value": "10%", "timestamp": "1764300000"},
        ]}],
}}


def objects_event() -> MISPEvent:
    """whois, file, ip-port, domain-ip and url objects, built by pymisp from MISP's own templates."""
    event = MISPEvent()
    event.uuid = str(uuid.uuid4())
    event.info = "Phishing kit infrastructure"
    event.add_tag("tlp:green")
    event.add_tag("campaign:kit-42")
    event.add_tag('misp-galaxy:malpedia="Emotet"')  # an event-level galaxy: not a label
    whois = MISPObject("whois")
    whois.add_attribute("domain", value="kit-42.example")
    whois.add_attribute("nameserver", value="ns1.kit-42.example")
    whois.add_attribute("registrar", value="Example Registrar Ltd")
    whois.add_attribute("registrant-email", value="owner@kit-42.example")
    event.add_object(whois)
    file = MISPObject("file")
    file.add_attribute("filename", value="invoice.pdf.exe")
    file.add_attribute("sha256", value="d" * 64)
    file.add_attribute("md5", value="e" * 32)
    file.add_attribute("size-in-bytes", value=73802)
    event.add_object(file)
    ip_port = MISPObject("ip-port")
    ip_port.add_attribute("ip", value="192.0.2.201")
    ip_port.add_attribute("dst-port", value="8443")
    event.add_object(ip_port)
    domain_ip = MISPObject("domain-ip")
    domain_ip.add_attribute("domain", value="cdn.kit-42.example")
    domain_ip.add_attribute("ip", value="192.0.2.202")
    event.add_object(domain_ip)
    url = MISPObject("url")
    url.add_attribute("url", value="https://kit-42.example/login")
    url.add_attribute("host", value="kit-42.example")
    event.add_object(url)
    event.add_attribute("ip-dst|port", "192.0.2.203|4444", to_ids=True)
    return event


def _import(app, world, clock, raw):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        origin = services.Origin("misp-file", world.partner, None, default_tlp="AMBER")
        report, unmapped = exchange.import_misp_json(s, raw, origin, clock.now())
        held = s.scalars(select(Indicator)).all()
        rows = {i.value: (i.kind, i.tlp, list(i.labels or []), stix.extension_of(i.extra or {}).get("misp"),
                          i.name, i.description) for i in held}
        rows["count"] = len(held)
    return report, unmapped, rows


def test_misp_objects_attributes_imported_or_reported(app, world, clock):
    event = objects_event()
    report, unmapped, rows = _import(app, world, clock, event.to_json())
    assert not report.failures
    again, _u, _r = _import(app, world, clock, event.to_json())
    assert again.count("added") == 0  # the observable's derived id and the attributes' ids are stable
    count = rows.pop("count")
    assert {v: k for v, (k, *_r) in rows.items()} == {
        "kit-42.example": "domain", "ns1.kit-42.example": "domain", "owner@kit-42.example": "email",
        "d" * 64: "sha256", "e" * 32: "md5", "192.0.2.201": "ipv4", "cdn.kit-42.example": "domain",
        "192.0.2.202": "ipv4", "https://kit-42.example/login": "url", "192.0.2.203": "ipv4"}
    misp = rows["ns1.kit-42.example"][3]
    assert misp["object_name"] == "whois" and misp["object_relation"] == "nameserver"
    assert "whois" in rows["ns1.kit-42.example"][5] and rows["ns1.kit-42.example"][4]
    # everything else is reported with where it was and why; nothing is dropped silently
    reported = {(u.get("object", ""), u.get("relation", ""), u["type"]) for u in unmapped}
    assert reported == {("whois", "registrar", "whois-registrar"), ("ip-port", "dst-port", "port"), ("", "", "port")}
    assert all(u["reason"] for u in unmapped)
    assert "whois" in next(u["reason"] for u in unmapped if u.get("relation") == "registrar")
    # every value is accounted for: the url object's host and the whois domain are two MISP attributes
    # with the same value, so two indicators; the composite attribute has two parts
    total = sum(len(o.attributes) for o in event.objects) + 2
    assert count + len(unmapped) + 2 == total and count == len(rows) + 1  # + the file's name and size
    # the file object is also one STIX file observable, its id a UUIDv5 (a cyber-observable)
    with session_scope(app.state.sessionmaker, actor="test") as s:
        files = [json.loads(o.body) for o in s.scalars(select(IntelObject).where(IntelObject.type == "file"))]
    assert [(f["name"], f["size"], f["hashes"]) for f in files] == [
        ("invoice.pdf.exe", 73802, {"SHA-256": "d" * 64, "MD5": "e" * 32})]
    assert uuid.UUID(files[0]["id"].split("--")[1]).version == 5
    # event tags other than TLP (and galaxies) are labels of every indicator
    assert all(labels == ["campaign:kit-42"] for _k, _t, labels, *_r in rows.values())
    assert all(tlp == "GREEN" for _k, tlp, *_r in rows.values())


def test_a_custom_object_is_imported_where_it_maps_and_reported_otherwise(app, world, clock):
    report, unmapped, rows = _import(app, world, clock, json.dumps(CUSTOM_OBJECT_EVENT))
    assert report.count("added") == 1 and not report.failures and rows.pop("count") == 1
    kind, tlp, labels, misp, name, description = rows["beacon.example"]
    assert kind == "domain" and tlp == "AMBER"
    assert labels == ['admiralty-scale:source-reliability="b"', "sector:energy"]
    assert misp["object_name"] == "acme-beacon" and misp["object_relation"] == "beacon-host"
    assert [(u["relation"], u["type"]) for u in unmapped] == [("beacon-interval", "counter"), ("jitter", "text")]
    assert all("acme-beacon" in u["reason"] and "no STIX indicator pattern" in u["reason"] for u in unmapped)


def test_malware_names_go_out_in_one_tag_form(app, world, clock):
    source = MISPEvent()
    source.uuid = str(uuid.uuid4())
    source.info = "C2"
    a = source.add_attribute("ip-dst", "192.0.2.210", to_ids=True)
    a.add_tag('misp-galaxy:malpedia="Emotet"')
    a.add_tag("malware:emotet")  # the plain form of the same name
    a.add_tag("malware:QakBot")
    with session_scope(app.state.sessionmaker, actor="test") as s:
        origin = services.Origin("misp-file", None, None, may_update_any=True, default_tlp="GREEN")
        report, _u = exchange.import_misp_json(s, source.to_json(), origin, clock.now())
        assert not report.failures
        ind = s.scalar(select(Indicator).where(Indicator.value == "192.0.2.210"))
        assert len(ind.related) == 2  # Emotet (both forms are one family) and QakBot
        out = exchange.misp_event(s, [ind], info="out", now=clock.now())
        again, _u = exchange.import_misp_json(s, out.to_json(), origin, clock.now())
        assert again.count("added") == 0  # the same family, the same links
    tags = sorted(t.name for t in out.attributes[0].tags)
    assert [t for t in tags if "malware" in t.lower() or "emotet" in t.lower() or "qakbot" in t.lower()] == [
        'misp-galaxy:malpedia="Emotet"', 'misp-galaxy:malpedia="QakBot"']
