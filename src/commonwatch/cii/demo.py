"""Demo: the demo CII operator (the power grid) with two systems, one due soon and one overdue, and
an inventory imported from the shipped samples (a CycloneDX SBOM, an nmap -sV scan, a CSV with
one bad row that lands in quarantine). Idempotent."""

from __future__ import annotations

from datetime import timedelta
from importlib import resources
from pathlib import Path

from sqlalchemy import select

from commonwatch.access.principal import Principal, Role
from commonwatch.cii import services as cii
from commonwatch.cii.models import CiiSystem

SAMPLES = (("dispatch-hmi.cdx.json", "cyclonedx", "Dispatch SCADA"),
           ("dispatch-network.nmap.xml", "nmap", "Dispatch SCADA"),
           ("grid-assets.csv", "csv", "Substation automation"))


def sample(name: str) -> Path:
    return Path(str(resources.files("commonwatch.cii").joinpath(f"samples/{name}")))


def load(ctx) -> None:
    if "grid" not in ctx.orgs or "grid" not in ctx.users:
        return
    session, org, user = ctx.session, ctx.orgs["grid"], ctx.users["grid"]
    if session.scalar(select(CiiSystem.id).where(CiiSystem.org_id == org.id)):
        return
    grid = Principal(user_id=user.id, email=user.email, role=Role.CONSTITUENT, org_ids=frozenset({org.id}),
                     name=user.name)
    session.info["actor"] = grid.actor
    now = ctx.clock.now()
    today = cii.local_today(now)
    systems = {
        "Dispatch SCADA": cii.create_system(session, grid, org.id, {
            "name": "Dispatch SCADA", "mlps_level": 3, "filing_number": "31011543210-20001",
            "filing_date": (today - timedelta(days=900)).isoformat(),
            "protection_department": "National Energy Administration (demo)",
            "protection_department_email": "cii-warnings@nea.example", "protection_department_language": "zh-CN",
            "description": "Regional dispatch supervisory control and data acquisition",
            # Assessed a year ago less three weeks: due soon. Inspected 13 months ago: overdue.
            "last_mlps_assessment": (today - timedelta(days=344)).isoformat(),
            "last_inspection": (today - timedelta(days=400)).isoformat()}, today),
        "Substation automation": cii.create_system(session, grid, org.id, {
            "name": "Substation automation", "mlps_level": 4, "filing_number": "31011543210-20002",
            "filing_date": (today - timedelta(days=600)).isoformat(),
            "protection_department": "National Energy Administration (demo)",
            "description": "Remote terminal units and station networks",
            "last_mlps_assessment": (today - timedelta(days=90)).isoformat(),
            "last_inspection": (today - timedelta(days=120)).isoformat()}, today),
    }
    for name, fmt, system in SAMPLES:
        cii.import_assets(session, grid, org.id, fmt, sample(name).read_bytes(), system_id=systems[system].id,
                          filename=name, now=now)
