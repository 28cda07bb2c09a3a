"""Rollups kept at ingest and rebuilt from the store equal raw counts: random data, duplicates,
and days in a UTC+8 zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from sqlalchemy import func, select

from commonwatch.access.principal import SYSTEM, Principal, Role
from commonwatch.constituency import services as registry
from commonwatch.db import make_sessionmaker, session_scope
from commonwatch.events.store import event_store
from commonwatch.reports import query, rollup
from commonwatch.reports.models import ALL, ANY_TYPE, DIMENSIONS, EventCount, HostSet
from commonwatch.reports.query import Filters, Period
from tests.reports.helpers import random_batch, store_batch

START = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)


def _orgs(factory) -> list[int]:
    with session_scope(factory, actor="test") as s:
        a = registry.create_org(s, {"name": "A", "kind": "network-operator", "sector": "telecom", "region": "Beijing"})
        b = registry.create_org(s, {"name": "B", "kind": "cii-operator", "sector": "energy", "region": "Shanghai"})
        return [a.id, b.id]


def _raw(engine) -> pl.DataFrame:
    """What the rollups must hold, counted from the raw events: per hour, dimension value, type,
    organisation and partner (every dimension but the organisation), the same centre-wide, and
    the centre-wide organisation split without the type."""
    parts = []
    with engine.connect() as conn:
        store = event_store(conn)
        for dim in rollup.DIMS:
            rows = store.counts(SYSTEM, ["hour", "type", DIMENSIONS[dim], "org", "partner"])
            parts.append(pl.DataFrame(
                [(r.key[0], dim, "" if r.key[2] is None else str(r.key[2]), r.key[1] or "", r.key[3] or 0,
                  r.key[4] or 0, r.count) for r in rows],
                schema={"hour": pl.String, "dim": pl.String, "value": pl.String, "type": pl.String,
                        "org_id": pl.Int64, "partner_org_id": pl.Int64, "n": pl.Int64}, orient="row"))
        orgs = pl.DataFrame([(r.key[0], "org", "" if r.key[1] is None else str(r.key[1]), "", ALL, ALL, r.count)
                             for r in store.counts(SYSTEM, ["hour", "org"])],
                            schema=parts[0].schema, orient="row")
    hour = pl.col("hour").str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M").dt.epoch("s") // 3600
    per_org = pl.concat(parts).select(hour.alias("bucket"), pl.exclude("hour"))
    centre = per_org.group_by(["bucket", "dim", "value", "type"]).agg(pl.col("n").sum()).with_columns(
        pl.lit(ALL, pl.Int64).alias("org_id"), pl.lit(ALL, pl.Int64).alias("partner_org_id"))
    # and centre-wide for every type together
    any_type = centre.group_by(["bucket", "dim", "value", "org_id", "partner_org_id"]).agg(pl.col("n").sum()) \
        .with_columns(pl.lit(ANY_TYPE).alias("type"))
    orgs = orgs.select(hour.alias("bucket"), pl.exclude("hour"))
    assert "org" not in per_org["dim"].unique().to_list()
    return pl.concat([per_org, centre.select(per_org.columns), any_type.select(per_org.columns),
                      orgs.select(per_org.columns)]).select(
        [*rollup.KEYS, "n"]).sort(rollup.KEYS)


def _rolled(engine, grain: int) -> pl.DataFrame:
    cols = [getattr(EventCount, c) for c in rollup.KEYS] + [EventCount.n]
    with engine.connect() as conn:
        rows = conn.execute(select(*cols).where(EventCount.grain == grain)).all()
    return pl.DataFrame([tuple(r) for r in rows], schema={"bucket": pl.Int64, "dim": pl.String, "value": pl.String,
                                                          "type": pl.String, "org_id": pl.Int64,
                                                          "partner_org_id": pl.Int64, "n": pl.Int64},
                        orient="row").sort(rollup.KEYS)


def _write(engine, rng, orgs):
    with engine.begin() as conn:
        first = random_batch(rng, 1500, START, 3 * 86400, orgs)
        assert store_batch(conn, first) == 1500
    with engine.begin() as conn:  # the same batch again: nothing new, nothing counted
        assert store_batch(conn, first) == 0
    with engine.begin() as conn:  # half old, half new
        keys = np.concatenate([first["event.key"].str.slice(1).cast(pl.Int64).to_numpy()[:400],
                               rng.choice(10 ** 12, size=600, replace=False) + 10 ** 12])
        mixed = random_batch(rng, 1000, START, 3 * 86400, orgs, keys=keys)
        assert store_batch(conn, mixed) == 600
    return first


def test_rollups_equal_raw_counts_with_duplicates_and_after_rebuild(any_engine):
    factory = make_sessionmaker(any_engine)
    orgs = _orgs(factory)
    rng = np.random.default_rng(18)
    _write(any_engine, rng, orgs)

    hourly = _raw(any_engine)
    assert int(hourly.filter((pl.col("dim") == "type") & (pl.col("org_id") == ALL) & (pl.col("type") != ANY_TYPE))
               ["n"].sum()) == 2100
    # the finest grain is the part of a UTC day between UTC's and Asia/Shanghai's midnights
    assert rollup.day_edges() == (0, 16)
    raw = _summed(hourly, rollup.part_of_day(pl.col("bucket"), (0, 16)))
    assert set((raw["bucket"] % 24).unique().to_list()) == {0, 16}
    assert _rolled(any_engine, rollup.HOUR).equals(raw)
    days = _summed(hourly, pl.col("bucket") // 24)
    assert _rolled(any_engine, rollup.DAY).equals(days)
    months = _summed(days, rollup.month_of_day(pl.col("bucket")))
    assert sorted(months["bucket"].unique().to_list()) == [(2026 - 1970) * 12 + 10, (2026 - 1970) * 12 + 11]
    assert _rolled(any_engine, rollup.MONTH).equals(months)

    with engine_conn(any_engine) as conn:
        sets_before = _sets(conn)
        assert sets_before.filter(pl.col("grain") == rollup.MONTH).height > 0
        conn.execute(EventCount.__table__.delete())
        conn.execute(HostSet.__table__.delete())
    with engine_conn(any_engine) as conn:
        done = rollup.rebuild(conn, event_store(conn), START - timedelta(days=1))
    assert done.events == 2100
    assert _rolled(any_engine, rollup.HOUR).equals(raw)
    assert _rolled(any_engine, rollup.DAY).equals(days)
    assert _rolled(any_engine, rollup.MONTH).equals(months)
    with engine_conn(any_engine) as conn:
        assert _sets(conn).equals(sets_before)

    # a rebuild over what is already there replaces, never adds
    with engine_conn(any_engine) as conn:
        rollup.rebuild(conn, event_store(conn), START)
    assert _rolled(any_engine, rollup.HOUR).equals(raw)
    assert _rolled(any_engine, rollup.MONTH).equals(months)


def _sets(conn) -> pl.DataFrame:
    """Every host set as its key, size and members."""
    rows = conn.execute(select(HostSet.grain, HostSet.bucket, HostSet.type, HostSet.org_id, HostSet.partner_org_id,
                               HostSet.n, HostSet.hosts)).all()
    return pl.DataFrame([(*r[:6], rollup.decode_hosts([r[6]]).tolist()) for r in rows],
                        schema=[*rollup.SET_KEYS, "n", "hosts"], orient="row").sort(rollup.SET_KEYS)


def _summed(rows: pl.DataFrame, bucket: pl.Expr) -> pl.DataFrame:
    return rows.with_columns(bucket.alias("bucket")).group_by(rollup.KEYS).agg(pl.col("n").sum()).sort(rollup.KEYS)


def engine_conn(engine):
    return engine.begin()


def test_days_in_utc_plus_8_are_local_days(any_engine):
    factory = make_sessionmaker(any_engine)
    orgs = _orgs(factory)
    rng = np.random.default_rng(8)
    _write(any_engine, rng, orgs)
    with engine_conn(any_engine) as conn:
        stored = event_store(conn).scan(SYSTEM, ["time_source", "org_id", "classification_type"], limit=10_000)
    tz = "Asia/Shanghai"
    local = stored.with_columns(pl.col("time_source").dt.convert_time_zone(tz).dt.date().cast(pl.String).alias("day"))
    p = Period(date(2026, 11, 30), date(2026, 12, 2), tz)
    # the period starts at local midnight, 16:00 UTC the day before
    assert p.since == datetime(2026, 11, 29, 16, 0, tzinfo=UTC)
    in_period = local.filter((pl.col("day") >= "2026-11-30") & (pl.col("day") < "2026-12-02"))
    expected = in_period.group_by("day").agg(pl.len().cast(pl.Int64).alias("n")).sort("day")
    with factory() as s:
        got = query.series(s, SYSTEM, p, []).sort("when")
        assert got["when"].to_list() == expected["day"].to_list()
        assert got["n"].to_list() == expected["n"].to_list()
        total = query.totals(s, SYSTEM, p, [])
        assert int(total["n"][0]) == in_period.height
        by_type = query.totals(s, SYSTEM, p, ["type"])
        exp_type = in_period.group_by("classification_type").agg(pl.len().alias("n"))
        assert dict(by_type.iter_rows()) == dict(exp_type.iter_rows())
        # a constituent sees only its own organisation's figures
        a = Principal(user_id=9, email="a@x", role=Role.CONSTITUENT, org_ids=frozenset({orgs[0]}))
        own = query.totals(s, a, p, [])
        assert int(own["n"][0]) == in_period.filter(pl.col("org_id") == orgs[0]).height
        # the region filter goes through the organisation
        shanghai = query.totals(s, SYSTEM, p, [], Filters(region="Shanghai"))
        assert int(shanghai["n"][0]) == in_period.filter(pl.col("org_id") == orgs[1]).height
        # the organisation split: centre-wide rows, and the per-organisation rows under a type filter
        exp_org = dict(in_period.group_by("org_id").agg(pl.len().cast(pl.Int64)).iter_rows())
        assert dict(query.totals(s, SYSTEM, p, ["org"]).iter_rows()) == exp_org
        scanners = in_period.filter(pl.col("classification_type") == "scanner")
        assert dict(query.totals(s, SYSTEM, p, ["org"], Filters(type="scanner")).iter_rows()) == \
            dict(scanners.group_by("org_id").agg(pl.len().cast(pl.Int64)).iter_rows())
        assert dict(query.totals(s, a, p, ["org"]).iter_rows()) == {orgs[0]: exp_org[orgs[0]]}
        # per local day and region (Beijing is the first organisation's, Shanghai the second's)
        regions = {orgs[0]: "Beijing", orgs[1]: "Shanghai"}
        local_region = in_period.with_columns(pl.col("org_id").replace_strict(regions, default="").alias("region"))
        exp_region = local_region.group_by("day", "region").agg(pl.len().cast(pl.Int64).alias("n")).sort("day", "region")
        for f in (Filters(), Filters(type="scanner")):
            want = exp_region if not f.type else local_region.filter(pl.col("classification_type") == "scanner") \
                .group_by("day", "region").agg(pl.len().cast(pl.Int64).alias("n")).sort("day", "region")
            got_region = query.series(s, SYSTEM, p, ["region"], f).sort("when", "region")
            assert got_region.height > 2 and got_region.rows() == want.rows()
        # a year: per month of UTC days
        year = Period(date(2026, 1, 1), date(2027, 1, 1), tz)
        utc = stored.with_columns(pl.col("time_source").dt.strftime("%Y-%m").alias("month"))
        want_months = utc.group_by("month", "classification_type").agg(pl.len().cast(pl.Int64)).sort("month", "classification_type")
        assert query.series(s, SYSTEM, year, ["type"]).rows() == want_months.rows()
        # an empty period is zero, not an error
        empty = query.totals(s, SYSTEM, Period(date(2020, 1, 1), date(2020, 2, 1), tz), ["type"])
        assert empty.height == 0


def test_distinct_hosts_count_each_host_once(any_engine):
    factory = make_sessionmaker(any_engine)
    orgs = _orgs(factory)
    rng = np.random.default_rng(3)
    first = _write(any_engine, rng, orgs)
    assert first.height
    with engine_conn(any_engine) as conn:
        stored = event_store(conn).scan(SYSTEM, ["time_source", "org_id", "source_ip_bin", "classification_type"],
                                        limit=10_000)
    p = Period(date(2026, 11, 29), date(2026, 12, 3), "UTC")
    expected = stored.filter(pl.col("org_id").is_not_null())["source_ip_bin"].n_unique()
    c2 = stored.filter(pl.col("org_id").is_not_null() & (pl.col("classification_type") == "c2-server"))
    with factory() as s:
        assert query.distinct_hosts(s, SYSTEM, p) == expected
        assert query.distinct_hosts(s, SYSTEM, p, types=("c2-server",)) == c2["source_ip_bin"].n_unique()
        assert query.distinct_hosts(s, SYSTEM, p, per_org=True) == 2
        # whole months from the hosts per month, the days around them from the hosts per day
        for longer in (Period(date(2026, 11, 1), date(2027, 1, 1), "UTC"),
                       Period(date(2026, 11, 1), date(2026, 12, 3), "UTC"),
                       Period(date(2026, 10, 20), date(2026, 12, 3), "Asia/Shanghai")):
            assert query.distinct_hosts(s, SYSTEM, longer) == expected
            assert query.distinct_hosts(s, SYSTEM, longer, types=("c2-server",)) == c2["source_ip_bin"].n_unique()
        # one organisation's, by the filter and as its constituent; a sector's; a type filter
        for org in orgs:
            mine = stored.filter(pl.col("org_id") == org)["source_ip_bin"].n_unique()
            assert query.distinct_hosts(s, SYSTEM, p, Filters(org_id=org)) == mine
            own = Principal(user_id=10**6, email="c@example.org", role=Role.CONSTITUENT, org_ids=frozenset({org}))
            assert query.distinct_hosts(s, own, p) == mine
        assert query.distinct_hosts(s, SYSTEM, p, Filters(sector="energy")) == \
            stored.filter(pl.col("org_id") == orgs[1])["source_ip_bin"].n_unique()
        assert query.distinct_hosts(s, SYSTEM, p, Filters(type="c2-server")) == c2["source_ip_bin"].n_unique()
        assert query.distinct_hosts(s, SYSTEM, p, Filters(type="scanner"), types=("c2-server",)) == 0
        november = stored.filter(pl.col("org_id").is_not_null() & (pl.col("time_source") < datetime(2026, 12, 1, tzinfo=UTC)))
        assert query.distinct_hosts(s, SYSTEM, Period(date(2026, 11, 1), date(2026, 12, 1), "UTC")) == \
            november["source_ip_bin"].n_unique()


def test_local_midnight_period_bounds():
    p = Period(date(2026, 11, 1), date(2026, 12, 1), "Asia/Shanghai")
    assert p.since == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert p.previous().start == date(2026, 10, 1)
    assert p.since.astimezone(ZoneInfo("Asia/Shanghai")).hour == 0


def test_a_real_ingest_twice_is_counted_once(any_engine, clock):
    from commonwatch.pipeline.demo import samples_dir
    from tests.pipeline.helpers import count_events, ingest, seed_registry

    seed_registry(any_engine, clock)
    path = samples_dir() / "2026-11-24-scan_rdp-asn-region-geo.csv"
    ingest(any_engine, path, "shadowserver", clock)
    ingest(any_engine, path, "shadowserver", clock)  # the same file again: stored once, counted once
    stored = count_events(any_engine)
    assert stored > 0
    with engine_conn(any_engine) as conn:  # the rollup job's run after the ingests, a few events a chunk
        while rollup.catch_up(conn, event_store(conn), limit=7):
            pass
    with engine_conn(any_engine) as conn:
        assert rollup.catch_up(conn, event_store(conn)) == 0  # nothing is counted twice
        total = conn.execute(select(func.sum(EventCount.n)).where(
            EventCount.grain == rollup.DAY, EventCount.dim == "type", EventCount.org_id == ALL,
            EventCount.type == ANY_TYPE)).scalar()
    assert total == stored
