#!/usr/bin/env python3
"""Reads of a large event store through the seam, the Parquet store beside the SQLite table.

    .venv/bin/python bench/store_search.py [--rows 10000000] [--stores parquet,sql] [--repeat 20]

Fills each store with the same N events (60 days, two constituents: A holds 90%, B 10%), through
the store's own writer, then measures through ``commonwatch.events.store`` only, as the API and
pages call it, each the p95 of ``--repeat`` runs:

- a constituent's first page (B: 10% of the events; with its capped count, as the page shows it);
- that constituent's page at 99% depth (the cursor a person paging from the top would hold);
- counts by type per day over the last 30 days (staff; the overview's and statistics' query);
- the export stream (CSV, as ``events export`` writes it) of the first ``--export-rows`` events:
  events/s.

Goals (issue #13): pages p95 <= 50 ms, the 30-day counts <= 200 ms, export >= 200,000 events/s.
The last lines are ``RESULT`` lines with the Parquet figure, the SQLite one and their ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from commonwatch import capabilities
from commonwatch.access.principal import Principal, Role
from commonwatch.config import get_settings
from commonwatch.constituency.models import Organisation
from commonwatch.db import make_engine, make_sessionmaker, session_scope
from commonwatch.events import export, search
from commonwatch.events.schema import FIELDS
from commonwatch.events.store import event_store
from commonwatch.migrate import upgrade

END = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
SPAN = timedelta(days=60)
TYPES = ("vulnerable-system", "infected-system", "phishing", "c2-server", "scanner")
SEVERITIES = ("info", "low", "medium", "high", "critical")
CHUNK = 250_000


def batch(start: int, stop: int, n: int, a_id: int, b_id: int) -> pl.DataFrame:
    """Events ``start..stop`` of ``n`` (newest first: event i is ``i * SPAN / n`` before END) as a
    processed batch, built column by column."""
    i = np.arange(start, stop, dtype=np.int64)
    ip = (np.int64(10) << 24) | (i & 0xFFFFFF)
    b16 = np.zeros((len(i), 16), dtype=np.uint8)
    b16[:, 10] = b16[:, 11] = 255
    b16[:, 12:] = ip.astype(">u4").view(np.uint8).reshape(-1, 4)
    at = pl.Series(END.timestamp() * 1e6 - i * (SPAN / timedelta(microseconds=1)) / n).cast(pl.Int64) \
        .cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    frame = pl.DataFrame({"i": i, "ip": ip})
    dotted = frame.select(pl.concat_str([(pl.col("ip") // 2 ** s % 256).cast(pl.Utf8) for s in (24, 16, 8, 0)],
                                        separator=".")).to_series()
    out = pl.DataFrame({
        "event.key": "k" + frame["i"].cast(pl.Utf8),
        "time.source": at, "time.observation": at,
        "feed.name": pl.repeat("bench", len(i), eager=True), "feed.provider": pl.repeat("bench", len(i), eager=True),
        "source.ip": dotted, "source.ip_bin": pl.from_arrow(pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(16), len(i), [None, pa.py_buffer(b16.tobytes())])).cast(pl.Binary),
        "source.port": pl.Series(80 + i % 5, dtype=pl.Int32),
        "source.asn": pl.Series(64500 + i % 50, dtype=pl.Int64),
        "source.geolocation.cc": pl.repeat("CN", len(i), eager=True),
        "classification.taxonomy": pl.repeat("vulnerable", len(i), eager=True),
        "classification.type": pl.Series(np.array(TYPES)[i % 5]),
        "extra": ('{"n": ' + frame["i"].cast(pl.Utf8) + "}"),
        "constituent.org_id": pl.Series(np.where(i % 10 == 0, b_id, a_id), dtype=pl.Int64),
        "constituent.sector": pl.repeat("telecom", len(i), eager=True),
        "constituent.cii": pl.repeat(False, len(i), eager=True),
        "severity": pl.Series(np.array(SEVERITIES)[i % 5]), "tlp": pl.repeat("AMBER", len(i), eager=True),
    })
    # Every other field empty, as a feed that does not fill it leaves it.
    return out.with_columns([pl.lit(None, f.dtype).alias(f.name) for f in FIELDS if f.name not in out.columns])


def use_store(kind: str, folder: Path) -> None:
    os.environ["COMMONWATCH_EVENT_STORE"] = kind
    os.environ["COMMONWATCH_EVENT_STORE_DIR"] = str(folder)
    get_settings.cache_clear()


def p95(fn, repeat: int) -> float:
    """The 95th percentile of ``repeat`` runs of ``fn``, in milliseconds (after one warm-up run)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(times, 95))


