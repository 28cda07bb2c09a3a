"""Organisation B's events and quarantined records for the tenancy walk."""

from __future__ import annotations

import polars as pl

from commonwatch.events.schema import FIELDS
from commonwatch.pipeline.models import IngestRun
from commonwatch.pipeline.store import write_batch


def seed(session, world, clock) -> dict[str, int]:
    run = IngestRun(feed="shadowserver", source="SECRET-B.csv", actor="test", status="done", notes=[], error="",
                    rows_read=1, events_stored=0, duplicates=0, quarantined=0, started_at=clock.now())
    session.add(run)
    session.flush()
    row = {f.name: None for f in FIELDS} | {
        "event.key": "b" * 32, "time.source": clock.now(), "time.observation": clock.now(),
        "feed.name": "shadowserver-scan_rdp", "feed.provider": "Shadowserver", "source.ip": "203.0.113.9",
        "source.port": 3389, "classification.taxonomy": "vulnerable", "classification.type": "vulnerable-system",
        "classification.identifier": "open-rdp", "extra": '{"note": "SECRET-B event"}',
        "constituent.org_id": world.org_b, "constituent.sector": "energy", "constituent.cii": True,
        "severity": "high", "gbt20986.category": "SHE", "tlp": "AMBER", "source.ip_bin":
        bytes(10) + b"\xff\xff" + bytes([203, 0, 113, 9])}
    schema = {f.name: f.dtype for f in FIELDS} | {"source.ip_bin": pl.Binary}
    events = pl.DataFrame([row], schema=schema)
    quarantine = pl.DataFrame({"line": [2], "reason": ["SECRET-B reason"], "raw": ["SECRET-B raw"]})
    write_batch(session.connection(), run.id, events, quarantine, feed="shadowserver", source="SECRET-B.csv",
                now=clock.now(), rows_read=2, duplicates_in_batch=0)
    return {}
