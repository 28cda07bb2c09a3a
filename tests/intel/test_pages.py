"""Pages: create, edit, expire an indicator through the forms (CSRF), errors next to the field,
English and Chinese, the exchange page for the centre only, and the demo partner's view."""

from __future__ import annotations

from sqlalchemy import select

from commonwatch.db import session_scope
from commonwatch.intel.models import Indicator
from tests.conftest import csrf_of, sign_in
from tests.intel.conftest import taxii_headers


def test_create_edit_expire_through_the_forms(client, world, app):
    csrf = sign_in(client, world.users["analyst"])
    assert client.get("/intel/indicators/new").status_code == 200
    bad = client.post("/intel/indicators", data={"csrf_token": csrf, "value": "198.51.100.300", "tlp": "AMBER",
                                                  "confidence": "abc"})
    assert bad.status_code == 422 and 'id="err-value"' in bad.text and 'id="err-confidence"' in bad.text
    resp = client.post("/intel/indicators", data={
        "csrf_token": csrf, "value": "c2.example", "name": "Demo C2", "tlp": "AMBER", "confidence": "75",
        "indicator_types": "malicious-activity", "kill_chain_phases": "command-and-control",
        "malware": "Emotet", "share_orgs": str(world.org_a), "valid_from": "2026-11-25 09:00"},
        follow_redirects=False)
    assert resp.status_code == 303, resp.text[:500]
    detail = client.get(resp.headers["location"])
    assert "Demo C2" in detail.text and "command-and-control" in detail.text and "Emotet" in detail.text
    with session_scope(app.state.sessionmaker) as s:
        ind = s.scalar(select(Indicator).where(Indicator.value == "c2.example"))
        assert ind.valid_from.isoformat() == "2026-11-25T01:00:00+00:00"  # 09:00 in Shanghai
    edit = client.get(f"/intel/indicators/{ind.id}/edit")
    assert 'value="Demo C2"' in edit.text
    saved = client.post(f"/intel/indicators/{ind.id}/edit", data={
        "csrf_token": csrf_of(client, f"/intel/indicators/{ind.id}/edit"), "name": "Demo C2 (confirmed)",
        "tlp": "GREEN", "confidence": "90", "indicator_types": "malicious-activity", "valid_from": "2026-11-25 09:00"},
        follow_redirects=False)
    assert saved.status_code == 303
    assert client.post(f"/intel/indicators/{ind.id}/expire", data={}, follow_redirects=False).status_code == 403
    expired = client.post(f"/intel/indicators/{ind.id}/expire", data={"csrf_token": csrf}, follow_redirects=False)
    assert expired.status_code == 303
    page = client.get(f"/intel/indicators/{ind.id}").text
    assert "Demo C2 (confirmed)" in page and "TLP:GREEN" in page and "Expire now" not in page
    assert "TLP:GREEN" in client.get("/intel?q=c2.example").text


def test_chinese_pages(client, world, intel):
    headers = {**world.auth("coordinator"), "Accept-Language": "zh-CN"}
    assert "威胁情报" in client.get("/intel", headers=headers).text
    assert "与合作伙伴交换" in client.get("/intel-exchange", headers=headers).text
    detail = client.get(f"/intel/indicators/{intel.pk['green']}", headers=headers).text
    assert "目击" in detail


def test_exchange_page_is_for_centre_staff(client, world, intel):
    assert client.get("/intel-exchange", headers=world.auth("coordinator")).status_code == 200
    for who in ("a", "partner", "analyst"):
        assert client.get("/intel-exchange", headers=world.auth(who)).status_code == 403


def test_demo_partner_reads_its_collection_through_taxii(client, app, clock):
    from commonwatch.access import services as access
    from commonwatch.demo import DemoContext
    from commonwatch.intel.demo import COLLECTION

    with session_scope(app.state.sessionmaker, actor="demo") as s:
        ctx = DemoContext(s, app.state.settings, clock)
        from commonwatch.constituency import demo as cdemo
        from commonwatch.intel import demo as idemo

        cdemo.load(ctx)
        idemo.load(ctx)
        s.flush()
        idemo.load(ctx)  # idempotent
        token = access.create_token(s, ctx.users["partner_de"], now=clock.now()).secret
        coordinator = access.create_token(s, ctx.users["coordinator"], now=clock.now()).secret
    got = client.get(f"/taxii2/api/collections/{COLLECTION}/objects/?match[type]=indicator",
                     headers=taxii_headers(token)).json()
    names = sorted(o["name"] for o in got["objects"])
    assert names == ["C2 server hosted in Germany (reported to CERT-DE)", "Emotet command-and-control server",
                     "Phishing page imitating a bank login"]
    everything = client.get(f"/taxii2/api/collections/{COLLECTION}/objects/?match[type]=indicator",
                            headers=taxii_headers(coordinator)).json()
    assert len(everything["objects"]) == 5  # RED never enters a shared collection