def fill(kind: str, tmp: Path, n: int) -> tuple[int, int]:
    """Store the ``n`` events in ``tmp`` (organisations first); a store already filled with ``n``
    there (``--keep``: marked by ``<kind>.filled``) is reused as it is."""
    marker = tmp / f"{kind}.filled"
    engine = make_engine(f"sqlite:///{tmp}/{kind}.db")
    if marker.exists() and marker.read_text().split()[0] == str(n):
        a_id, b_id = (int(v) for v in marker.read_text().split()[1:3])
        print(f"{kind}: reusing the {n:,} events stored in {tmp}", flush=True)
        engine.dispose()
        return a_id, b_id
    upgrade(engine)
    factory = make_sessionmaker(engine)
    with session_scope(factory, "bench") as s:
        a = Organisation(name="Bench A", kind="network-operator")
        b = Organisation(name="Bench B", kind="network-operator")
        s.add_all([a, b])
        s.flush()
        a_id, b_id = a.id, b.id
    t0 = time.perf_counter()
    for start in range(0, n, CHUNK):
        with engine.begin() as conn:
            event_store(conn).append(batch(start, min(n, start + CHUNK), n, a_id, b_id), batch_id=1, now=END)
    if kind == "parquet":  # the daily segments a store fed all day ends with
        with engine.begin() as conn:
            event_store(conn).compact()
    print(f"{kind}: stored {n:,} events in {time.perf_counter() - t0:.1f} s", flush=True)
    marker.write_text(f"{n} {a_id} {b_id}\n")
    engine.dispose()
    return a_id, b_id


def measure(kind: str, tmp: Path, n: int, repeat: int, export_rows: int) -> dict[str, float]:
    use_store(kind, tmp / f"{kind}-events")
    a_id, b_id = fill(kind, tmp, n)
    engine = make_engine(f"sqlite:///{tmp}/{kind}.db")
    factory = make_sessionmaker(engine)
    staff = Principal(1, "bench@x", Role.ANALYST)
    b_user = Principal(2, "b@x", Role.CONSTITUENT, frozenset({b_id}))
    everything = search.EventFilter()
    # B's events are every 10th, newest first by construction; the one at 99% of B's selection:
    deep_i = int(n / 10 * 0.99) * 10
    deep_at = batch(deep_i, deep_i + 1, n, a_id, b_id)["time.source"][0]
    with factory() as s:
        deep_id = event_store(s).existing_keys([f"k{deep_i}"])[f"k{deep_i}"]
    cursor = search.Position(deep_at, deep_id).encode()

    def page(after):
        with factory() as s:
            return event_store(s).search_page(b_user, everything, limit=50, after=after, count=after is None)

    assert len(page(cursor).items) == 50, "the deep page is full"
    out = {"first_page_ms": p95(lambda: page(None), repeat), "deep_page_ms": p95(lambda: page(cursor), repeat)}

    def counts():
        with factory() as s:
            return event_store(s).counts(staff, ["day", "type"], since=END - timedelta(days=30), until=END)

    rows = counts()
    assert sum(r.count for r in rows) > 0
    out["counts_30d_ms"] = p95(counts, max(3, repeat // 4))
    # The newest ``export_rows`` events, chosen by time as a person narrows an export.
    newest = search.EventFilter(time_from=batch(export_rows - 1, export_rows, n, a_id, b_id)["time.source"][0])
    t0 = time.perf_counter()
    with session_scope(factory, "bench") as s:
        prepared = export.prepare(s, engine, staff, newest, "csv", max_rows=export_rows)
    size = sum(len(chunk) for chunk in prepared.stream())
    took = time.perf_counter() - t0
    out["export_events_s"] = prepared.rows / took
    print(f"{kind}: first page {out['first_page_ms']:.1f} ms, 99% deep {out['deep_page_ms']:.1f} ms, "
          f"30-day counts {out['counts_30d_ms']:.1f} ms, export {prepared.rows:,} events ({size / 1e6:.0f} MB) "
          f"{out['export_events_s']:,.0f} events/s", flush=True)
    engine.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--stores", default="parquet,sql")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--export-rows", type=int, default=1_000_000)
    parser.add_argument("--tmp", default="", help="folder for the stores (default: a temp dir)")
    parser.add_argument("--keep", default="", help="build the stores once in this folder and reuse them "
                                                   "(outside the checkout, e.g. /tmp/bench-stores)")
    parser.add_argument("--build-only", action="store_true", help="with --keep: fill the stores, measure nothing")
    args = parser.parse_args()
    capabilities.import_models()
    print(f"load {Path('/proc/loadavg').read_text().strip()}", flush=True)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(dir=args.tmp or None) as scratch:
        tmp = Path(args.keep or scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        for kind in args.stores.split(","):
            if args.build_only:
                use_store(kind, tmp / f"{kind}-events")
                fill(kind, tmp, args.rows)
                continue
            results[kind] = measure(kind, tmp, args.rows, args.repeat, args.export_rows)
    print(f"load {Path('/proc/loadavg').read_text().strip()}", flush=True)
    if {"parquet", "sql"} <= results.keys():
        ours, peer = results["parquet"], results["sql"]
        for name, goal, lower_better in (("first_page_ms", "<=50", True), ("deep_page_ms", "<=50", True),
                                         ("counts_30d_ms", "<=200", True), ("export_events_s", ">=200000", False)):
            ratio = peer[name] / ours[name] if lower_better else ours[name] / peer[name]
            print(f"RESULT store_{name} ours={ours[name]:.1f} peer={peer[name]:.1f} speedup={ratio:.1f}x goal={goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
