"""STIX 2.1 import and export: per-object errors with the good objects kept, a round trip that keeps
every property, unmapped properties reported, every exported bundle valid for stix2-validator, and
the CLI and upload page doing the same."""

from __future__ import annotations

import json

import pytest
from stix2validator import ValidationOptions, validate_instance
from typer.testing import CliRunner

from commonwatch.intel import stix
from tests.conftest import sign_in
from tests.intel.conftest import indicator_obj

CREATED = "2026-10-01T10:00:00.000Z"


def rich_bundle() -> dict:
    ind = indicator_obj("evil.example", "AMBER", name="Dropper domain", description="Seen in spam",
                        confidence=70, labels=["spam"], valid_until="2027-01-01T00:00:00Z",
                        kill_chain_phases=[{"kill_chain_name": "mitre-attack", "phase_name": "initial-access"}],
                        external_references=[{"source_name": "partner", "external_id": "P-1"}], lang="en",
                        x_partner_score=88)
    malware = {"type": "malware", "spec_version": "2.1", "id": "malware--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061",
               "created": CREATED, "modified": CREATED, "name": "Poison Ivy", "is_family": True,
               "malware_types": ["remote-access-trojan"]}
    rel = {"type": "relationship", "spec_version": "2.1", "id": "relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad",
           "created": CREATED, "modified": CREATED, "relationship_type": "indicates", "source_ref": ind["id"],
           "target_ref": malware["id"]}
    pattern = {**indicator_obj("192.0.2.1", "GREEN"),
               "pattern": "[network-traffic:dst_port = 443 AND network-traffic:dst_ref.value = '192.0.2.1']"}
    return {"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
            "objects": [ind, malware, rel, pattern]}


def _valid(bundle: dict) -> None:
    result = validate_instance(bundle, ValidationOptions(version="2.1"))
    assert result.is_valid, [str(e) for e in result.errors]


def test_round_trip_keeps_every_property_and_reports_unmapped(client, world):
    bundle = rich_bundle()
    report = client.post("/api/v1/indicators/import", headers=world.auth("analyst"),
                         content=json.dumps(bundle)).json()
    assert report["added"] == 4 and report["failed"] == 0
    unmapped = {r["stix_id"]: r["unmapped"] for r in report["objects"]}
    assert unmapped[bundle["objects"][0]["id"]] == ["external_references", "lang", "x_partner_score"]
    exported = client.get("/api/v1/indicators/export?format=stix", headers=world.auth("analyst")).json()
    _valid(exported)
    by_id = {o["id"]: o for o in exported["objects"]}
    for obj in bundle["objects"]:
        assert by_id[obj["id"]] == obj  # every property, as it came
    kinds = {o["type"] for o in exported["objects"]}
    assert {"identity", "marking-definition", "extension-definition"} <= kinds
    listing = client.get("/api/v1/indicators?q=evil.example", headers=world.auth("analyst")).json()["items"]
    assert listing[0]["related"] == [bundle["objects"][1]["id"]]
    assert listing[0]["unmapped"]["x_partner_score"] == 88


def test_bad_objects_reported_one_by_one_good_ones_kept(client, world, settings):
    good = indicator_obj("192.0.2.50", "GREEN")
    bad = [{**indicator_obj("192.0.2.51"), "pattern": "[ipv4-addr:value = '192.0.2.51'"},
           {**indicator_obj("192.0.2.52"), "valid_from": "yesterday"},
           {"type": "indicator", "id": "indicator--nope"},
           {**indicator_obj("192.0.2.53"), "confidence": 101}]
    report = client.post("/api/v1/indicators/import", headers=world.auth("analyst"),
                         content=json.dumps({"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56e",
                                             "objects": [good, *bad]})).json()
    assert report["added"] == 1 and report["failed"] == 4
    reasons = [r["reason"] for r in report["objects"] if r["status"] == "failed"]
    assert "pattern" in reasons[0] and "valid_from" in reasons[1] and "id" in reasons[2]
    assert "confidence" in reasons[3]
    quarantined = list((settings.data_dir / "quarantine" / "intel").glob("*.reason.txt"))
    assert quarantined and "confidence" in quarantined[0].read_text()
    broken = client.post("/api/v1/indicators/import", headers=world.auth("analyst"), content=b'{"type": "bundle",\n')
    assert broken.status_code == 422 and "line 2" in broken.text
    assert client.post("/api/v1/indicators/import", headers=world.auth("a"), content=b"{}").status_code == 403


