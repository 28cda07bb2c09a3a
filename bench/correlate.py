#!/usr/bin/env python3
"""Correlation without a correlation table: our set joins against the same joins in PostgreSQL.

    .venv/bin/python bench/correlate.py [--events 10000000] [--indicators 1000000]
        [--observables 100000] [--repeat 20] [--postgres postgresql://postgres@127.0.0.1:5432/test]

Fills the Parquet event store with N events (through its writer, as ``bench/store_search.py``
does), the intel tables (SQLite) with M indicators (addresses, about half of them in the events)
and incidents with K linked events (observables); then measures, in the same run:

- the full correlation: for every indicator value, how many events mention it and in how many
  incidents (``EventStore.mentions`` over all M values, then the incident links joined in
  Polars), against one SQL statement joining indicators, events and observables on PostgreSQL
  (the same rows loaded with COPY into a schema of its own, indexed, dropped afterwards);
- one value's page (``intel.correlation.correlate``: events, indicators, sightings, incidents,
  tasks under the reader's tenancy), p95 over ``--repeat`` random indicator values, against the
  same joins for one value on PostgreSQL.

Goals (issue #21): full correlation >= 10x the SQL join, a value's page p95 <= 50 ms, peak RSS
<= 2 GB. Ends with RESULT lines.
"""

from __future__ import annotations

import argparse
import io
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from commonwatch.access.principal import Principal, Role
from commonwatch.db import make_engine, make_sessionmaker, session_scope
from commonwatch.events.store import Probe, event_store
from commonwatch.incidents.models import Incident, IncidentEvent
from commonwatch.intel import correlation
from commonwatch.intel.models import Indicator
from commonwatch.migrate import upgrade
from store_search import CHUNK, END, batch, p95, use_store

SCHEMA = "cw_bench_correlate"
CAP = 1000


