"""The partner directory: profiles keyed to the registry's partner organisations, PGP keys through the
registry's key handling (real GnuPG), agreements and renewal reminders, CSV/JSON export and import."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import select

from commonwatch.cooperation.jobs import remind
from commonwatch.cooperation.models import AgreementReminder
from commonwatch.notify.pgp import faked_time_option, gpg_binary
from tests.conftest import START

MADE_AT = START - timedelta(days=1)


@pytest.fixture(scope="module")
def partner_key(tmp_path_factory) -> str:
    if gpg_binary() is None:
        pytest.fail("GnuPG (gpg) is required for these tests")
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)

    def gpg(*args):
        return subprocess.run([gpg_binary(), "--homedir", str(home), "--batch", "--yes", *faked_time_option(MADE_AT),
                               *args], capture_output=True, check=True).stdout

    gpg("--passphrase", "", "--quick-gen-key", "CERT-FR <cert@cert.example.fr>", "ed25519", "sign", "2y")
    colons = gpg("--with-colons", "--list-keys", "cert@cert.example.fr").decode()
    fpr = next(line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr"))
    gpg("--passphrase", "", "--quick-add-key", fpr, "cv25519", "encr", "2y")
    return gpg("--armor", "--export", "cert@cert.example.fr").decode()


PARTNER = {"name": "CERT-FR", "country": "FR", "region": "Europe", "kind": "national", "short_name": "CERT-FR",
           "first_member": True, "ti_level": "certified", "constituency": "French administration",
           "hours": "24/7", "timezone": "Europe/Paris", "emergency_contact": "+33 1 00 00 00 00",
           "rfc2350_url": "https://cert.example.fr/rfc2350", "channels": ["pgp-email", "misp", "iodef"]}


def test_partner_profile_keys_and_counts(client, world, partner_key):
    resp = client.post("/api/v1/cooperation/partners", json=PARTNER, headers=world.auth("coordinator"))
    assert resp.status_code == 201, resp.text
    org_id = resp.json()["org_id"]
    # The partner is a registry organisation of kind partner-cert: one record, not a copy.
    org = client.get(f"/api/v1/organisations/{org_id}", headers=world.auth("admin")).json()
    assert org["kind"] == "partner-cert" and org["country"] == "FR"
    # Its key goes on a registry contact and is checked there by GnuPG.
    added = client.post(f"/api/v1/organisations/{org_id}/contacts", headers=world.auth("coordinator"),
                        json={"email": "cert@cert.example.fr", "pgp_key": partner_key, "role": "security"})
    assert added.status_code == 201, added.text
    got = client.get(f"/api/v1/cooperation/partners/{org_id}", headers=world.auth("analyst")).json()
    assert got["pgp_keys"][0]["fingerprint"] == added.json()["pgp_fingerprint"]
    assert got["profile"]["ti_level"] == "certified" and got["profile"]["channels"] == ["pgp-email", "misp", "iodef"]
    patched = client.patch(f"/api/v1/cooperation/partners/{org_id}", json={"apcert_member": True, "channels": ["taxii"]},
                           headers=world.auth("coordinator"))
    assert patched.json()["profile"]["apcert_member"] is True and patched.json()["profile"]["channels"] == ["taxii"]
    bad = client.patch(f"/api/v1/cooperation/partners/{org_id}", json={"ti_level": "gold", "channels": ["fax"]},
                       headers=world.auth("coordinator"))
    assert bad.status_code == 422 and "ti_level" in bad.text and "fax" in bad.text
    # Not a partner CERT: 404.
    assert client.get(f"/api/v1/cooperation/partners/{world.org_a}", headers=world.auth("admin")).status_code == 404
    listing = client.get("/api/v1/cooperation/partners", headers=world.auth("admin")).json()
    assert listing["counts"]["by_country"] == {"DE": 1, "FR": 1} and listing["counts"]["by_region"]["Europe"] == 1
    # A partner CERT sees only its own entry; constituents none.
    mine = client.get("/api/v1/cooperation/partners", headers=world.auth("partner")).json()
    assert [p["org_id"] for p in mine["items"]] == [world.partner]
    assert client.get("/api/v1/cooperation/partners", headers=world.auth("a")).status_code == 403


def test_agreement_renewal_reminded_once(app, client, world, clock):
    resp = client.post(f"/api/v1/cooperation/partners/{world.partner}/agreements", headers=world.auth("coordinator"),
                       json={"title": "MoU on incident exchange", "signed_on": "2024-01-10", "renews_on": "2027-01-10"})
    assert resp.status_code == 201, resp.text
    bad = client.post(f"/api/v1/cooperation/partners/{world.partner}/agreements", headers=world.auth("coordinator"),
                      json={"title": "x", "signed_on": "2024-01-10", "renews_on": "2023-01-10"})
    assert bad.status_code == 422 and "renews_on" in bad.text
    clock.set(START.replace(month=9, year=2026))
    assert remind(app.state) == 0  # more than 90 days ahead
    clock.set(START)  # 2026-11-25: 46 days before renewal
    assert remind(app.state) == 1
    assert remind(app.state) == 0  # once
    clock.advance(timedelta(days=50))
    assert remind(app.state) == 1  # now due
    with app.state.sessionmaker() as s:
        assert sorted(r.kind for r in s.scalars(select(AgreementReminder))) == ["due", "soon"]


def test_export_and_import_round_trip(client, world):
    client.post("/api/v1/cooperation/partners", json=PARTNER, headers=world.auth("coordinator"))
    client.post("/api/v1/cooperation/partners", headers=world.auth("coordinator"),
                json={**PARTNER, "name": "=HYPERLINK(evil)", "country": "JP", "region": "Asia-Pacific"})
    as_csv = client.get("/api/v1/cooperation/partners/export?format=csv", headers=world.auth("admin"))
    assert as_csv.status_code == 200 and "'=HYPERLINK(evil)" in as_csv.text and "CERT-FR" in as_csv.text
    as_json = client.get("/api/v1/cooperation/partners/export?format=json", headers=world.auth("admin")).json()
    assert {p["country"] for p in as_json["items"]} == {"DE", "FR", "JP"}

    records = [{**PARTNER, "name": "KrCERT", "country": "KR", "region": "Asia-Pacific",
                "agreements": [{"title": "MoU", "signed_on": "2020-05-01", "renews_on": "2027-05-01"}]},
               {**PARTNER, "hours": "08:00-20:00"}]
    resp = client.post("/api/v1/cooperation/partners/import", headers=world.auth("coordinator"),
                       files={"file": ("p.json", json.dumps(records).encode(), "application/json")})
    assert resp.status_code == 200 and resp.json() == {"created": 1, "updated": 1}, resp.text
    # The CSV export imports back (same records: updates only).
    again = client.post("/api/v1/cooperation/partners/import", headers=world.auth("coordinator"),
                        files={"file": ("p.csv", as_csv.content, "text/csv")})
    assert again.status_code == 200 and again.json()["created"] == 0, again.text
    # One bad record: nothing is written, the error names the record and the field.
    before = client.get("/api/v1/cooperation/partners", headers=world.auth("admin")).json()["counts"]["total"]
    bad = [{**PARTNER, "name": "New CERT", "country": "NZ"}, {**PARTNER, "name": "Broken", "country": "Narnia"}]
    resp = client.post("/api/v1/cooperation/partners/import", headers=world.auth("coordinator"),
                       files={"file": ("p.json", json.dumps(bad).encode(), "application/json")})
    assert resp.status_code == 422 and "record 2: country" in resp.text
    after = client.get("/api/v1/cooperation/partners", headers=world.auth("admin")).json()["counts"]["total"]
    assert after == before
    resp = client.post("/api/v1/cooperation/partners/import", headers=world.auth("coordinator"),
                       files={"file": ("p.json", b"{not json", "application/json")})
    assert resp.status_code == 422 and "line 1" in resp.text