def test_created_indicators_export_valid(client, world):
    resp = client.post("/api/v1/indicators", headers=world.auth("analyst"), json={
        "value": "198.51.100.0/24", "name": "Botnet range", "tlp": "AMBER+STRICT", "confidence": 60,
        "kill_chain_phases": ["command-and-control"], "malware": ["Mirai"], "threat_actors": ["Demo Actor"],
        "share_orgs": [world.org_a]})
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["kind"] == "cidr" and created["pattern"] == "[ipv4-addr:value ISSUBSET '198.51.100.0/24']"
    bundle = client.get(f"/api/v1/indicators/{created['id']}/stix", headers=world.auth("analyst")).json()
    _valid(bundle)
    types = sorted(o["type"] for o in bundle["objects"])
    assert types.count("relationship") == 2 and "malware" in types and "threat-actor" in types
    edited = client.patch(f"/api/v1/indicators/{created['id']}", headers=world.auth("analyst"),
                          json={"name": "Botnet range (confirmed)", "confidence": 90}).json()
    assert edited["name"] == "Botnet range (confirmed)" and edited["tlp"] == "AMBER+STRICT"
    from datetime import datetime

    assert datetime.fromisoformat(edited["modified"]) > datetime.fromisoformat(created["modified"])
    expired = client.post(f"/api/v1/indicators/{created['id']}/expire", headers=world.auth("analyst")).json()
    assert expired["live"] is False
    _valid(client.get("/api/v1/indicators/export?format=stix", headers=world.auth("admin")).json())
    # A is a recipient (AMBER+STRICT to A); its unit is not
    assert client.get(f"/api/v1/indicators/{created['id']}", headers=world.auth("a")).status_code == 200
    bad = client.post("/api/v1/indicators", headers=world.auth("analyst"), json={
        "value": "198.51.100.1/24", "tlp": "PURPLE", "confidence": 300})
    fields = {d["loc"][-1] for d in bad.json()["detail"]}
    assert bad.status_code == 422 and {"value", "tlp", "confidence"} <= fields


@pytest.mark.parametrize("value,kind", [("192.0.2.1", "ipv4"), ("2001:db8::1", "ipv6"), ("a.example", "domain"),
                                        ("https://a.example/x?q='1'", "url"), ("x@a.example", "email"),
                                        ("d41d8cd98f00b204e9800998ecf8427e", "md5"), ("a" * 40, "sha1"),
                                        ("b" * 64, "sha256"), ("10.0.0.0/8", "cidr")])
def test_patterns_round_trip(value, kind):
    v = stix.normalise_value(stix.detect_kind(value), value)
    assert v.kind == kind
    pattern = stix.pattern_for(v)
    stix.check_pattern(pattern)
    assert stix.value_of_pattern(pattern) == v


def test_cli_import(app, settings, world, tmp_path, monkeypatch):
    from commonwatch.cli import app as cli
    from commonwatch.runtime import Runtime, set_runtime

    runtime = Runtime(settings, app.state.clock)
    runtime.__dict__["engine"] = app.state.engine
    set_runtime(runtime)
    try:
        bundle = rich_bundle()
        bundle["objects"].append({**indicator_obj("192.0.2.9"), "spec_version": "2.0"})
        path = tmp_path / "bundle.json"
        path.write_text(json.dumps(bundle), encoding="utf-8")
        result = CliRunner().invoke(cli, ["intel", "import", str(path)])
        assert result.exit_code == 1
        assert "4 added, 0 already held, 1 refused" in result.output
        assert "spec_version" in result.output and "kept, not mapped: external_references" in result.output
        again = CliRunner().invoke(cli, ["intel", "import", str(path)])
        assert "0 added, 4 already held, 1 refused" in again.output
    finally:
        set_runtime(None)


def test_upload_page(client, world):
    csrf = sign_in(client, world.users["analyst"])
    page = client.get("/intel/import")
    assert page.status_code == 200
    resp = client.post("/intel/import", data={"csrf_token": csrf, "format": "stix"},
                       files={"file": ("b.json", json.dumps(rich_bundle()).encode(), "application/json")})
    assert resp.status_code == 200 and "4 added, 0 already held, 0 refused" in resp.text
    nocsrf = client.post("/intel/import", data={"format": "stix"},
                         files={"file": ("b.json", b"{}", "application/json")})
    assert nocsrf.status_code == 403
