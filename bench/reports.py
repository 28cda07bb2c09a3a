#!/usr/bin/env python3
"""Statistics from rollups against counting raw events, and against SQL counts on PostgreSQL.

    .venv/bin/python bench/reports.py --events 10000000 [--repeat 5] [--keep DIR] [--build-only]
                                      [--raw-limit 120] [--pg-url URL] [--no-pg]

**Build** (once per size, kept under ``--keep``, default ``/tmp/reports-<N>``; run it niced,
outside the benchmark lock, with ``--build-only``): N events over 365 days and ``--orgs``
organisations, generated columnar in batches of a million and written through the configured
event store's ``append`` (Parquet segments by default); then the rollups counted by the
``reports-rollups`` job's own call (``rollup.catch_up``, chunk by chunk, its rate printed);
incidents (N / 1000, at least 200), warnings (N / 20) and deliveries (N / 100) in their own
tables. The same events go into a PostgreSQL database's event table (the peer's approach,
IntelMQ's statistics portal style: ``GROUP BY`` counts over the event table, here
``SqlEventStore.counts``, and ``count(DISTINCT)``), kept as ``cw_bench_reports_<N>``.

The events look like a constituency's: each organisation has its sector, region, AS and 100
addresses of its own, the large ones many more events than the small (a Zipf-like weight), 10 %
of the events match no organisation, the types weighted as the demo's and each address mostly of
one type, the severity and feed following the type, the country mostly CN.

**Measure** (the kept data; under the lock), over the last month and the whole year (Asia/Shanghai):
- every query of each dashboard (coordinator, sector, constituent), as the page asks it: p95 over
  ``--repeat`` runs;
- the coordinator's event figures counted from the raw events in the same run (the same event
  store's ``counts``, and a scan for the distinct hosts), and as SQL counts on PostgreSQL; a raw
  query is given ``--raw-limit`` seconds (PostgreSQL's ``statement_timeout``; the scan stops),
  and one cut off is printed as ``>limit`` with its ratio as a lower bound;
- a monthly report build (figures, previous period, charts, bilingual PDF).

Incidents, warnings and deliveries are counted from their own tables by every approach (the
peer has no rollup of them), so they have no ratio; their p95 is in each dashboard's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.exc import OperationalError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from commonwatch.access.principal import SYSTEM, Principal, Role
from commonwatch.constituency.models import Organisation
from commonwatch.db import make_engine, make_sessionmaker
from commonwatch.events.schema import FIELDS
from commonwatch.events.search import EventFilter
from commonwatch.events.store import event_store
from commonwatch.events.store.sql import SqlEventStore
from commonwatch.incidents.models import Incident
from commonwatch.migrate import upgrade
from commonwatch.notify.models import Delivery, EventWarning
from commonwatch.reports import acks, charts, render, rollup
from commonwatch.reports import indicators as ind
from commonwatch.reports import services as svc
from commonwatch.reports.demo import SEVERITY, TYPES, WEIGHTS
from commonwatch.reports.models import EventCount, HostSet
from commonwatch.reports.query import Filters, Period

END = datetime(2026, 12, 1, tzinfo=UTC)
START = END - timedelta(days=365)
TZ = "Asia/Shanghai"
BATCH = 1_000_000
ORGS = 200
#: Addresses of each organisation, ASes of the constituency.
HOSTS, ASNS = 100, 150
FEEDS = {"scanner": ["shadowserver-scan_rdp", "shadowserver-scan_ssh"], "vulnerable-system": ["shadowserver-scan_http"],
         "infected-system": ["shadowserver-sinkhole_http"], "c2-server": ["feodotracker"],
         "phishing": ["phishtank", "openphish"], "application-compromise": ["urlhaus"],
         "ddos-amplifier": ["shadowserver-scan_ntp"], "brute-force": ["shadowserver-honeypot_brute"]}
COUNTRIES, COUNTRY_P = ["CN", "US", "DE", "SG", "RU"], [0.95, 0.02, 0.01, 0.01, 0.01]
SECTORS = ["telecom", "energy", "finance", "transport", "government"]
REGIONS = ["Beijing", "Shanghai", "Guangdong", "Sichuan", "Hubei"]
EVENT_QUERIES = ("events.type", "events.severity", "events.feed", "events.sector", "events.region",
                 "events.top_asns", "events.top_orgs", "events.hosts", "events.c2")
#: what each coordinator event query counts, asked of the raw events: the ``counts`` keys
RAW = {"events.type": ["day", "type"], "events.severity": ["day", "severity"], "events.feed": ["day", "feed"],
       "events.sector": ["day", "sector"], "events.region": ["day", "org"], "events.top_asns": ["asn"],
       "events.top_orgs": ["org"]}
HOST_TYPES = {"events.hosts": None, "events.c2": "c2-server"}
LEVELS = ["特别重大", "重大", "较大", "一般"]
CATEGORIES = ["MPE", "NAE", "IDE", "ISDE", "EFE"]
STATUSES = ["new", "triaged", "in_progress", "resolved", "closed"]


def orgs(engine, k: int) -> list[int]:
    with engine.begin() as conn:
        conn.execute(insert(Organisation), [{"name": f"Bench org {i}", "kind": "network-operator",
                                             "sector": SECTORS[i % 5], "region": REGIONS[i % 5], "country": "CN"}
                                            for i in range(k)])
        return [r[0] for r in conn.execute(text("SELECT id FROM organisations ORDER BY id"))]


def batch(rng: np.random.Generator, n: int, first: int, begin: datetime, seconds: int,
          org_ids: list[int]) -> pl.DataFrame:
    """``n`` events (keys ``first`` on) at random times in ``[begin, begin + seconds)``, in time
    order, in the harmonisation names ``EventStore.append`` takes; columnar throughout."""
    k = len(org_ids)
    weight = 1.0 / (np.arange(k) + 10.0) ** 0.8
    pick = rng.choice(k, size=n, p=weight / weight.sum())
    matched = rng.random(n) >= 0.10
    host = rng.integers(1, HOSTS + 1, size=n)
    ip = (pick.astype(np.int64) * 256 + host).astype(np.int64)  # 10.x.y.host: the organisation's own
    octets = np.zeros((n, 16), dtype=np.uint8)
    octets[:, 10:12] = 255
    octets[:, 12], octets[:, 13], octets[:, 14], octets[:, 15] = 10, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255
    # each address is mostly of one type (a scanner keeps scanning): its own 80 % of the time
    own_type = np.random.default_rng(k).choice(len(TYPES), size=k * HOSTS, p=WEIGHTS)[pick * HOSTS + host - 1]
    type_index = np.where(rng.random(n) < 0.8, own_type, rng.choice(len(TYPES), size=n, p=WEIGHTS))
    types = np.array(TYPES)[type_index]
    feed_pick = rng.integers(0, 2, size=n)
    feeds = np.array([FEEDS[t][f % len(FEEDS[t])] for t in TYPES for f in (0, 1)]).reshape(len(TYPES), 2)
    times = int(begin.timestamp() * 1e6) + np.sort(rng.integers(0, seconds * 1_000_000, size=n))
    ids = np.array(org_ids, dtype=np.int64)[pick]
    frame = pl.DataFrame({
        "time.source": pl.Series(times, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
        "event.key": pl.int_range(first, first + n, eager=True).cast(pl.String),
        "classification.type": types, "classification.taxonomy": pl.repeat("other", n, eager=True),
        "severity": pl.Series(types).replace_strict(SEVERITY, return_dtype=pl.String),
        "feed.name": feeds[type_index, feed_pick],
        "constituent.org_id": pl.Series(np.where(matched, ids, 0), dtype=pl.Int64).replace(0, None),
        "constituent.sector": pl.Series(np.array(SECTORS)[pick % 5]),
        "source.asn": pl.Series(64512 + pick % ASNS, dtype=pl.Int64),
        "source.geolocation.cc": np.array(COUNTRIES)[rng.choice(len(COUNTRIES), size=n, p=COUNTRY_P)],
        "source.ip_bin": pl.Series(octets.view("S16").ravel(), dtype=pl.Binary),  # last octet never 0
        "_a": (ip >> 16) & 255, "_b": (ip >> 8) & 255, "_c": ip & 255,
    }).with_columns(
        pl.when(pl.col("constituent.org_id").is_null()).then(None).otherwise(pl.col("constituent.sector"))
        .alias("constituent.sector"),
        pl.format("10.{}.{}.{}", "_a", "_b", "_c").alias("source.ip"),
        pl.lit("AMBER").alias("tlp"), pl.lit("bench").alias("feed.provider"),
        pl.lit(False).alias("constituent.cii")).drop("_a", "_b", "_c")
    missing = {f.name: pl.lit(None, f.dtype if isinstance(f.dtype, pl.DataType) else f.dtype()) for f in FIELDS
               if f.name not in frame.columns}
    return frame.with_columns(**missing).with_columns(pl.col("time.source").alias("time.observation"))


def batches(n: int, org_ids: list[int], seed: int = 1):
    """The benchmark's events in batches, in time order as feeds deliver them (the same for a seed)."""
    rng = np.random.default_rng(seed)
    seconds = int((END - START).total_seconds())
    done = 0
    while done < n:
        size = min(BATCH, n - done)
        begin = START + timedelta(seconds=seconds * done / n)
        yield batch(rng, size, done, begin, max(1, int(seconds * size / n)), org_ids)
        done += size


