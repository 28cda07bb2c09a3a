"""The REST API and the intake form: filing, bad input refused naming the field, attachments refused
without losing the rest of the submission, tenancy, the partner's side, reports."""

from __future__ import annotations

import pytest

from commonwatch.config import Settings
from commonwatch.incidents import services as svc
from tests.conftest import sign_in
from tests.incidents.conftest import principal, report

LIMIT = 2000


@pytest.fixture
def settings(tmp_path, sqlite_url):
    return Settings(data_dir=tmp_path / "data", database_url=sqlite_url, timezone="Asia/Shanghai", log_format="text",
                    max_upload_bytes=LIMIT)


def _file(client, world, who="a", **overrides):
    return client.post("/api/v1/incidents", json=report(**overrides), headers=world.auth(who))


def test_file_through_the_api_and_read_the_clocks(client, world):
    resp = _file(client, world, impact={"pi_persons_leaked": 1_000_000})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["level"] == "较大" and body["level_en"] == "Relatively major" and body["reportable"]
    first = next(c for c in body["clocks"] if c["clock"] == "first_report")
    assert first["due_at"] == "2026-11-25T05:30:00+00:00"  # 09:30 Beijing + 4 h, in UTC
    assert first["state"] == "running" and first["status"] == "verified"
    assert body["indicators"][0]["id"] == "rel-pi-1m" and body["indicators"][0]["deciding"]
    clocks = client.get(f"/api/v1/incidents/{body['id']}/clocks", headers=world.auth("a")).json()
    assert any(c["clock"] == "duty:pipl-57" for c in clocks)
    listing = client.get("/api/v1/incidents", headers=world.auth("a")).json()
    assert [i["id"] for i in listing["items"]] == [body["id"]]


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"handling_closed_at": "2026-11-25T09:00:00+08:00"}, ["body", "handling_closed_at"], None),
    ({"impact": {"pi_persons_leaked": -10}}, ["body", "impact", "pi_persons_leaked"], "negative"),
    ({"category": "ZZ"}, ["body", "category"], "not a GB/T 20986 category"),
    ({"discovered_at": "2026-11-25 09:30"}, ["body", "discovered_at"], "offset"),
    ({"colour": "red"}, ["body", "colour"], None),
])
def test_malformed_reports_are_refused_with_the_field_and_the_reason(client, world, changes, field, words):
    body = report(**changes)
    if "handling_closed_at" in changes:
        # Filing then patching: handling cannot end before the incident was discovered.
        created = _file(client, world).json()
        resp = client.patch(f"/api/v1/incidents/{created['id']}", json=changes, headers=world.auth("a"))
        words = "before the incident was discovered"
    else:
        resp = client.post("/api/v1/incidents", json=body, headers=world.auth("a"))
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"]
    assert any(d["loc"] == field for d in detail), detail
    if words:
        assert any(words in d["msg"] for d in detail if d["loc"] == field), detail


def test_grade_preview_and_rules_in_force(client, world):
    resp = client.post("/api/v1/incidents/grade", headers=world.auth("a"), json={
        "impact": {"cii_main_function_outage_minutes": 30}, "org_kind": "cii-operator",
        "discovered_at": "2026-11-25T23:30+08:00"})
    body = resp.json()
    assert body["level"] == "较大" and body["route"] == "cii"
    assert next(c for c in body["clocks"] if c["clock"] == "first_report")["due_at"] == "2026-11-25T16:30:00+00:00"
    rules = client.get("/api/v1/incidents/rules", headers=world.auth("a")).json()
    assert {lv["key"] for lv in rules["levels"]} == {"特别重大", "重大", "较大", "一般"}
    assert all(i["status"] in ("verified", "provisional") and i["citation"] for i in rules["indicators"])
    assert rules["org_kind_routes"]["cii-operator"] == "cii"


