"""REST API of the registry: every route, the validation of every identifier, and tenancy."""

import pytest

ORG = {"name": "Gamma Water Works", "kind": "cii-operator", "sector": "water", "country": "cn", "region": "Hubei"}


@pytest.fixture
def coord(world):
    return world.auth("coordinator")


def _create(client, headers, **extra):
    resp = client.post("/api/v1/organisations", json={**ORG, **extra}, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_create_read_update_delete_organisation(client, coord):
    org = _create(client, coord)
    assert org["country"] == "CN" and org["cii"] is True
    got = client.get(f"/api/v1/organisations/{org['id']}", headers=coord).json()
    assert got["name"] == ORG["name"]
    patched = client.patch(f"/api/v1/organisations/{org['id']}", json={"region": "Wuhan"}, headers=coord).json()
    assert patched["region"] == "Wuhan" and patched["sector"] == "water"
    assert client.delete(f"/api/v1/organisations/{org['id']}", headers=coord).status_code == 204
    assert client.get(f"/api/v1/organisations/{org['id']}", headers=coord).status_code == 404


def test_list_filters_and_search(client, coord, world):
    _create(client, coord)
    q = client.get("/api/v1/organisations", params={"kind": "cii-operator"}, headers=coord).json()
    assert {o["name"] for o in q["items"]} == {"Gamma Water Works", "Bravo Grid SECRET-B"}
    by_ip = client.get("/api/v1/organisations", params={"q": "198.51.100.7"}, headers=coord).json()
    assert [o["id"] for o in by_ip["items"]] == [world.org_a]
    by_asn = client.get("/api/v1/organisations", params={"q": "AS64501"}, headers=coord).json()
    assert [o["id"] for o in by_asn["items"]] == [world.org_b]
    page = client.get("/api/v1/organisations", params={"per_page": 2, "page": 2}, headers=coord).json()
    assert page["total"] == 5 and len(page["items"]) == 2


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("kind", "isp", "must be one of"),
    ("sector", "mining", "not in the CII sector list"),
    ("country", "CHN", "two-letter"),
    ("name", "", "is required"),
    ("parent_id", 99999, "no organisation"),
])
def test_bad_organisation_fields_are_422_naming_the_field(client, coord, field, value, reason):
    resp = client.post("/api/v1/organisations", json={**ORG, field: value}, headers=coord)
    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert any(d["loc"][-1] == field and reason in d["msg"] for d in detail), detail


def test_cii_operator_needs_a_sector(client, coord):
    resp = client.post("/api/v1/organisations", json={**ORG, "sector": "none"}, headers=coord)
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"][-1] == "sector"


def test_parent_cycles_are_refused(client, coord):
    a = _create(client, coord, name="Parent")
    b = _create(client, coord, name="Child", parent_id=a["id"])
    resp = client.patch(f"/api/v1/organisations/{a['id']}", json={"parent_id": b["id"]}, headers=coord)
    assert resp.status_code == 422 and "ancestor" in resp.json()["detail"][0]["msg"]


@pytest.mark.parametrize(("cidr", "reason"), [
    ("10.0.0.1/8", "host bits set; did you mean 10.0.0.0/8"),
    ("300.1.1.0/24", "not an IPv4 or IPv6 network"),
    ("2001:db8::1/32", "host bits set"),
    ("", "is empty"),
    # Addresses here match as IPv4 hosts, so an IPv6 network over them would never be matched.
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("::ffff:c000:200/120", "register the IPv4 networks instead"),
    ("::/80", "IPv4-mapped"),
])
def test_bad_networks(client, coord, world, cidr, reason):
    resp = client.post(f"/api/v1/organisations/{world.org_a}/networks", json={"cidr": cidr}, headers=coord)
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"][-1] == "cidr" and reason in resp.json()["detail"][0]["msg"]


def test_ipv6_networks_beside_the_ipv4_mapped_range_are_registered(client, coord, world):
    for cidr in ("::/96", "::1:0:0:0/96", "2001:db8::/32"):
        resp = client.post(f"/api/v1/organisations/{world.org_a}/networks", json={"cidr": cidr}, headers=coord)
        assert resp.status_code == 201, (cidr, resp.text)


