from __future__ import annotations

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
    assert all(o.get("object_marking_refs") for o in bundle["objects"] if o["type"] not in ("identity",
                                                                                              "marking-definition"))
    with pytest.raises(Forbidden):      # AMBER: only the recipients named on it
        vulnerability_bundle(session, "CVE-2021-44228", "AMBER", partner, now=START, centre_name="CERT",
                             base_url="https://cert.example", share_orgs=[7])
    assert vulnerability_bundle(session, "CVE-2021-44228", "AMBER", partner, now=START, centre_name="CERT",
                                base_url="https://cert.example", share_orgs=[42])["objects"]
    with pytest.raises(NotFound):
        vulnerability_bundle(session, "CVE-1999-0001", "CLEAR", partner, now=START, centre_name="CERT",
                             base_url="https://cert.example")