def fill(engine, n: int, org_ids: list[int]) -> tuple[float, float]:
    """Through the configured event store's append, a batch per transaction; the rollups counted
    from the same batches by the job's own columnar count (``rollup.hour_counts``), folded into
    part-days, days and months and written once at the end (``rollup.add_counts`` into empty
    tables), with the rollups' mark set past the last event. Returns the seconds of both."""
    edges = rollup.day_edges(TZ)
    t0, done, store_s = time.perf_counter(), 0, 0.0
    hours_parts, hosts_parts = [], []
    for frame in batches(n, org_ids):
        t = time.perf_counter()
        with engine.begin() as conn:
            event_store(conn).append(frame, batch_id=1, now=END)
        store_s += time.perf_counter() - t
        hours, hosts = rollup.hour_counts(frame)
        # folded to part-days at once (add_counts folds them again, which leaves them as they are)
        hours_parts.append(rollup.part_counts(hours, edges))
        hosts_parts.append(hosts)
        done += frame.height
        print(f"  event store: {done:,} events, {done / store_s:,.0f}/s", flush=True)
    t = time.perf_counter()
    hours = pl.concat(hours_parts).group_by(rollup.KEYS).agg(pl.col("n").sum())
    hosts = pl.concat(hosts_parts).unique()
    del hours_parts, hosts_parts
    with engine.begin() as conn:
        rollup.add_counts(conn, hours, hosts, edges)
        last = event_store(conn).latest_id(SYSTEM, EventFilter())
        rollup.mark_if_unset(conn, last)
    rollup_s = time.perf_counter() - t0 - store_s
    print(f"  rollups written in {time.perf_counter() - t:.1f} s", flush=True)
    return store_s, rollup_s


