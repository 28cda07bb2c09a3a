"""Demo: the bank (a constituent) scans a sample customer file, its catalogue entry is graded, and
two transfers abroad are assessed, each answer naming its article. Idempotent."""

from __future__ import annotations

from datetime import date, timedelta
from importlib import resources
from pathlib import Path

from sqlalchemy import select

from commonwatch.access.principal import Principal, Role
from commonwatch.datasec import services as ds
from commonwatch.datasec.models import DataAsset
from commonwatch.datasec.scanner import scan_path

ASSET = "Retail customer master"


def sample_file() -> Path:
    """The shipped sample: fictitious people, identifiers with valid check digits."""
    return Path(str(resources.files("commonwatch.datasec").joinpath("samples/customers.csv")))


def load(ctx) -> None:
    if "bank" not in ctx.orgs or "bank" not in ctx.users:
        return
    session, org, user = ctx.session, ctx.orgs["bank"], ctx.users["bank"]
    if session.scalar(select(DataAsset.id).where(DataAsset.org_id == org.id, DataAsset.name == ASSET)):
        return
    bank = Principal(user_id=user.id, email=user.email, role=Role.CONSTITUENT, org_ids=frozenset({org.id}),
                     name=user.name)
    session.info["actor"] = bank.actor
    now = ctx.clock.now()
    data_dir = ctx.settings.data_dir
    asset = ds.create_asset(session, bank, org.id, {
        "name": ASSET, "system": "Core banking CRM", "location": "Guangzhou data centre", "owner": "Retail banking",
        "persons_count": 2_400_000, "purpose": "Account opening, payments and customer service",
        "retention": "5 years after the account closes", "leaves_country": True, "destinations": "SG"}, data_dir)
    report = scan_path(sample_file(), today=ds.local_today(now), data_dir=data_dir)
    ds.record_scan(session, bank, org.id, report, now, asset_id=asset.id, data_dir=data_dir)
    ds.confirm_grade(session, bank, asset, asset.suggested_level, asset.suggested_subgrade,
                     "Confirmed after the scan of the customer extract.", now, data_dir)
    year = ds.local_today(now).year
    ds.create_assessment(session, bank, org.id, {
        "title": "Card payments processed by the Singapore card centre", "recipient": "Demo Card Services Pte Ltd",
        "recipient_country": "SG", "asset_id": asset.id, "transfer_date": date(year, 3, 1).isoformat(),
        "scenario": "contract_with_individual", "contains_pi": True, "contains_sensitive_pi": True,
        "persons_non_sensitive": 80_000, "persons_sensitive": 80_000}, now, data_dir)
    ds.create_assessment(session, bank, org.id, {
        "title": "Customer analytics shared with the group's regional office", "recipient": "Demo Bank Asia Ltd",
        "recipient_country": "SG", "asset_id": asset.id, "transfer_date": date(year, 6, 1).isoformat(),
        "scenario": "other", "contains_pi": True, "contains_sensitive_pi": True,
        "persons_non_sensitive": 150_000, "persons_sensitive": 5_000}, now, data_dir)
    # Issued almost three years ago: its extension window is open now, so the pages show the alert.
    issued = ds.local_today(now) - timedelta(days=3 * 365 - 45)
    ds.create_approval(session, bank, org.id, {
        "kind": "security_assessment", "reference": f"Demo-SA-{issued.year}-017",
        "issued_on": issued.isoformat(), "scope": "Card transaction data to the Singapore centre"}, data_dir)
