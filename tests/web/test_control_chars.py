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
