"""Pages and API: a constituent scans a file, grades the asset and assesses a transfer; findings
show masked samples only, nowhere (page, API, database, audit log) a full identifier."""

from __future__ import annotations

import csv
import io
import random

import pytest
from sqlalchemy import select, text

from commonwatch.access.models import AuditEntry
from commonwatch.datasec import synthetic as syn
from commonwatch.datasec.models import DataAsset, Scan, TransferAssessment
from commonwatch.db import session_scope
from tests.conftest import csrf_of, sign_in


def _customer_file(n: int = 30) -> tuple[bytes, list[str]]:
    rng = random.Random(99)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["姓名", "身份证号", "手机号", "银行卡号", "email"])
    secrets = []
    for _ in range(n):
        row = [syn.person_name(rng), syn.resident_id(rng), syn.mobile(rng), syn.unionpay_card(rng), syn.email(rng)]
        secrets.extend(row[1:])
        w.writerow(row)
    return buf.getvalue().encode("gb18030"), secrets


def _everything_stored(app) -> str:
    """Every stored text that could hold a finding: scans, findings, assets, audit log."""
    with app.state.sessionmaker() as s:
        parts = [str(row) for row in s.execute(text("SELECT * FROM datasec_findings"))]
        parts += [str(row) for row in s.execute(text("SELECT * FROM datasec_scans"))]
        parts += [str(row) for row in s.execute(text("SELECT * FROM datasec_assets"))]
        parts += [f"{e.before} {e.after}" for e in s.scalars(select(AuditEntry))]
    return "\n".join(parts)


def test_constituent_scans_grades_and_assesses_through_the_pages(app, client, world):
    token = sign_in(client, world.users["a"])
    # A catalogue entry for the constituent's own organisation.
    resp = client.post("/datasec/assets", data={"csrf_token": token, "org_id": world.org_a, "name": "Customer master",
                                                "system": "CRM", "persons_count": "120000"}, follow_redirects=False)
    assert resp.status_code == 303, resp.text[:400]
    asset_path = resp.headers["location"]
    asset_id = int(asset_path.rsplit("/", 1)[1])
    # Scan a GB18030 file into it.
    body, secrets = _customer_file()
    resp = client.post("/datasec/scan", data={"csrf_token": token, "org_id": str(world.org_a),
                                              "asset_id": str(asset_id)},
                       files={"file": ("客户.csv", body, "text/csv")}, follow_redirects=False)
    assert resp.status_code == 303, resp.text[:400]
    page = client.get(resp.headers["location"])
    assert page.status_code == 200
    for detector in ("Resident identity card number", "Mainland mobile number", "UnionPay bank card number"):
        assert detector in page.text
    assert "****" in page.text
    leaked = [s for s in secrets if s in page.text]
    assert not leaked, leaked[:3]
    # The asset now suggests the sub-grade the rules give for sensitive PI; confirm it.
    view = client.get(asset_path)
    assert "general_sensitive_pi" in view.text
    resp = client.post(f"{asset_path}/grade", data={"csrf_token": csrf_of(client, asset_path), "level": "general",
                                                     "subgrade": "4", "note": ""}, follow_redirects=False)
    assert resp.status_code == 303
    assert 'id="confirmed-grade"' in client.get(asset_path).text
    # A transfer abroad through the guided form.
    form_page = client.get(f"/crossborder/new?org_id={world.org_a}")
    assert form_page.status_code == 200 and "assessment-form" in form_page.text
    resp = client.post("/crossborder/new", data={
        "csrf_token": csrf_of(client, "/crossborder/new"), "org_id": str(world.org_a), "title": "Call centre abroad",
        "recipient": "Example Ltd", "recipient_country": "SG", "transfer_date": "2026-11-20", "is_ciio": "auto",
        "important_data": "none", "contains_pi": "1", "contains_sensitive_pi": "1", "persons_non_sensitive": "5000",
        "persons_sensitive": "20", "scenario": "other", "recorded": "1", "asset_id": str(asset_id)},
        follow_redirects=False)
    assert resp.status_code == 303, resp.text[:600]
    result = client.get(resp.headers["location"])
    assert "Standard contract" in result.text and "Art. 8" in result.text
    stored = _everything_stored(app)
    assert not [s for s in secrets if s in stored]


