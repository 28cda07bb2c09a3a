"""The TAXII 2.1 server over real HTTP (uvicorn on loopback) driven by taxii2-client: discovery,
collections, paging through 10,000 objects, posting an envelope and polling its status; and the
bad inputs each answered per object in the status resource."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select
from taxii2client.common import TokenAuth
from taxii2client.v21 import ApiRoot, Server, as_pages

from commonwatch.db import session_scope
from commonwatch.intel import services
from commonwatch.intel.models import IntelObject
from commonwatch.intel.routes import MAX_CONTENT_LENGTH
from tests.intel.conftest import indicator_obj, taxii_headers
from tests.intel.peers import serve_app


class Bearer:
    def __init__(self, token):
        self.token = token

    def __call__(self, r):
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r


def _fill(app, clock, collection_uuid: str, n: int) -> None:
    with session_scope(app.state.sessionmaker, actor="test") as session:
        session.info["clock"] = clock
        from commonwatch.intel.models import IntelCollection

        c = session.scalar(select(IntelCollection).where(IntelCollection.uuid == collection_uuid))
        objs = [indicator_obj(f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}", "GREEN") for i in range(n)]
        origin = services.Origin("test", None, None, may_update_any=True)
        for start in range(0, n, 2000):
            report = services.store_objects(session, objs[start:start + 2000], origin, clock.now(), c)
            assert report.count("added") == len(objs[start:start + 2000])


def test_taxii2_client_discovery_paging_post_and_status(app, world, intel, clock):
    _fill(app, clock, intel.collection, 10_000)
    with serve_app(app) as base:
        auth = Bearer(world.tokens["partner"])
        server = Server(f"{base}/taxii2/", auth=auth)
        assert server.title.endswith("TAXII 2.1")
        root = server.api_roots[0]
        assert root.url == f"{base}/taxii2/api/" and root.max_content_length == MAX_CONTENT_LENGTH
        assert "application/taxii+json;version=2.1" in root.versions
        by_title = {c.title: c for c in root.collections}
        assert set(by_title) == {"Shared with partners"}  # the centre's private collection stays hidden
        collection = by_title["Shared with partners"]
        assert collection.can_read and collection.can_write
        ids, pages = [], 0
        for envelope in as_pages(collection.get_objects, per_request=500):
            ids += [o["id"] for o in envelope.get("objects", [])]
            pages += 1
        assert len(ids) == len(set(ids)) == 10_000 + 3  # the 10,000 and the 3 the partner may see
        assert pages == 21
        assert intel.ids["amber_a"] not in ids and intel.ids["red_partner"] not in ids
        manifest = collection.get_manifest(limit=5)
        assert len(manifest["objects"]) == 5 and manifest["more"] is True

        good = indicator_obj("198.51.100.99", "AMBER", name="partner sighting")
        status = collection.add_objects({"objects": [good]}, wait_for_completion=False)
        assert status.status == "complete" and status.success_count == 1
        polled = ApiRoot(f"{base}/taxii2/api/", auth=auth).get_status(status.id)
        assert polled.success_count == 1 and polled.failure_count == 0
        one = collection.get_object(good["id"])
        assert one["objects"][0] == good
        versions = collection.object_versions(good["id"])
        assert versions["versions"] == [good["modified"]]


def test_bad_input_is_reported_per_object_and_the_rest_kept(client, app, world, intel):
    headers = taxii_headers(world.tokens["partner"], post=True)
    url = f"/taxii2/api/collections/{intel.collection}/objects/"
    first = indicator_obj("192.0.2.200", "GREEN", modified="2026-11-10T00:00:00.000Z")
    assert client.post(url, headers=headers, json={"objects": [first]}).status_code == 202
    older = {**first, "modified": "2026-11-05T00:00:00.000Z"}
    bad_pattern = indicator_obj("192.0.2.201", "GREEN")
    bad_pattern["pattern"] = "[ipv4-addr:value = "
    wrong_spec = {**indicator_obj("192.0.2.202", "GREEN"), "spec_version": "2.0"}
    unknown = {"type": "x-acme-thing", "spec_version": "2.1", "id": "x-acme-thing--" + first["id"].split("--")[1]}
    red = indicator_obj("192.0.2.203", "RED")
    good = indicator_obj("192.0.2.204", "GREEN", x_partner_score=7)
    resp = client.post(url, headers=headers, json={"objects": [older, bad_pattern, wrong_spec, unknown, red,
                                                               "not an object", good]})
    assert resp.status_code == 202 and resp.headers["content-type"] == "application/taxii+json;version=2.1"
    status = resp.json()
    assert status["total_count"] == 7 and status["success_count"] == 1 and status["failure_count"] == 6
    reasons = {f["id"]: f["message"] for f in status["failures"]}
    assert "newer version" in reasons[first["id"]]
    assert "pattern" in reasons[bad_pattern["id"]]
    assert "spec_version" in reasons[wrong_spec["id"]]
    assert "x-acme-thing" in reasons[unknown["id"]]
    assert "RED" in reasons[red["id"]]
    assert "object 5" in reasons
    assert "x_partner_score" in status["successes"][0]["message"]
    polled = client.get(f"/taxii2/api/status/{status['id']}/", headers=taxii_headers(world.tokens["partner"]))
    assert polled.json() == status
    other = client.get(f"/taxii2/api/status/{status['id']}/", headers=taxii_headers(world.tokens["a"]))
    assert other.status_code == 404
    with session_scope(app.state.sessionmaker) as s:
        held = s.scalar(select(func.count()).select_from(IntelObject).where(IntelObject.stix_id.in_(
            [bad_pattern["id"], wrong_spec["id"], red["id"]])))
    assert held == 0  # nothing half-stored
    malformed = client.post(url, headers=headers, content=b'{"objects": [')
    assert malformed.status_code == 400 and "line 1" in malformed.json()["description"]
    huge = client.post(url, headers=headers, content=b" " * (MAX_CONTENT_LENGTH + 1))
    assert huge.status_code == 413
    wrong_type = client.post(url, headers={**headers, "Content-Type": "application/json"}, json={"objects": []})
    assert wrong_type.status_code == 415
    a_writes = client.post(url, headers=taxii_headers(world.tokens["a"], post=True), json={"objects": [good]})
    assert a_writes.status_code == 403


def test_filters_and_pagination(client, world, intel, clock, app):
    h = taxii_headers(world.tokens["admin"])
    url = f"/taxii2/api/collections/{intel.collection}/objects/"
    page = client.get(url + "?limit=2", headers=h)
    body = page.json()
    assert body["more"] is True and len(body["objects"]) == 2
    nxt = client.get(url + f"?limit=2&next={body['next']}", headers=h).json()
    assert not {o["id"] for o in nxt["objects"]} & {o["id"] for o in body["objects"]}
    last = page.headers["X-TAXII-Date-Added-Last"]
    after = client.get(url + f"?added_after={last}", headers=h).json()
    assert body["objects"][0]["id"] not in {o["id"] for o in after["objects"]}
    typed = client.get(url + "?match[type]=malware", headers=h).json()
    assert "objects" not in typed
    by_id = client.get(url + f"?match[id]={intel.ids['green']}", headers=h).json()
    assert [o["id"] for o in by_id["objects"]] == [intel.ids["green"]]
    # a new version: "last" shows it alone, "all" both, "first" the original
    with session_scope(app.state.sessionmaker, actor="test") as s:
        row = s.scalar(select(IntelObject).where(IntelObject.stix_id == intel.ids["green"]))
        newer = {**json.loads(row.body), "modified": "2026-11-02T00:00:00.000Z", "name": "green v2"}
        services.store_objects(s, [newer], services.Origin("test", None, None, may_update_any=True),
                               clock.now() + timedelta(minutes=1))
    versions = client.get(url + f"{intel.ids['green']}/versions/", headers=h).json()["versions"]
    assert versions == ["2026-11-01T00:00:00.000Z", "2026-11-02T00:00:00.000Z"]
    for match, names in (("last", ["green v2"]), ("first", ["green"]), ("all", ["green", "green v2"])):
        got = client.get(url + f"?match[id]={intel.ids['green']}&match[version]={match}", headers=h).json()
        assert [o["name"] for o in got["objects"]] == names, match
    assert client.get(url, headers={**h, "Accept": "application/xml"}).status_code == 406
    assert client.get(url, headers={"Accept": h["Accept"]}).status_code == 401
    assert client.get(url + "?limit=0", headers=h).status_code == 400


def test_taxii2_clients_own_token_auth_is_accepted(app, world, intel):
    with serve_app(app) as base:
        server = Server(f"{base}/taxii2/", auth=TokenAuth(world.tokens["partner"]))
        assert [c.title for c in server.api_roots[0].collections] == ["Shared with partners"]
    with serve_app(app) as base:
        import requests

        wrong = requests.get(f"{base}/taxii2/", headers={"Authorization": f"Basic {world.tokens['partner']}",
                                                          "Accept": "application/taxii+json;version=2.1"}, timeout=10)
        assert wrong.status_code == 401