def dotted(ints: np.ndarray) -> pl.Series:
    frame = pl.DataFrame({"ip": ints})
    return frame.select(pl.concat_str([(pl.col("ip") // 2 ** s % 256).cast(pl.Utf8) for s in (24, 16, 8, 0)],
                                      separator=".")).to_series()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fill_ours(tmp: Path, n: int, m: int, k: int, rng) -> tuple[Path, pl.DataFrame, pl.DataFrame, int]:
    use_store("parquet", tmp / "events")
    engine = make_engine(f"sqlite:///{tmp}/cw.db")
    upgrade(engine)
    factory = make_sessionmaker(engine)
    from commonwatch.constituency.models import Organisation

    with session_scope(factory, "bench") as s:
        a, b = Organisation(name="A", kind="network-operator"), Organisation(name="B", kind="network-operator")
        s.add_all([a, b])
        s.flush()
        a_id, b_id = a.id, b.id
    t0 = time.perf_counter()
    for start in range(0, n, CHUNK):
        with engine.begin() as conn:
            event_store(conn).append(batch(start, min(n, start + CHUNK), n, a_id, b_id), batch_id=1, now=END)
    with engine.begin() as conn:
        event_store(conn).compact()  # as the store does by itself after many batches
    print(f"stored {n:,} events in {time.perf_counter() - t0:.1f} s", flush=True)
    # Indicators: addresses 10.0.0.0 + [0, 2n): about half are in the events (event i has 10.0.0.0 + i).
    picks = np.unique(rng.integers(0, 2 * n, size=m))
    values = dotted((np.int64(10) << 24) | (picks & 0xFFFFFF))
    now = datetime(2026, 11, 25, tzinfo=UTC)
    indicators = pl.DataFrame({"value": values})
    rows = [{"stix_id": f"indicator--bench-{i}", "kind": "ipv4", "value": v, "value_key": v,
             "pattern": f"[ipv4-addr:value = '{v}']", "valid_from": now, "created": now, "modified": now,
             "tlp": "GREEN", "source": "bench", "revoked": False, "sighting_count": 0}
            for i, v in enumerate(values.to_list())]
    with engine.begin() as conn:
        for start in range(0, len(rows), 50_000):
            conn.execute(Indicator.__table__.insert(), rows[start:start + 50_000])
    incidents = max(1, k // 10)
    with engine.begin() as conn:
        conn.execute(Incident.__table__.insert(), [
            {"ref": f"BENCH-{i}", "org_id": a_id, "title": f"bench {i}", "route": "centre", "discovered_at": now,
             "category": "DE", "rsit_class": "malicious-code", "rsit_type": "c2-server", "computed_level": "general",
             "level": "general", "tlp": "TLP:AMBER", "status": "new"} for i in range(incidents)])
        first = conn.execute(Incident.__table__.select().with_only_columns(Incident.id).order_by(Incident.id)
                             .limit(1)).scalar()
        links = pl.DataFrame({"incident_id": first + rng.integers(0, incidents, size=k),
                              "event_id": rng.integers(1, n + 1, size=k)}).unique(["incident_id", "event_id"])
        conn.execute(IncidentEvent.__table__.insert(), [{**r, "linked_at": now, "linked_by": "bench"}
                                                        for r in links.to_dicts()])
    print(f"stored {len(rows):,} indicators and {links.height:,} observables in {incidents:,} incidents", flush=True)
    return tmp / "cw.db", indicators, links, a_id


def ours_full(db: Path, indicators: pl.DataFrame, links: pl.DataFrame) -> tuple[float, pl.DataFrame]:
    staff = Principal(1, "bench@x", Role.ANALYST)
    engine = make_engine(f"sqlite:///{db}")
    t0 = time.perf_counter()
    with make_sessionmaker(engine)() as s:
        found = event_store(s).mentions(staff, [Probe(v, "ip") for v in indicators["value"].to_list()], cap=CAP)
    pairs = found.select("value", "events", pl.col("ids").alias("event_id")).explode("event_id")
    per_value = (pairs.join(links, on="event_id", how="left")
                 .group_by("value").agg(pl.col("events").first(), pl.col("incident_id").drop_nulls().n_unique()
                                        .alias("incidents")))
    return time.perf_counter() - t0, per_value


def ours_page(db: Path, values: list[str], repeat: int) -> float:
    staff = Principal(1, "bench@x", Role.ANALYST)
    engine = make_engine(f"sqlite:///{db}")
    it = iter(values * (repeat + 2))
    with make_sessionmaker(engine)() as s:
        return p95(lambda: correlation.correlate(s, staff, correlation.subject_of(next(it)), common_events=CAP),
                   repeat)


def _copy(cur, table: str, frame: pl.DataFrame) -> None:
    buf = io.BytesIO()
    frame.write_csv(buf, include_header=False, null_value="\\N")
    with cur.copy(f"COPY {SCHEMA}.{table} FROM STDIN WITH (FORMAT csv, NULL '\\N')") as copy:
        copy.write(buf.getvalue())


def peer(url: str, db_dir: Path, indicators: pl.DataFrame, links: pl.DataFrame, values: list[str],
         repeat: int) -> tuple[float, float, int]:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    cur = conn.cursor()
    try:
        cur.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        cur.execute(f"CREATE SCHEMA {SCHEMA}")
        cur.execute(f"CREATE TABLE {SCHEMA}.events (id bigint PRIMARY KEY, source_ip text, destination_ip text, "
                    "org_id bigint)")
        cur.execute(f"CREATE TABLE {SCHEMA}.indicators (id serial PRIMARY KEY, value text)")
        cur.execute(f"CREATE TABLE {SCHEMA}.observables (incident_id bigint, event_id bigint)")
        t0 = time.perf_counter()
        staff = Principal(1, "bench@x", Role.ANALYST)
        store = event_store(make_engine(f"sqlite:///{db_dir / 'cw.db'}"))
        after = 0
        while True:  # the same events, read through the store's own watermark walk
            chunk = store.scan(staff, ["source_ip", "destination_ip", "org_id"], after_id=after, limit=500_000)
            if chunk.is_empty():
                break
            _copy(cur, "events", chunk.select("id", "source_ip", "destination_ip", "org_id"))
            after = int(chunk["id"].max())
        _copy(cur, "indicators", indicators.select(pl.int_range(1, pl.len() + 1).alias("id"), "value"))
        _copy(cur, "observables", links.select("incident_id", "event_id"))
        for stmt in ("CREATE INDEX ON {s}.events (source_ip)", "CREATE INDEX ON {s}.events (destination_ip)",
                     "CREATE INDEX ON {s}.indicators (value)", "CREATE INDEX ON {s}.observables (event_id)"):
            cur.execute(stmt.format(s=SCHEMA))
        cur.execute(f"ANALYZE {SCHEMA}.events")
        cur.execute(f"ANALYZE {SCHEMA}.indicators")
        cur.execute(f"ANALYZE {SCHEMA}.observables")
        print(f"PostgreSQL loaded and indexed in {time.perf_counter() - t0:.1f} s", flush=True)
        mentions = (f"SELECT i.value, e.id FROM {SCHEMA}.indicators i JOIN {SCHEMA}.events e ON e.source_ip = i.value "
                    f"UNION SELECT i.value, e.id FROM {SCHEMA}.indicators i JOIN {SCHEMA}.events e "
                    f"ON e.destination_ip = i.value")
        full = (f"SELECT m.value, count(DISTINCT m.id), count(DISTINCT o.incident_id) FROM ({mentions}) m "
                f"LEFT JOIN {SCHEMA}.observables o ON o.event_id = m.id GROUP BY m.value")
        t0 = time.perf_counter()
        cur.execute(full)
        rows = len(cur.fetchall())
        full_s = time.perf_counter() - t0
        one = (f"SELECT count(DISTINCT m.id), count(DISTINCT o.incident_id) FROM (SELECT id FROM {SCHEMA}.events "
               f"WHERE source_ip = %s UNION SELECT id FROM {SCHEMA}.events WHERE destination_ip = %s) m "
               f"LEFT JOIN {SCHEMA}.observables o ON o.event_id = m.id")
        it = iter(values * (repeat + 2))

        def page() -> None:
            v = next(it)
            cur.execute(one, (v, v))
            cur.fetchall()
            cur.execute(f"SELECT id FROM {SCHEMA}.indicators WHERE value = %s", (v,))
            cur.fetchall()

        return full_s, p95(page, repeat), rows
    finally:
        cur.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--indicators", type=int, default=1_000_000)
    ap.add_argument("--observables", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    rng = np.random.default_rng(21)
    with tempfile.TemporaryDirectory(prefix="cw-bench-correlate-") as tmp_name:
        tmp = Path(tmp_name)
        db, indicators, links, _a = fill_ours(tmp, args.events, args.indicators, args.observables, rng)
        ours_s, per_value = ours_full(db, indicators, links)
        hit = per_value.filter(pl.col("events") > 0)
        print(f"ours: full correlation {ours_s:.2f} s ({hit.height:,} of {indicators.height:,} values in events, "
              f"{int((per_value['incidents'] > 0).sum()):,} in incidents)", flush=True)
        sample = indicators["value"].sample(n=min(200, indicators.height), seed=21).to_list()
        page_ms = ours_page(db, sample, args.repeat)
        print(f"ours: value page p95 {page_ms:.1f} ms", flush=True)
        rss = peak_rss_mb()
        peer_s, peer_page_ms, peer_rows = peer(args.postgres, tmp, indicators, links, sample, args.repeat)
        print(f"PostgreSQL: full correlation {peer_s:.2f} s ({peer_rows:,} values), value page p95 "
              f"{peer_page_ms:.1f} ms", flush=True)
    print(f"RESULT correlate_full ours={ours_s:.2f} peer={peer_s:.2f} unit=s ratio={peer_s / ours_s:.2f} goal=>=10 "
          f"(events={args.events} indicators={args.indicators} observables={args.observables})")
    print(f"RESULT correlate_page_p95 ours={page_ms:.1f} peer={peer_page_ms:.1f} unit=ms "
          f"ratio={peer_page_ms / page_ms:.2f} goal=ours<=50")
    print(f"RESULT correlate_peak_rss ours={rss:.0f} unit=MB goal=<=2048")


if __name__ == "__main__":
    main()
