"""B's vulnerability finding for the tenancy walk."""

from __future__ import annotations

from commonwatch.cii.models import Asset
from commonwatch.vulns.models import VulnFinding


def seed(session, world, clock) -> dict[str, int]:
    asset = Asset(org_id=world.org_b, name="SECRET-B gateway", cpe="cpe:2.3:a:secret-b:gw:1.0:*:*:*:*:*:*:*")
    session.add(asset)
    session.flush()
    f = VulnFinding(org_id=world.org_b, asset_id=asset.id, vuln_id="CVE-2099-0001", record_key="nvd:CVE-2099-0001",
                    identifier="SECRET-B cpe", reason="SECRET-B reason", first_seen=clock.now(), last_seen=clock.now())
    session.add(f)
    session.flush()
    return {"finding_id": f.id, "vuln_id": "CVE-2099-0001"}   # records are public; the finding is B's
