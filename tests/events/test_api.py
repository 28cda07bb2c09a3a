"""/api/v1/events: filters, 422s naming the field, keyset pages through 10,000 events, one event,
statistics, and tenancy for constituents and partners."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import START


def _all_pages(client, headers, params, limit=1000):
    ids, cursor, pages = [], None, 0
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/events", params=query, headers=headers).json()
        ids.extend(item["id"] for item in body["items"])
        pages += 1
        if body["next_cursor"] is None:
            return ids, pages, body
        cursor = body["next_cursor"]


def test_pagination_through_10000_events_has_no_duplicates_or_gaps(client, world, events_of):
    rows = events_of(10_000, step=timedelta(seconds=20))
    headers = world.auth("analyst")
    ids, pages, last = _all_pages(client, headers, {})
    assert len(ids) == 10_000 and len(set(ids)) == 10_000
    assert set(ids) == {r["id"] for r in rows}
    assert pages == 10
    expected = [r["id"] for r in sorted(rows, key=lambda r: (r["time_source"], r["id"]), reverse=True)]
    assert ids == expected
    # And backwards from the last page with `before`.
    back, body = [i["id"] for i in last["items"]], last
    while body["prev_cursor"]:
        body = client.get("/api/v1/events", params={"before": body["prev_cursor"], "limit": 1000},
                          headers=headers).json()
        back = [i["id"] for i in body["items"]] + back
    assert back == expected
    first = client.get("/api/v1/events", headers=headers).json()
    assert first["total"] == 10_000 and first["total_exact"] is True and len(first["items"]) == 50
    assert first["prev_cursor"] is None


def test_constituent_pages_only_through_its_own_events(client, world, events_of):
    rows = events_of(3000, step=timedelta(seconds=30))
    ids, _pages, _last = _all_pages(client, world.auth("a"), {}, limit=500)
    own = {r["id"] for r in rows if r["org_id"] in (world.org_a, world.org_a_unit)}
    assert set(ids) == own and len(ids) == len(own)
    partner, _p, _l = _all_pages(client, world.auth("partner"), {}, limit=500)
    assert set(partner) == {r["id"] for r in rows if r["partner_org_id"] == world.partner}
    b_ids, _p, _l = _all_pages(client, world.auth("a"), {"org": str(world.org_b)})
    assert b_ids == []


FILTER_CASES = [
    ({"type": "c2-server"}, lambda r: r["classification_type"] == "c2-server"),
    ({"taxonomy": "fraud"}, lambda r: r["classification_taxonomy"] == "fraud"),
    ({"feed": "feodotracker"}, lambda r: r["feed_name"] == "feodotracker"),
    ({"ip": "198.51.102.0/24"}, lambda r: r["source_ip"].startswith("198.51.102.")),
    ({"ip": "198.51.100.10"}, lambda r: r["source_ip"] == "198.51.100.10"),
    ({"ip": "2001:db8:2::/48"}, lambda r: r["source_ip"].startswith("2001:db8:2:")),
    ({"asn": "64503"}, lambda r: r["source_asn"] == 64503),
    ({"country": "SG"}, lambda r: r["source_cc"] == "SG"),
    ({"severity": "critical"}, lambda r: r["severity"] == "critical"),
    ({"min_severity": "medium"}, lambda r: r["severity"] in ("medium", "high", "critical")),
    ({"tlp": "RED"}, lambda r: r["tlp"] == "RED"),
    ({"tlp": "CLEAR"}, lambda r: r["tlp"] == "CLEAR"),
    ({"org": "none"}, lambda r: r["org_id"] is None),
    ({"sector": "telecom"}, lambda r: r["constituent_sector"] == "telecom"),
    ({"cii": "true"}, lambda r: r["constituent_cii"]),
    ({"from": "2026-11-25T09:00:00+08:00", "to": "2026-11-25T09:30:00+08:00"},
     lambda r: START - timedelta(hours=1) <= r["time_source"] < START - timedelta(minutes=30)),
]


def test_each_filter(client, world, events_of):
    rows = events_of(400)
    for params, predicate in FILTER_CASES:
        expected = {r["id"] for r in rows if predicate(r)}
        assert expected, params
        body = client.get("/api/v1/events", params={**params, "limit": 1000}, headers=world.auth("admin")).json()
        assert {i["id"] for i in body["items"]} == expected, params
        assert body["total"] == len(expected), params


def test_org_filter_for_staff_and_constituents(client, world, events_of):
    rows = events_of(200)
    body = client.get("/api/v1/events", params={"org": world.org_a_unit, "limit": 500},
                      headers=world.auth("a")).json()
    assert {i["id"] for i in body["items"]} == {r["id"] for r in rows if r["org_id"] == world.org_a_unit}


BAD_VALUES = [
    ({"from": "yesterday"}, "from"),
    ({"to": "2026-13-01"}, "to"),
    ({"from": "2026-11-25T10:00:00Z", "to": "2026-11-25T09:00:00Z"}, "to"),
    ({"org": "alpha"}, "org"),
    ({"cii": "maybe"}, "cii"),
    ({"type": "Bad Type!"}, "type"),
    ({"taxonomy": "x" * 80}, "taxonomy"),
    ({"feed": "<script>"}, "feed"),
    ({"ip": "198.51.100.300"}, "ip"),
    ({"ip": "198.51.100.1/24"}, "ip"),
    ({"ip": "2001:db8::/129"}, "ip"),
    ({"asn": "AS-one"}, "asn"),
    ({"asn": "0"}, "asn"),
    ({"country": "CHN"}, "country"),
    ({"severity": "severe"}, "severity"),
    ({"min_severity": "urgent"}, "min_severity"),
    ({"tlp": "YELLOW"}, "tlp"),
    ({"cursor": "garbage"}, "cursor"),
]


def test_invalid_filter_values_answer_422_naming_the_field(client, world):
    for params, field in BAD_VALUES:
        for path in ("/api/v1/events", "/api/v1/events/export", "/api/v1/events/stats"):
            if field == "cursor" and path != "/api/v1/events":
                continue
            resp = client.get(path, params=params, headers=world.auth("analyst"))
            assert resp.status_code == 422, (path, params, resp.text)
            detail = resp.json()["detail"]
            assert [d["loc"] for d in detail] == [["query", field]], (path, params)
            assert detail[0]["msg"]


def test_several_bad_filters_are_all_reported(client, world):
    resp = client.get("/api/v1/events", params={"ip": "nope", "asn": "x", "limit": 10}, headers=world.auth("admin"))
    assert resp.status_code == 422
    assert sorted(d["loc"][1] for d in resp.json()["detail"]) == ["asn", "ip"]
    assert client.get("/api/v1/events", params={"limit": 0}, headers=world.auth("admin")).status_code == 422


def test_one_event_and_its_fields(client, world, events_of):
    rows = events_of(30)
    row = next(r for r in rows if r["org_id"] == world.org_a)
    body = client.get(f"/api/v1/events/{row['id']}", headers=world.auth("a")).json()
    assert body["id"] == row["id"]
    assert body["source.ip"] == row["source_ip"]
    assert body["time.source"] == row["time_source"].isoformat()
    assert body["classification.type"] == row["classification_type"]
    assert body["extra"] == row["extra"]
    assert body["constituent.org_id"] == world.org_a
    assert body["event.key"] == row["event_key"]
    assert body["tlp"] == row["tlp"] and body["severity"] == row["severity"]


def test_another_tenants_event_is_not_found(client, world, events_of):
    rows = events_of(30)
    b_row = next(r for r in rows if r["org_id"] == world.org_b and not r["partner_org_id"])
    routed = next(r for r in rows if r["partner_org_id"] == world.partner)
    assert client.get(f"/api/v1/events/{b_row['id']}", headers=world.auth("a")).status_code == 404
    assert client.get(f"/api/v1/events/{b_row['id']}", headers=world.auth("partner")).status_code == 404
    assert client.get(f"/api/v1/events/{routed['id']}", headers=world.auth("partner")).status_code == 200
    assert client.get("/api/v1/events/999999", headers=world.auth("admin")).status_code == 404
    assert client.get(f"/api/v1/events/{b_row['id']}", headers=world.auth("b")).status_code == 200


def test_sign_in_is_required(anon, world):
    for path in ("/api/v1/events", "/api/v1/events/1", "/api/v1/events/export", "/api/v1/events/stats"):
        assert anon.get(path).status_code == 401, path


def test_statistics_by_type_and_severity(client, world, events_of):
    rows = events_of(300)
    day = [r for r in rows if r["time_source"] > START - timedelta(hours=24)]
    body = client.get("/api/v1/events/stats", params={"by": "type,severity"}, headers=world.auth("admin")).json()
    assert body["total"] == len(day)
    pairs = {(r["key"]["type"], r["key"]["severity"]): r["count"] for r in body["rows"]}
    expected: dict = {}
    for r in day:
        key = (r["classification_type"], r["severity"])
        expected[key] = expected.get(key, 0) + 1
    assert pairs == expected
    own = client.get("/api/v1/events/stats", params={"by": "org"}, headers=world.auth("a")).json()
    assert {r["key"]["org"] for r in own["rows"]} <= {world.org_a, world.org_a_unit}
    bad = client.get("/api/v1/events/stats", params={"by": "colour"}, headers=world.auth("a"))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "by"]


def test_openapi_documents_the_filters(client):
    spec = client.get("/api/v1/openapi.json").json()
    names = {p["name"] for p in spec["paths"]["/api/v1/events"]["get"]["parameters"]}
    assert {"from", "to", "org", "ip", "asn", "country", "severity", "min_severity", "tlp", "cursor",
            "before", "limit"} <= names


def test_sorted_pages_by_source_address_for_a_constituent_both_ways(client, world, events_of):
    from commonwatch.net import ip_key

    rows = events_of(600, step=timedelta(seconds=30))
    own = [r for r in rows if r["org_id"] in (world.org_a, world.org_a_unit)]
    expected = [r["id"] for r in sorted(own, key=lambda r: (ip_key(r["source_ip"]) if r["source_ip"] else b"",
                                                            r["id"]), reverse=True)]
    ids, _pages, last = _all_pages(client, world.auth("a"), {"sort": "source"}, limit=40)
    assert ids == expected
    back, body = [i["id"] for i in last["items"]], last
    while body["prev_cursor"]:
        body = client.get("/api/v1/events", params={"before": body["prev_cursor"], "limit": 40, "sort": "source"},
                          headers=world.auth("a")).json()
        back = [i["id"] for i in body["items"]] + back
    assert back == expected
    bad = client.get("/api/v1/events", params={"sort": "colour", "dir": "sideways"}, headers=world.auth("a"))
    assert bad.status_code == 422
    assert sorted(d["loc"][1] for d in bad.json()["detail"]) == ["dir", "sort"]
    # A cursor of the time order does not continue a sorted walk.
    newest = client.get("/api/v1/events", params={"limit": 5}, headers=world.auth("a")).json()
    wrong = client.get("/api/v1/events", params={"cursor": newest["next_cursor"], "sort": "feed"},
                       headers=world.auth("a"))
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["query", "cursor"]