def test_attachments_through_the_api_are_checked(client, world):
    incident = _file(client, world).json()
    url = f"/api/v1/incidents/{incident['id']}/attachments"
    ok = client.post(url, files={"file": ("proxy.log", b"GET /login 200\n", "text/plain")}, headers=world.auth("a"))
    assert ok.status_code == 201 and ok.json()["content_type"] == "text/plain"
    big = client.post(url, files={"file": ("dump.txt", b"x" * (LIMIT + 1), "text/plain")}, headers=world.auth("a"))
    assert big.status_code == 422 and big.json()["detail"][0]["loc"] == ["body", "file"]
    assert "limit" in big.json()["detail"][0]["msg"]
    exe = client.post(url, files={"file": ("invoice.pdf", b"MZ" + b"\x00" * 100, "application/pdf")},
                      headers=world.auth("a"))
    assert exe.status_code == 422
    got = client.get(f"{url}/{ok.json()['id']}", headers=world.auth("a"))
    assert got.content == b"GET /login 200\n" and "attachment" in got.headers["content-disposition"]
    assert client.get(f"{url}/{ok.json()['id']}", headers=world.auth("b")).status_code == 404
    timeline = client.get(f"/api/v1/incidents/{incident['id']}/timeline", headers=world.auth("a")).json()
    assert sum(1 for e in timeline if e["kind"] == "attachment_refused") == 2


def test_the_form_keeps_the_report_when_an_attachment_is_refused(client, world):
    token = sign_in(client, world.users["a"])
    form = {k: v for k, v in report().items() if k != "discovered_at"}
    form.update({"csrf_token": token, "discovered_at": "2026-11-25T09:30", "impact.pi_persons_leaked": "1000000",
                 "impact_present": "1"})
    files = [("attachments", ("notes.txt", b"first seen by the NOC\n", "text/plain")),
             ("attachments", ("big.pcap", b"\xd4\xc3\xb2\xa1" + b"\x00" * LIMIT, "application/octet-stream")),
             ("attachments", ("setup.exe", b"MZ\x90\x00", "application/octet-stream"))]
    resp = client.post("/incidents", data=form, files=files, follow_redirects=False)
    assert resp.status_code == 303, resp.text[:2000]
    page = client.get(resp.headers["location"])
    assert "big.pcap" in page.text and "setup.exe" in page.text  # named, with the reason, in the message
    incident_id = int(resp.headers["location"].rsplit("/", 1)[1])
    api = client.get(f"/api/v1/incidents/{incident_id}", headers=world.auth("a")).json()
    assert api["level"] == "较大" and api["discovered_at"] == "2026-11-25T01:30:00+00:00"
    names = [a["filename"] for a in client.get(f"/api/v1/incidents/{incident_id}/attachments",
                                               headers=world.auth("a")).json()]
    assert names == ["notes.txt"]


def test_the_form_shows_reasons_next_to_fields_and_keeps_the_values(client, world):
    token = sign_in(client, world.users["a"])
    resp = client.post("/incidents", data={"csrf_token": token, "title": "Keep me", "category": "ZZ",
                                           "discovered_at": "2026-11-25T09:30", "affected_system": "x",
                                           "effects": "y", "impact.pi_persons_leaked": "-4", "impact_present": "1"})
    assert resp.status_code == 422
    assert 'value="Keep me"' in resp.text and "GB/T 20986" in resp.text and "negative" in resp.text


def test_an_operator_sees_its_own_incidents_and_tasks_addressed_to_it_nothing_else(client, world, app_session,
                                                                                   clock, rules):
    with app_session() as s:
        b_case = svc.file_incident(s, principal(s, world, "b"), report(title="Bravo internal matter"),
                                   now=clock.now(), rules=rules)
        task = svc.create_task(s, principal(s, world, "coordinator"), b_case,
                               {"org_id": world.org_a, "title": "Check your peering link"}, now=clock.now())
        task_id, b_id = task.id, b_case.id
    tasks = client.get("/api/v1/tasks", headers=world.auth("a")).json()
    assert [t["id"] for t in tasks] == [task_id]
    assert tasks[0]["incident_id"] is None and "Bravo internal matter" not in str(tasks)
    assert client.get(f"/api/v1/incidents/{b_id}", headers=world.auth("a")).status_code == 404
    assert client.get("/api/v1/incidents", headers=world.auth("a")).json()["items"] == []
    answer = client.post(f"/api/v1/tasks/{task_id}/response", json={"status": "done", "response": "Link checked"},
                         headers=world.auth("a"))
    assert answer.status_code == 200 and answer.json()["status"] == "done"
    assert client.post(f"/api/v1/tasks/{task_id}/response", json={"status": "done", "response": "x"},
                       headers=world.auth("b")).status_code == 404
    sign_in(client, world.users["a"])
    page = client.get(f"/tasks/{task_id}")
    assert page.status_code == 200 and "Bravo internal matter" not in page.text
    assert client.get(f"/incidents/{b_id}").status_code == 404


