"""Random events for the rollup tests and the benchmark, written through the pipeline's write_batch
(so the ingest hook is what keeps the rollups)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

from commonwatch.events.schema import FIELDS
from commonwatch.events.store import event_store
from commonwatch.pipeline.store import write_batch
from commonwatch.reports import rollup

TYPES = ["scanner", "c2-server", "phishing", "infected-system", "vulnerable-system", "application-compromise"]
SEVERITIES = ["info", "low", "medium", "high", "critical"]
FEEDS = ["shadowserver-scan_rdp", "abusech-feodo", "phishtank", "spamhaus-drop"]
SECTORS = ["telecom", "energy", "finance", ""]
COUNTRIES = ["CN", "DE", "SG", ""]


def random_batch(rng: np.random.Generator, n: int, start: datetime, seconds: int, org_ids: list[int],
                 key_prefix: str = "k", keys: np.ndarray | None = None) -> pl.DataFrame:
    """``n`` events at random times in ``[start, start + seconds)`` with random dimensions, in the
    harmonisation names write_batch takes. ``keys`` (integers) give the event keys, so that a test
    can write the same observation twice."""
    keys = keys if keys is not None else rng.choice(10 ** 12, size=n, replace=False)
    t0 = int(start.timestamp() * 1_000_000)
    times = t0 + rng.integers(0, seconds * 1_000_000, size=n)
    orgs = np.array([0, *org_ids])[rng.integers(0, len(org_ids) + 1, size=n)]
    ips = rng.integers(0, 5000, size=n)
    data = {
        "time.source": pl.Series(times, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
        "event.key": pl.Series([f"{key_prefix}{k}" for k in keys], dtype=pl.String),
        "classification.type": pl.Series(np.array(TYPES)[rng.integers(0, len(TYPES), size=n)]),
        "severity": pl.Series(np.array(SEVERITIES)[rng.integers(0, len(SEVERITIES), size=n)]),
        "feed.name": pl.Series(np.array(FEEDS)[rng.integers(0, len(FEEDS), size=n)]),
        "source.geolocation.cc": pl.Series(np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), size=n)])
        .replace("", None),
        "constituent.sector": pl.Series(np.array(SECTORS)[rng.integers(0, len(SECTORS), size=n)]).replace("", None),
        "constituent.org_id": pl.Series(orgs, dtype=pl.Int64).replace(0, None),
        "source.asn": pl.Series(64500 + rng.integers(0, 20, size=n), dtype=pl.Int64),
        "source.ip": pl.Series([f"198.51.{i // 250}.{i % 250}" for i in ips]),
        "source.ip_bin": pl.Series([bytes(10) + b"\xff\xff" + bytes([198, 51, int(i // 250), int(i % 250)])
                                    for i in ips], dtype=pl.Binary),
        "tlp": pl.Series(["AMBER"] * n),
        "feed.provider": pl.Series(["test"] * n),
        "classification.taxonomy": pl.Series(["other"] * n),
        "constituent.cii": pl.Series([False] * n),
    }
    frame = pl.DataFrame(data)
    missing = {f.name: pl.lit(None, f.dtype if isinstance(f.dtype, pl.DataType) else f.dtype()) for f in FIELDS
               if f.name not in frame.columns}
    frame = frame.with_columns(**missing)
    if "time.observation" in missing:
        frame = frame.with_columns(pl.col("time.source").alias("time.observation"))
    return frame


def store_batch(conn, frame: pl.DataFrame, run_id: int = 1) -> int:
    """Write ``frame`` as the pipeline does; returns how many events were new."""
    written = write_batch(conn, run_id, frame, pl.DataFrame(schema={"line": pl.Int64, "raw": pl.String,
                                                                     "reason": pl.String}),
                          feed="test", source="test", now=datetime.now(UTC), rows_read=frame.height,
                          duplicates_in_batch=0)
    # the rollup job's work, as it runs after the ingest's commit
    while rollup.catch_up(conn, event_store(conn)):
        pass
    return written.inserted