def test_bad_uploads_are_refused_and_nothing_is_recorded(app, client, world):
    token = sign_in(client, world.users["a"])
    for name, body, message in (("bomb.csv.gz", b"\x1f\x8b\x08\x00garbage", "corrupt"),
                                ("empty.csv", b"", "is empty"),
                                ("nul.log", b"\x00" * 5000, "binary")):
        resp = client.post("/datasec/scan", data={"csrf_token": token, "org_id": str(world.org_a)},
                           files={"file": (name, body, "application/octet-stream")})
        assert resp.status_code == 422 and message in resp.text, name
    app.state.settings.max_upload_bytes = 1000
    resp = client.post("/datasec/scan", data={"csrf_token": token, "org_id": str(world.org_a)},
                       files={"file": ("big.csv", b"a,b\n" + b"1,2\n" * 1000, "text/csv")})
    assert resp.status_code == 422 and "upload limit" in resp.text
    with app.state.sessionmaker() as s:
        assert s.scalar(select(Scan.id)) is None


def test_pages_in_chinese(app, client, world):
    sign_in(client, world.users["a"])
    client.get("/lang/zh-CN")
    for path in ("/datasec", "/datasec/assets/new", "/datasec/scan", "/crossborder", "/crossborder/new"):
        page = client.get(path)
        assert page.status_code == 200, path
    assert "数据目录" in client.get("/datasec").text
    assert "数据出境" in client.get("/crossborder").text
    assert "出境场景" in client.get("/crossborder/new").text


def test_api_assessment_names_its_article_and_counts_the_year(client, world):
    h = world.auth("a")
    body = {"org_id": world.org_a, "title": "Analytics", "transfer_date": "2026-02-01", "is_ciio": False,
            "persons_non_sensitive": 60_000}
    preview = client.post("/api/v1/crossborder/assessments", json={**body, "preview": True}, headers=h)
    assert preview.status_code == 201 and preview.json()["preview"] is True
    first = client.post("/api/v1/crossborder/assessments", json=body, headers=h).json()
    assert first["mechanism"] == "exempt" and first["rule"]["citation"]["en"].endswith("Art. 5(4)")
    assert {"notice", "separate_consent", "pipia"} <= {o["id"] for o in first["obligations"]}
    second = client.post("/api/v1/crossborder/assessments", json={**body, "persons_non_sensitive": 40_000},
                         headers=h).json()
    assert second["mechanism"] == "standard_contract_or_certification"
    assert second["counts"]["non_sensitive_before"] == 60_000
    totals = client.get(f"/api/v1/crossborder/totals?org_id={world.org_a}&year=2026", headers=h).json()
    assert (totals["non_sensitive"], totals["sensitive"]) == (100_000, 0)
    bad = client.post("/api/v1/crossborder/assessments", json={**body, "persons_non_sensitive": -5}, headers=h)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "persons_non_sensitive"
    other = client.post("/api/v1/crossborder/assessments", json={**body, "org_id": world.org_b}, headers=h)
    assert other.status_code == 404
    listing = client.get("/api/v1/crossborder/assessments", headers=h).json()["items"]
    assert len(listing) == 2
    assert client.get("/api/v1/crossborder/ftz-lists", headers=h).json()["items"][0]["example"] is True


