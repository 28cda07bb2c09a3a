#!/usr/bin/env python3
"""commonwatch's threat-feed pipeline against IntelMQ 3.5, side by side on the same input.

Generates a Shadowserver scan_http-style CSV of ``--rows`` rows (public IPv4 addresses, half of
them inside the constituency), a constituency of 100,000 organisations with 1,000,000 prefixes, and
an enrichment table (AS number and country for every routed /16); then in the same run measures

(a) commonwatch: parse -> normalise -> validate -> deduplicate -> enrich -> match -> classify ->
    store on SQLite, events/s end to end and seconds per stage (in a child process, whose peak RSS
    is reported too);
(b) IntelMQ 3.5 from PyPI in bench/.venvs/intelmq: its Shadowserver parser, taxonomy, MaxMind
    GeoIP and ASN lookup experts and its file output on the same file (the first ``--peer-rows``
    rows; IntelMQ's cost per event does not depend on the file's length), events/s;
(c) the matcher alone: IPv4 lookups per second against the 1,000,000-prefix index;
(d) with ``--rss-rows N``: peak RSS of ``commonwatch ingest`` streaming an N-row file;
(e) with ``--postgres URL``: (a) again on PostgreSQL (COPY), in a database of its own on that server;
(f) the ceiling of a store that writes one SQLite row per event: the rows (a) stored, inserted again
    by SQLite alone (``INSERT ... SELECT`` from the filled store into a fresh copy of the registry,
    no Python per row) into the events table as commonwatch defines it, and into a bare copy of it
    without indexes or constraints. No parser or stage runs here, so no row-per-event pipeline on
    this machine can be faster than these rates.

Ends with ``RESULT pipeline_vs_intelmq ours=... peer=... unit=events/s ratio=... goal=50``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / ".data"
VENV = HERE / ".venvs" / "intelmq"
INTELMQ = "intelmq==3.5.0"
ORGS = 100_000
PREFIXES = 1_000_000
sys.path.insert(0, str(ROOT))

RESERVED = [(0x00000000, 8), (0x0A000000, 8), (0x64400000, 10), (0x7F000000, 8), (0xA9FE0000, 16),
            (0xAC100000, 12), (0xC0000200, 24), (0xC0A80000, 16), (0xC6120000, 15), (0xC6336400, 24),
            (0xCB007100, 24), (0xE0000000, 3)]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def public(values: np.ndarray) -> np.ndarray:
    ok = np.ones(len(values), dtype=bool)
    for net, plen in RESERVED:
        mask = np.uint32((0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF)
        ok &= (values & mask) != np.uint32(net)
    return ok


def public_ipv4(rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.empty(0, dtype=np.uint32)
    while len(out) < n:
        draw = rng.integers(0, 2**32, size=int((n - len(out)) * 1.3) + 16, dtype=np.uint64).astype(np.uint32)
        out = np.concatenate([out, draw[public(draw)]])
    return out[:n]


def dotted(values: np.ndarray) -> np.ndarray:
    import polars as pl

    s = pl.Series(values.astype(np.int64))
    parts = [((s // (1 << sh)) % 256).cast(pl.String) for sh in (24, 16, 8, 0)]
    return pl.select(pl.concat_str([pl.lit(p) for p in parts], separator=".")).to_series().to_numpy()


# --- the constituency ------------------------------------------------------------------------------------

def constituency(rng: np.random.Generator):
    """1,000,000 prefixes (/16 to /28, nested where they fall so) for 100,000 organisations."""
    lengths = rng.integers(16, 29, size=PREFIXES)
    bases = public_ipv4(rng, PREFIXES).astype(np.int64)
    starts = bases & ~((1 << (32 - lengths)) - 1)
    ends = starts + (1 << (32 - lengths)) - 1
    orgs = rng.integers(1, ORGS + 1, size=PREFIXES)
    return starts, ends, lengths, orgs


def current_layout(template: Path) -> bool:
    """Whether a kept template has the page size commonwatch gives new databases today."""
    from commonwatch.db import SQLITE_PAGE_SIZE

    if not template.exists():
        return False
    con = sqlite3.connect(template)
    try:
        return con.execute("PRAGMA page_size").fetchone()[0] == SQLITE_PAGE_SIZE
    finally:
        con.close()


def upgrade_copy(path: Path) -> None:
    """Bring a copy of the kept template to every migration head."""
    from commonwatch import capabilities
    from commonwatch.db import make_engine
    from commonwatch.migrate import upgrade

    capabilities.import_models()
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()


def build_template(path: Path, rng: np.random.Generator, starts, ends, lengths, orgs, tsv: Path) -> None:
    """A migrated SQLite database with the constituency and the enrichment table loaded."""
    from commonwatch import capabilities
    from commonwatch.db import make_engine, make_sessionmaker, session_scope
    from commonwatch.enrichment.services import load_file
    from commonwatch.migrate import upgrade

    capabilities.import_models()
    if path.exists():
        path.unlink()
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    sectors = ["telecom", "energy", "finance", "transport", "water", "e-government", "none"]
    kinds = ["network-operator", "cii-operator", "government", "other"]
    con = sqlite3.connect(path)
    now = "2026-11-25 00:00:00.000000"
    con.executemany("INSERT INTO organisations (id, name, name_local, kind, sector, country, region, notes, "
                    "created_at, updated_at) VALUES (?, ?, '', ?, ?, 'CN', '', '', ?, ?)",
                    [(i, f"Org {i}", kinds[i % 4], sectors[i % 7], now, now) for i in range(1, ORGS + 1)])
    partners = [("DE", ORGS + 1), ("SG", ORGS + 2), ("US", ORGS + 3), ("JP", ORGS + 4)]
    con.executemany("INSERT INTO organisations (id, name, name_local, kind, sector, country, region, notes, "
                    "created_at, updated_at) VALUES (?, ?, '', 'partner-cert', 'none', ?, '', '', ?, ?)",
                    [(oid, f"CERT {cc}", cc, now, now) for cc, oid in partners])
    prefix = b"\x00" * 10 + b"\xff\xff"
    s32, e32 = starts.astype(">u4").tobytes(), ends.astype(">u4").tobytes()
    rows = ((int(orgs[i]), f"{i}/x", 4, int(lengths[i]), prefix + s32[4 * i:4 * i + 4], prefix + e32[4 * i:4 * i + 4],
             now) for i in range(len(starts)))
    con.executemany("INSERT OR IGNORE INTO networks (org_id, cidr, family, prefixlen, first, last, description, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, '', ?)", rows)
    con.commit()
    con.close()
    engine = make_engine(f"sqlite:///{path}")
    with session_scope(make_sessionmaker(engine), actor="bench") as session:
        load_file(session, tsv, "iptoasn")
    engine.dispose()


def enrichment_files(rng: np.random.Generator, tsv: Path, pyasn: Path, mmdb: Path) -> None:
    """AS number and country for every public /16: an iptoasn TSV for commonwatch, the same data
    as a pyasn file and (country by /12) an MMDB for IntelMQ's experts."""
    from tests.enrichment.mmdb_writer import write_mmdb

    blocks = np.arange(0, 2**16, dtype=np.uint32) << 16
    blocks = blocks[public(blocks)]
    asns = rng.integers(1000, 400000, size=len(blocks))
    ccs = np.array(["CN", "US", "DE", "SG", "JP", "FR", "BR", "IN", "RU", "GB"])[rng.integers(0, 10, len(blocks))]
    firsts, lasts = dotted(blocks), dotted(blocks + np.uint32(0xFFFF))
    with tsv.open("w") as fh:
        for f, last, a, c in zip(firsts, lasts, asns, ccs, strict=True):
            fh.write(f"{f}\t{last}\t{a}\t{c}\tAS{a}-NET\n")
    with pyasn.open("w") as fh:
        fh.write("; IP-ASN32-DAT file\n; Original source:\tgenerated for the commonwatch benchmark\n")
        for f, a in zip(firsts, asns, strict=True):
            fh.write(f"{f}/16\t{a}\n")
    records = {}
    aligned = (blocks & np.uint32(0x000F0000)) == 0
    for f, c in zip(firsts[aligned], ccs[aligned], strict=True):
        records[f"{f}/12"] = {"country": {"iso_code": str(c)}}
    write_mmdb(mmdb, records, "GeoLite2-City")


