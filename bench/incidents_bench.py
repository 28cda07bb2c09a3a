#!/usr/bin/env python3
"""Benchmark: one incident from many selected events (bulk linking), and the deadline check over many
open incidents. No peer tool models national levels or legal clocks (see docs/performance.md (Incidents)),
so the peer figure is NA.

    .venv/bin/python bench/incidents_bench.py --events 100000 --incidents 2000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from commonwatch import capabilities
from commonwatch.access import services as access
from commonwatch.clock import FrozenClock
from commonwatch.constituency import services as registry
from commonwatch.db import make_engine, make_sessionmaker, session_scope
from commonwatch.events.models import Event
from commonwatch.incidents import alerts
from commonwatch.incidents import services as svc
from commonwatch.incidents.rules import load_incident_rules
from commonwatch.migrate import upgrade


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000, help="events linked into one incident")
    parser.add_argument("--incidents", type=int, default=2_000, help="open incidents for the clock check")
    parser.add_argument("--db", default="", help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    capabilities.import_models()
    tmp = Path(tempfile.mkdtemp(prefix="cw-bench-incidents-"))
    # The events are written into the SQL store's table below, so the incidents must read that store.
    os.environ["COMMONWATCH_EVENT_STORE"] = "sql"
    os.environ["COMMONWATCH_DATA_DIR"] = str(tmp / "data")
    engine = make_engine(args.db or f"sqlite:///{tmp / 'bench.db'}")
    upgrade(engine)
    factory = make_sessionmaker(engine)
    clock = FrozenClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    rules = load_incident_rules(None)
    with session_scope(factory, "bench") as s:
        s.info["clock"] = clock
        org = registry.create_org(s, {"name": "Bench Telecom", "kind": "network-operator"})
        user = access.create_user(s, "coordinator@bench.example", "coordinator", "bench-password-1")
        s.flush()
        coordinator = access.principal_for(s, user)
        now = clock.now()
        rows = [{"event_key": f"bench-{i}", "time_source": now - timedelta(seconds=i),
                 "time_observation": now - timedelta(seconds=i), "feed_name": "bench",
                 "source_ip": f"10.0.{i // 250 % 256}.{i % 250}",
                 "classification_taxonomy": "malicious-code", "classification_type": "infected-system",
                 "org_id": org.id, "severity": "medium", "tlp": "AMBER", "constituent_cii": False, "created_at": now}
                for i in range(args.events)]
        for start in range(0, len(rows), 20_000):
            s.execute(insert(Event), rows[start:start + 20_000])
        ids = list(range(1, args.events + 1))
    with session_scope(factory, "bench") as s:
        s.info["clock"] = clock
        started = time.perf_counter()
        svc.create_from_events(s, coordinator, ids, {}, now=clock.now(), rules=rules)
        link_seconds = time.perf_counter() - started
    with session_scope(factory, "bench") as s:
        s.info["clock"] = clock
        for i in range(args.incidents):
            svc.file_incident(s, coordinator, {
                "org_id": org.id, "title": f"bench {i}", "affected_system": "x", "effects": "y", "category": "DS",
                "discovered_at": (clock.now() - timedelta(minutes=i % 300)).isoformat(),
                "impact": {"pi_persons_leaked": 1_000_000 + i}}, now=clock.now(), rules=rules)
    with session_scope(factory, "bench") as s:
        s.info["clock"] = clock
        started = time.perf_counter()
        result = alerts.check_clocks(s, clock.now(), rules)
        check_seconds = time.perf_counter() - started
    events_per_s = args.events / link_seconds
    print(f"linked {args.events} events into one incident in {link_seconds:.2f} s ({events_per_s:,.0f} events/s)")
    print(f"clock check over {result.checked} open incidents in {check_seconds:.2f} s "
          f"({result.checked / check_seconds:,.0f} incidents/s, {result.raised} alerts)")
    print(f"RESULT incidents_from_events ours={events_per_s:.0f} peer=NA unit=events/s ratio=NA goal=50000")
    print(f"RESULT incidents_clock_check ours={result.checked / check_seconds:.0f} peer=NA unit=incidents/s "
          f"ratio=NA goal=1000")


if __name__ == "__main__":
    main()