def job_rate(k: int, org_ids: list[int], folder: Path) -> float:
    """The rollup job's rate: ``k`` events (the benchmark's first) into an empty data folder, then
    ``catch_up`` chunk by chunk, a transaction each, until current, as ``reports-rollups`` runs."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    engine = make_engine(f"sqlite:///{folder / 'job.db'}")
    upgrade(engine)
    with engine.begin() as conn:
        rollup.mark_if_unset(conn, 0)
    previous = os.environ["COMMONWATCH_DATA_DIR"]
    os.environ["COMMONWATCH_DATA_DIR"] = str(folder)
    try:
        for frame in batches(k, org_ids, seed=3):
            with engine.begin() as conn:
                event_store(conn).append(frame, batch_id=1, now=END)
        t0, done = time.perf_counter(), 0
        while True:
            with engine.begin() as conn:
                got = rollup.catch_up(conn, event_store(conn), zone=TZ)
            if not got:
                break
            done += got
        return done / (time.perf_counter() - t0)
    finally:
        os.environ["COMMONWATCH_DATA_DIR"] = previous
        engine.dispose()
        shutil.rmtree(folder)


def rollup_rows(engine) -> int:
    with engine.connect() as conn:
        rows = conn.execute(select(text("count(*)")).select_from(EventCount)).scalar()
        print(f"  rollup rows {rows:,} (per grain: "
              + ", ".join(f"{g}: {c:,}" for g, c in conn.execute(text(
                  "SELECT grain, count(*) FROM reports_event_counts GROUP BY grain")).all())
              + "), host sets " + ", ".join(f"{'day' if g == rollup.DAY else 'month'}: {k:,} ({m:,} members)"
                                            for g, k, m in conn.execute(select(HostSet.grain, func.count(),
                                                                               func.sum(HostSet.n))
                                                                        .group_by(HostSet.grain)).all()))
    return int(rows)


def fill_peer(engine, n: int, org_ids: list[int]) -> float:
    """The peer keeps only the event table: the SQL event store's append, no rollups."""
    t0, done = time.perf_counter(), 0
    for frame in batches(n, org_ids):
        with engine.begin() as conn:
            SqlEventStore(conn).append(frame, batch_id=1, now=END)
        done += frame.height
        print(f"  PostgreSQL event table: {done:,} events, {done / (time.perf_counter() - t0):,.0f}/s", flush=True)
    return time.perf_counter() - t0


