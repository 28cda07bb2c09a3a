from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import stix2

from commonwatch.errors import Forbidden, NotFound
from commonwatch.intel import tlp
from commonwatch.vulns import services as svc
from commonwatch.vulns.sharing import vulnerability_bundle
from tests.conftest import START
from tests.vulns.test_services import session  # noqa: F401  (the fixture)

SAMPLES = Path(svc.intake.__file__).parent / "samples"


def test_bundle_is_valid_stix_and_tlp_is_enforced(session):  # noqa: F811
    svc.import_document(session, (SAMPLES / "CVE-2021-44228.json").read_bytes(), "cve.json", START)
    partner = tlp.partner_reader([42])
    bundle = vulnerability_bundle(session, "CVE-2021-44228", "GREEN", partner, now=START, centre_name="CERT",
                                  base_url="https://cert.example")
    stix2.parse(bundle, allow_custom=True, version="2.1")   # the stix2 library accepts the whole bundle
    kinds = [o["type"] for o in bundle["objects"]]
    assert kinds.count("vulnerability") == 1 and "software" in kinds and "relationship" in kinds
    vuln = next(o for o in bundle["objects"] if o["type"] == "vulnerability")
    assert {"source_name": "cnvd", "external_id": "CNVD-2021-95914"} in vuln["external_references"]
    assert all(o.get("object_marking_refs") for o in bundle["objects"] if o["type"] not in ("identity", "extension-definition",
                                                                                              "marking-definition"))
    with pytest.raises(Forbidden):      # AMBER: only the recipients named on it
        vulnerability_bundle(session, "CVE-2021-44228", "AMBER", partner, now=START, centre_name="CERT",
                             base_url="https://cert.example", share_orgs=[7])
    assert vulnerability_bundle(session, "CVE-2021-44228", "AMBER", partner, now=START, centre_name="CERT",
                                base_url="https://cert.example", share_orgs=[42])["objects"]
    with pytest.raises(NotFound):
        vulnerability_bundle(session, "CVE-1999-0001", "CLEAR", partner, now=START, centre_name="CERT",
                             base_url="https://cert.example")


def _indicator(s, vuln_id: str, label: str) -> dict:
    from commonwatch.intel import services as intel
    from commonwatch.intel import stix

    ts = stix.timestamp(START)
    ind = stix.with_tlp({
        "type": "indicator", "spec_version": "2.1", "id": stix.new_id("indicator"), "created": ts, "modified": ts,
        "name": "Log4Shell exploitation source", "description": f"Hosts seen exploiting {vuln_id}",
        "pattern": "[ipv4-addr:value = '198.51.100.7']", "pattern_type": "stix", "valid_from": ts,
        "indicator_types": ["malicious-activity"],
        "external_references": [{"source_name": "cve", "external_id": vuln_id}]}, label)
    report = intel.store_objects(s, [ind], intel.Origin(source="api", owner_org_id=None, author_user_id=None,
                                                              default_tlp=label, may_update_any=True), START)
    assert report.count("added") == 1, report.results
    return ind


def test_bundle_passes_strict_validation_with_indicators_and_purls(session):  # noqa: F811
    from tests.intel.test_strict import strict_errors

    svc.import_document(session, (SAMPLES / "CVE-2021-44228.json").read_bytes(), "cve.json", START)
    svc.import_document(session, (SAMPLES / "GHSA-35jh-r3h4-6jhm.json").read_bytes(), "osv.json", START)
    ind = _indicator(session, "CVE-2021-44228", "GREEN")
    _indicator(session, "CVE-2021-44228", "RED")          # stricter than the bundle: left out
    for vuln_id in ("CVE-2021-44228", "CVE-2021-23337"):
        bundle = vulnerability_bundle(session, vuln_id, "GREEN", tlp.reader_for(session, _staff()), now=START,
                                      centre_name="CERT", base_url="https://cert.example")
        assert not strict_errors(bundle), strict_errors(bundle)
        assert not [e for o in bundle["objects"] for e in strict_errors(o)]
        stix2.parse(bundle, allow_custom=False, version="2.1")
    log4j = vulnerability_bundle(session, "CVE-2021-44228", "GREEN", tlp.reader_for(session, _staff()), now=START,
                                 centre_name="CERT", base_url="https://cert.example")
    inds = [o for o in log4j["objects"] if o["type"] == "indicator"]
    assert [o["id"] for o in inds] == [ind["id"]]
    vuln = next(o for o in log4j["objects"] if o["type"] == "vulnerability")
    assert any(o["type"] == "relationship" and o["relationship_type"] == "related-to" and o["source_ref"] == ind["id"]
               and o["target_ref"] == vuln["id"] for o in log4j["objects"])
    lodash = vulnerability_bundle(session, "CVE-2021-23337", "GREEN", tlp.reader_for(session, _staff()), now=START,
                                  centre_name="CERT", base_url="https://cert.example")
    sw = [o for o in lodash["objects"] if o["type"] == "software"]
    assert sw and sw[0]["name"] == "lodash"
    assert stix2.v21.Software(name="lodash").id == sw[0]["id"]   # the SCO's deterministic id
    # the purl, which STIX software has no property for, under commonwatch's extension, checked by the
    # validator against the schema the definition carries; the definition travels in the bundle
    from commonwatch.intel import stix

    assert stix.extension_of(sw[0]) == {"purl": "pkg:npm/lodash"}
    assert stix.EXTENSION_OBJECT in lodash["objects"] and stix.PROJECT_IDENTITY in lodash["objects"]
    from commonwatch.vulns.sharing import _software

    assert "extensions" not in _software("cpe", "cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*")   # cpe is STIX's own
    wrong = stix.with_extension(dict(sw[0]), purl="lodash 4.17")   # not a purl: the shipped schema refuses it
    assert strict_errors(wrong)


