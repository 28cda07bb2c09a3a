"""Helpers for pipeline tests: the demo constituency in a test database, and one-call ingest."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl

from commonwatch.access.principal import SYSTEM
from commonwatch.constituency import services as registry
from commonwatch.constituency.demo import ORGS
from commonwatch.db import make_sessionmaker, session_scope
from commonwatch.events.search import EventFilter
from commonwatch.events.store import COLUMN_TYPES, event_store, records
from commonwatch.feeds.collect import sources_from_path
from commonwatch.feeds.registry import get_parser
from commonwatch.pipeline.runner import RunSummary, ingest_sources


def seed_registry(engine, clock, skip: tuple[str, ...] = ()) -> dict[str, int]:
    """The demo constituency (operators, CII operators, partner CERTs in DE and SG): key -> org id."""
    ids: dict[str, int] = {}
    with session_scope(make_sessionmaker(engine), actor="test") as session:
        session.info["clock"] = clock
        for key, name, local, kind, sector, country, region, parent, nets, asns, domains, _contacts in ORGS:
            if key in skip:
                continue
            org = registry.create_org(session, {"name": name, "name_local": local, "kind": kind, "sector": sector,
                                                "country": country, "region": region,
                                                "parent_id": ids[parent] if parent else None})
            for cidr in nets:
                registry.add_network(session, org, cidr)
            for asn in asns:
                registry.add_asn(session, org, asn)
            for domain in domains:
                registry.add_domain(session, org, domain)
            ids[key] = org.id
    return ids


def ingest(engine, path: Path, feed: str, clock, data_dir: Path | None = None,
           window: timedelta = timedelta(days=1)) -> RunSummary:
    factory = make_sessionmaker(engine)
    return ingest_sources(engine, factory, sources_from_path(path, clock.now()), get_parser(feed, data_dir),
                          feed_label=feed, source_label=str(path), clock=clock, data_dir=data_dir, actor="test",
                          dedup_window=window)


def count_events(engine) -> int:
    """How many events the configured store holds."""
    return event_store(engine).count_capped(SYSTEM, EventFilter(), cap=10**9)[0]


def events(engine, **equal: Any) -> list:
    """Every stored event (with ``equal`` column values), in id order, as objects with an attribute
    per stored column; ``extra`` as a dict."""
    frame = event_store(engine).scan(SYSTEM, [c for c in COLUMN_TYPES if c != "id"], limit=10**7)
    for column, value in equal.items():
        frame = frame.filter(pl.col(column) == value)
    rows = records(frame)
    for row in rows:
        if isinstance(row.extra, str):
            row.extra = json.loads(row.extra)
    return rows