def report(path: Path, rows: int, rng: np.random.Generator, starts, lengths) -> None:
    """A Shadowserver scan_http-style CSV; half the hosts inside constituency prefixes. AS and
    country are left empty so both tools' enrichment has work to do."""
    import polars as pl

    header = ("timestamp,ip,port,hostname,tag,asn,geo,region,city,naics,sic,http,http_code,http_reason,"
              "content_type,connection,www_authenticate,set_cookie,server,content_length,transfer_encoding,"
              "http_date,sector,severity\n")
    servers = np.array(["nginx", "Apache/2.4.41 (Ubuntu)", "Microsoft-IIS/10.0", "lighttpd/1.4.55", "Boa/0.94.14rc21"])
    chunk = 1_000_000
    with path.open("wb") as fh:
        fh.write(header.encode())
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            inside = rng.random(n) < 0.5
            pick = rng.integers(0, len(starts), n)
            offs = rng.integers(0, 2**31, n) % (1 << (32 - lengths[pick]))
            ips = np.where(inside, starts[pick] + offs, public_ipv4(rng, n).astype(np.int64)).astype(np.uint32)
            secs = rng.integers(0, 86400, n)
            frame = pl.DataFrame({
                "timestamp": (pl.Series(secs) * 1_000_000 + 1_795_478_400_000_000).cast(pl.Datetime("us"))
                .dt.strftime("%Y-%m-%d %H:%M:%S"),
                "ip": dotted(ips), "port": rng.choice([80, 8080, 8000, 8888], n), "hostname": [""] * n,
                "tag": ["http"] * n, "asn": [""] * n, "geo": [""] * n, "region": [""] * n, "city": [""] * n,
                "naics": [0] * n, "sic": [0] * n, "http": ["HTTP/1.1"] * n, "http_code": [200] * n,
                "http_reason": ["OK"] * n, "content_type": ["text/html"] * n, "connection": ["close"] * n,
                "www_authenticate": [""] * n, "set_cookie": [""] * n, "server": servers[rng.integers(0, 5, n)],
                "content_length": rng.integers(100, 90000, n), "transfer_encoding": [""] * n,
                "http_date": ["Tue, 24 Nov 2026 01:00:00 GMT"] * n, "sector": [""] * n, "severity": ["medium"] * n})
            frame.write_csv(fh, include_header=False)


