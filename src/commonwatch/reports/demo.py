"""Demo: thirteen months of synthetic events over the demo constituency (so the dashboards and a
monthly report have a year to show), stored through the pipeline's write_batch; then a rebuild over
everything stored (which first counts what the rollup job has not) (the shipped sample feeds included) and a sample
monthly report as PDF under the data folder. Idempotent."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
from sqlalchemy import select

from commonwatch.events.schema import FIELDS
from commonwatch.pipeline.models import IngestRun

DEMO_EVENTS = 40_000
TYPES = ["scanner", "vulnerable-system", "infected-system", "c2-server", "phishing", "application-compromise",
         "ddos-amplifier", "brute-force"]
WEIGHTS = [0.30, 0.25, 0.15, 0.05, 0.10, 0.04, 0.07, 0.04]
SEVERITY = {"scanner": "low", "vulnerable-system": "medium", "infected-system": "high", "c2-server": "high",
            "phishing": "medium", "application-compromise": "medium", "ddos-amplifier": "low", "brute-force": "low"}
FEEDS = ["shadowserver-scan_rdp", "shadowserver-sinkhole_http", "feodotracker", "urlhaus", "phishtank", "openphish"]


def synthetic(rng: np.random.Generator, n: int, start, seconds: int, orgs: list[tuple[int | None, str, int]],
              prefix: str) -> pl.DataFrame:
    """``n`` events at random times (more on weekdays, a rising trend), over ``orgs`` (id, sector, asn)."""
    t = rng.beta(1.3, 1.0, size=n) * seconds
    times = int(start.timestamp() * 1e6) + (t * 1e6).astype(np.int64)
    types = np.array(TYPES)[rng.choice(len(TYPES), size=n, p=WEIGHTS)]
    pick = rng.integers(0, len(orgs), size=n)
    org_ids = [orgs[i][0] for i in pick]
    host = rng.integers(1, 250, size=n)
    net = np.array([i % 4 for i in pick])
    prefixes = np.array(["198.51.100", "203.0.113", "198.18.0", "192.0.2"])
    ips = [f"{p}.{h}" for p, h in zip(prefixes[net], host, strict=True)]
    data = {
        "time.source": pl.Series(times, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
        "event.key": [f"{prefix}{i}" for i in range(n)],
        "classification.type": types, "classification.taxonomy": ["other"] * n,
        "severity": [SEVERITY[x] for x in types],
        "feed.name": np.array(FEEDS)[rng.integers(0, len(FEEDS), size=n)], "feed.provider": ["demo"] * n,
        "constituent.org_id": pl.Series(org_ids, dtype=pl.Int64),
        "constituent.sector": [orgs[i][1] for i in pick],
        "source.asn": pl.Series([orgs[i][2] for i in pick], dtype=pl.Int64),
        "source.geolocation.cc": ["CN"] * n, "source.ip": ips,
        "source.ip_bin": pl.Series([bytes(10) + b"\xff\xff" + bytes(int(x) for x in ip.split(".")) for ip in ips],
                                   dtype=pl.Binary),
        "tlp": ["AMBER"] * n, "constituent.cii": [False] * n,
    }
    frame = pl.DataFrame(data)
    missing = {f.name: pl.lit(None, f.dtype if isinstance(f.dtype, pl.DataType) else f.dtype())
               for f in FIELDS if f.name not in frame.columns}
    return frame.with_columns(**missing).with_columns(pl.col("time.source").alias("time.observation"))


def load(ctx) -> None:
    from commonwatch.access.principal import SYSTEM
    from commonwatch.events.store import event_store
    from commonwatch.pipeline.store import write_batch
    from commonwatch.reports import render
    from commonwatch.reports import services as svc
    from commonwatch.reports.jobs import last_complete
    from commonwatch.reports.rollup import rebuild

    session = ctx.session
    if session.scalar(select(IngestRun.id).where(IngestRun.actor == "demo-reports").limit(1)) is not None:
        return
    now = ctx.clock.now()
    start = (now - timedelta(days=400)).replace(minute=0, second=0, microsecond=0)
    orgs = [(o.id, o.sector, 64500 + i % 4) for i, o in enumerate(ctx.orgs.values()) if o.kind != "partner-cert"]
    orgs += [(None, "", 64510)] * 2  # events outside the constituency
    run = IngestRun(feed="demo-statistics", source="synthetic", actor="demo-reports", status="done",
                    started_at=now, finished_at=now)
    session.add(run)
    session.flush()
    frame = synthetic(np.random.default_rng(2026), DEMO_EVENTS, start, int((now - start).total_seconds()), orgs,
                      "demo-reports-")
    conn = session.connection()
    write_batch(conn, run.id, frame, pl.DataFrame(schema={"line": pl.Int64, "raw": pl.String, "reason": pl.String}),
                feed="demo-statistics", source="synthetic", now=now, rows_read=frame.height, duplicates_in_batch=0)
    # the sample feeds were ingested before: recompute every day from the first stored event
    rebuild(conn, event_store(conn, settings=ctx.settings), start - timedelta(days=400), zone=ctx.settings.timezone)
    tz = svc.zone_name(ctx.settings.timezone)
    month = last_complete("month", svc.local_today(now, tz))
    report = svc.build_report(session, SYSTEM, "month", month, tz, now)
    ctx.settings.path("demo", f"monthly-report-{month}.pdf").write_bytes(render.report_pdf(report))
