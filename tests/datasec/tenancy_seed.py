"""B's data-security records for the tenancy walk: an asset, a scan, an assessment, an approval."""

from __future__ import annotations

from datetime import date

from commonwatch.access.principal import SYSTEM
from commonwatch.datasec import services as ds
from commonwatch.datasec.scanner import Finding, ScanReport


def seed(session, world, clock) -> dict[str, int]:
    now = clock.now()
    asset = ds.create_asset(session, SYSTEM, world.org_b, {
        "name": "SECRET-B customer master", "system": "SECRET-B CRM", "owner": "SECRET-B owner",
        "pi_categories": ["contact"], "sensitive_categories": ["financial_account"], "purpose": "SECRET-B purpose"})
    report = ScanReport(source="SECRET-B.csv", kind="csv", rows=10, parts={"SECRET-B.csv": 10}, findings=[
        Finding(part="SECRET-B.csv", field="SECRET-B phone", detector="cn_mobile", count=3, rows=3, rows_total=10,
                share=0.3, confidence=0.9, pi_category="contact", sensitive_category=None,
                samples=["SECRET-B 138****78"])])
    scan = ds.record_scan(session, SYSTEM, world.org_b, report, now, asset_id=asset.id)
    assessment = ds.create_assessment(session, SYSTEM, world.org_b, {
        "title": "SECRET-B transfer", "recipient": "SECRET-B recipient", "scenario": "other",
        "persons_non_sensitive": 5000, "transfer_date": "2026-11-01"}, now)
    approval = ds.create_approval(session, SYSTEM, world.org_b, {
        "reference": "SECRET-B approval", "issued_on": date(2024, 1, 15).isoformat(), "scope": "SECRET-B scope"})
    ds.run_reminders(session, date(2026, 12, 20))
    return {"asset_id": asset.id, "scan_id": scan.id, "assessment_id": assessment.id, "approval_id": approval.id}