# --- runs ---------------------------------------------------------------------------------------------------

OURS = r"""
import json, sys, time
from datetime import UTC, datetime
from pathlib import Path
from commonwatch.clock import FrozenClock
from commonwatch.db import make_engine, make_sessionmaker
from commonwatch.feeds.collect import sources_from_path
from commonwatch.feeds.registry import get_parser
from commonwatch.pipeline.runner import ingest_sources, load_references
engine = make_engine(sys.argv[1]); factory = make_sessionmaker(engine)
clock = FrozenClock(datetime(2026, 11, 25, 12, tzinfo=UTC))
t0 = time.perf_counter(); refs = load_references(engine, factory, None); t_refs = time.perf_counter() - t0
t0 = time.perf_counter()
run = ingest_sources(engine, factory, sources_from_path(Path(sys.argv[2]), clock.now()), get_parser("shadowserver"),
                     feed_label="shadowserver", source_label=sys.argv[2], clock=clock, data_dir=None, actor="bench",
                     refs=refs)
total = time.perf_counter() - t0
print(json.dumps({"rows": run.rows_read, "stored": run.events_stored, "quarantined": run.quarantined,
                  "seconds": total, "reference_load_seconds": t_refs, "stages": run.timings}))
"""


def postgres_copy(template: Path, server_url: str) -> str:
    """A fresh PostgreSQL database holding the SQLite template's registry and enrichment tables;
    returns its URL. The copy is made once into a template database, then cloned per run."""
    import psycopg
    from sqlalchemy import insert, select

    from commonwatch import capabilities
    from commonwatch.db import Base, make_engine
    from commonwatch.migrate import upgrade

    base, _, _ = server_url.rpartition("/")
    admin = psycopg.connect(server_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    tpl, run = "commonwatch_bench_template", f"commonwatch_bench_{os.getpid()}"
    if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (tpl,)).fetchone():
        log("copying the registry into PostgreSQL (once) ...")
        admin.execute(f"CREATE DATABASE {tpl}")
        capabilities.import_models()
        pg, lite = make_engine(f"{base}/{tpl}"), make_engine(f"sqlite:///{template}")
        upgrade(pg)
        with lite.connect() as src, pg.begin() as dst:
            for name in ("organisations", "networks", "enrichment_loads", "enrichment_ranges"):
                table = Base.metadata.tables[name]
                result = src.execution_options(yield_per=50_000).execute(select(table))
                for part in result.mappings().partitions():
                    dst.execute(insert(table), [dict(r) for r in part])
            dst.exec_driver_sql("SELECT setval('organisations_id_seq', (SELECT max(id) FROM organisations))")
        pg.dispose()
        lite.dispose()
    admin.execute(f"DROP DATABASE IF EXISTS {run}")
    admin.execute(f"CREATE DATABASE {run} TEMPLATE {tpl}")
    admin.close()
    return f"{base}/{run}"


