"""The header's global search: each kind of query goes to the right page or lists hits across
capabilities, and never shows what the searcher may not see."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest

from commonwatch.db import session_scope
from commonwatch.incidents import services as svc
from commonwatch.incidents.rules import load_incident_rules
from commonwatch.web.globalsearch import parse_query
from tests.conftest import sign_in
from tests.events.eventdata import insert_events
from tests.incidents.conftest import principal, report


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("198.51.100.7", "ip", ipaddress.ip_address("198.51.100.7")),
    (" 2001:db8::1 ", "ip", ipaddress.ip_address("2001:db8::1")),
    ("203.0.113.0/24", "network", ipaddress.ip_network("203.0.113.0/24")),
    ("AS64501", "asn", 64501), ("as 4134", "asn", 4134),
    ("cve-2024-3094", "cve", "CVE-2024-3094"),
    ("inc-2026-000001", "ref", "INC-2026-000001"), ("AR-2026-0003", "ref", "AR-2026-0003"),
    ("Evil.Example.COM", "domain", "evil.example.com"),
    ("https://evil.example/login", "url", "https://evil.example/login"),
    ("D41D8CD98F00B204E9800998ECF8427E", "hash", "d41d8cd98f00b204e9800998ecf8427e"),
    ("Alpha Telecom", "text", "Alpha Telecom"), ("alpha", "text", "alpha"),
    ("10.0.0.1/8", "text", "10.0.0.1/8"),  # host bits set: not a network, searched as text
])
def test_queries_are_classified_by_the_indicator_value_rules(text, kind, value):
    q = parse_query(text)
    assert (q.kind, q.value) == (kind, value)


def _incident(app, world, clock, key, title):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        incident = svc.file_incident(s, principal(s, world, key), report(title=title), now=clock.now(),
                                     rules=load_incident_rules(None))
        return incident.id, incident.ref


def test_a_reference_goes_to_its_case_only_for_those_who_may_see_it(app, client, world, clock):
    a_id, a_ref = _incident(app, world, clock, "a", "Alpha outage")
    _b_id, b_ref = _incident(app, world, clock, "b", "SECRET-B breach")
    sign_in(client, world.users["a"])
    own = client.get("/search", params={"q": a_ref.lower()}, follow_redirects=False)
    assert own.status_code == 303 and own.headers["location"] == f"/incidents/{a_id}"
    other = client.get("/search", params={"q": b_ref})
    assert other.status_code == 200 and "SECRET-B" not in other.text and b_ref in other.text  # the query echoed
    assert "Nothing found" in other.text


def test_an_address_lists_events_organisations_within_tenancy(app, client, world, clock):
    from tests.events.eventdata import event_row

    rows = [event_row(i, at=clock.now() - timedelta(minutes=i), org_id=world.org_a) for i in range(3)]
    rows += [event_row(10 + i, at=clock.now() - timedelta(minutes=i), org_id=world.org_b, key_prefix="b")
             for i in range(4)]
    for r in rows[:3]:
        r["source_ip"] = "198.51.100.9"
    for r in rows[3:]:
        r["source_ip"] = "203.0.113.9"
    for r in rows:
        from commonwatch.net import ip_key

        r["source_ip_bin"] = ip_key(r["source_ip"])
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, rows)
    sign_in(client, world.users["a"])
    mine = client.get("/search", params={"q": "198.51.100.9"})
    assert mine.status_code == 200
    assert "events: 3" in mine.text and "/events?ip=198.51.100.9" in mine.text
    assert "Alpha Telecom" in mine.text  # the organisation whose network holds it
    theirs = client.get("/search", params={"q": "203.0.113.9"})
    assert "events:" not in theirs.text and "SECRET-B" not in theirs.text
    asn = client.get("/search", params={"q": "AS64501"})
    assert "SECRET-B" not in asn.text


def test_staff_find_organisations_by_name_and_asn_in_chinese_too(client, world):
    sign_in(client, world.users["coordinator"])
    by_name = client.get("/search", params={"q": "bravo"})
    assert by_name.status_code == 200 and "Bravo Grid SECRET-B" in by_name.text
    by_asn = client.get("/search", params={"q": "AS64501"})
    assert f"/organisations/{world.org_b}" in by_asn.text
    client.get("/lang/zh-CN")
    zh = client.get("/search", params={"q": "nothing-like-this"})
    assert "没有找到" in zh.text and 'role="search"' in zh.text


def test_the_header_carries_the_search_box(client, world):
    sign_in(client, world.users["partner"])
    page = client.get("/")
    assert 'action="/search"' in page.text and 'name="q"' in page.text
