"""No input gives a 500 (issue 15 item 4): numbers too wide for the database, non-finite numbers, lone
surrogates, over-long search text, deep JSON, a multipart body with a bearer token, duplicates, a
row still in use, and a peer that answers with a redirect — each a 4xx that says what is wrong."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from tests.incidents.conftest import report

BIG = 2**63


@pytest.fixture
def api(app):
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _raw(api, world, method, url, body: str, content_type="application/json"):
    return api.request(method, url, content=body.encode("utf-8", "surrogatepass"),
                       headers={**world.auth("admin"), "Content-Type": content_type})


def _locs(resp) -> list[list]:
    return [d["loc"] for d in resp.json()["detail"]]


@pytest.mark.parametrize("url", [f"/api/v1/incidents/{BIG}", f"/api/v1/events/{BIG}",
                                 f"/api/v1/crossborder/approvals/{BIG}", f"/api/v1/incidents?page={BIG}",
                                 f"/api/v1/incidents/{-BIG - 1}"])
def test_integers_past_64_bits_in_paths_and_queries(api, world, url):
    resp = api.get(url, headers=world.auth("admin"))
    assert resp.status_code in (404, 422), resp.text
    if resp.status_code == 422:
        assert "64-bit integer" in resp.json()["detail"][0]["msg"]
        assert resp.json()["detail"][0]["loc"][0] in ("path", "query")


@pytest.mark.parametrize(("body", "loc", "words"), [
    ('{"name": "X", "kind": "network-operator", "parent_id": ' + str(BIG) + '}', ["body", "parent_id"], "64-bit integer"),
    ('{"name": "X", "kind": "network-operator", "parent_id": 1e308}', ["body", "parent_id"], "finite number"),
    ('{"name": "X", "kind": "network-operator", "parent_id": NaN}', ["body", "parent_id"], "finite number"),
    ('{"name": "X", "kind": "network-operator", "parent_id": -Infinity}', ["body", "parent_id"], "finite number"),
    ('{"name": "\\ud800x", "kind": "network-operator"}', ["body", "name"], "lone UTF-16 surrogate"),
    ('{"name": "x", "kind": "network-operator", "notes": ["ok", "\\udfff"]}', ["body", "notes", "1"], "surrogate"),
])
def test_numbers_and_strings_the_database_cannot_hold(api, world, body, loc, words):
    resp = _raw(api, world, "POST", "/api/v1/organisations", body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"][0]["loc"] == loc and words in resp.json()["detail"][0]["msg"]


def test_reasons_are_bilingual(api, world):
    resp = api.post("/api/v1/organisations", content=b'{"name": NaN}',
                    headers={**world.auth("admin"), "Content-Type": "application/json", "Accept-Language": "zh-CN"})
    assert resp.status_code == 422 and "有限" in resp.json()["detail"][0]["msg"]


def test_a_surrogate_pair_is_an_ordinary_character(api, world):
    resp = _raw(api, world, "POST", "/api/v1/organisations", '{"name": "\\ud83d\\ude00 Labs", "kind": "network-operator"}')
    assert resp.status_code == 201 and resp.json()["name"] == "\U0001f600 Labs"


@pytest.mark.parametrize("url", ["/api/v1/organisations", "/api/v1/incidents", "/api/v1/indicators",
                                 "/api/v1/notify/deliveries"])
def test_a_long_search_text_is_refused_naming_q(api, world, url):
    resp = api.get(url, params={"q": "a" * 60_000}, headers=world.auth("admin"))
    assert resp.status_code == 422 and _locs(resp) == [["query", "q"]]


def test_deep_json_on_the_taxii_objects_route_and_in_an_upload(api, world):
    deep = "[" * 50_000 + "]" * 50_000
    resp = _raw(api, world, "POST", "/taxii2/api/collections/x/objects/", deep,
                "application/taxii+json;version=2.1")
    assert resp.status_code == 422 and "nested too deeply" in resp.text
    upload = api.post("/api/v1/indicators/import", headers=world.auth("admin"),
                      files={"file": ("deep.json", deep.encode(), "application/json")})
    assert 400 <= upload.status_code < 500, upload.text


def test_a_multipart_body_with_a_bearer_token_reaches_the_route(api, world):
    """The CSRF check read the form and the route then found the stream consumed (a 500)."""
    resp = api.post("/api/v1/organisations/import?format=csv", headers=world.auth("admin"),
                    files={"file": ("orgs.csv", b"name,kind\nX,network-operator\n", "text/csv")})
    assert 400 <= resp.status_code < 500 or resp.status_code == 200, resp.text


def test_a_duplicate_alias_is_a_conflict_naming_the_field(api, world):
    first = api.post("/api/v1/intel/collections", json={"title": "c1", "alias": "dup"}, headers=world.auth("admin"))
    assert first.status_code == 201
    again = api.post("/api/v1/intel/collections", json={"title": "c2", "alias": "dup"}, headers=world.auth("admin"))
    assert again.status_code == 409 and _locs(again) == [["body", "alias"]] and "alias" in again.json()["detail"][0][
        "msg"]


def test_deleting_an_organisation_that_has_incidents_says_what_holds_it(api, world):
    filed = api.post("/api/v1/incidents", json=report(org_id=world.org_a), headers=world.auth("admin"))
    assert filed.status_code == 201, filed.text
    resp = api.delete(f"/api/v1/organisations/{world.org_a}", headers=world.auth("admin"))
    assert resp.status_code == 409 and "incidents (1)" in resp.json()["detail"], resp.text


class _Redirecting(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _redirect(self) -> None:
        self.send_response(302)
        self.send_header("Location", "http://127.0.0.1:1/elsewhere/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _redirect


def test_a_taxii_or_misp_peer_that_answers_with_a_redirect(api, world, app):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    app.state.settings.outbound_allowlist = [base + "/"]
    try:
        peer = api.post("/api/v1/intel/misp-peers", headers=world.auth("admin"),
                        json={"name": "p", "org_id": world.partner, "url": base, "api_key": "k"}).json()
        pulled = api.post(f"/api/v1/intel/misp-peers/{peer['id']}/pull", headers=world.auth("admin"))
        assert pulled.status_code == 422 and "redirect 302" in pulled.text, pulled.text
        sub = api.post("/api/v1/intel/subscriptions", headers=world.auth("admin"),
                       json={"name": "s", "org_id": world.partner, "collection_url": base + "/taxii2/c/"}).json()
        polled = api.post(f"/api/v1/intel/subscriptions/{sub['id']}/poll", headers=world.auth("admin"))
        assert polled.status_code == 422 and "redirected to a URL that is refused" in polled.text, polled.text
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_vulnerability_bundle_at_an_unknown_tlp_is_refused_naming_the_field(api, world):
    """Found by the API fuzz: a TLP label that is none of the five gave a 500."""
    headers = world.auth("admin")
    r = api.get("/api/v1/vulns/CVE-2026-0001/stix", params={"tlp": "Ì¿Q"}, headers=headers)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "tlp"
    r = api.post("/api/v1/vulns/CVE-2026-0001/publish", json={"collection": "x", "tlp": "purple"}, headers=headers)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "tlp"