def test_api_catalogue_scan_upload_and_grade(app, client, world):
    h = world.auth("a")
    asset = client.post("/api/v1/datasec/assets", json={"org_id": world.org_a, "name": "Tickets"}, headers=h)
    assert asset.status_code == 201 and asset.json()["suggestion"]["rule"] == "general_internal"
    body, secrets = _customer_file(10)
    scan = client.post("/api/v1/datasec/scans", data={"org_id": str(world.org_a),
                                                       "asset_id": str(asset.json()["id"])},
                       files={"file": ("c.csv", body, "text/csv")}, headers=h)
    assert scan.status_code == 201, scan.text
    assert not [s for s in secrets if s in scan.text]
    detectors = {f["detector"] for f in scan.json()["findings"]}
    assert {"cn_resident_id", "cn_mobile", "cn_bank_card", "email"} <= detectors
    got = client.get(f"/api/v1/datasec/assets/{asset.json()['id']}", headers=h).json()
    assert got["suggestion"]["rule"] == "general_sensitive_pi"
    graded = client.post(f"/api/v1/datasec/assets/{got['id']}/grade", json={"level": "important"}, headers=h)
    assert graded.status_code == 422
    graded = client.post(f"/api/v1/datasec/assets/{got['id']}/grade",
                         json={"level": "important", "note": "regional catalogue lists it"}, headers=h)
    assert graded.status_code == 200 and graded.json()["grade"]["level"] == "important"
    analyst = client.post("/api/v1/datasec/assets", json={"org_id": world.org_a, "name": "x"},
                          headers=world.auth("analyst"))
    assert analyst.status_code == 403


def test_approvals_and_page_alerts(app, client, world, clock):
    h = world.auth("coordinator")
    resp = client.post("/api/v1/crossborder/approvals", json={"org_id": world.org_a, "reference": "SA-2024-1",
                                                              "issued_on": "2024-01-10"}, headers=h)
    assert resp.status_code == 201
    approval = resp.json()
    assert approval["valid_until"] == "2027-01-09" and approval["extension_window_opens"] < "2027-01-09"
    sign_in(client, world.users["a"])  # 2026-11-25: inside the 60 working days before expiry
    page = client.get("/crossborder")
    assert "SA-2024-1" in page.text and "apply for extension now" in page.text
    from commonwatch.datasec.jobs import remind

    assert remind(app.state) == 1 and remind(app.state) == 0
    assert "Extension window open" in client.get("/crossborder").text
    from datetime import timedelta

    clock.advance(timedelta(days=60))  # 2027-01-24: expired
    assert remind(app.state) == 1
    sign_in(client, world.users["a"])
    assert "expired on 2027-01-09" in client.get("/crossborder").text


def test_pdf_record_for_auditors(app, client, world):
    h = world.auth("a")
    client.post("/api/v1/datasec/assets", json={"org_id": world.org_a, "name": "Ledger"}, headers=h)
    client.post("/api/v1/crossborder/assessments", json={"org_id": world.org_a, "title": "T", "is_ciio": False,
                                                         "persons_non_sensitive": 10}, headers=h)
    pdf = client.get(f"/datasec/record.pdf?org_id={world.org_a}", headers=h)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and b"NotoSansSC" in pdf.content
    assert client.get(f"/datasec/record.pdf?org_id={world.org_b}", headers=h).status_code == 404


def test_overview_panel(client, world):
    sign_in(client, world.users["a"])
    assert "Data security" in client.get("/").text


@pytest.mark.parametrize("who", ["auditor", "analyst"])
def test_readers_cannot_write(client, world, who):
    resp = client.post("/api/v1/crossborder/assessments", json={"org_id": world.org_a, "title": "t",
                                                                "persons_non_sensitive": 5}, headers=world.auth(who))
    assert resp.status_code == 403


def test_stored_rows_after_the_flow(app, client, world):
    h = world.auth("a")
    client.post("/api/v1/crossborder/assessments", json={"org_id": world.org_a, "title": "t", "is_ciio": True,
                                                         "persons_non_sensitive": 5}, headers=h)
    with session_scope(app.state.sessionmaker) as s:
        row = s.scalars(select(TransferAssessment)).one()
        assert row.mechanism == "security_assessment" and row.rule_id == "art7_ciio"
        assert s.scalar(select(DataAsset.id)) is None
