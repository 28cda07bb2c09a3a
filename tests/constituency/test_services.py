"""Registry services on both engines: byte-range lookups, most specific wins, overlaps, search."""

import pytest

from commonwatch.access.principal import SYSTEM, Principal, Role
from commonwatch.constituency import services as registry
from commonwatch.db import make_sessionmaker, session_scope


@pytest.fixture
def orgs(any_engine, clock):
    factory = make_sessionmaker(any_engine)
    with session_scope(factory) as s:
        isp = registry.create_org(s, {"name": "ISP", "kind": "network-operator"})
        cust = registry.create_org(s, {"name": "Customer", "kind": "other", "parent_id": isp.id})
        other = registry.create_org(s, {"name": "Other", "kind": "other"})
        for org, cidrs in ((isp, ["10.0.0.0/8", "2001:db8::/32", "0.0.0.0/0"]),
                           (cust, ["10.20.0.0/16", "2001:db8:20::/48"]), (other, ["10.20.0.0/16"])):
            for cidr in cidrs:
                registry.add_network(s, org, cidr)
        registry.add_domain(s, cust, "cust.example")
        registry.add_domain(s, isp, "isp.example")
        ids = {"isp": isp.id, "cust": cust.id, "other": other.id}
    return factory, ids


def test_lookup_most_specific_on_both_engines(orgs):
    factory, ids = orgs
    with factory() as s:
        hits = {m.org.id for m in registry.lookup(s, SYSTEM, ip="10.20.3.4")}
        assert hits == {ids["cust"], ids["other"]}  # equal prefixes both match
        assert [m.org.id for m in registry.lookup(s, SYSTEM, ip="10.99.0.1")] == [ids["isp"]]
        assert [m.org.id for m in registry.lookup(s, SYSTEM, ip="8.8.8.8")] == [ids["isp"]]  # 0.0.0.0/0
        assert [m.org.id for m in registry.lookup(s, SYSTEM, ip="2001:db8:20::1")] == [ids["cust"]]
        assert [m.org.id for m in registry.lookup(s, SYSTEM, ip="2001:db8:ffff::1")] == [ids["isp"]]
        assert registry.lookup(s, SYSTEM, ip="2001:db9::1") == []
        assert [m.org.id for m in registry.lookup(s, SYSTEM, domain="a.b.cust.example")] == [ids["cust"]]
        assert registry.lookup(s, SYSTEM, domain="notcust.example") == []


def test_lookup_respects_tenancy(orgs):
    factory, ids = orgs
    member = Principal(user_id=99, email="m@x.example", role=Role.CONSTITUENT, org_ids=frozenset({ids["other"]}))
    with factory() as s:
        assert [m.org.id for m in registry.lookup(s, member, ip="10.20.3.4")] == [ids["other"]]
        assert registry.lookup(s, member, ip="10.99.0.1") == []


def test_overlaps_on_both_engines(orgs):
    factory, ids = orgs
    with factory() as s:
        pairs = {(o.outer.cidr, o.outer.org_id, o.inner.cidr, o.inner.org_id)
                 for o in registry.find_overlaps(s, SYSTEM)}
    assert ("10.0.0.0/8", ids["isp"], "10.20.0.0/16", ids["cust"]) in pairs
    assert ("10.20.0.0/16", ids["cust"], "10.20.0.0/16", ids["other"]) in pairs
    assert ("2001:db8::/32", ids["isp"], "2001:db8:20::/48", ids["cust"]) in pairs
    assert not any(o == i for _a, o, _b, i in pairs)


def test_search_by_address_and_name(orgs):
    factory, ids = orgs
    with factory() as s:
        rows, total = registry.search_orgs(s, SYSTEM, registry.OrgFilter(q="2001:db8:20::5"))
        assert {o.id for o in rows} == {ids["isp"], ids["cust"]} and total == 2
        rows, _ = registry.search_orgs(s, SYSTEM, registry.OrgFilter(q="custom"))
        assert [o.name for o in rows] == ["Customer"]