def test_networks_asns_domains_contacts_routes(client, coord, world):
    base = f"/api/v1/organisations/{world.org_a}"
    net = client.post(f"{base}/networks", json={"cidr": "2001:DB8:1::/48", "description": "v6"}, headers=coord)
    assert net.status_code == 201 and net.json()["cidr"] == "2001:db8:1::/48" and net.json()["family"] == 6
    assert client.post(f"{base}/networks", json={"cidr": "2001:db8:1::/48"}, headers=coord).status_code == 422
    assert len(client.get(f"{base}/networks", headers=coord).json()) == 2
    asn = client.post(f"{base}/asns", json={"asn": "as4134"}, headers=coord)
    assert asn.status_code == 201 and asn.json()["asn"] == 4134
    assert client.post(f"{base}/asns", json={"asn": "AS23456"}, headers=coord).status_code == 422
    assert client.post(f"{base}/asns", json={"asn": "4294967296"}, headers=coord).status_code == 422
    dom = client.post(f"{base}/domains", json={"name": "例子.中国."}, headers=coord)
    assert dom.status_code == 201 and dom.json()["name"] == "xn--fsqu00a.xn--fiqs8s"
    for bad in ("no_underscores.example", "localhost", "1.2.3.4", "-bad.example"):
        r = client.post(f"{base}/domains", json={"name": bad}, headers=coord)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "domain", bad
    contact = client.post(f"{base}/contacts", json={"email": "SOC@Alpha.Example", "language": "en"}, headers=coord)
    assert contact.status_code == 201 and contact.json()["email"] == "soc@alpha.example"
    bad = client.post(f"{base}/contacts", json={"email": "not-an-email", "language": "fr"}, headers=coord)
    assert bad.status_code == 422 and {d["loc"][-1] for d in bad.json()["detail"]} == {"email", "language"}
    cid = contact.json()["id"]
    assert client.get(f"/api/v1/contacts/{cid}", headers=coord).json()["language"] == "en"
    patched = client.patch(f"/api/v1/contacts/{cid}", json={"notices": ["incidents"]}, headers=coord)
    assert patched.json()["notices"] == ["incidents"]
    assert client.patch(f"/api/v1/contacts/{cid}", json={"notices": ["spam"]}, headers=coord).status_code == 422
    for kind, ident in (("networks", net.json()["id"]), ("asns", asn.json()["id"]), ("domains", dom.json()["id"]),
                        ("contacts", cid)):
        assert client.delete(f"/api/v1/{kind}/{ident}", headers=coord).status_code == 204
    assert client.get(f"{base}/asns", headers=coord).json() == []


def test_lookup_most_specific_network_asn_and_domain_suffix(client, coord, world):
    inner = _create(client, coord, name="Inner", kind="other", sector="none")
    client.post(f"/api/v1/organisations/{inner['id']}/networks", json={"cidr": "198.51.100.128/25"}, headers=coord)
    client.post(f"/api/v1/organisations/{inner['id']}/domains", json={"name": "labs.secret-b.example"}, headers=coord)
    hit = client.get("/api/v1/constituency/lookup", params={"ip": "198.51.100.200"}, headers=coord).json()
    assert [m["org_id"] for m in hit] == [inner["id"]] and "198.51.100.128/25" in hit[0]["by"]
    wider = client.get("/api/v1/constituency/lookup", params={"ip": "198.51.100.5"}, headers=coord).json()
    assert [m["org_id"] for m in wider] == [world.org_a]
    by_asn = client.get("/api/v1/constituency/lookup", params={"asn": "64501"}, headers=coord).json()
    assert [m["org_id"] for m in by_asn] == [world.org_b]
    dom = client.get("/api/v1/constituency/lookup", params={"domain": "www.labs.secret-b.example"}, headers=coord)
    assert [m["org_id"] for m in dom.json()] == [inner["id"]]
    assert client.get("/api/v1/constituency/lookup", params={"ip": "nope"}, headers=coord).status_code == 422
    assert client.get("/api/v1/constituency/lookup", headers=coord).status_code == 422


