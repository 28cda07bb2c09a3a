"""Item 6 of issue 14 beyond the feeds: a NUL (or any control character but tab and line breaks) in
text a client or a person sends — an API body, a form post, an organisation import file, an incident
report, an indicator — is refused naming the field (and the line, for a file); feeds strip them with
a note (tests/pipeline). One definition of a control character for every door: commonwatch.textio."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from commonwatch.pipeline.stages import strip_control_chars
from commonwatch.textio import CONTROL, control_char, strip_control_text
from tests.conftest import sign_in
from tests.incidents.conftest import report


@pytest.fixture
def api(app):
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(("body", "loc", "code"), [
    ({"name": "Acme\u0000 ISP", "kind": "network-operator"}, ["body", "name"], "U+0000"),
    ({"name": "Acme", "kind": "network-operator", "notes": "ok\u001b[31m"}, ["body", "notes"], "U+001B"),
    ({"name": "Acme", "kind": "network-operator", "tags": ["x", "y\u0085"]}, ["body", "tags", "1"], "U+0085"),
])
def test_an_api_body_with_a_control_character_is_refused_naming_the_field(api, world, body, loc, code):
    resp = api.post("/api/v1/organisations", content=json.dumps(body).encode(),
                    headers={**world.auth("admin"), "Content-Type": "application/json"})
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"][0]
    assert detail["loc"] == loc and f"control character ({code})" in detail["msg"]


def test_tabs_and_line_breaks_are_text_and_the_reason_is_bilingual(api, world):
    ok = api.post("/api/v1/organisations", json={"name": "Tab Labs", "kind": "network-operator",
                                                  "notes": "line one\nline two\tend\r\n"},
                  headers=world.auth("admin"))
    assert ok.status_code == 201 and ok.json()["notes"] == "line one\nline two\tend"
    zh = api.post("/api/v1/organisations", content=b'{"name": "A\\u0007"}',
                  headers={**world.auth("admin"), "Content-Type": "application/json", "Accept-Language": "zh-CN"})
    assert zh.status_code == 422 and "控制字符" in zh.json()["detail"][0]["msg"]


def test_an_incident_report_form_with_a_nul_is_refused_naming_the_field(client, world):
    csrf = sign_in(client, world.users["a"])
    form = {**report(title="Leak\x00 of records"), "csrf_token": csrf, "org_id": str(world.org_a)}
    resp = client.post("/incidents", data=form)
    assert resp.status_code == 422, resp.status_code
    assert "control character (U+0000)" in resp.text


def test_an_organisation_form_with_a_control_character_is_refused(client, world):
    csrf = sign_in(client, world.users["coordinator"])
    form = {"csrf_token": csrf, "name": "Kilo Hospital", "kind": "cii-operator", "sector": "public-services",
            "country": "CN", "region": "Hunan"}
    assert client.post("/organisations", data={**form, "name": "Kilo\x0bHospital"},
                       follow_redirects=False).text.count("control character (U+000B)") == 1
    assert client.post("/organisations", data=form, follow_redirects=False).status_code == 303


def test_an_organisation_import_file_names_the_line_and_field(client, world):
    text = ("name,kind,sector,notes\n"
            "Good Net,network-operator,telecom,fine\n"
            "Bad Net,network-operator,telecom,before\x00after\n")
    resp = client.post("/api/v1/organisations/import", content=text.encode(),
                       headers={**world.auth("coordinator"), "Content-Type": "text/csv"})
    assert resp.status_code == 422 and resp.json()["applied"] is False
    assert [(e["line"], e["field"]) for e in resp.json()["errors"]] == [(3, "notes")]
    assert "U+0000" in resp.json()["errors"][0]["reason"]
    partial = client.post("/api/v1/organisations/import?partial=true", content=text.encode(),
                          headers={**world.auth("coordinator"), "Content-Type": "text/csv"}).json()
    assert partial["created"] == 1


def test_an_indicator_with_a_control_character_in_its_name_is_refused(client, world):
    resp = client.post("/api/v1/indicators", headers=world.auth("analyst"),
                       json={"value": "192.0.2.99", "name": "C2\u0000", "tlp": "GREEN"})
    assert resp.status_code == 422


def test_feeds_and_these_doors_share_one_definition():
    import polars as pl

    frame, found = strip_control_chars(pl.DataFrame({"extra.note": ["a\x00b\tc", "ok"]}))
    assert frame["extra.note"].to_list() == ["ab\tc", "ok"] and found == {"extra.note": 1}
    assert strip_control_text("a\x00b\tc") == ("ab\tc", 1) and control_char("a\x00") == "U+0000"
    assert CONTROL == r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"


def test_a_contact_with_a_control_character_is_refused_naming_the_field():
    from commonwatch.constituency.services import validate_contact_fields
    from commonwatch.errors import Invalid

    with pytest.raises(Invalid) as exc:
        validate_contact_fields({"email": "sec@a.example", "name": "Sec\x1fTeam"}, None)
    assert [e.field for e in exc.value.errors] == ["name"]


# --- the datasec, notify, cooperation and cii doors ------------------------------------------------------
# Forms and request bodies are refused naming the field; files a person hands in name the line (or
# the record) and the field, and nothing of a refused import is written; partners' mails, which
# their sender cannot correct by a refusal, are kept without the control characters and say so.

def test_a_data_asset_form_with_a_control_character_is_refused_and_nothing_stored(app, client, world):
    from sqlalchemy import func, select

    from commonwatch.datasec.models import DataAsset

    token = sign_in(client, world.users["a"])
    resp = client.post("/datasec/assets", data={"csrf_token": token, "org_id": world.org_a,
                                                "name": "Customer master", "system": "CRM\x00v2"})
    assert resp.status_code == 422 and "control character (U+0000)" in resp.text
    with app.state.sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(DataAsset)) == 0


def test_a_transfer_assessment_names_the_field():
    from datetime import date

    from commonwatch.datasec.services import parse_transfer
    from commonwatch.errors import Invalid

    with pytest.raises(Invalid) as exc:
        parse_transfer({"title": "Payroll to HQ", "recipient": "HQ\x1b[2J GmbH", "persons_sensitive": "10"},
                       date(2026, 11, 25))
    assert [(e.field, "U+001B" in e.reason) for e in exc.value.errors] == [("recipient", True)]


def test_a_notification_policy_form_with_a_vertical_tab_is_refused(app, client, world):
    from sqlalchemy import select

    from commonwatch.notify.models import Policy

    token = sign_in(client, world.users["coordinator"])
    # \x0b used to pass as a separator between classification types (\s in a regular expression).
    resp = client.post(f"/notify/policies/{world.org_a}", data={
        "csrf_token": token, "enabled": "1", "types": "infected-system\x0bvulnerable-system", "min_severity": "medium",
        "cadence": "hourly", "immediate_severity": "critical", "channel": "email", "language": "",
        "repeat_window_hours": "24", "webhook_url": ""})
    assert resp.status_code == 422 and "control character (U+000B)" in resp.text
    with app.state.sessionmaker() as s:
        assert s.scalar(select(Policy).where(Policy.org_id == world.org_a)) is None


def test_a_partner_profile_form_with_a_control_character_is_refused(client, world):
    token = sign_in(client, world.users["coordinator"])
    form = {"csrf_token": token, "kind": "national", "short_name": "CERT-DE", "hours": "24/7\x00"}
    resp = client.post(f"/cooperation/partners/{world.partner}", data=form, follow_redirects=False)
    assert resp.status_code == 422 and "control character (U+0000)" in resp.text
    stored = client.get(f"/api/v1/cooperation/partners/{world.partner}", headers=world.auth("admin")).json()
    assert "24/7" not in json.dumps(stored)


def _partner_count(client, world) -> int:
    return client.get("/api/v1/cooperation/partners", headers=world.auth("admin")).json()["counts"]["total"]


def test_a_partner_directory_csv_names_the_line_and_field_and_writes_nothing(client, world):
    before = _partner_count(client, world)
    text = ("name,country,region,short_name,hours\n"
            "CERT-NL,NL,Europe,NCSC-NL,24/7\n"
            "CERT-PL,PL,Europe,\"CERT\x1bPL\",24/7\n")
    resp = client.post("/api/v1/cooperation/partners/import", headers=world.auth("coordinator"),
                       files={"file": ("partners.csv", text.encode(), "text/csv")})
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"]
    assert [d["loc"][-1] for d in detail] == ["line 3: short_name"] and "U+001B" in detail[0]["msg"]
    assert _partner_count(client, world) == before


def test_a_partner_directory_json_names_the_record_and_the_agreement_field(client, world):
    before = _partner_count(client, world)
    records = [{"name": "CERT-NL", "country": "NL", "region": "Europe",
                "agreements": [{"title": "MoU\u0000", "signed_on": "2020-05-01"}]}]
    resp = client.post("/api/v1/cooperation/partners/import", headers=world.auth("coordinator"),
                       files={"file": ("p.json", json.dumps(records).encode(), "application/json")})
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["body", "record 1: agreements[0]", "title"]
    assert _partner_count(client, world) == before


def test_an_assistance_request_names_the_field_and_the_content_item():
    from datetime import date

    from commonwatch.cooperation.services import request_rules, validate_request
    from commonwatch.errors import Invalid

    rules = request_rules(None)
    basis = next(iter(rules["contents"]))
    item = next(iter(rules["contents"][basis]["items"]))
    with pytest.raises(Invalid) as exc:
        validate_request({"direction": "incoming", "country": "FR", "authority": "CERT-FR", "subject": "Botnet\x00",
                          "legal_basis": basis, "kind": next(iter(rules["kinds"])), "body": "see attached",
                          "contents": {item: "yes\x07"}}, rules, date(2026, 11, 25))
    assert sorted(e.field for e in exc.value.errors) == [f"contents.{item}", "subject"]


def test_a_partner_mail_with_control_characters_in_its_headers_is_kept_without_them_and_says_so(app, world, clock):
    from sqlalchemy import select

    from commonwatch.constituency import services as registry
    from commonwatch.constituency.models import Organisation
    from commonwatch.cooperation.models import InboundReport
    from commonwatch.cooperation.reports import Mail, ingest_mails
    from commonwatch.db import session_scope
    from tests.cooperation.mails import PARTNER_EMAIL, as_bytes, iodef, mail

    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        registry.add_contact(s, s.get(Organisation, world.partner), {"email": PARTNER_EMAIL, "role": "security"},
                             clock.now())
    msg = mail(iodef(2), subject="Botnet report")
    raw = as_bytes(msg).replace(b"Subject: Botnet report", b"Subject: Botnet\x1b[31m report\x00")
    [row] = ingest_mails(app.state.engine, app.state.sessionmaker, [Mail(raw, "api")], clock,
                         app.state.settings.data_dir)
    with app.state.sessionmaker() as s:
        stored = s.scalar(select(InboundReport).where(InboundReport.id == row.id))
        assert stored.status == "ingested" and stored.subject == "Botnet[31m report"
        assert stored.reason == "2 control character(s) removed from the subject"


def test_a_cii_system_form_with_a_control_character_is_refused(client, world):
    token = sign_in(client, world.users["b"])
    resp = client.post("/cii/systems", data={"csrf_token": token, "org_id": world.org_b, "name": "Grid dispatch",
                                             "mlps_level": "3", "description": "SCADA\x00 front end"})
    assert resp.status_code == 422 and "control character (U+0000)" in resp.text


def test_a_cii_inventory_quarantines_the_row_naming_the_line_and_field(app, client, world):
    from sqlalchemy import select

    from commonwatch.cii.importers import read_csv
    from commonwatch.cii.models import Asset, QuarantinedRow

    data = (b"name,vendor,version\n"
            b"nginx,F5,1.24.0\n"
            b"openssh,Open\x00BSD,9.6\n")
    parsed = read_csv(data)
    assert [r["name"] for r in parsed.rows] == ["nginx"]
    [bad] = parsed.bad
    assert (bad.where, bad.field, "U+0000" in bad.reason, bad.raw) == ("line 3", "vendor", True, "openssh,OpenBSD,9.6")
    resp = client.post("/api/v1/cii/assets/import", headers=world.auth("b"), data={"org_id": str(world.org_b)},
                       files={"file": ("assets.csv", data, "text/csv")})
    assert resp.status_code in (200, 201), resp.text
    with app.state.sessionmaker() as s:
        assert [a.name for a in s.scalars(select(Asset))] == ["nginx"]
        [row] = s.scalars(select(QuarantinedRow))
        assert (row.location, row.field, "\x00" in row.raw) == ("line 3", "vendor", False)


def test_a_scanned_file_s_column_names_are_kept_without_control_characters_and_the_audit_says_so(app, client,
                                                                                                   world):
    import random

    from sqlalchemy import select

    from commonwatch.access.models import AuditEntry
    from commonwatch.datasec import synthetic as syn
    from commonwatch.datasec.models import ScanFinding

    rng = random.Random(7)
    body = "客户,手机号\x1b[0m\n" + "".join(f"c{i},{syn.mobile(rng)}\n" for i in range(20))
    resp = client.post("/api/v1/datasec/scans", data={"org_id": str(world.org_a)}, headers=world.auth("a"),
                       files={"file": ("customers.csv", body.encode(), "text/csv")})
    assert resp.status_code == 201, resp.text
    with app.state.sessionmaker() as s:
        fields = {f.field for f in s.scalars(select(ScanFinding))}
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "datasec.scan"))
    assert "手机号[0m" in fields and not [f for f in fields if "\x1b" in f]
    after = entry.after if isinstance(entry.after, dict) else json.loads(entry.after)
    assert after["control_characters_removed"] == 1
