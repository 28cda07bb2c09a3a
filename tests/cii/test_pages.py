"""Pages: a CII operator records a system, sees its due dates, imports an inventory, filters and
exports it, in English and Chinese; another tenant gets 404; the coordinator's overview shows it."""

from __future__ import annotations

from commonwatch.access.principal import SYSTEM
from commonwatch.cii import services as cii
from commonwatch.db import session_scope
from tests.cii.samples import CSV_WITH_BAD_ROWS, NMAP_GOOD
from tests.conftest import csrf_of, sign_in


def test_operator_records_a_system_and_imports_an_inventory(client, world):
    token = sign_in(client, world.users["b"])
    page = client.get("/cii/systems/new")
    assert page.status_code == 200 and "Bravo Grid" in page.text
    bad = client.post("/cii/systems", data={"csrf_token": token, "org_id": world.org_b, "name": "",
                                            "mlps_level": "9"})
    assert bad.status_code == 422 and "must be an MLPS level from 1 to 5" in bad.text
    resp = client.post("/cii/systems", data={
        "csrf_token": token, "org_id": world.org_b, "name": "Grid dispatch", "mlps_level": "3",
        "filing_number": "F-1", "protection_department": "NEA", "last_mlps_assessment": "2025-12-20",
        "last_inspection": "2025-01-15"}, follow_redirects=False)
    assert resp.status_code == 303
    view = client.get(resp.headers["location"])
    assert "overdue" in view.text and "due soon" in view.text and "provisional rule" in view.text
    assert "Art. 17" in view.text
    sid = resp.headers["location"].rsplit("/", 1)[1]

    token = csrf_of(client, "/cii/assets/import")
    resp = client.post("/cii/assets/import", data={"csrf_token": token, "org_id": world.org_b, "system_id": sid},
                       files={"file": ("assets.csv", CSV_WITH_BAD_ROWS, "text/csv")}, follow_redirects=False)
    assert resp.status_code == 303, resp.text[:500]
    report = client.get(resp.headers["location"])
    assert 'id="quarantined">4<' in report.text and "line 3" in report.text and "grammar" in report.text
    refused = client.post("/cii/assets/import", data={"csrf_token": token, "org_id": world.org_b, "format": "nmap"},
                          files={"file": ("x.xml", b"<scan/>", "text/xml")})
    assert refused.status_code == 422 and "nmaprun" in refused.text
    client.post("/cii/assets/import", data={"csrf_token": token, "org_id": world.org_b},
                files={"file": ("scan.xml", NMAP_GOOD, "text/xml")})
    listing = client.get("/cii/assets", params={"kind": "service"})
    assert "OpenSSH 22/tcp" in listing.text and "nginx 80/tcp" in listing.text and "1.24.0" not in listing.text
    csv = client.get("/cii/assets/export.csv", params={"q": "openssh"})
    assert csv.status_code == 200 and csv.text.count("\r\n") == 2 and "openbsd:openssh" in csv.text

    client.get("/lang/zh-CN")
    zh = client.get(f"/cii/systems/{sid}")
    assert "等级测评" in zh.text and "已逾期" in zh.text


def test_other_tenant_gets_404_and_coordinator_overview_lists_due_items(app, client, world, clock):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        system = cii.create_system(s, SYSTEM, world.org_b, {"name": "Grid SCADA", "mlps_level": 4,
                                                            "last_mlps_assessment": "2025-01-01",
                                                            "last_inspection": "2026-10-01"},
                                   cii.local_today(clock.now()))
        sid = system.id
    sign_in(client, world.users["a"])
    assert client.get(f"/cii/systems/{sid}").status_code == 404
    assert client.get(f"/cii/systems/{sid}/edit").status_code == 404
    assert "Grid SCADA" not in client.get("/cii/systems").text
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    client.cookies.clear()
    sign_in(client, world.users["coordinator"])
    home = client.get("/")
    assert "CII supervision" in home.text and "Grid SCADA: MLPS assessment" in home.text
    assert "overdue (2025-07-01)" in home.text
    assert "Grid SCADA" in client.get("/cii/systems?due=action").text