def test_overlaps_are_listed(client, coord, world):
    inner = _create(client, coord, name="Subnet holder", kind="other", sector="none")
    client.post(f"/api/v1/organisations/{inner['id']}/networks", json={"cidr": "203.0.113.0/26"}, headers=coord)
    client.post(f"/api/v1/organisations/{world.org_a}/networks", json={"cidr": "203.0.113.0/24"}, headers=coord)
    found = client.get("/api/v1/constituency/overlaps", headers=coord).json()
    pairs = {(o["outer_cidr"], o["outer_org_id"], o["inner_cidr"], o["inner_org_id"]) for o in found}
    assert ("203.0.113.0/24", world.org_b, "203.0.113.0/26", inner["id"]) in pairs
    assert ("203.0.113.0/24", world.org_a, "203.0.113.0/26", inner["id"]) in pairs
    assert any(o["outer_cidr"] == o["inner_cidr"] == "203.0.113.0/24" for o in found)


def test_sectors_are_listed_in_the_callers_language(client, world):
    en = client.get("/api/v1/sectors", headers=world.auth("a")).json()
    zh = client.get("/api/v1/sectors", headers={**world.auth("a"), "Accept-Language": "zh-CN"}).json()
    assert {"code": "energy", "name": "Energy"} in en and {"code": "energy", "name": "能源"} in zh


def test_roles_and_write_permissions(client, world):
    body = {"name": "Not allowed", "kind": "other"}
    for who in ("analyst", "auditor", "a", "partner"):
        assert client.post("/api/v1/organisations", json=body, headers=world.auth(who)).status_code == 403, who
    # A constituent may maintain its own organisation's contacts, not another's, and not its networks.
    a = world.auth("a")
    assert client.post(f"/api/v1/organisations/{world.org_a}/contacts", json={"email": "new@alpha.example"},
                       headers=a).status_code == 201
    assert client.post(f"/api/v1/organisations/{world.org_a}/networks", json={"cidr": "192.0.2.0/24"},
                       headers=a).status_code == 403
    assert client.post(f"/api/v1/organisations/{world.org_b}/contacts", json={"email": "x@bravo.example"},
                       headers=a).status_code == 404


def test_users_api(client, world):
    admin = world.auth("admin")
    created = client.post("/api/v1/users", json={"email": "New@Test.Example", "role": "constituent",
                                                 "org_ids": [world.org_a], "password": "long-enough-pw"},
                          headers=admin)
    assert created.status_code == 201 and created.json()["email"] == "new@test.example"
    uid = created.json()["id"]
    assert client.get(f"/api/v1/users/{uid}", headers=admin).json()["org_ids"] == [world.org_a]
    bad = client.post("/api/v1/users", json={"email": "x@test.example", "role": "constituent"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "org"
    dup = client.post("/api/v1/users", json={"email": "new@test.example", "role": "admin"}, headers=admin)
    assert dup.status_code == 422
    assert len(client.get("/api/v1/users", headers=admin).json()) == 8
    assert client.get("/api/v1/users", headers=world.auth("analyst")).status_code == 403
    assert client.patch(f"/api/v1/users/{uid}", json={"role": "auditor"}, headers=world.auth("coordinator")
                        ).status_code == 403
    assert client.patch(f"/api/v1/users/{uid}", json={"timezone": "Mars/Base"}, headers=admin).status_code == 422


def test_audit_api(client, world):
    entries = client.get("/api/v1/audit", params={"entity": "organisations"}, headers=world.auth("auditor")).json()
    assert len(entries) == 4 and entries[0]["action"] == "create"
    assert client.get("/api/v1/audit/verify", headers=world.auth("auditor")).json()["ok"] is True
    assert client.get("/api/v1/audit", headers=world.auth("coordinator")).status_code == 200
    assert client.get("/api/v1/audit", headers=world.auth("analyst")).status_code == 403


def test_healthz_and_metrics(app, anon):
    from fastapi.testclient import TestClient

    assert anon.get("/healthz").json()["status"] == "ok"
    anon.get("/login")
    with TestClient(app, client=("127.0.0.1", 50000)) as local:  # /metrics answers loopback (no token set)
        metrics = local.get("/metrics")
    assert metrics.status_code == 200 and "commonwatch_http_requests_total" in metrics.text
    assert 'route="/login"' in metrics.text


def test_unknown_routes_are_404(anon, world):
    assert anon.get("/api/v1/nothing-here").status_code == 404
    page = anon.get("/nothing-here")
    assert page.status_code == 404 and "Not found" in page.text
