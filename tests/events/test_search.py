"""The query builder on SQLite and PostgreSQL: every filter selects exactly the right events,
tenancy holds, keyset pages cover a selection without duplicates or gaps, statistics add up."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest

from commonwatch.access.principal import Principal, Role
from commonwatch.constituency import services as registry
from commonwatch.db import make_sessionmaker, session_scope
from commonwatch.errors import Invalid
from commonwatch.events import search, stats
from commonwatch.events.models import Event
from commonwatch.events.store import sql
from commonwatch.events.store.sql import SqlEventStore
from tests.events.eventdata import SEVERITIES, insert_events, principals, spread, stored_ids

END = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture
def store(any_engine):
    """Orgs A, B and a partner, 600 events (a third sharing their time with another), principals."""
    factory = make_sessionmaker(any_engine)
    with session_scope(factory, actor="test") as s:
        a = registry.create_org(s, {"name": "A", "kind": "network-operator", "sector": "telecom"}).id
        b = registry.create_org(s, {"name": "B", "kind": "cii-operator", "sector": "energy"}).id
        p = registry.create_org(s, {"name": "P", "kind": "partner-cert", "country": "DE"}).id
        s.flush()
        rows = spread(600, end=END, org_ids=[a, b, None])
        for i, row in enumerate(rows):
            if i % 10 == 4:
                row["partner_org_id"] = p
        insert_events(s, rows, "sql")
        ids = stored_ids(s, rows, "sql")
    for row in rows:
        row["id"] = ids[row["event_key"]]
    who = principals(a, b, p)
    return {"factory": factory, "rows": rows, "a": a, "b": b, "p": p, "who": who, "engine": any_engine}


def _in(net: str):
    network = ipaddress.ip_network(net)
    return lambda r: ipaddress.ip_address(r["source_ip"]) in network


def _cases(store) -> list[tuple[dict[str, str], object]]:
    a = store["a"]
    t0 = END - timedelta(minutes=30)
    return [
        ({"type": "phishing"}, lambda r: r["classification_type"] == "phishing"),
        ({"taxonomy": "malicious-code"}, lambda r: r["classification_taxonomy"] == "malicious-code"),
        ({"feed": "urlhaus"}, lambda r: r["feed_name"] == "urlhaus"),
        ({"feed": "shadowserver*"}, lambda r: r["feed_name"].startswith("shadowserver")),
        ({"ip": "198.51.101.0/24"}, _in("198.51.101.0/24")),
        ({"ip": "198.51.100.7"}, lambda r: r["source_ip"] == "198.51.100.7"),
        ({"ip": "::ffff:198.51.100.7"}, lambda r: r["source_ip"] == "198.51.100.7"),
        ({"ip": "2001:db8:3::/48"}, lambda r: ":" in r["source_ip"] and _in("2001:db8:3::/48")(r)),
        ({"ip": "2001:db8::/32"}, lambda r: ":" in r["source_ip"]),
        ({"ip": "0.0.0.0/0"}, lambda r: "." in r["source_ip"]),
        ({"asn": "AS64501"}, lambda r: r["source_asn"] == 64501),
        ({"country": "de"}, lambda r: r["source_cc"] == "DE"),
        ({"severity": "high"}, lambda r: r["severity"] == "high"),
        ({"min_severity": "high"}, lambda r: r["severity"] in ("high", "critical")),
        ({"tlp": "amber+strict"}, lambda r: r["tlp"] == "AMBER+STRICT"),
        ({"tlp": "white"}, lambda r: r["tlp"] == "CLEAR"),
        ({"org": str(a)}, lambda r: r["org_id"] == a),
        ({"org": "none"}, lambda r: r["org_id"] is None),
        ({"sector": "telecom"}, lambda r: r["constituent_sector"] == "telecom"),
        ({"cii": "yes"}, lambda r: r["constituent_cii"]),
        ({"cii": "false"}, lambda r: not r["constituent_cii"]),
        ({"from": "2026-11-25T09:30:00+08:00"}, lambda r: r["time_source"] >= t0),
        ({"to": "2026-11-25T01:30:00Z"}, lambda r: r["time_source"] < t0),
        ({"from": "2026-11-25T01:00:00", "to": "2026-11-25T01:30:00"},
         lambda r: END - timedelta(hours=1) <= r["time_source"] < t0),
        ({"to": "2026-11-24"}, lambda r: r["time_source"] < datetime(2026, 11, 25, tzinfo=UTC)),
        ({"type": "scanner", "country": "CN", "min_severity": "medium"},
         lambda r: r["classification_type"] == "scanner" and r["source_cc"] == "CN"
         and r["severity"] in ("medium", "high", "critical")),
    ]


def _ids(session, principal, f) -> list[int]:
    stmt = sql.selection(principal, f, Event.id).order_by(*sql.NEWEST_FIRST)
    return list(session.scalars(stmt))


def test_every_filter_selects_exactly_its_events(store):
    staff = store["who"]["staff"]
    rows = store["rows"]
    with store["factory"]() as session:
        for params, predicate in _cases(store):
            expected = {r["id"] for r in rows if predicate(r)}
            got = _ids(session, staff, search.parse_filter(params))
            assert len(got) == len(set(got)), params
            assert set(got) == expected, params
            assert expected, f"the case {params} selects nothing; it would prove nothing"


def test_tenancy_limits_every_selection(store):
    rows, who = store["rows"], store["who"]
    with store["factory"]() as session:
        everything = search.EventFilter()
        assert set(_ids(session, who["a"], everything)) == {r["id"] for r in rows if r["org_id"] == store["a"]}
        assert set(_ids(session, who["b"], everything)) == {r["id"] for r in rows if r["org_id"] == store["b"]}
        assert set(_ids(session, who["partner"], everything)) == {
            r["id"] for r in rows if r["partner_org_id"] == store["p"]}
        assert _ids(session, who["nobody"], everything) == []
        # A filter naming another tenant's organisation finds nothing, not B's events.
        assert _ids(session, who["a"], search.parse_filter({"org": str(store["b"])})) == []
        assert SqlEventStore(session).count_capped(who["a"], search.parse_filter({"org": str(store["b"])})) == (0, True)


def _walk(session, principal, f, limit):
    seen, cursor, pages = [], None, 0
    while True:
        page = SqlEventStore(session).search_page(principal, f, limit=limit, after=cursor, count=False)
        seen.extend(e.id for e in page.items)
        pages += 1
        if page.next_cursor is None:
            return seen, pages, page
        cursor = page.next_cursor


def test_keyset_pages_cover_the_selection_in_order_both_ways(store):
    rows = store["rows"]
    staff = store["who"]["staff"]
    expected = [r["id"] for r in sorted(rows, key=lambda r: (r["time_source"], r["id"]), reverse=True)]
    with store["factory"]() as session:
        seen, pages, last = _walk(session, staff, search.EventFilter(), limit=7)
        assert seen == expected  # order, no duplicate, no gap, across ties of time_source
        assert pages == -(-len(rows) // 7)
        # Walk back from the last page with the `before` cursors: the same rows, reversed page by page.
        back, page = list(reversed([e.id for e in last.items])), last
        while page.prev_cursor:
            page = SqlEventStore(session).search_page(staff, search.EventFilter(), limit=7, before=page.prev_cursor,
                                      count=False)
            back.extend(reversed([e.id for e in page.items]))
        assert back == list(reversed(expected))
        # A filtered walk too, as constituent A.
        f = search.parse_filter({"min_severity": "medium"})
        seen_a, _pages, _last = _walk(session, store["who"]["a"], f, limit=11)
        assert seen_a == [i for i in expected if any(r["id"] == i and r["org_id"] == store["a"]
                                                     and r["severity"] in SEVERITIES[2:] for r in rows)]


def test_counts_are_exact_up_to_the_cap(store):
    staff = store["who"]["staff"]
    with store["factory"]() as session:
        assert SqlEventStore(session).count_capped(staff, search.EventFilter()) == (600, True)
        assert SqlEventStore(session).count_capped(staff, search.EventFilter(), cap=100) == (100, False)
        page = SqlEventStore(session).search_page(staff, search.parse_filter({"type": "phishing"}), limit=5)
        assert (page.total, page.total_exact) == (120, True)


def test_bad_cursor_and_limits_name_their_field(store):
    staff = store["who"]["staff"]
    with store["factory"]() as session:
        for kwargs, field in (({"after": "not-a-cursor"}, "cursor"), ({"before": "%%%"}, "before"),
                              ({"limit": 0}, "limit"), ({"limit": 5000}, "limit"),
                              ({"after": search.Position(END, 1).encode(), "before": "x"}, "before")):
            with pytest.raises(Invalid) as err:
                SqlEventStore(session).search_page(staff, search.EventFilter(), **kwargs)
            assert err.value.errors[0].field == field


def test_statistics_count_by_dimension_for_the_viewer(store):
    rows, who = store["rows"], store["who"]
    since = END - timedelta(hours=2)
    window = [r for r in rows if since <= r["time_source"] < END + timedelta(seconds=1)]
    with store["factory"]() as session:
        by_type = SqlEventStore(session).counts(who["staff"], ["type"], since=since, until=END + timedelta(seconds=1))
        assert {r.key[0]: r.count for r in by_type} == _tally(window, "classification_type")
        assert [r.count for r in by_type] == sorted((r.count for r in by_type), reverse=True)
        own = [r for r in window if r["org_id"] == store["a"]]
        by_sev = SqlEventStore(session).counts(who["a"], ["severity"], since=since, until=END + timedelta(seconds=1))
        assert {r.key[0]: r.count for r in by_sev} == _tally(own, "severity")
        assert [r.key[0] for r in stats.severity_order(by_sev)] == [
            s for s in reversed(SEVERITIES) if s in _tally(own, "severity")]
        by_org_day = SqlEventStore(session).counts(who["staff"], ["org", "day"])
        assert sum(r.count for r in by_org_day) == len(rows)
        days = {r.key[1] for r in by_org_day}
        assert days == {r["time_source"].date().isoformat() for r in rows}
        assert stats.org_names(session, who["a"], [store["a"], store["b"], None]) == {store["a"]: "A"}
        with pytest.raises(Invalid):
            SqlEventStore(session).counts(who["staff"], ["colour"])


def _tally(rows, column) -> dict:
    out: dict = {}
    for r in rows:
        out[r[column]] = out.get(r[column], 0) + 1
    return out


def test_split_and_plain_tenancy_paths_agree(store):
    """Constituents' pages are found per organisation (see sql._branches); the result must be the
    plain tenancy condition's, with an event both owned and routed to the principal listed once."""
    rows, a, p = store["rows"], store["a"], store["p"]
    expected = [r["id"] for r in sorted(rows, key=lambda r: (r["time_source"], r["id"]), reverse=True)
                if r["org_id"] == a or r["partner_org_id"] == p]
    assert any(r["org_id"] == a and r["partner_org_id"] == p for r in rows)
    both = Principal(6, "both@x", Role.CONSTITUENT, frozenset({a, p}))
    many = Principal(7, "many@x", Role.CONSTITUENT, frozenset({a, p, *range(10_000, 10_000 + sql.SPLIT_MAX)}))
    assert sql._branches(both) is not None and sql._branches(many) is None
    with store["factory"]() as session:
        for principal in (both, many):
            seen, _pages, _last = _walk(session, principal, search.EventFilter(), limit=13)
            assert seen == expected, principal.email


def test_dense_filters_select_the_same_events_by_either_plan(store):
    """``walk_time`` only changes how the database finds a page, never which events it holds."""
    staff, rows = store["who"]["staff"], store["rows"]
    with store["factory"]() as session:
        for params, _predicate in _cases(store):
            f = search.parse_filter(params)
            by_index = SqlEventStore(session).ordered(staff, f, limit=1000, dense=False)
            by_time = SqlEventStore(session).ordered(staff, f, limit=1000, dense=True)
            assert [r.id for r in by_index] == [r.id for r in by_time], params
        assert SqlEventStore(session).is_dense(staff, search.parse_filter({"country": "CN"})) is False
        small = SqlEventStore(session).count_capped(staff, search.parse_filter({"country": "CN"}), cap=50)
        assert small == (50, False) and len(rows) > 50