def fill_cases(engine, n: int, org_ids: list[int], seed: int = 2) -> dict[str, int]:
    """Incidents, warnings and deliveries over the year, in their own tables."""
    rng = np.random.default_rng(seed)
    seconds = int((END - START).total_seconds())

    def times(k: int) -> list[datetime]:
        return [START + timedelta(seconds=int(s)) for s in rng.integers(0, seconds, size=k)]

    def hours(k: int, lo: float, hi: float) -> list[timedelta]:
        return [timedelta(hours=float(h)) for h in rng.uniform(lo, hi, size=k)]

    k_inc, k_warn, k_del = max(200, n // 1000), n // 20, n // 100
    pick = np.array(org_ids)
    found = times(k_inc)
    first, close, due = hours(k_inc, 0.2, 30), hours(k_inc, 2, 400), hours(k_inc, 1, 24)
    incidents = [{"ref": f"INC-B-{i}", "org_id": int(pick[i % len(pick)]), "title": f"Bench incident {i}",
                  "route": "centre", "discovered_at": found[i], "category": CATEGORIES[i % 5],
                  "rsit_class": "other", "rsit_type": "other", "computed_level": LEVELS[i % 4],
                  "level": LEVELS[i % 4], "status": STATUSES[i % 5], "first_report_due": found[i] + due[i],
                  "first_report_at": found[i] + first[i], "handling_closed_at": found[i] + close[i]
                  if i % 5 >= 3 else None} for i in range(k_inc)]
    created, answered = times(k_warn), hours(k_warn, 0.5, 96)
    warnings = [{"org_id": int(pick[i % len(pick)]), "event_id": i, "obs_key": i, "time_source": created[i],
                 "classification_type": "scanner", "severity": "low",
                 "status": ("open", "acknowledged", "resolved")[i % 3],
                 "created_at": created[i], "responded_at": created[i] + answered[i] if i % 3 else None}
                for i in range(k_warn)]
    sent = times(k_del)
    deliveries = [{"org_id": int(pick[i % len(pick)]), "recipient_key": f"r{i % 400}", "channel": "email",
                   "status": ("sent", "sent", "sent", "retry", "dead")[i % 5], "created_at": sent[i]}
                  for i in range(k_del)]
    with engine.begin() as conn:
        for model, rows in ((Incident, incidents), (EventWarning, warnings), (Delivery, deliveries)):
            for at in range(0, len(rows), 20_000):
                conn.execute(insert(model), rows[at:at + 20_000])
    return {"incidents": k_inc, "warnings": k_warn, "deliveries": k_del}


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def p95(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]


def dashboards(org_ids: list[int]) -> dict[str, tuple[Principal, Filters]]:
    own = Principal(user_id=10**6, email="bench@example.org", role=Role.CONSTITUENT,
                    org_ids=frozenset({org_ids[1]}))
    return {"coordinator": (SYSTEM, Filters()), "sector": (SYSTEM, Filters(sector="energy")),
            "constituent": (own, Filters())}


def dashboard_queries(factory, name: str, who: Principal, f: Filters, p: Period, repeat: int) -> dict[str, float]:
    """p95 of each indicator a dashboard shows (those whose capability is installed)."""
    keys = [k for k in svc.DASHBOARDS[name]["indicators"] if ind.available(ind.registry()[k])]
    out: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(repeat):
        with factory() as s:
            ctx = ind.Context(s, who, p, f, END)
            for key in keys:
                t = time.perf_counter()
                ind.compute(key, ctx)
                out[key].append(time.perf_counter() - t)
    return {k: p95(v) for k, v in out.items()}


def raw_queries(store, p: Period, limit: float, *, sql=None) -> dict[str, float | None]:
    """The coordinator's event figures from the raw events: ``counts`` per query, and the distinct
    hosts by a scan of the period (``sql``: by ``count(DISTINCT)`` on that connection, and every
    query under ``statement_timeout`` = ``limit``). ``None``: cut off at ``limit`` seconds."""
    out: dict[str, float | None] = {}
    if sql is not None:
        sql.execute(text(f"SET statement_timeout = {int(limit * 1000)}"))

    def timed(run) -> float | None:
        t = time.perf_counter()
        try:
            run()
        except OperationalError:  # statement_timeout
            sql.rollback()
            sql.execute(text(f"SET statement_timeout = {int(limit * 1000)}"))
            return None
        return time.perf_counter() - t

    for key, by in RAW.items():
        out[key] = timed(lambda by=by: store.counts(SYSTEM, by, since=p.since, until=p.until))
    for key, kind in HOST_TYPES.items():
        if sql is not None:
            where = f"AND classification_type = '{kind}'" if kind else ""
            out[key] = timed(lambda where=where: sql.execute(text(
                "SELECT count(DISTINCT source_ip_bin) FROM events WHERE time_source >= :a "
                f"AND time_source < :b AND org_id IS NOT NULL {where}"), {"a": p.since, "b": p.until}).scalar())
            continue
        t = time.perf_counter()
        after, seen, cut = 0, [], False
        cols = ["time_source", "classification_type", "org_id", "source_ip_bin"]
        while True:
            chunk = store.scan(SYSTEM, cols, after_id=after, limit=2_000_000, since=p.since)
            if not chunk.height:
                break
            after = int(chunk["id"].max())
            chunk = chunk.filter((pl.col("time_source") < p.until) & pl.col("org_id").is_not_null())
            if kind:
                chunk = chunk.filter(pl.col("classification_type") == kind)
            seen.append(chunk.select("source_ip_bin").unique())
            if time.perf_counter() - t > limit:
                cut = True
                break
        pl.concat(seen)["source_ip_bin"].n_unique() if seen else 0
        out[key] = None if cut else time.perf_counter() - t
    return out


def pg_database(url: str, name: str, *, fresh: bool):
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if fresh:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    return url.rsplit("/", 1)[0] + f"/{name}"


def build(keep: Path, n: int, k_orgs: int, pg_url: str | None) -> dict:
    """Fill ``keep`` (and the PostgreSQL database) once; later runs read what it holds."""
    done = keep / "built.json"
    if done.exists():
        return json.loads(done.read_text())
    keep.mkdir(parents=True, exist_ok=True)
    for old in keep.iterdir():
        raise SystemExit(f"{keep} holds an unfinished build ({old.name}): remove the folder first")
    engine = make_engine(f"sqlite:///{keep / 'bench.db'}")
    upgrade(engine)
    org_ids = orgs(engine, k_orgs)
    print(f"filling with {n:,} events over 365 days, {k_orgs:,} organisations", flush=True)
    store_s, rollup_s = fill(engine, n, org_ids)
    rows = rollup_rows(engine)
    cases = fill_cases(engine, n, org_ids)
    print(f"  and {cases}", flush=True)
    t = time.perf_counter()
    with engine.begin() as conn:  # the warnings were inserted as answered: their rollup as rebuild makes it
        answers = acks.rebuild(conn, START, zone=TZ)
    print(f"  time-to-acknowledge rollup: {answers:,} answers in {time.perf_counter() - t:.1f} s", flush=True)
    meta = {"events": n, "orgs": k_orgs, "store_s": store_s, "rollup_s": rollup_s, "rollup_rows": rows,
            "cases": cases, "pg": None}
    if pg_url:
        meta.update(build_peer(n, k_orgs, pg_url))
    done.write_text(json.dumps(meta))
    return meta


def peer_file(keep: Path) -> Path:
    """Where ``--build-peer`` (the PostgreSQL side built in a process of its own, beside the
    SQLite side's ``--no-pg`` build) says what it built."""
    return keep.with_name(keep.name + "-peer.json")


def build_peer(n: int, k_orgs: int, pg_url: str) -> dict:
    """The peer's event table on PostgreSQL, filled with the same events."""
    meta: dict = {}
    url = pg_database(pg_url, f"cw_bench_reports_{n}", fresh=True)
    pg = make_engine(url)
    upgrade(pg)
    print(f"filling PostgreSQL's event table with the same {n:,} events", flush=True)
    # the secondary indexes built after the load (faster than kept up row by row), as migrated
    with pg.begin() as conn:
        indexes = conn.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events' "
                                    "AND indexname NOT IN ('pk_events', 'uq_events_event_key')")).all()
        for index, _definition in indexes:
            conn.execute(text(f'DROP INDEX "{index}"'))
    meta["pg_s"] = fill_peer(pg, n, orgs(pg, k_orgs))
    with pg.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for _index, definition in indexes:
            conn.execute(text(definition))
        conn.execute(text("VACUUM ANALYZE events"))
    pg.dispose()
    meta["pg"] = url
    return meta


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--orgs", type=int, default=ORGS)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", type=Path, default=None, help="the built data (default /tmp/reports-<N>)")
    ap.add_argument("--build-only", action="store_true", help="build the data and stop (run it niced, unlocked)")
    ap.add_argument("--raw-limit", type=float, default=120.0, help="seconds a raw-count query may take")
    ap.add_argument("--pg-url", default=os.environ.get("COMMONWATCH_TEST_POSTGRES_URL",
                                                       "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL peer")
    ap.add_argument("--build-peer", action="store_true",
                    help="build only the PostgreSQL peer's table (run beside a --build-only --no-pg build)")
    ap.add_argument("--job-events", type=int, default=400_000,
                    help="events for timing the rollup job (catch_up) into empty rollups (0: skip)")
    args = ap.parse_args()
    print(f"load average at start: {load()}")
    keep = args.keep or Path(f"/tmp/reports-{args.events}")
    os.environ["COMMONWATCH_DATA_DIR"] = str(keep)
    if args.build_peer:
        peer_file(keep).write_text(json.dumps(build_peer(args.events, args.orgs, args.pg_url)))
        return 0
    meta = build(keep, args.events, args.orgs, None if args.no_pg else args.pg_url)
    if meta["pg"] is None and peer_file(keep).exists():
        meta.update(json.loads(peer_file(keep).read_text()))
    print(f"data: {meta['events']:,} events, {meta['orgs']:,} organisations, {meta['cases']}; event store "
          f"{meta['events'] / meta['store_s']:,.0f} events/s, rollups counted columnar in {meta['rollup_s']:.0f} s "
          f"({meta['rollup_rows']:,} rollup rows)")
    engine = make_engine(f"sqlite:///{keep / 'bench.db'}")
    t = time.perf_counter()
    upgrade(engine)  # kept data built by an older release: its migrations fill the newer rollups
    print(f"migrations current in {time.perf_counter() - t:.1f} s")
    if args.build_only:
        t = time.perf_counter()
        with engine.begin() as conn:  # the planner's statistics of the kept data, as after a real load
            conn.exec_driver_sql("ANALYZE")
        print(f"ANALYZE in {time.perf_counter() - t:.1f} s")
        return 0
    with engine.connect() as conn:
        org_ids = [r[0] for r in conn.execute(text("SELECT id FROM organisations ORDER BY id"))]
    factory = make_sessionmaker(engine)
    month = Period(date(2026, 11, 1), date(2026, 12, 1), TZ)
    year = Period(date(2025, 12, 1), date(2026, 12, 1), TZ)
    pg = make_engine(meta["pg"]) if meta["pg"] and not args.no_pg else None

    boards = dashboards(org_ids)
    results, worst = {}, 0.0
    for label, p in (("month", month), ("year", year)):
        per_board = {b: dashboard_queries(factory, b, who, f, p, args.repeat) for b, (who, f) in boards.items()}
        with engine.connect() as conn:
            raw = raw_queries(event_store(conn), p, args.raw_limit)
        if pg is not None:
            with pg.connect() as conn:
                peer = raw_queries(SqlEventStore(conn), p, args.raw_limit, sql=conn)
        else:
            peer = {}
        ours = per_board["coordinator"]
        results[label] = (ours, raw, peer)
        print(f"\n{label} ({p.label()}, {p.tz}): coordinator event queries, p95 ms "
              f"(raw cut off at {args.raw_limit:.0f} s: '>', ratio a lower bound)")
        print(f"  {'query':<18} {'rollups':>9} {'raw store':>10} {'x':>8} {'SQL on PG':>10} {'x':>8}")
        for key in EVENT_QUERIES:
            o = ours[key]
            lim = args.raw_limit
            pg_cells = f" {cell(peer.get(key), lim)} {ratio(peer.get(key), o, lim)}" if key in peer else ""
            print(f"  {key:<18} {o * 1000:9.1f} {cell(raw.get(key), lim)} {ratio(raw.get(key), o, lim)}{pg_cells}")
        tot_o = sum(ours[k] for k in EVENT_QUERIES)
        tot_r, tot_p = total(raw, args.raw_limit), total(peer, args.raw_limit) if peer else float("nan")
        print(f"  {'event queries':<18} {tot_o * 1000:9.1f} {tot_r * 1000:10.1f} {tot_r / tot_o:8.0f} "
              f"{tot_p * 1000:10.1f} {tot_p / tot_o:8.0f}")
        for b, times in per_board.items():
            slowest = max(times, key=times.get)
            worst = max(worst, times[slowest])
            print(f"  {b} dashboard: {len(times)} queries, all together {sum(times.values()) * 1000:.1f} ms, "
                  f"slowest {slowest} {times[slowest] * 1000:.1f} ms (p95)")
        others = {k: v for k, v in ours.items() if k not in EVENT_QUERIES}
        print("  coordinator, other capabilities (own tables, p95 ms): "
              + ", ".join(f"{k} {v * 1000:.1f}" for k, v in others.items()), flush=True)

    with factory() as s:
        t = time.perf_counter()
        report = svc.build_report(s, SYSTEM, "month", "2026-11", TZ, END)
        figures_s = time.perf_counter() - t
        charts._svg.cache_clear()
        charts._png.cache_clear()
        t = time.perf_counter()
        pdf = render.report_pdf(report)
        build_s = figures_s + time.perf_counter() - t

    job = job_rate(args.job_events, org_ids, Path(f"{keep}-job")) if args.job_events else None
    if job:
        print(f"\nrollup job (catch_up, {args.job_events:,} events into empty rollups): {job:,.0f} events/s")

    def ratios(side: int) -> list[float]:
        return [(results[k][side][q] or args.raw_limit) / results[k][0][q] for k in results for q in EVENT_QUERIES
                if q in results[k][side]]

    cut = sum(1 for k in results for side in (1, 2) for q in EVENT_QUERIES if q in results[k][side]
              and results[k][side][q] is None)
    print(f"\nmonthly report: figures {figures_s:.2f} s, with charts and bilingual PDF {build_s:.2f} s "
          f"({len(pdf):,} bytes)")
    print(f"worst dashboard query p95: {worst * 1000:.1f} ms; raw store/rollup ratio min {min(ratios(1)):.1f}x, "
          f"median {statistics.median(ratios(1)):.1f}x"
          + (f"; PostgreSQL SQL counts/rollup min {min(ratios(2)):.1f}x, "
             f"median {statistics.median(ratios(2)):.1f}x" if pg else "")
          + f"; {cut} raw queries cut off at {args.raw_limit:.0f} s (their ratios lower bounds)")
    year_o = sum(results["year"][0][k] for k in EVENT_QUERIES)
    year_p = total(results["year"][2], args.raw_limit) if pg else total(results["year"][1], args.raw_limit)
    if pg is not None:
        pg.dispose()
    print(f"load average at end: {load()}")
    print(f"RESULT reports_year_dashboard ours={year_o * 1000:.1f} peer={year_p * 1000:.1f} unit=ms "
          f"ratio={year_o / year_p:.4f} goal=<=0.01 (>=100x), p95<=200ms each, monthly report<=30s "
          f"(events={meta['events']}, worst_p95_ms={worst * 1000:.1f}, report_s={build_s:.2f}, cut_off={cut})")
    return 0


def cell(value: float | None, limit: float) -> str:
    return f"{'>' + format(limit * 1000, '.0f'):>10}" if value is None else f"{value * 1000:10.1f}"


def ratio(value: float | None, ours: float, limit: float) -> str:
    if value is None:
        return f"{'>' + format(limit / ours, '.0f'):>8}"
    return f"{value / ours:8.0f}"


def total(times: dict[str, float | None], limit: float) -> float:
    return sum(limit if v is None else v for v in times.values())


if __name__ == "__main__":
    sys.exit(main())
