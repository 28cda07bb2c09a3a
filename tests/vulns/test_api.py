"""REST: ranked findings per organisation and across a sector; triage; tenancy."""

from __future__ import annotations

from pathlib import Path

from commonwatch.cii.models import Asset, CiiSystem
from commonwatch.db import session_scope
from commonwatch.vulns import services as svc

SAMPLES = Path(svc.intake.__file__).parent / "samples"


def _load(app, world, clock):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        sys_b = CiiSystem(org_id=world.org_b, name="SECRET-B SCADA", mlps_level=4)
        s.add(sys_b)
        s.flush()
        s.add_all([Asset(org_id=world.org_b, system_id=sys_b.id, name="web",
                         cpe="cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:*"),
                   Asset(org_id=world.org_b, system_id=sys_b.id, name="app", purl="pkg:npm/lodash@4.17.20"),
                   Asset(org_id=world.org_a, name="app-a", purl="pkg:npm/lodash@4.17.15")])
        for name in ("nvd-page.json", "GHSA-35jh-r3h4-6jhm.json"):
            svc.import_document(s, (SAMPLES / name).read_bytes(), name, clock.now())
        svc.import_kev(s, (SAMPLES / "kev.json").read_bytes(), clock.now())
        svc.import_epss(s, (SAMPLES / "epss.csv").read_text(), clock.now())
        svc.run_match(s, clock.now())


def test_ranked_findings_sector_view_and_triage(client, app, world, clock):
    _load(app, world, clock)
    staff = client.get("/api/v1/vulns/findings?sector=energy", headers=world.auth("coordinator")).json()
    assert [f["vuln_id"] for f in staff] == ["CVE-2021-41773", "CVE-2021-23337"]   # KEV first
    top = staff[0]
    assert top["kev"] and top["severity"] == "critical" and top["mlps_level"] == 4 and top["rank"] == 1
    assert top["due"] == "2021-11-17"   # the KEV dueDate is earlier than 15 days after first seen
    assert "http_server:2.4.49" in top["reason"]
    mine = client.get("/api/v1/vulns/findings", headers=world.auth("a")).json()
    assert [f["vuln_id"] for f in mine] == ["CVE-2021-23337"] and all(f["org_id"] == world.org_a for f in mine)
    fid = mine[0]["id"]
    bad = client.post(f"/api/v1/vulns/findings/{fid}/status", json={"status": "false_positive"},
                      headers=world.auth("a"))
    assert bad.status_code == 422
    ok = client.post(f"/api/v1/vulns/findings/{fid}/status",
                     json={"status": "false_positive", "reason": "template() unused"}, headers=world.auth("a"))
    assert ok.status_code == 200 and ok.json()["status"] == "false_positive"
    assert client.get("/api/v1/vulns/findings", headers=world.auth("a")).json() == []
    other = client.post(f"/api/v1/vulns/findings/{staff[0]['id']}/status", json={"status": "mitigated"},
                        headers=world.auth("a"))
    assert other.status_code == 404


def msg_subjects(files) -> str:
    import email
    from email.header import decode_header, make_header

    return " ".join(str(make_header(decode_header(email.message_from_bytes(p.read_bytes())["Subject"]))) for p in files)


def test_new_findings_warn_the_cii_operator_in_its_language(client, app, world, clock):
    import email

    from commonwatch.constituency import services as registry
    from commonwatch.notify.config import NotifySettings
    from commonwatch.notify.runner import Notifier
    from commonwatch.vulns import jobs

    with session_scope(app.state.sessionmaker, actor="test") as s:
        from commonwatch.constituency.models import Organisation

        registry.add_contact(s, s.get(Organisation, world.org_b), {"email": "soc@bravo.example", "role": "security", "language": "zh-CN"},
                             clock.now())
    _load(app, world, clock)
    st = app.state
    notifier = Notifier(settings=st.settings, sessions=st.sessionmaker, clock=st.clock, env=st.jinja,
                        nset=NotifySettings())
    with session_scope(st.sessionmaker, actor="test") as s:
        assert jobs.deliver_warnings(s, notifier, st.settings.data_dir) == 1   # org A is not a CII operator
    with session_scope(st.sessionmaker, actor="test") as s:
        assert jobs.deliver_warnings(s, notifier, st.settings.data_dir) == 0   # each finding warned once
    files = sorted((st.settings.data_dir / "notify" / "outbox").glob("vulns-warning-*.eml"))
    bodies = {}
    for p in files:
        msg = email.message_from_bytes(p.read_bytes())
        part = next(x for x in msg.walk() if x.get_content_type() == "text/plain")
        bodies[msg["To"]] = part.get_payload(decode=True).decode("utf-8")
    zh = bodies["soc@bravo.example"]
    assert "CVE-2021-41773" in zh and "CVE-2021-23337" in zh
    assert zh.index("CVE-2021-41773") < zh.index("CVE-2021-23337")   # KEV first
    assert "严重" in zh and "漏洞预警" in msg_subjects(files) and "修复期限" in zh and "已知被利用" in zh


def test_publish_route_shares_with_partners_under_tlp(client, app, world, clock):
    from commonwatch.intel import services as intel

    _load(app, world, clock)
    with session_scope(app.state.sessionmaker, actor="test") as s:
        c = intel.create_collection(s, "Partners", alias="vuln-partners", max_tlp="GREEN")
        intel.grant(s, c, world.org_a, read=True)
    staff = world.auth("coordinator")
    got = client.get("/api/v1/vulns/CVE-2021-41773/stix?tlp=GREEN", headers=staff)
    assert got.status_code == 200 and got.headers["content-type"].startswith("application/stix+json")
    assert any(o["type"] == "vulnerability" for o in got.json()["objects"])
    ok = client.post("/api/v1/vulns/CVE-2021-41773/publish", json={"collection": "vuln-partners", "tlp": "GREEN"},
                     headers=staff)
    assert ok.status_code == 200 and ok.json()["added"] >= 3, ok.text
    too_strict = client.post("/api/v1/vulns/CVE-2021-41773/publish",
                             json={"collection": "vuln-partners", "tlp": "AMBER"}, headers=staff)
    assert too_strict.status_code == 422
    operator = client.post("/api/v1/vulns/CVE-2021-41773/publish",
                           json={"collection": "vuln-partners", "tlp": "GREEN"}, headers=world.auth("a"))
    assert operator.status_code == 403
    assert client.get("/api/v1/vulns/CVE-1999-0001/stix", headers=staff).status_code == 404
