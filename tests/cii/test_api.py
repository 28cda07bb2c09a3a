"""REST: systems with due dates, assets CRUD, import with quarantine, export, tenancy (404)."""

from __future__ import annotations

from tests.cii.samples import CYCLONEDX_GOOD, NMAP_GOOD

SYSTEM = {"name": "Grid SCADA", "mlps_level": 3, "filing_number": "11010099999-00001",
          "filing_date": "2024-01-10", "protection_department": "National Energy Administration",
          "last_mlps_assessment": "2025-12-20", "last_inspection": "2025-01-15"}


def test_constituent_records_its_own_system_and_sees_due_dates(client, world):
    b = world.auth("b")
    resp = client.post("/api/v1/cii/systems", json={"org_id": world.org_b, **SYSTEM}, headers=b)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    # Clock 2026-11-25: assessment due 2026-12-20 (within 60 days), inspection due 2026-01-15 (overdue).
    assert body["due"]["mlps"]["due_on"] == "2026-12-20" and body["due"]["mlps"]["state"] == "due_soon"
    assert body["due"]["mlps"]["rule_status"] == "provisional"
    assert body["due"]["inspection"]["state"] == "overdue"
    assert body["due"]["inspection"]["rule_status"] == "verified"
    sid = body["id"]
    # Another tenant neither sees nor edits it; it cannot create one for B either.
    a = world.auth("a")
    assert client.get(f"/api/v1/cii/systems/{sid}", headers=a).status_code == 404
    assert client.patch(f"/api/v1/cii/systems/{sid}", json={"name": "x"}, headers=a).status_code == 404
    assert client.post("/api/v1/cii/systems", json={"org_id": world.org_b, **SYSTEM}, headers=a).status_code == 404
    assert client.get("/api/v1/cii/systems", headers=a).json()["items"] == []
    # The coordinator sees it among the items needing action.
    due = client.get("/api/v1/cii/due", headers=world.auth("coordinator")).json()["items"]
    assert {(d["system_id"], d["state"]) for d in due} == {(sid, "due_soon"), (sid, "overdue")}
    # A recorded inspection clears the overdue item.
    resp = client.patch(f"/api/v1/cii/systems/{sid}", json={"last_inspection": "2026-11-01"}, headers=b)
    assert resp.json()["due"]["inspection"] == {**resp.json()["due"]["inspection"], "state": "ok",
                                                "due_on": "2027-11-01"}


def test_bad_system_fields_are_named(client, world):
    resp = client.post("/api/v1/cii/systems", json={"org_id": world.org_b, "name": "", "mlps_level": 7,
                                                    "last_inspection": "2030-01-01"}, headers=world.auth("b"))
    assert resp.status_code == 422
    fields = {d["loc"][-1] for d in resp.json()["detail"]}
    assert {"name", "mlps_level", "last_inspection"} <= fields


def test_assets_crud_import_export_and_tenancy(client, world):
    b, a = world.auth("b"), world.auth("a")
    resp = client.post("/api/v1/cii/assets", json={"org_id": world.org_b, "name": "OpenSSL", "version": "3.0.7",
                                                   "cpe": "cpe:/a:openssl:openssl:3.0.7", "host": "10.0.0.5"},
                       headers=b)
    assert resp.status_code == 201, resp.text
    asset = resp.json()
    assert asset["cpe"] == "cpe:2.3:a:openssl:openssl:3.0.7:*:*:*:*:*:*:*"
    bad = client.post("/api/v1/cii/assets", json={"org_id": world.org_b, "name": "x", "purl": "npm/left-pad"},
                      headers=b)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "purl"
    assert client.get(f"/api/v1/cii/assets/{asset['id']}", headers=a).status_code == 404
    assert client.delete(f"/api/v1/cii/assets/{asset['id']}", headers=a).status_code == 404

    files = {"file": ("bom.json", CYCLONEDX_GOOD, "application/json")}
    resp = client.post("/api/v1/cii/assets/import", data={"org_id": str(world.org_b)}, files=files, headers=b)
    assert resp.status_code == 201, resp.text
    batch = resp.json()
    assert batch["format"] == "cyclonedx" and batch["added"] == 3 and batch["quarantined"] == 1
    assert batch["quarantine"][0]["field"] == "purl" and batch["quarantine"][0]["location"] == "/components/2"
    again = client.post("/api/v1/cii/assets/import", data={"org_id": str(world.org_b)}, files=files, headers=b).json()
    assert again["added"] == 0 and again["unchanged"] == 3
    assert client.get(f"/api/v1/cii/imports/{batch['id']}", headers=a).status_code == 404
    # Another tenant cannot import into B.
    resp = client.post("/api/v1/cii/assets/import", data={"org_id": str(world.org_b)}, files=files, headers=a)
    assert resp.status_code == 404

    nmap = {"file": ("scan.xml", NMAP_GOOD, "text/xml")}
    resp = client.post("/api/v1/cii/assets/import", data={"org_id": str(world.org_b), "format": "nmap"},
                       files=nmap, headers=b)
    assert resp.status_code == 201 and resp.json()["added"] == 3

    listing = client.get("/api/v1/cii/assets", params={"kind": "service"}, headers=b).json()
    assert listing["total"] == 2
    assert client.get("/api/v1/cii/assets", headers=a).json()["total"] == 0
    csv = client.get("/api/v1/cii/assets/export", headers=b)
    assert csv.status_code == 200 and csv.text.startswith("id,org_id,system_id,kind,name")
    assert "cpe:2.3:a:openbsd:openssh:8.9p1:*:*:*:*:*:*:*" in csv.text
    assert client.get("/api/v1/cii/assets/export", headers=a).text.count("\n") == 1


def test_wrong_spec_version_is_refused_whole(client, world):
    doc = CYCLONEDX_GOOD.replace(b'"specVersion": "1.5"', b'"specVersion": "1.2"')
    resp = client.post("/api/v1/cii/assets/import", data={"org_id": str(world.org_b)},
                       files={"file": ("bom.json", doc, "application/json")}, headers=world.auth("b"))
    assert resp.status_code == 422
    assert "1.2" in resp.json()["detail"][0]["msg"]
    assert client.get("/api/v1/cii/assets", headers=world.auth("b")).json()["total"] == 0


def test_deleting_a_system_keeps_its_assets_unattached(client, world):
    b = world.auth("b")
    sid = client.post("/api/v1/cii/systems", json={"org_id": world.org_b, **SYSTEM}, headers=b).json()["id"]
    aid = client.post("/api/v1/cii/assets", json={"org_id": world.org_b, "system_id": sid, "name": "HMI"},
                      headers=b).json()["id"]
    other = client.post("/api/v1/cii/systems", json={"org_id": world.org_a, **SYSTEM}, headers=world.auth("a"))
    moved = client.patch(f"/api/v1/cii/assets/{aid}", json={"system_id": other.json()["id"]}, headers=b)
    assert moved.status_code == 422 and moved.json()["detail"][0]["loc"][-1] == "system_id"
    assert client.delete(f"/api/v1/cii/systems/{sid}", headers=b).status_code == 204
    assert client.get(f"/api/v1/cii/assets/{aid}", headers=b).json()["system_id"] is None
