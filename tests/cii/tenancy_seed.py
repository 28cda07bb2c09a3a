"""B's CII records for the tenancy walk: a system, an asset, an import with a quarantined row, a reminder."""

from __future__ import annotations

from datetime import date

from commonwatch.access.principal import SYSTEM
from commonwatch.cii import services as cii


def seed(session, world, clock) -> dict[str, int]:
    today = cii.local_today(clock.now())
    system = cii.create_system(session, SYSTEM, world.org_b, {
        "name": "SECRET-B dispatch", "mlps_level": 3, "filing_number": "SECRET-B filing",
        "protection_department": "SECRET-B department", "last_mlps_assessment": date(2025, 1, 5).isoformat()},
        today)
    asset = cii.create_asset(session, SYSTEM, world.org_b, {
        "name": "SECRET-B historian", "host": "SECRET-B host", "owner": "SECRET-B owner",
        "cpe": "cpe:2.3:a:secret-b:historian:1.0:*:*:*:*:*:*:*", "system_id": system.id})
    batch = cii.import_assets(session, SYSTEM, world.org_b, "csv",
                              b"name,host,purl\nSECRET-B pump,SECRET-B host 2,\nSECRET-B bad,x,pkg:\n",
                              system_id=system.id, filename="SECRET-B.csv", now=clock.now())
    cii.run_reminders(session, today)
    return {"cii_system_id": system.id, "cii_asset_id": asset.id, "cii_import_id": batch.id}
