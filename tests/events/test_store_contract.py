"""The contract of the event store seam (``commonwatch.events.store``): what every implementation
must do, run against each one. A new implementation adds one entry to :data:`IMPLEMENTATIONS`.

Events are written through the store's own ``append``; expectations are computed in Python from
the rows written, never by reading the store another way.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from commonwatch.constituency import services as registry
from commonwatch.db import make_engine, make_sessionmaker, session_scope
from commonwatch.errors import Invalid, NotFound
from commonwatch.events import search
from commonwatch.events.store import EXPORT_COLUMNS, MATCH_COLUMNS, Probe, StreamState, event_store
from commonwatch.net import ip_key, network_bounds
from tests.events.eventdata import as_batch, principals, spread

END = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
N = 240

#: (store kind, database) pairs the contract runs on; the database holds the relational state.
IMPLEMENTATIONS = [
    pytest.param(("sql", "sqlite"), id="sql-sqlite"),
    pytest.param(("sql", "postgresql"), id="sql-postgresql", marks=pytest.mark.postgres),
    pytest.param(("parquet", "sqlite"), id="parquet"),
    pytest.param(("clickhouse", "sqlite"), id="clickhouse-chdb"),
    # chDB beside PostgreSQL: the writers' advisory lock is taken in the caller's transaction.
    pytest.param(("clickhouse", "postgresql"), id="clickhouse-chdb-postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=IMPLEMENTATIONS)
def env(request):
    """Orgs A, B and a partner P; N events over A, B and none, every 10th also routed to P, written
    through the store under test; principals of each kind."""
    kind, database = request.param
    if kind in ("parquet", "clickhouse"):
        _store_folder(request)
    url = request.getfixturevalue("sqlite_url" if database == "sqlite" else "pg_url")
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with session_scope(factory, actor="test") as s:
        a = registry.create_org(s, {"name": "A", "kind": "network-operator", "sector": "telecom"}).id
        b = registry.create_org(s, {"name": "B", "kind": "cii-operator", "sector": "energy"}).id
        p = registry.create_org(s, {"name": "P", "kind": "partner-cert", "country": "DE"}).id
    rows = spread(N, end=END, org_ids=[a, b, None], step=timedelta(minutes=7))
    for i, row in enumerate(rows):
        if i % 10 == 4:
            row["partner_org_id"] = p
    with session_scope(factory, actor="test") as s:
        assert event_store(s, kind).append(as_batch(rows), batch_id=1, now=END) == N
    with factory() as s:
        ids = event_store(s, kind).existing_keys([r["event_key"] for r in rows])
    for row in rows:
        row["id"] = ids[row["event_key"]]
    who = principals(a, b, p)
    visible = {
        "staff": lambda r: True,
        "a": lambda r: r["org_id"] == a,
        "b": lambda r: r["org_id"] == b,
        "partner": lambda r: r["partner_org_id"] == p,
        "nobody": lambda r: False,
    }
    yield {"kind": kind, "factory": factory, "rows": rows, "a": a, "b": b, "p": p, "who": who,
           "visible": visible, "engine": engine}
    engine.dispose()


def _store_folder(request) -> None:
    """The Parquet store's (and chDB's) folder, the test's own (the setting the factory reads)."""
    from commonwatch.config import get_settings

    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("COMMONWATCH_EVENT_STORE_DIR", str(request.getfixturevalue("tmp_path") / "events"))
    monkeypatch.delenv("COMMONWATCH_CLICKHOUSE_URL", raising=False)
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)


def _newest_first(rows) -> list[int]:
    return [r["id"] for r in sorted(rows, key=lambda r: (r["time_source"], r["id"]), reverse=True)]


def test_append_stores_a_repeated_key_once(env):
    rows = env["rows"]
    more = spread(10, end=END + timedelta(hours=1), org_ids=[env["a"]], key_prefix="more")
    with session_scope(env["factory"], actor="test") as s:
        store = event_store(s, env["kind"])
        # The whole first batch again plus ten new events: only the ten are new.
        assert store.append(as_batch(rows[:50] + more), batch_id=2, now=END) == 10
        assert store.append(as_batch(more), batch_id=3, now=END) == 0
        assert store.append(as_batch([]).head(0), batch_id=4, now=END) == 0
    with env["factory"]() as s:
        store = event_store(s, env["kind"])
        found = store.existing_keys([r["event_key"] for r in rows + more] + ["no-such-key"])
        assert set(found) == {r["event_key"] for r in rows + more}
        assert len(set(found.values())) == N + 10
        assert store.count_capped(env["who"]["staff"], search.EventFilter()) == (N + 10, True)


