"""The vectorised matcher against a plain, obviously-correct lookup."""

from __future__ import annotations

import ipaddress

import numpy as np
import polars as pl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from commonwatch.constituency.index import (
    NO_ORG,
    build_index,
    build_index_from_arrays,
    load_index,
    lookup_ips,
    match_constituents,
    parse_ips,
)
from commonwatch.net import network_bounds
from tests.pipeline.helpers import seed_registry

ORGS = [(1, "network-operator", "telecom", "CN"), (2, "cii-operator", "energy", "CN"),
        (3, "government", "e-government", "CN"), (4, "partner-cert", "none", "DE"), (5, "other", "none", "CN")]


def _nets(cidrs_orgs):
    out = []
    for cidr, org in cidrs_orgs:
        net = ipaddress.ip_network(cidr)
        first, last = network_bounds(net)
        out.append((first, last, net.prefixlen, org))
    return out


def _brute(cidrs_orgs, ip: str) -> int:
    addr = ipaddress.ip_address(ip)
    # An IPv4-mapped IPv6 address is the IPv4 host it carries, as the pipeline reads it.
    addr = getattr(addr, "ipv4_mapped", None) or addr
    best = None
    for cidr, org in cidrs_orgs:
        net = ipaddress.ip_network(cidr)
        if addr.version == net.version and addr in net and (
                best is None or net.prefixlen > best[0] or (net.prefixlen == best[0] and org < best[1])):
            best = (net.prefixlen, org)
    return best[1] if best else NO_ORG


prefix4 = st.builds(lambda a, p: str(ipaddress.ip_network((a, p), strict=False)),
                    st.integers(0, 2**32 - 1), st.integers(8, 32))
prefix6 = st.builds(lambda a, p: str(ipaddress.ip_network((a, p), strict=False)),
                    st.integers(0, 2**128 - 1), st.integers(16, 128))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.one_of(prefix4, prefix6), st.integers(1, 5)), max_size=25),
       st.lists(st.one_of(st.integers(0, 2**32 - 1).map(lambda i: str(ipaddress.IPv4Address(i))),
                          st.integers(0, 2**128 - 1).map(lambda i: str(ipaddress.IPv6Address(i)))), max_size=30))
@example(nets=[("::/80", 1)], ips=["::ffff:1.2.3.4"])  # mapped: the IPv4 host, not the IPv6 network
@example(nets=[("1.2.3.0/24", 2)], ips=["::ffff:1.2.3.4", "::ffff:1.2.4.1"])
def test_longest_prefix_agrees_with_brute_force(nets, ips):
    # Probe the edges of every network too: that is where an off-by-one would hide.
    probes = list(ips)
    for cidr, _org in nets:
        net = ipaddress.ip_network(cidr)
        probes += [str(net.network_address), str(net.broadcast_address)]
    index = build_index(_nets(nets), [], [], ORGS)
    cols = parse_ips(pl.Series(probes, dtype=pl.String))
    found = lookup_ips(index, cols.ip4, cols.ip6)
    assert list(found) == [_brute(nets, ip) for ip in probes]


def test_asn_domain_and_partner_routing():
    nets = [("198.51.100.0/24", 1), ("203.0.113.0/25", 2), ("203.0.113.64/26", 3)]
    index = build_index(_nets(nets), [(64500, 1), (64501, 2), (64501, 5)],
                        [("eastgrid.example", 2), ("dispatch.eastgrid.example", 3)], ORGS)
    frame = pl.DataFrame({
        "source.ip": ["203.0.113.70", "203.0.113.5", None, None, "185.220.101.4", "192.0.2.1", "192.0.2.2"],
        "source.asn": [None, None, None, None, None, 64501, None],
        "source.fqdn": [None, None, "a.dispatch.eastgrid.example", "x.eastgrid.example.", None, None, "eastgrid.com"],
        "source.geolocation.cc": ["CN", "CN", "CN", "CN", "de", "CN", "US"]},
        schema_overrides={"source.asn": pl.Int64})
    out = match_constituents(frame, index)
    assert out["constituent.org_id"].to_list() == [3, 2, 3, 2, None, 2, None]
    assert out["constituent.partner_org_id"].to_list() == [None, None, None, None, 4, None, None]
    assert out["constituent.cii"].to_list() == [False, True, False, True, False, True, False]
    assert out["constituent.sector"].to_list()[:2] == ["e-government", "energy"]


def test_index_from_the_registry(engine, clock):
    orgs = seed_registry(engine, clock)
    from commonwatch.db import make_sessionmaker

    with make_sessionmaker(engine)() as session:
        index = load_index(session)
    assert index.partners == {"DE": orgs["partner_de"], "SG": orgs["partner_sg"]}
    assert index.home == {"CN"}
    cols = parse_ips(pl.Series(["203.0.113.65", "2001:db8:200::1", "10.0.0.1"]))
    assert list(lookup_ips(index, cols.ip4, cols.ip6)) == [orgs["dispatch"], orgs["bank"], NO_ORG]


def test_array_index_for_large_registries():
    starts = np.array([0x0A000000, 0x0A010000, 0x0B000000], dtype=np.int64)
    lengths = np.array([8, 16, 8])
    ends = starts + (1 << (32 - lengths)) - 1
    index = build_index_from_arrays(starts, ends, lengths, np.array([1, 2, 3]), ORGS)
    cols = parse_ips(pl.Series(["10.1.2.3", "10.2.0.0", "11.255.255.255", "12.0.0.0"]))
    assert list(lookup_ips(index, cols.ip4)) == [2, 1, 3, NO_ORG]


def test_the_slash24_table_agrees_with_the_search(monkeypatch):
    import commonwatch.constituency.index as index_module

    monkeypatch.setattr(index_module, "TABLE_MIN_RANGES", 1)
    rng = np.random.default_rng(7)
    lengths = rng.integers(8, 31, 3000)
    starts = rng.integers(0, 2**32, 3000) & ~((1 << (32 - lengths)) - 1)
    ends = starts + (1 << (32 - lengths)) - 1
    index = build_index_from_arrays(starts, ends, lengths, rng.integers(1, 50, 3000), ORGS)
    assert index.v4.table is not None
    # Probe every range's edges and their neighbours, plus random addresses.
    probes = np.concatenate([starts, ends, np.clip(starts - 1, 0, None), np.clip(ends + 1, None, 2**32 - 1),
                             rng.integers(0, 2**32, 20000)])
    q = pl.Series(probes.astype(np.uint32))
    assert (lookup_ips(index, q) == index.v4._search(probes.astype(np.int64))).all()
    cidrs = [(str(ipaddress.ip_network((int(s), int(p)))), 0) for s, p in zip(starts[:50], lengths[:50], strict=True)]
    assert cidrs  # and spot-check against the plain definition
    sample = [str(ipaddress.IPv4Address(int(x))) for x in probes[:200]]
    flat = index.v4._search(np.array([int(ipaddress.IPv4Address(s)) for s in sample], dtype=np.int64))
    assert list(lookup_ips(index, parse_ips(pl.Series(sample)).ip4)) == list(flat)
