#!/usr/bin/env python3
"""Does the ingest slow down as the Parquet store grows? The same file into an empty store and into
one that already holds ``--prefill`` events.

    .venv/bin/python bench/store_growth.py [--prefill 10000000] [--rows 1000000] [--keep DIR]

Uses the input of ``bench/pipeline_vs_intelmq.py`` (its Shadowserver-style CSV of ``--rows`` rows of
2026-11-24, the 100,000-organisation registry, the enrichment table: built there and kept in
``bench/.data``), and runs commonwatch's whole ingest of it, each time in a process of its own:

1. into an empty Parquet store;
2. into a store holding ``--prefill`` events already: 60 days before the file's day, with
   BLAKE2b-128 hex keys as the pipeline writes them, spread over the registry's organisations,
   written through the store's own ``append`` in batches of 1,000,000 and compacted into daily
   segments, as a store fed all day ends up. It is built once in ``--keep`` (outside the checkout)
   and each run ingests into a hard-linked copy of it (segments are never changed in place, so the
   copy costs nothing and leaves the kept one as it was).

Each run reports events/s end to end, the store step's seconds and the child's peak RSS (VmHWM,
read by the child itself at the end). Goals (issue #13): the rate into the full store >= 0.9x the
rate into the empty one; peak RSS <= 1.5 GB. Ends with
``RESULT store_growth ours=<full> peer=<empty> unit=events/s ratio=... goal=>=0.9``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pipeline_vs_intelmq as pvi  # noqa: E402  (the input and the child's ingest script)

FILE_DAY = datetime(2026, 11, 24, tzinfo=UTC)
SPAN = timedelta(days=60)
TYPES = ("vulnerable-system", "infected-system", "phishing", "c2-server", "scanner", "brute-force")
SEVERITIES = ("info", "low", "medium", "high", "critical")
BATCH = 1_000_000
#: The child's ingest, then its own peak RSS (VmHWM survives only as long as the process).
CHILD = pvi.OURS + r"""
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print(json.dumps({"vmhwm_kb": int(hwm)}))
"""


def fixed16(raw: bytes, size: int) -> pl.Series:
    """``size`` 16-byte values from one buffer, as a Binary column (no Python per value)."""
    return pl.from_arrow(pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), size, [None, pa.py_buffer(raw)])) \
        .cast(pl.Binary)


def prefill_batch(start: int, stop: int, n: int, rng: np.random.Generator) -> pl.DataFrame:
    """Events ``start..stop`` of ``n`` as a processed batch (harmonisation names), built column by
    column: event i is ``i * SPAN / n`` before the file's day; keys are 32 hex digits."""
    from commonwatch.events.schema import FIELDS

    size = stop - start
    i = np.arange(start, stop, dtype=np.int64)
    at = pl.Series((FILE_DAY.timestamp() * 1e6 - (i + 1) * (SPAN / timedelta(microseconds=1)) / n)
                   .astype(np.int64)).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    ip = (rng.integers(1 << 24, 223 << 24, size, dtype=np.int64)).astype(np.uint32)
    b16 = np.zeros((size, 16), dtype=np.uint8)
    b16[:, 10] = b16[:, 11] = 255
    b16[:, 12:] = ip.astype(">u4").view(np.uint8).reshape(-1, 4)
    keys = fixed16(rng.bytes(16 * size), size).bin.encode("hex")
    frame = pl.DataFrame({"ip": ip.astype(np.int64)})
    dotted = frame.select(pl.concat_str([(pl.col("ip") // 2 ** s % 256).cast(pl.Utf8) for s in (24, 16, 8, 0)],
                                        separator=".")).to_series()
    org = rng.integers(1, pvi.ORGS + 1, size)
    out = pl.DataFrame({
        "event.key": keys,
        "time.source": at, "time.observation": at,
        "feed.name": pl.repeat("shadowserver", size, eager=True),
        "feed.provider": pl.repeat("Shadowserver", size, eager=True),
        "source.ip": dotted, "source.ip_bin": fixed16(b16.tobytes(), size),
        "source.port": pl.Series(rng.choice([80, 443, 8080, 22], size), dtype=pl.Int32),
        "source.asn": pl.Series(rng.integers(1000, 60000, size), dtype=pl.Int64),
        "source.geolocation.cc": pl.repeat("CN", size, eager=True),
        "classification.taxonomy": pl.repeat("vulnerable", size, eager=True),
        "classification.type": pl.Series(np.array(TYPES)[rng.integers(0, len(TYPES), size)]),
        "constituent.org_id": pl.Series(org, dtype=pl.Int64).set(pl.Series(rng.random(size) < 0.5), None),
        "constituent.sector": pl.repeat("telecom", size, eager=True),
        "constituent.cii": pl.repeat(False, size, eager=True),
        "severity": pl.Series(np.array(SEVERITIES)[rng.integers(0, 5, size)]),
        "tlp": pl.repeat("AMBER", size, eager=True),
    })
    return out.with_columns([pl.lit(None, f.dtype).alias(f.name) for f in FIELDS if f.name not in out.columns])


def build_prefilled(folder: Path, n: int) -> None:
    """``n`` events in a Parquet store in ``folder`` (kept: built only if not there yet)."""
    from commonwatch.events.store.parquet import ParquetEventStore

    marker = folder / "filled"
    if marker.exists() and marker.read_text().strip() == str(n):
        pvi.log(f"reusing the {n:,}-event store in {folder}")
        return
    shutil.rmtree(folder, ignore_errors=True)
    store = ParquetEventStore(folder / "events")
    rng = np.random.default_rng(20261204)
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        store.append(prefill_batch(start, min(n, start + BATCH), n, rng), batch_id=1,
                     now=FILE_DAY - timedelta(hours=1))
    t1 = time.perf_counter()
    merged = store.compact()
    segments = len(store.manifest().segments)
    pvi.log(f"prefilled {n:,} events in {t1 - t0:.0f} s, compacted ({merged} segments merged) in "
            f"{time.perf_counter() - t1:.0f} s: {segments} segments")
    marker.write_text(f"{n}\n")


def ingest(db: Path, csv: Path, events: Path) -> dict:
    """One whole ingest of ``csv`` into the Parquet store ``events``, in a process of its own."""
    env = {**os.environ, "PYTHONPATH": str(pvi.ROOT / "src"), "COMMONWATCH_EVENT_STORE": "parquet",
           "COMMONWATCH_EVENT_STORE_DIR": str(events)}
    out = subprocess.run([sys.executable, "-c", CHILD, f"sqlite:///{db}", str(csv)], capture_output=True,
                         text=True, check=True, env=env)
    lines = out.stdout.strip().splitlines()
    return {**json.loads(lines[-2]), **json.loads(lines[-1])}


def show(label: str, run: dict) -> float:
    rate = run["rows"] / run["seconds"]
    print(f"{label}: {run['rows']:,} rows in {run['seconds']:.1f} s = {rate:,.0f} events/s ({run['stored']:,} "
          f"stored); store step {run['stages'].get('store', 0):.1f} s; peak RSS {run['vmhwm_kb'] / 1024:,.0f} MB",
          flush=True)
    return rate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prefill", type=int, default=10_000_000, help="events the full store holds before the run")
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the ingested file")
    ap.add_argument("--keep", default="/tmp/bench-store-growth", help="where the prefilled store is kept")
    ap.add_argument("--build-only", action="store_true", help="build the prefilled store, measure nothing")
    ap.add_argument("--seed", type=int, default=20261125)
    args = ap.parse_args()
    print(f"load {Path('/proc/loadavg').read_text().strip()}", flush=True)
    keep = Path(args.keep) / f"prefill-{args.prefill}"
    build_prefilled(keep, args.prefill)
    if args.build_only:
        return 0
    rng = np.random.default_rng(args.seed)
    starts, ends, lengths, orgs = pvi.constituency(rng)
    pvi.DATA.mkdir(parents=True, exist_ok=True)
    tsv, pyasn, mmdb = pvi.DATA / "ip2asn.tsv", pvi.DATA / "ipasn.dat", pvi.DATA / "country.mmdb"
    template = pvi.DATA / f"registry-{args.seed}.db"
    if not all(p.exists() for p in (template, tsv, pyasn, mmdb)) or not pvi.current_layout(template):
        pvi.log("generating enrichment files and the registry ...")
        pvi.enrichment_files(rng, tsv, pyasn, mmdb)
        pvi.build_template(template, rng, starts, ends, lengths, orgs, tsv)
    csv = pvi.DATA / f"2026-11-24-scan_http-bench-{args.rows}.csv"
    if not csv.exists():
        pvi.log(f"generating {args.rows:,} rows ...")
        pvi.report(csv, args.rows, np.random.default_rng(args.seed + 1), starts, lengths)
    with tempfile.TemporaryDirectory(dir=args.keep) as tmp:
        work = Path(tmp)
        runs = {}
        for label in ("empty", "full"):
            db = work / f"{label}.db"
            shutil.copy(template, db)
            pvi.upgrade_copy(db)
            events = work / f"{label}-events"
            if label == "full":
                subprocess.run(["cp", "-al", str(keep / "events"), str(events)], check=True)
            runs[label] = ingest(db, csv, events)
        empty = show("into an empty store", runs["empty"])
        full = show(f"into a store of {args.prefill:,} events", runs["full"])
    print(f"load {Path('/proc/loadavg').read_text().strip()}", flush=True)
    peak = max(r["vmhwm_kb"] for r in runs.values()) / 1024
    print(f"peak RSS {peak:,.0f} MB (goal <= 1536 MB)")
    print(f"RESULT store_growth ours={full:.0f} peer={empty:.0f} unit=events/s ratio={full / empty:.2f} goal=>=0.9")
    return 0


if __name__ == "__main__":
    sys.exit(main())