def test_every_read_is_limited_to_the_principal(env):
    rows = env["rows"]
    with env["factory"]() as s:
        store = event_store(s, env["kind"])
        for name, principal in env["who"].items():
            mine = [r for r in rows if env["visible"][name](r)]
            everything = search.EventFilter()
            ordered = store.ordered(principal, everything, limit=10 * N)
            assert [r.id for r in ordered] == _newest_first(mine), name
            assert store.count_capped(principal, everything) == (len(mine), True), name
            assert sum(c.count for c in store.counts(principal, ["type"])) == len(mine), name
            assert store.latest_id(principal, everything) == max((r["id"] for r in mine), default=0), name
            fetched = store.fetch(principal, [r["id"] for r in rows], ["org_id"])
            assert set(fetched["id"].to_list()) == {r["id"] for r in mine}, name
            scanned = store.scan(principal, ["org_id"], limit=10 * N)
            assert set(scanned["id"].to_list()) == {r["id"] for r in mine}, name
            other = next(r for r in rows if not env["visible"][name](r)) if len(mine) < len(rows) else None
            if other is not None:
                with pytest.raises(NotFound):
                    store.get(principal, other["id"])
            if mine:
                assert store.get(principal, mine[0]["id"]).event_key == mine[0]["event_key"]
        # A filter naming another tenant's organisation finds nothing, not that tenant's events.
        f = search.parse_filter({"org": str(env["b"])})
        assert store.count_capped(env["who"]["a"], f) == (0, True)


def test_get_returns_every_field(env):
    row = env["rows"][3]
    with env["factory"]() as s:
        event = event_store(s, env["kind"]).get(env["who"]["staff"], row["id"])
    for column in ("event_key", "feed_name", "source_ip", "source_port", "source_asn", "classification_type",
                   "org_id", "partner_org_id", "severity", "tlp", "constituent_cii"):
        assert getattr(event, column) == row[column], column
    assert event.time_source == row["time_source"]
    assert event.extra == row["extra"]


def _walk(store, principal, f, limit):
    seen, cursor, last = [], None, None
    while True:
        page = store.search_page(principal, f, limit=limit, after=cursor, count=False)
        seen.extend(e.id for e in page.items)
        last = page
        if page.next_cursor is None:
            return seen, last
        cursor = page.next_cursor


@pytest.mark.parametrize("who", ["staff", "a", "partner"])
def test_keyset_pages_cover_the_selection_once_both_ways(env, who):
    principal = env["who"][who]
    expected = _newest_first([r for r in env["rows"] if env["visible"][who](r)])
    with env["factory"]() as s:
        store = event_store(s, env["kind"])
        seen, last = _walk(store, principal, search.EventFilter(), limit=7)
        assert seen == expected  # newest first, no row twice, none missing, across equal times
        back, page = list(reversed([e.id for e in last.items])), last
        while page.prev_cursor:
            page = store.search_page(principal, search.EventFilter(), limit=7, before=page.prev_cursor, count=False)
            back.extend(reversed([e.id for e in page.items]))
        assert back == list(reversed(expected))
        f = search.parse_filter({"min_severity": "medium", "feed": "shadowserver*"})
        want = _newest_first([r for r in env["rows"] if env["visible"][who](r)
                              and r["severity"] in ("medium", "high", "critical")
                              and r["feed_name"].startswith("shadowserver")])
        assert _walk(store, principal, f, limit=5)[0] == want