def test_partner_reads_its_share_and_posts_updates_with_its_token(client, world):
    incident = _file(client, world, leads="C2 at 192.0.2.7").json()
    share = client.post(f"/api/v1/incidents/{incident['id']}/shares", headers=world.auth("coordinator"),
                        json={"partner_org_id": world.partner, "tlp": "TLP:GREEN"})
    assert share.status_code == 201, share.text
    assert client.post(f"/api/v1/incidents/{incident['id']}/shares", headers=world.auth("analyst"),
                       json={"partner_org_id": world.partner, "tlp": "TLP:GREEN"}).status_code == 403
    listing = client.get("/api/v1/shared-incidents", headers=world.auth("partner")).json()
    assert len(listing) == 1 and "leads" not in listing[0]["incident"] and listing[0]["tlp"] == "TLP:GREEN"
    assert "organisation" not in listing[0]["incident"]
    sid = listing[0]["id"]
    assert client.get(f"/api/v1/shared-incidents/{sid}", headers=world.auth("a")).status_code == 404
    upd = client.post(f"/api/v1/shared-incidents/{sid}/updates", headers=world.auth("partner"),
                      json={"body": "Server seized by BKA"})
    assert upd.status_code == 201
    timeline = client.get(f"/api/v1/incidents/{incident['id']}/timeline", headers=world.auth("coordinator")).json()
    assert any(e["kind"] == "partner_update" and "Server seized by BKA" in e["text"] for e in timeline)
    assert client.get(f"/api/v1/incidents/{incident['id']}", headers=world.auth("partner")).status_code == 404
    revoked = client.post(f"/api/v1/incidents/{incident['id']}/shares/{sid}/revoke", headers=world.auth("coordinator"))
    assert revoked.status_code == 200
    assert client.get("/api/v1/shared-incidents", headers=world.auth("partner")).json() == []
    assert client.get(f"/api/v1/shared-incidents/{sid}", headers=world.auth("partner")).status_code == 404


def test_reports_come_out_as_bilingual_pdf_and_html(client, world):
    incident = _file(client, world, impact={"pi_persons_leaked": 1_000_000}).json()
    pdf = client.get(f"/api/v1/incidents/{incident['id']}/reports/initial.pdf", headers=world.auth("a"))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-") and b"NotoSansSC" in pdf.content
    sign_in(client, world.users["a"])
    html = client.get(f"/incidents/{incident['id']}/report/initial").text
    order = ["一、受影响单位名称", "二、事件发现或发生时间", "三、事态发展趋势", "四、初步分析的事件原因",
             "五、进一步调查分析所需的线索", "六、拟进一步采取的应对措施", "七、事件现场保护情况",
             "八、其他应当报告的情况"]
    positions = [html.index(h) for h in order]
    assert positions == sorted(positions)
    assert "1. Affected unit" in html and "待补报 / to follow" in html and "暂定 / provisional" in html
    summary = client.get(f"/incidents/{incident['id']}/report/summary").text
    assert "一、事件原因" in summary and "六、经验教训" in summary


def test_level_override_needs_the_permission_and_a_reason(client, world):
    incident = _file(client, world).json()
    url = f"/api/v1/incidents/{incident['id']}/level"
    assert client.post(url, json={"level": "重大", "reason": "because"}, headers=world.auth("analyst")).status_code \
        == 403
    short = client.post(url, json={"level": "重大", "reason": "because"}, headers=world.auth("coordinator"))
    assert short.status_code == 422 and short.json()["detail"][0]["loc"] == ["body", "reason"]
    done = client.post(url, json={"level": "重大", "reason": "Patient records of a hospital included"},
                       headers=world.auth("coordinator"))
    assert done.status_code == 200 and done.json()["level"] == "重大" and done.json()["computed_level"] == "一般"


