"""The cooperation pages in both languages: directory counts, partner profile form, request workflow."""

from __future__ import annotations

from sqlalchemy import select

from commonwatch.access.models import AuditEntry
from tests.conftest import sign_in


def test_directory_and_partner_pages(client, world):
    csrf = sign_in(client, world.users["coordinator"])
    page = client.get("/cooperation")
    assert page.status_code == 200 and "CERT Partner DE" in page.text and 'id="by-country"' in page.text
    resp = client.post("/cooperation/partners", data={"csrf_token": csrf, "name": "JPCERT/CC", "country": "JP",
                                                      "region": "Asia-Pacific", "kind": "national"},
                       follow_redirects=False)
    assert resp.status_code == 303, resp.text[:400]
    org_url = resp.headers["location"]
    bad = client.post(org_url, data={"csrf_token": csrf, "kind": "national", "rfc2350_url": "ftp://x"})
    assert bad.status_code == 422 and "http(s)" in bad.text
    ok = client.post(org_url, data={"csrf_token": csrf, "kind": "national", "channels": ["iodef", "misp"],
                                    "first_member": "1", "hours": "24/7"}, follow_redirects=False)
    assert ok.status_code == 303
    assert "misp" in client.get(org_url).text
    agreement = client.post(org_url + "/agreements", data={"csrf_token": csrf, "title": "MoU",
                                                           "signed_on": "2025-01-01", "renews_on": "2026-12-01"},
                            follow_redirects=False)
    assert agreement.status_code == 303
    assert "Renewal soon" in client.get(org_url).text
    client.get("/lang/zh-CN")
    zh = client.get("/cooperation")
    assert "合作伙伴" in zh.text and "按国家" in zh.text


def test_request_pages_workflow_and_need_to_know(app, client, anon, world):
    csrf = sign_in(client, world.users["coordinator"])
    form = client.get("/cooperation/requests/new")
    assert form.status_code == 200 and "Budapest" in form.text
    past = client.post("/cooperation/requests", data={
        "csrf_token": csrf, "direction": "incoming", "country": "DE", "authority": "BKA", "legal_basis": "reciprocity",
        "kind": "disclosure", "subject": "Subscriber of 198.51.100.9", "deadline": "2020-01-01"})
    assert past.status_code == 422 and "in the past" in past.text
    resp = client.post("/cooperation/requests", data={
        "csrf_token": csrf, "direction": "incoming", "country": "DE", "authority": "BKA", "legal_basis": "reciprocity",
        "kind": "disclosure", "subject": "Subscriber of 198.51.100.9", "body": "电话 13812345678",
        "c_requesting_authority": "BKA", "concerns": "network:198.51.100.9\nincident:INC-1"}, follow_redirects=False)
    assert resp.status_code == 303, resp.text[:500]
    url = resp.headers["location"]
    page = client.get(url)
    assert page.status_code == 200 and 'id="pi-flag"' in page.text and "missing" in page.text
    declined = client.post(url + "/status", data={"csrf_token": csrf, "status": "declined", "reason": ""})
    assert declined.status_code == 422 and "reason" in declined.text
    client.post(url + "/status", data={"csrf_token": csrf, "status": "acknowledged"})
    assert "Acknowledged" in client.get(url).text
    assert client.get(url + "/record.pdf").content.startswith(b"%PDF")
    # An analyst and a constituent are shown nothing.
    sign_in(anon, world.users["analyst"])
    assert anon.get(url).status_code in (403, 404)
    assert anon.get("/cooperation/requests").status_code == 403
    with app.state.sessionmaker() as s:
        assert s.scalar(select(AuditEntry.id).where(AuditEntry.action == "cooperation.request.view"))
