#!/usr/bin/env python3
"""Benchmark: what recording feed health costs an ingest.

Generates a Shadowserver scan_http report of ``--rows`` rows (by default 500,000) and ingests it
with the in-process runner into a fresh SQLite database, in the same run:

(a) ours: the runner as shipped, with ``feeds.health.RunRecorder`` hashing the bytes as they are
    read and adding each batch's column counts;
(b) the peer: the same runner with the recorder switched off (its methods replaced by no-ops), i.e.
    the ingest before feed health.

After one warm-up ingest (not counted), the sides run ``--repeat`` times each, interleaved, each on
a fresh database; the best of each is kept. The ratio is ours / peer in rows per second (1.00 = no
cost).

    .venv/bin/python bench/feed_health.py                 # 500,000 rows
    .venv/bin/python bench/feed_health.py --rows 100000   # a quick run
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from commonwatch.clock import FrozenClock
from commonwatch.db import make_engine, make_sessionmaker
from commonwatch.feeds import health
from commonwatch.feeds.collect import sources_from_path
from commonwatch.feeds.registry import get_parser
from commonwatch.migrate import upgrade
from commonwatch.pipeline.runner import ingest_sources

HEADER = ("timestamp,ip,port,hostname,protocol,tag,asn,geo,region,city,naics,sic,sector,severity,http,http_code,"
          "http_reason,content_type,server")


def write_report(folder: Path, rows: int) -> Path:
    path = folder / "2026-11-24-scan_http-asn-region-geo.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write(HEADER + "\n")
        for i in range(rows):
            fh.write(f"2026-11-24 {i % 24:02d}:{i % 60:02d}:00,198.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255},"
                     f"80,host{i}.example,tcp,http,64500,CN,BEIJING,BEIJING,517311,0,Communications,medium,"
                     "HTTP/1.1,200,OK,text/html,nginx\n")
    return path


def run_once(folder: Path, report: Path, label: str) -> tuple[float, int]:
    from datetime import UTC, datetime

    url = f"sqlite:///{folder / f'{label}-{time.monotonic_ns()}.db'}"
    engine = make_engine(url)
    upgrade(engine)
    clock = FrozenClock(datetime(2026, 11, 25, tzinfo=UTC))
    t0 = time.perf_counter()
    summary = ingest_sources(engine, make_sessionmaker(engine), sources_from_path(report, clock.now()),
                             get_parser("shadowserver"), feed_label="shadowserver", source_label=str(report),
                             clock=clock, data_dir=None, actor="bench")
    wall = time.perf_counter() - t0
    engine.dispose()
    return wall, summary.rows_read


def switched_off():
    """The recorder's methods as no-ops: the ingest as it was before feed health."""
    saved = {n: getattr(health.RunRecorder, n) for n in ("watch", "add", "source_done", "save")}
    health.RunRecorder.watch = lambda self, source: source
    health.RunRecorder.add = lambda self, *a, **k: None
    health.RunRecorder.source_done = lambda self: None
    health.RunRecorder.save = lambda self, *a, **k: None
    return saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cw-bench-feedhealth-") as tmp:
        folder = Path(tmp)
        report = write_report(folder, args.rows)
        size = report.stat().st_size
        run_once(folder, report, "warm-up")  # the first ingest of a process pays for imports and caches
        ours_times, peer_times = [], []
        for _ in range(args.repeat):  # interleaved, so a noisy neighbour hits both sides alike
            ours_times.append(run_once(folder, report, "ours")[0])
            saved = switched_off()
            try:
                peer_times.append(run_once(folder, report, "peer")[0])
            finally:
                for name, fn in saved.items():
                    setattr(health.RunRecorder, name, fn)
        ours, peer = min(ours_times), min(peer_times)
    ours_rate, peer_rate = args.rows / ours, args.rows / peer
    print(f"{args.rows:,} rows, {size / 1e6:.1f} MB; best of {args.repeat}")
    print(f"with feed-health recording:    {ours:7.2f} s  {ours_rate:12,.0f} rows/s")
    print(f"without (the ingest before it): {peer:7.2f} s  {peer_rate:12,.0f} rows/s")
    print(f"RESULT feed_health_overhead ours={ours_rate:.0f} peer={peer_rate:.0f} unit=rows/s "
          f"ratio={ours_rate / peer_rate:.3f} goal=>=0.97")


if __name__ == "__main__":
    main()