def test_from_events_endpoint_creates_one_incident(client, world, app_session, clock):
    from tests.incidents.conftest import insert_events

    with app_session() as s:
        ids = insert_events(s, world.org_a, 5, clock, rsit=("fraud", "phishing"))
    resp = client.post("/api/v1/incidents/from-events", json={"event_ids": ids}, headers=world.auth("coordinator"))
    assert resp.status_code == 201, resp.text
    assert resp.json()["subcategory"] == "NAPHISH" and resp.json()["org_id"] == world.org_a
    events = client.get(f"/api/v1/incidents/{resp.json()['id']}/events", headers=world.auth("coordinator")).json()
    assert events["total"] == 5
    assert client.post("/api/v1/incidents/from-events", json={"event_ids": ids},
                       headers=world.auth("a")).status_code == 403
    # The same through the selection page.
    token = sign_in(client, world.users["coordinator"])
    page = client.get("/incidents/from-events")
    assert page.status_code == 200 and f'value="{ids[0]}"' in page.text
    made = client.post("/incidents/from-events", data={"csrf_token": token, "event_ids": [str(i) for i in ids[:2]]},
                       follow_redirects=False)
    assert made.status_code == 303


def test_the_clock_job_alerts_the_coordinator_on_the_page_and_in_the_api(app, client, world, clock):
    from datetime import timedelta

    from commonwatch.incidents.jobs import JOBS

    incident = _file(client, world, discovered_at=clock.now().isoformat(),
                     impact={"cii_full_outage_minutes": 10}, involves_cii=True).json()
    assert incident["route"] == "cii"
    clock.advance(timedelta(minutes=61))
    result = JOBS[0].run(app.state)
    assert "1 alerts raised; 1 alerts mailed" in result  # the one coordinator; nobody owns the case yet
    mailed = list((app.state.settings.data_dir / "notify" / "outbox").glob("incident-alert-*.eml"))
    assert len(mailed) == 1
    message = mailed[0].read_bytes().decode()
    assert f"To: {world.users['coordinator']}" in message and incident["ref"] in message
    assert "0 alerts raised; 0 alerts mailed" in JOBS[0].run(app.state)  # nothing twice
    mine = client.get("/api/v1/incident-alerts", headers=world.auth("coordinator")).json()
    assert [a["state"] for a in mine] == ["missed"] and incident["ref"] in mine[0]["message"]
    assert client.get("/api/v1/incident-alerts", headers=world.auth("a")).json() == []
    sign_in(client, world.users["coordinator"])
    page = client.get(f"/incidents/{incident['id']}").text
    assert 'class="alert"' in page and "passed at" in page
    read = client.post("/api/v1/incident-alerts/read", json={"ids": [mine[0]["id"]]}, headers=world.auth("coordinator"))
    assert read.json() == {"read": 1}


def test_cli_checks_clocks_and_rules(app, settings, clock, tmp_path):
    from typer.testing import CliRunner

    from commonwatch.cli import app as cli
    from commonwatch.runtime import Runtime, set_runtime

    set_runtime(Runtime(settings, clock))
    try:
        runner = CliRunner()
        ok = runner.invoke(cli, ["incidents", "rules-check"])
        assert ok.exit_code == 0 and "ok" in ok.stdout and "provisional" in ok.stdout
        bad = tmp_path / "rules" / "incident_sharing.yaml"
        bad.parent.mkdir(parents=True)
        bad.write_text("name: incident_sharing\nversion: 1\neffective: 2022-08-01\nfields: {}\nlevels: {}\n",
                       encoding="utf-8")
        refused = runner.invoke(cli, ["incidents", "rules-check", "--data-dir", str(tmp_path)])
        assert refused.exit_code == 1 and "must list the fields shared" in refused.output
        checked = runner.invoke(cli, ["incidents", "check-clocks"])
        assert checked.exit_code == 0 and "incidents checked" in checked.stdout
    finally:
        set_runtime(None)


def test_the_named_recipient_appears_in_the_initial_report(client, world):
    incident = _file(client, world, operator_province="北京市", impact={"pi_persons_leaked": 1_000_000}).json()
    sign_in(client, world.users["a"])
    html = client.get(f"/incidents/{incident['id']}/report/initial").text
    assert "属地省级网信部门 / Provincial cyberspace administration where the operator is located（北京市）" in html
