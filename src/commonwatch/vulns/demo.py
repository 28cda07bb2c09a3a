"""Demo: the grid operator's SCADA front-end system and its inventory, the sample CVE 5, NVD, OSV
and CSAF VEX records, a CSAF provider's mirror (``samples/csaf-provider/``), the KEV extract and
EPSS scores (``vulns/samples/``, written for the demo), then a match, so the operator has ranked
warnings. Idempotent."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

SAMPLES = Path(__file__).parent / "samples"
RECORDS = ("CVE-2021-44228.json", "nvd-page.json", "GHSA-35jh-r3h4-6jhm.json", "acme-vex-2021-41773.json")
INVENTORY = [
    # name, cpe, purl, version, host
    ("Dispatch portal web server", "cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:*", None, None, "portal-01"),
    ("Vendor gateway (ACME build)", "cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:acme_gateway:*", None, None,
     "gw-01"),
    ("Outage-map backend logging", None, "pkg:maven/org.apache.logging.log4j/log4j-core", "2.14.1", "map-02"),
    ("Operator console front end", None, "pkg:npm/lodash@4.17.20", None, "console-01"),
    ("Edge firewall", "cpe:2.3:o:paloaltonetworks:pan-os:11.1.1:*:*:*:*:*:*:*", None, None, "fw-01"),
]


def load(ctx) -> None:
    from commonwatch.cii.models import Asset, CiiSystem
    from commonwatch.vulns import services as svc

    org = ctx.orgs.get("grid")
    if org is None:
        return
    s = ctx.session
    now = ctx.clock.now()
    system = s.scalars(select(CiiSystem).where(CiiSystem.org_id == org.id,
                                               CiiSystem.name == "SCADA front end (demo)")).first()
    if system is None:
        system = CiiSystem(org_id=org.id, name="SCADA front end (demo)", mlps_level=3,
                           protection_department="National Energy Administration (demo)",
                           protection_department_email="cii-warnings@nea.example")
        s.add(system)
        s.flush()
    have = set(s.scalars(select(Asset.name).where(Asset.org_id == org.id)))
    for name, cpe, purl, version, host in INVENTORY:
        if name not in have:
            s.add(Asset(org_id=org.id, system_id=system.id, name=name, cpe=cpe, purl=purl, version=version,
                        host=host, source="form"))
    s.flush()
    for name in RECORDS:
        svc.import_document(s, (SAMPLES / name).read_bytes(), name, now)
    # A CSAF provider's mirror (provider-metadata.json, changes.csv, a ROLIE feed); one advisory in it
    # fails mandatory test 6.1.27.5 and is quarantined with the test id.
    from commonwatch.vulns.csaf_provider import import_provider
    from commonwatch.vulns.models import VulnRecord

    if s.scalars(select(VulnRecord.id).where(VulnRecord.record_key == "csaf:ACME-SA-2021-0010#CVE-2021-44228")
                 ).first() is None:
        import_provider(s, SAMPLES / "csaf-provider", ctx.settings, now)
    svc.import_kev(s, (SAMPLES / "kev.json").read_bytes(), now)
    svc.import_epss(s, (SAMPLES / "epss.csv").read_text(encoding="utf-8"), now)
    svc.run_match(s, now, org_ids=[org.id])