def test_page_counts_are_capped(env):
    staff = env["who"]["staff"]
    with env["factory"]() as s:
        store = event_store(s, env["kind"])
        assert store.count_capped(staff, search.EventFilter(), cap=100) == (100, False)
        page = store.search_page(staff, search.parse_filter({"type": "phishing"}), limit=5)
        assert (page.total, page.total_exact) == (N // 5, True)
        assert len(page.items) == 5
        with pytest.raises(Invalid):
            store.search_page(staff, search.EventFilter(), limit=0)


@pytest.mark.parametrize("bucket", ["day", "hour"])
def test_counts_by_time_bucket_and_dimension(env, bucket):
    rows = env["rows"]
    fmt = "%Y-%m-%d" if bucket == "day" else "%Y-%m-%dT%H:00"
    with env["factory"]() as s:
        store = event_store(s, env["kind"])
        got = store.counts(env["who"]["staff"], [bucket, "type"])
        expected: dict[tuple, int] = {}
        for r in rows:
            key = (r["time_source"].strftime(fmt), r["classification_type"])
            expected[key] = expected.get(key, 0) + 1
        assert {c.key: c.count for c in got} == expected
        assert [c.count for c in got] == sorted((c.count for c in got), reverse=True)
        since = END - timedelta(hours=6)
        by_partner = store.counts(env["who"]["staff"], ["partner", "severity"], since=since)
        window = [r for r in rows if r["time_source"] >= since]
        want: dict[tuple, int] = {}
        for r in window:
            key = (r["partner_org_id"], r["severity"])
            want[key] = want.get(key, 0) + 1
        assert {c.key: c.count for c in by_partner} == want
        for dim in ("org", "sector", "country", "feed"):
            assert sum(c.count for c in store.counts(env["who"]["a"], [dim])) == sum(
                1 for r in rows if r["org_id"] == env["a"])
        with pytest.raises(Invalid) as err:
            store.counts(env["who"]["staff"], ["colour"])
        assert err.value.errors[0].field == "by"


def test_fetch_by_ids_in_chunks_under_tenancy(env):
    rows = env["rows"]
    ids = [r["id"] for r in rows] + list(range(10**9, 10**9 + 12_000))  # more ids than one chunk
    with env["factory"]() as s:
        store = event_store(s, env["kind"])
        frame = store.fetch(env["who"]["a"], ids, ["source_ip", "time_source", "extra", "constituent_cii"])
        mine = {r["id"]: r for r in rows if r["org_id"] == env["a"]}
        assert frame.columns == ["id", "source_ip", "time_source", "extra", "constituent_cii"]
        assert frame.schema["time_source"] == pl.Datetime("us", "UTC")
        assert frame.schema["constituent_cii"] == pl.Boolean
        assert sorted(frame["id"].to_list()) == sorted(mine)
        for row in frame.iter_rows(named=True):
            assert row["source_ip"] == mine[row["id"]]["source_ip"]
            assert row["time_source"] == mine[row["id"]]["time_source"]
            assert row["constituent_cii"] == mine[row["id"]]["constituent_cii"]
        top = store.fetch(env["who"]["staff"], ids, ["time_source"], newest_first=True, limit=9)
        assert top["id"].to_list() == _newest_first(rows)[:9]
        assert store.fetch(env["who"]["b"], [], ["source_ip"]).height == 0


def test_scan_walks_by_id_from_a_watermark(env):
    rows = sorted(env["rows"], key=lambda r: r["id"])
    staff = env["who"]["staff"]
    with env["factory"]() as s:
        store = event_store(s, env["kind"])
        first = store.scan(staff, ["time_source", "org_id"], limit=50)
        assert first["id"].to_list() == [r["id"] for r in rows[:50]]
        rest = store.scan(staff, ["org_id"], after_id=int(first["id"].max()), limit=10 * N)
        assert rest["id"].to_list() == [r["id"] for r in rows[50:]]
        routed = store.scan(staff, ["org_id"], limit=10 * N, routed=True)
        assert routed["id"].to_list() == [r["id"] for r in rows if r["org_id"] or r["partner_org_id"]]
        since = END - timedelta(hours=3)
        recent = store.scan(staff, ["org_id"], limit=10 * N, since=since)
        assert recent["id"].to_list() == [r["id"] for r in rows if r["time_source"] >= since]
        assert store.scan(staff, ["org_id"], limit=10, created_after=END).height == 0


def test_export_stream_is_frozen_and_batched(env):
    staff = env["who"]["staff"]
    rows = env["rows"]
    with env["factory"]() as s:
        up_to = event_store(s, env["kind"]).latest_id(staff, search.EventFilter())
    late = spread(3, end=END, org_ids=[None], key_prefix="late")
    with session_scope(env["factory"], actor="test") as s:
        assert event_store(s, env["kind"]).append(as_batch(late), batch_id=9, now=END) == 3
    state = StreamState()
    stream = event_store(env["engine"], env["kind"]).iter_rows(staff, search.EventFilter(), max_rows=10 * N,
                                                                batch=17, up_to_id=up_to, state=state)
    assert [r.id for r in stream] == _newest_first(rows)
    assert state.rows == N and state.batches == -(-N // 17)
    capped = list(event_store(env["engine"], env["kind"]).iter_rows(env["who"]["a"], search.EventFilter(),
                                                                     max_rows=5, batch=2))
    assert [r.id for r in capped] == _newest_first([r for r in rows if r["org_id"] == env["a"]])[:5]


def test_iter_frames_streams_what_iter_rows_does_as_typed_frames(env):
    rows = env["rows"]
    staff = env["who"]["staff"]
    state = StreamState()
    frames = list(event_store(env["engine"], env["kind"]).iter_frames(staff, search.EventFilter(), max_rows=10 * N,
                                                                       batch=17, state=state))
    assert all(0 < fr.height <= 17 for fr in frames) and state.rows == N
    whole = pl.concat(frames)
    assert tuple(whole.columns) == EXPORT_COLUMNS
    assert whole.schema["time_source"] == pl.Datetime("us", "UTC") and whole.schema["extra"] == pl.String
    assert whole["id"].to_list() == _newest_first(rows)
    by_id = {r["id"]: r for r in rows}
    for row in whole.head(20).iter_rows(named=True):
        assert row["source_ip"] == by_id[row["id"]]["source_ip"]
        expected = by_id[row["id"]]["extra"]
        assert (json.loads(row["extra"]) if row["extra"] else None) == (expected or None)
    mine = pl.concat(event_store(env["engine"], env["kind"]).iter_frames(env["who"]["a"], search.EventFilter(),
                                                                          max_rows=5, batch=2))
    assert mine["id"].to_list() == _newest_first([r for r in rows if r["org_id"] == env["a"]])[:5]


def test_rewrite_match_moves_events_between_tenants(env):
    rows = env["rows"]
    moved = [r for r in rows if r["org_id"] == env["a"]][:5]
    changes = pl.DataFrame({
        "id": [r["id"] for r in moved], "source_asn": [65000] * 5, "source_as_name": ["NEW-AS"] * 5,
        "source_cc": ["CN"] * 5, "org_id": [env["b"]] * 5, "partner_org_id": [None] * 5,
        "constituent_sector": ["energy"] * 5, "constituent_cii": [True] * 5, "severity": ["critical"] * 5,
        "gbt_category": ["HI-1"] * 5, "classification_taxonomy": ["vulnerable"] * 5,
    }, schema_overrides={"partner_org_id": pl.Int64})
    assert set(changes.columns) == {"id", *MATCH_COLUMNS}
    with session_scope(env["factory"], actor="test") as s:
        assert event_store(s, env["kind"]).rewrite_match(changes) == 5
    with env["factory"]() as s:
        store = event_store(s, env["kind"])
        ids = [r["id"] for r in moved]
        assert store.fetch(env["who"]["a"], ids, ["org_id"]).height == 0
        frame = store.fetch(env["who"]["b"], ids, list(MATCH_COLUMNS)).sort("id")
        assert frame["org_id"].to_list() == [env["b"]] * 5
        assert frame["severity"].to_list() == ["critical"] * 5
        assert frame["source_as_name"].to_list() == ["NEW-AS"] * 5
        assert frame["constituent_cii"].to_list() == [True] * 5
        # Columns outside the match and classification are untouched.
        assert store.get(env["who"]["b"], ids[0]).source_ip == moved[0]["source_ip"]
    # A store bound to an engine (a job outside any session) writes in a transaction of its own.
    back = changes.head(1).with_columns(pl.lit(env["a"]).alias("org_id"))
    assert event_store(env["engine"], env["kind"]).rewrite_match(back) == 1
    with env["factory"]() as s:
        assert event_store(s, env["kind"]).fetch(env["who"]["a"], ids, ["org_id"])["id"].to_list() == ids[:1]


def test_unknown_store_is_refused_with_the_setting_named(env):
    with env["factory"]() as s, pytest.raises(Invalid) as err:
        event_store(s, "no-such-store")
    assert err.value.errors[0].field == "event_store"


def test_compaction_keeps_every_event_once(env):
    """Many small batches, then compaction: the same events, each once, before and after."""
    more = spread(30, end=END + timedelta(hours=2), org_ids=[env["a"]], key_prefix="small")
    with session_scope(env["factory"], actor="test") as s:
        store = event_store(s, env["kind"])
        for i in range(0, 30, 5):  # six batches of five: six small units on a columnar store
            assert store.append(as_batch(more[i:i + 5]), batch_id=10 + i, now=END) == 5
    staff = env["who"]["staff"]
    with env["factory"]() as s:
        before = sorted(r.id for r in event_store(s, env["kind"]).ordered(staff, search.EventFilter(), limit=N + 50))
    with session_scope(env["factory"], actor="test") as s:
        merged = event_store(s, env["kind"]).compact()
    assert merged >= (6 if env["kind"] == "parquet" else 0)
    with env["factory"]() as s:
        store = event_store(s, env["kind"])
        after = sorted(r.id for r in store.ordered(staff, search.EventFilter(), limit=N + 50))
        assert store.compact() == 0  # nothing small is left
    assert after == before and len(after) == N + 30


def test_counts_may_name_a_dimension_twice(env):
    """A caller that groups by a dimension and by type, where the dimension is type, gets both keys."""
    with env["factory"]() as s:
        rows = event_store(s, env["kind"]).counts(env["who"]["staff"], ["type", "type"])
    assert rows and all(len(r.key) == 2 and r.key[0] == r.key[1] for r in rows)
    assert sum(r.count for r in rows) == N


def _probes():
    import ipaddress

    first, last = network_bounds(ipaddress.ip_network("198.51.101.0/24"))
    return [Probe("203.0.113.7", "ip"), Probe("shared.example.org", "domain"),
            Probe("http://shared.example.org/x", "url"), Probe("198.51.101.0/24", "net", first, last),
            Probe("192.0.2.99", "ip")]


def _mentioning(rows, value: str) -> set[int]:
    import ipaddress

    if "/" in value and "://" not in value:
        net = ipaddress.ip_network(value)
        return {r["id"] for r in rows if r.get("source_ip") and ipaddress.ip_address(r["source_ip"]) in net}
    return {r["id"] for r in rows if value in (r.get("source_ip"), r.get("destination_ip"), r.get("source_fqdn"),
                                                r.get("destination_fqdn"), r.get("source_reverse_dns"),
                                                r.get("source_url"))}


def test_mentions_counts_and_lists_each_value_under_tenancy(env):
    """Each value's events counted once (an event naming it in two columns is one), ids listed only
    up to the cap, every reader seeing its own events only; unknown values answer 0."""
    a, b = env["a"], env["b"]
    more = spread(12, end=END + timedelta(hours=3), org_ids=[a, b, None], key_prefix="mention")
    for i, row in enumerate(more):
        row["destination_ip"] = "203.0.113.7"
        if i % 4 == 0:
            row["source_ip"], row["source_ip_bin"] = "203.0.113.7", ip_key("203.0.113.7")
        if i % 3 == 0:
            row["source_fqdn"], row["source_url"] = "shared.example.org", "http://shared.example.org/x"
        if i % 5 == 1:
            row["destination_fqdn"] = "shared.example.org"
    with session_scope(env["factory"], actor="test") as s:
        assert event_store(s, env["kind"]).append(as_batch(more), batch_id=5, now=END) == 12
    with env["factory"]() as s:
        ids = event_store(s, env["kind"]).existing_keys([r["event_key"] for r in more])
    for row in more:
        row["id"] = ids[row["event_key"]]
    everything = env["rows"] + more
    probes = _probes()
    with env["factory"]() as s:
        store = event_store(s, env["kind"])
        for name, principal in env["who"].items():
            mine = [r for r in everything if env["visible"][name](r)]
            got = store.mentions(principal, probes, cap=1000)
            assert got.columns == ["value", "events", "ids"]
            assert sorted(got["value"].to_list()) == sorted(p.value for p in probes)
            for row in got.iter_rows(named=True):
                want = _mentioning(mine, row["value"])
                assert row["events"] == len(want), (name, row["value"])
                assert row["ids"] == sorted(want, reverse=True), (name, row["value"])
        # The cap: a value in more events than the cap is counted but not listed.
        staff = env["who"]["staff"]
        capped = {r["value"]: r for r in store.mentions(staff, probes, cap=6).iter_rows(named=True)}
        assert capped["203.0.113.7"]["events"] == 12 and capped["203.0.113.7"]["ids"] == []
        shared = _mentioning(everything, "shared.example.org")
        assert 0 < len(shared) <= 6 and capped["shared.example.org"]["ids"] == sorted(shared, reverse=True)
        assert capped["192.0.2.99"]["events"] == 0
        assert store.mentions(staff, [], cap=5).height == 0
        with pytest.raises(Invalid):
            store.mentions(staff, [Probe("x", "colour")], cap=5)


def _sort_key(key: str, r: dict):
    """The order each sort key means, stated here from the rows written (not from a store)."""
    value = r[search.SORT_COLUMNS[key]] if key != "source" else r["source_ip_bin"]
    if key == "time":
        return value
    if key in search.RANKS:
        return search.RANKS[key].index(value) + 1 if value in search.RANKS[key] else 0
    if key == "source":
        return value or b""
    if key in ("asn", "org"):
        return value or 0
    return value or ""


def _odd_rows(env) -> list[dict]:
    """Events with no address, AS, country or organisation, and types that a language-aware
    collation would order differently from bytes (case, ``-`` and ``_``)."""
    rows = spread(12, end=END - timedelta(minutes=3), org_ids=[env["a"], None], key_prefix="odd")
    for i, row in enumerate(rows):
        row["classification_type"] = ("scanner", "Scan_x", "scan-x", "scan")[i % 4]
        if i % 2:
            row.update(source_ip=None, source_ip_bin=None, source_asn=None, source_cc=None)
    with session_scope(env["factory"], actor="test") as s:
        assert event_store(s, env["kind"]).append(as_batch(rows), batch_id=5, now=END) == len(rows)
    with env["factory"]() as s:
        ids = event_store(s, env["kind"]).existing_keys([r["event_key"] for r in rows])
    for row in rows:
        row["id"] = ids[row["event_key"]]
    return rows


@pytest.mark.parametrize("who", ["staff", "a"])
def test_every_sort_gives_the_same_order_and_pages_both_ways(env, who):
    """Each sort key in each direction: keyset pages over (key, id) cover the selection once, in
    the order the key means (ranks for severity and TLP, bytes for text, none first), forwards and
    back; a filter narrows the same walk."""
    rows = env["rows"] + _odd_rows(env)
    principal = env["who"][who]
    mine = [r for r in rows if env["visible"][who](r)]
    with env["factory"]() as s:
        store = event_store(s, env["kind"])
        for key in search.SORT_KEYS:
            for descending in (True, False):
                sort = search.EventSort(key, descending)
                expected = [r["id"] for r in sorted(mine, key=lambda r, k=key: (_sort_key(k, r), r["id"]),
                                                    reverse=descending)]
                seen, cursor = [], None
                while True:
                    page = store.search_page(principal, search.EventFilter(), limit=9, after=cursor,
                                             count=False, sort=sort)
                    seen.extend(e.id for e in page.items)
                    if page.next_cursor is None:
                        break
                    cursor = page.next_cursor
                assert seen == expected, (key, descending)
                back = list(reversed([e.id for e in page.items]))
                while page.prev_cursor:
                    page = store.search_page(principal, search.EventFilter(), limit=9, before=page.prev_cursor,
                                             count=False, sort=sort)
                    back.extend(reversed([e.id for e in page.items]))
                assert back == list(reversed(expected)), (key, descending)
        f = search.parse_filter({"min_severity": "high"})
        sort = search.EventSort("type", False)
        want = [r["id"] for r in sorted((r for r in mine if r["severity"] in ("high", "critical")),
                                        key=lambda r: (_sort_key("type", r), r["id"]))]
        page = store.search_page(principal, f, limit=500, sort=sort)
        assert [e.id for e in page.items] == want
        assert (page.total, page.total_exact) == (len(want), True)


def test_a_cursor_belongs_to_its_order(env):
    staff = env["who"]["staff"]
    with env["factory"]() as s:
        store = event_store(s, env["kind"])
        by_type = store.search_page(staff, search.EventFilter(), limit=5, sort=search.EventSort("type"))
        newest = store.search_page(staff, search.EventFilter(), limit=5)
        for cursor, sort in ((by_type.next_cursor, search.EventSort("severity")),
                             (by_type.next_cursor, search.NEWEST_FIRST),
                             (newest.next_cursor, search.EventSort("feed"))):
            with pytest.raises(Invalid) as err:
                store.search_page(staff, search.EventFilter(), limit=5, after=cursor, sort=sort)
            assert err.value.errors[0].field == "cursor"
    with pytest.raises(Invalid) as err:
        search.parse_sort("colour", "up")
    assert [e.field for e in err.value.errors] == ["sort", "dir"]
    assert search.parse_sort("", "") == search.NEWEST_FIRST
    assert search.parse_sort("severity", "asc") == search.EventSort("severity", False)