def _staff():
    from commonwatch.access.principal import SYSTEM

    return SYSTEM


def test_publish_goes_through_intel_with_its_tlp_rules_and_keeps_ids(session):  # noqa: F811
    from sqlalchemy import select

    from commonwatch.errors import Invalid
    from commonwatch.intel import services as intel
    from commonwatch.intel.models import CollectionEntry, IntelObject
    from commonwatch.vulns.sharing import publish

    svc.import_document(session, (SAMPLES / "CVE-2021-44228.json").read_bytes(), "cve.json", START)
    from commonwatch.constituency import services as registry

    partner = registry.create_org(session, {"name": "Partner CERT", "kind": "partner-cert"})
    c = intel.create_collection(session, "Partners", alias="partners", max_tlp="GREEN")
    intel.grant(session, c, partner.id, read=True)
    kw = dict(now=START, centre_name="CERT", base_url="https://cert.example", author_user_id=None)
    out = publish(session, "CVE-2021-44228", "partners", "GREEN", **kw)
    assert out["added"] >= 3
    vuln_rows = session.scalars(select(IntelObject).where(IntelObject.type == "vulnerability")).all()
    assert len(vuln_rows) == 1 and vuln_rows[0].tlp == "GREEN"
    assert session.scalars(select(CollectionEntry).where(CollectionEntry.collection_id == c.id)).all()
    again = publish(session, "CVE-2021-44228", "partners", "GREEN", **(kw | {"now": START + timedelta(hours=1)}))
    assert again["added"] >= 1
    ids = {r.stix_id for r in session.scalars(select(IntelObject).where(IntelObject.type == "vulnerability"))}
    assert ids == {vuln_rows[0].stix_id}      # a new version of the same object, not a second one
    with pytest.raises(Invalid, match="stricter"):
        publish(session, "CVE-2021-44228", "partners", "AMBER", **kw)
    with pytest.raises((Invalid, Forbidden)):
        publish(session, "CVE-2021-44228", "partners", "RED", **kw)
    with pytest.raises(NotFound):
        publish(session, "CVE-2021-44228", "nobody", "GREEN", **kw)


def test_a_published_purl_takes_the_extension_definition_into_the_collection(session):  # noqa: F811
    """The collection serves the definition the software's extension names, the newer version when an
    older one (without purl) was stored before."""
    import json

    from sqlalchemy import select

    from commonwatch.constituency import services as registry
    from commonwatch.intel import services as intel
    from commonwatch.intel import stix
    from commonwatch.intel.models import CollectionEntry, IntelObject
    from commonwatch.vulns.sharing import publish

    old = {**stix.EXTENSION_OBJECT, "modified": "2026-12-03T00:00:00.000Z", "version": "1.1.0"}
    session.add(IntelObject(stix_id=old["id"], type=old["type"], spec_version="2.1",
                            version=stix.parse_timestamp(old["modified"], "modified"), date_added=START, latest=True,
                            revoked=False, tlp="CLEAR", owner_org_id=None, author_user_id=None, source="commonwatch",
                            body=stix.dumps(old)))
    session.flush()
    svc.import_document(session, (SAMPLES / "GHSA-35jh-r3h4-6jhm.json").read_bytes(), "osv.json", START)
    partner = registry.create_org(session, {"name": "Partner CERT", "kind": "partner-cert"})
    c = intel.create_collection(session, "Partners", alias="partners", max_tlp="GREEN")
    intel.grant(session, c, partner.id, read=True)
    publish(session, "CVE-2021-23337", "partners", "GREEN", now=START, centre_name="CERT",
            base_url="https://cert.example", author_user_id=None)
    served = [json.loads(r.body) for r in session.scalars(select(IntelObject).join(
        CollectionEntry, CollectionEntry.object_id == IntelObject.id).where(CollectionEntry.collection_id == c.id))]
    definitions = [o for o in served if o["type"] == "extension-definition"]
    assert [d["version"] for d in definitions] == [stix.EXTENSION_OBJECT["version"]]
    sw = next(o for o in served if o["type"] == "software")
    assert stix.extension_of(sw)["purl"].startswith("pkg:npm/lodash")
    held = session.scalars(select(IntelObject).where(IntelObject.stix_id == stix.EXTENSION)).all()
    assert sorted((json.loads(r.body)["version"], r.latest) for r in held) == [("1.1.0", False), ("1.2.0", True)]
