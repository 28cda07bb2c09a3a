"""Registry pages: a coordinator registers an organisation with a network and a contact; a
constituent sees only its own; errors appear next to the field; both languages."""

import re

from tests.conftest import csrf_of, sign_in


def test_coordinator_registers_an_organisation_with_network_and_contact(client, world):
    csrf = sign_in(client, world.users["coordinator"])
    resp = client.post("/organisations", data={"csrf_token": csrf, "name": "Kilo Hospital", "kind": "cii-operator",
                                                "sector": "public-services", "country": "CN", "region": "Hunan"},
                       follow_redirects=False)
    assert resp.status_code == 303
    org_url = resp.headers["location"]
    page = client.get(org_url)
    assert "Organisation registered." in page.text and "Kilo Hospital" in page.text
    org_id = int(org_url.rsplit("/", 1)[1])
    assert client.post(f"/organisations/{org_id}/networks", data={"csrf_token": csrf, "cidr": "192.0.2.0/25"},
                       follow_redirects=False).status_code == 303
    assert client.post(f"/organisations/{org_id}/contacts",
                       data={"csrf_token": csrf, "email": "sec@kilo.example", "role": "security",
                             "language": "zh-CN", "notices": ["early-warning", "incidents"]},
                       follow_redirects=False).status_code == 303
    page = client.get(f"/organisations/{org_id}").text
    assert "192.0.2.0/25" in page and "sec@kilo.example" in page


def test_errors_are_shown_next_to_the_field(client, world):
    csrf = sign_in(client, world.users["coordinator"])
    resp = client.post(f"/organisations/{world.org_a}/networks", data={"csrf_token": csrf, "cidr": "10.1.2.3/8"})
    assert resp.status_code == 422
    error = re.search(r'<p class="error" id="err-cidr" role="alert">([^<]+)</p>', resp.text)
    assert error and "did you mean 10.0.0.0/8" in error.group(1)
    resp = client.post("/organisations", data={"csrf_token": csrf, "name": "", "kind": "cii-operator",
                                                "sector": "none", "country": "China"})
    assert resp.status_code == 422
    assert 'id="err-name"' in resp.text and 'id="err-country"' in resp.text


def test_errors_in_chinese(client, world):
    csrf = sign_in(client, world.users["coordinator"])
    client.get("/lang/zh-CN")
    resp = client.post(f"/organisations/{world.org_a}/asns", data={"csrf_token": csrf, "asn": "ASX"})
    assert resp.status_code == 422 and "不是 AS 号" in resp.text and "网段" in resp.text


def test_constituent_sees_only_its_own_organisations(client, world):
    sign_in(client, world.users["a"])
    listing = client.get("/organisations").text
    assert "Alpha Telecom" in listing and "SECRET-B" not in listing
    assert client.get(f"/organisations/{world.org_b}").status_code == 404
    own = client.get(f"/organisations/{world.org_a}").text
    assert "Add network" not in own and "Add a contact" in own
    assert client.get("/organisations/new").status_code == 403
    assert client.get("/constituency/export?format=json").json()["organisations"][0]["name"].startswith("Alpha")


def test_constituent_edits_its_contact(client, world):
    csrf = sign_in(client, world.users["a"])
    cid = world.ids["contact_a"]
    assert "noc@alpha.example" in client.get(f"/contacts/{cid}/edit").text
    resp = client.post(f"/contacts/{cid}/edit", data={"csrf_token": csrf, "email": "noc@alpha.example",
                                                      "language": "en", "role": "abuse", "active": "1",
                                                      "notices": ["reports"]}, follow_redirects=False)
    assert resp.status_code == 303
    assert client.get(f"/contacts/{world.ids['contact_b']}/edit").status_code == 404


def test_pages_in_chinese(client, world):
    sign_in(client, world.users["coordinator"])
    client.get("/lang/zh-CN")
    page = client.get(f"/organisations/{world.org_b}").text
    assert "关键信息基础设施运营者" in page and "能源" in page and "联系人" in page
    assert "单位" in client.get("/organisations").text
    assert "概览" in client.get("/").text


def test_overlaps_and_import_pages(client, world):
    csrf = sign_in(client, world.users["coordinator"])
    client.post(f"/organisations/{world.org_a}/networks", data={"csrf_token": csrf, "cidr": "203.0.113.0/28"})
    page = client.get("/constituency/overlaps").text
    assert "203.0.113.0/24" in page and "203.0.113.0/28" in page
    files = {"file": ("orgs.csv", b"name,kind\nLima Port,other\nMike,bad-kind\n", "text/csv")}
    resp = client.post("/constituency/import", data={"csrf_token": csrf}, files=files)
    assert resp.status_code == 422 and "line 3" in resp.text and "Nothing was imported" in resp.text
    resp = client.post("/constituency/import", data={"csrf_token": csrf, "partial": "1"}, files=files)
    assert resp.status_code == 200 and "1 created" in resp.text


def test_account_page_tokens(client, world):
    csrf = sign_in(client, world.users["a"])
    page = client.post("/account/tokens", data={"csrf_token": csrf, "name": "cron", "expires_days": "30"})
    secret = re.search(r'<pre id="new-token">(cw_[^<]+)</pre>', page.text).group(1)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert secret not in client.get("/account").text
    bad = client.post("/account/tokens", data={"csrf_token": csrf, "expires_days": "-3"})
    assert bad.status_code == 422


def test_admin_creates_a_constituent_user(client, world):
    csrf = sign_in(client, world.users["admin"])
    resp = client.post("/admin/users", data={"csrf_token": csrf, "email": "ops@alpha.example", "role": "constituent",
                                             "org": [str(world.org_a)], "password": "long-enough-pw",
                                             "language": "zh-CN"}, follow_redirects=False)
    assert resp.status_code == 303
    resp = client.post("/admin/users", data={"csrf_token": csrf, "email": "orphan@x.example", "role": "partner",
                                             "password": "long-enough-pw"})
    assert resp.status_code == 422 and 'role="alert"' in resp.text
    assert client.get("/audit?verify=1").status_code == 200
    sign_in(client, "ops@alpha.example", "long-enough-pw")
    assert "Alpha Telecom" in client.get("/organisations").text


def test_auditor_reads_the_audit_log_and_constituents_cannot(client, world):
    sign_in(client, world.users["auditor"])
    page = client.get("/audit?verify=1").text
    assert "The chain is intact" in page
    csrf_of(client)
    sign_in(client, world.users["a"])
    assert client.get("/audit").status_code == 403