def drop_postgres(server_url: str) -> None:
    import psycopg

    with psycopg.connect(server_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS commonwatch_bench_{os.getpid()}")


def run_ours(db_url: str, csv: Path, store: dict[str, str] | None = None) -> tuple[dict, int]:
    """One ingest in a process of its own; ``store`` is the event store's settings (environment)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run([sys.executable, "-c", OURS, db_url, str(csv)], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **(store or {})})
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return json.loads(out.stdout.strip().splitlines()[-1]), max(rss, before)


def store_ceiling(template: Path, store: Path, work: Path) -> dict[str, float]:
    """Rows/s SQLite alone sustains writing the stored events again (see (f) in the docstring)."""
    from commonwatch.db import SQLITE_CONNECTION_PRAGMAS, SQLITE_PAGE_SIZE
    from commonwatch.events.store.sql import SQLITE_CACHE_KIB

    target = work / "ceiling.db"
    shutil.copy(template, target)
    con = sqlite3.connect(target, isolation_level=None)
    try:
        assert con.execute("PRAGMA page_size").fetchone()[0] == SQLITE_PAGE_SIZE
        for pragma in (*SQLITE_CONNECTION_PRAGMAS, f"cache_size=-{SQLITE_CACHE_KIB}"):
            con.execute(f"PRAGMA {pragma}")
        con.execute("ATTACH ? AS stored", (str(store),))
        con.execute("CREATE TABLE bare_events AS SELECT * FROM stored.events WHERE 0")
        rows = con.execute("SELECT count(*) FROM stored.events").fetchone()[0]
        rates = {}
        for label, table in (("indexed", "events"), ("bare", "bare_events")):
            # The WHERE clause keeps SQLite from copying pages wholesale (its transfer optimisation),
            # so every row goes through the ordinary insert, in the order the pipeline stored them.
            t0 = time.perf_counter()
            con.execute("BEGIN")
            con.execute(f"INSERT OR IGNORE INTO main.{table} SELECT * FROM stored.events WHERE id > 0 ORDER BY id")
            con.execute("COMMIT")
            rates[label] = rows / (time.perf_counter() - t0)
        return rates
    finally:
        con.close()


def ensure_intelmq() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        log(f"installing {INTELMQ} into {VENV} ...")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    have = subprocess.run([str(py), "-c", "import intelmq, geoip2, pyasn; print(intelmq.__version__)"],
                          capture_output=True, text=True, check=False)
    if have.returncode != 0 or have.stdout.strip() != INTELMQ.split("==")[1]:
        subprocess.run([str(py), "-m", "pip", "install", "-q", INTELMQ, "geoip2", "pyasn"], check=True)
    return py


def run_peer(csv: Path, rows: int, mmdb: Path, pyasn: Path, work: Path) -> dict:
    py = ensure_intelmq()
    sub = work / csv.name
    with csv.open("rb") as src, sub.open("wb") as dst:
        for i, line in enumerate(src):
            if i > rows:
                break
            dst.write(line)
    root = work / "intelmq-root"
    state = root / "var" / "lib" / "bots"
    state.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "src/commonwatch/feeds/data/shadowserver-schema.json", state / "shadowserver-schema.json")
    out = subprocess.run([str(py), str(HERE / "intelmq_driver.py"), str(sub), str(root), str(mmdb), str(pyasn)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"IntelMQ run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def matcher_rate(starts, ends, lengths, orgs, rng) -> tuple[float, float]:
    import polars as pl

    from commonwatch.constituency.index import build_index_from_arrays, lookup_ips

    org_rows = [(i, "other", "none", "CN") for i in range(1, ORGS + 1)]
    t0 = time.perf_counter()
    index = build_index_from_arrays(starts, ends, lengths, orgs, org_rows)
    build = time.perf_counter() - t0
    q = pl.Series(public_ipv4(rng, 10_000_000), dtype=pl.UInt32)
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        lookup_ips(index, q)
        best = max(best, len(q) / (time.perf_counter() - t0))
    return best, build


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--peer-rows", type=int, default=100_000, help="rows IntelMQ processes (the file's first)")
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--rss-rows", type=int, default=0, help="also stream a file of this many rows; report peak RSS")
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--postgres", metavar="URL", default="",
                    help="also run commonwatch on PostgreSQL (a server URL, e.g. postgresql://127.0.0.1:5432/test; "
                         "the benchmark creates and drops databases of its own there)")
    ap.add_argument("--store", choices=("sql", "parquet", "clickhouse"), default="sql",
                    help="the event store commonwatch ingests into (COMMONWATCH_EVENT_STORE; clickhouse: chDB)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    DATA.mkdir(parents=True, exist_ok=True)
    work = DATA / f"run-{os.getpid()}"
    work.mkdir()
    try:
        starts, ends, lengths, orgs = constituency(rng)
        tsv, pyasn, mmdb = DATA / "ip2asn.tsv", DATA / "ipasn.dat", DATA / "country.mmdb"
        template = DATA / f"registry-{args.seed}.db"
        if not all(p.exists() for p in (template, tsv, pyasn, mmdb)) or not current_layout(template):
            log("generating enrichment files and the 100,000-organisation / 1,000,000-prefix registry ...")
            enrichment_files(rng, tsv, pyasn, mmdb)
            build_template(template, rng, starts, ends, lengths, orgs, tsv)
        csv = DATA / f"2026-11-24-scan_http-bench-{args.rows}.csv"
        if not csv.exists():
            log(f"generating {args.rows:,} rows ...")
            report(csv, args.rows, np.random.default_rng(args.seed + 1), starts, lengths)
        db = work / "store.db"
        shutil.copy(template, db)
        upgrade_copy(db)  # a kept template misses the migrations added since it was built
        store = {"COMMONWATCH_EVENT_STORE": args.store, "COMMONWATCH_EVENT_STORE_DIR": str(work / "events")}
        log(f"commonwatch ({args.store} event store): ingesting ...")
        ours, rss = run_ours(f"sqlite:///{db}", csv, store)
        ours_rate = ours["rows"] / ours["seconds"]
        print(f"commonwatch: {ours['rows']:,} rows in {ours['seconds']:.1f} s = {ours_rate:,.0f} events/s "
              f"({ours['stored']:,} stored, {ours['quarantined']:,} quarantined); peak RSS {rss / 1024:.0f} MB; "
              f"reference data loaded in {ours['reference_load_seconds']:.1f} s")
        for stage, secs in sorted(ours["stages"].items(), key=lambda kv: -kv[1]):
            print(f"  {stage:<14} {secs:8.2f} s  {ours['rows'] / max(secs, 1e-9):>14,.0f} rows/s")
        if args.store == "sql":
            ceiling = store_ceiling(template, db, work)
            print(f"store ceiling (SQLite alone, one row per event): {ceiling['indexed']:,.0f} rows/s into the "
                  f"events table with its indexes; {ceiling['bare']:,.0f} rows/s into a bare copy without indexes")
        if args.postgres:
            log("commonwatch on PostgreSQL: ingesting ...")
            pg_run, _ = run_ours(postgres_copy(template, args.postgres), csv)
            print(f"commonwatch on PostgreSQL: {pg_run['rows']:,} rows in {pg_run['seconds']:.1f} s = "
                  f"{pg_run['rows'] / pg_run['seconds']:,.0f} events/s ({pg_run['stored']:,} stored); store "
                  f"{pg_run['rows'] / max(pg_run['stages'].get('store', 0), 1e-9):,.0f} rows/s")
        lookups, build = matcher_rate(starts, ends, lengths, orgs, rng)
        print(f"matcher: {lookups:,.0f} IPv4 lookups/s against {PREFIXES:,} prefixes (index built in {build:.1f} s)")
        if args.rss_rows:
            big = DATA / f"2026-11-24-scan_http-bench-{args.rss_rows}.csv"
            if not big.exists():
                log(f"generating {args.rss_rows:,} rows ...")
                report(big, args.rss_rows, np.random.default_rng(args.seed + 2), starts, lengths)
            db2 = work / "store-rss.db"
            shutil.copy(template, db2)
            big_store = {**store, "COMMONWATCH_EVENT_STORE_DIR": str(work / "events-rss")}
            big_run, big_rss = run_ours(f"sqlite:///{db2}", big, big_store)
            print(f"streaming {big_run['rows']:,} rows: {big_run['seconds']:.0f} s, "
                  f"{big_run['rows'] / big_run['seconds']:,.0f} events/s, peak RSS {big_rss / 1024:.0f} MB "
                  f"(goal < 1536 MB)")
        if args.skip_peer:
            print(f"RESULT pipeline_vs_intelmq ours={ours_rate:.0f} peer=nan unit=events/s ratio=nan goal=50")
            return
        log(f"IntelMQ 3.5: processing the first {min(args.peer_rows, args.rows):,} rows ...")
        peer = run_peer(csv, min(args.peer_rows, args.rows), mmdb, pyasn, work)
        peer_rate = peer["events"] / peer["seconds"]
        print(f"IntelMQ 3.5 ({' -> '.join(peer['bots'])}): {peer['events']:,} events in {peer['seconds']:.1f} s "
              f"= {peer_rate:,.0f} events/s")
        print(f"matcher goal: >= 5,000,000 lookups/s: {'met' if lookups >= 5e6 else 'NOT met'}")
        if args.store == "sql":
            print(f"ceiling of a one-row-per-event SQLite store on this machine: "
                  f"{ceiling['indexed'] / peer_rate:.1f}x IntelMQ with the events table's indexes, "
                  f"{ceiling['bare'] / peer_rate:.1f}x without any")
        print(f"RESULT pipeline_vs_intelmq ours={ours_rate:.0f} peer={peer_rate:.0f} unit=events/s "
              f"ratio={ours_rate / peer_rate:.1f} goal=50")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.postgres:
            drop_postgres(args.postgres)


if __name__ == "__main__":
    main()
