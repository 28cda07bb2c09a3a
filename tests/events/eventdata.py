"""Events for tests, stored through the configured event store with the ids, batch and storage
times the test gives (as the pipeline would have left them)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import insert
from sqlalchemy.orm import Session

from commonwatch.access.principal import SYSTEM, Principal, Role
from commonwatch.events.models import Event
from commonwatch.events.search import EventFilter
from commonwatch.events.store import batch_from_rows, event_store
from commonwatch.events.store.parquet import RENAME
from commonwatch.net import ip_key

TYPES = ("vulnerable-system", "infected-system", "phishing", "c2-server", "scanner")
TAXONOMY = {"vulnerable-system": "vulnerable", "infected-system": "malicious-code", "phishing": "fraud",
            "c2-server": "malicious-code", "scanner": "information-gathering"}
SEVERITIES = ("info", "low", "medium", "high", "critical")
TLPS = ("CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED")


def event_row(i: int, *, at: datetime, org_id: int | None, key_prefix: str = "t", **overrides: Any) -> dict[str, Any]:
    """One event row; ``i`` varies every field deterministically."""
    kind = TYPES[i % len(TYPES)]
    v6 = i % 7 == 0
    ip = f"2001:db8:{i % 9:x}::{i % 65535 + 1:x}" if v6 else f"198.51.{100 + i % 3}.{i % 250 + 1}"
    row = {
        "event_key": hashlib.sha256(f"{key_prefix}-{i}".encode()).hexdigest(),
        "time_source": at,
        "time_observation": at + timedelta(minutes=5),
        "feed_name": ("shadowserver-scan_http", "urlhaus", "feodotracker")[i % 3],
        "feed_provider": ("Shadowserver", "abuse.ch", "abuse.ch")[i % 3],
        "source_ip": ip,
        "source_ip_bin": ip_key(ip),
        "source_port": 80 + i % 5,
        "source_asn": 64500 + i % 4,
        "source_as_name": f"DEMO-AS-{i % 4}",
        "source_cc": ("CN", "DE", "SG")[i % 3],
        "source_fqdn": f"host{i}.example.com" if i % 2 else None,
        "source_url": f"http://host{i}.example.com/login" if kind == "phishing" else None,
        "source_reverse_dns": None,
        "destination_ip": None,
        "destination_port": None,
        "destination_fqdn": None,
        "protocol_transport": "tcp",
        "protocol_application": "http",
        "classification_taxonomy": TAXONOMY[kind],
        "classification_type": kind,
        "classification_identifier": f"id-{i % 6}",
        "malware_name": "mirai" if kind == "infected-system" else None,
        "extra": {"tag": f"t{i % 5}", "n": i, "nested": {"k": [1, 2]}},
        "org_id": org_id,
        "partner_org_id": None,
        "constituent_sector": "telecom" if org_id else None,
        "constituent_cii": bool(i % 2),
        "severity": SEVERITIES[i % 5],
        "gbt_category": "HI-7",
        "tlp": TLPS[i % 5],
        "batch_id": 1,
        "created_at": at,
    }
    row.update(overrides)
    return row


def insert_events(session: Session, rows: Iterable[dict[str, Any]], kind: str | None = None) -> None:
    """Store ``rows`` (dicts of :func:`event_row`) in the configured store (or the ``kind`` named);
    a row without ``id`` takes the next one, in order, as the pipeline's append would give it."""
    rows = list(rows)
    store = event_store(session, kind)
    if store.name == "sql":  # the table's own bulk insert keeps each row's batch and storage time
        for start in range(0, len(rows), 5000):
            session.execute(insert(Event), rows[start:start + 5000])
        session.flush()
        return
    next_id = store.latest_id(SYSTEM, EventFilter()) + 1
    ids = [r.get("id") or next_id + i for i, r in enumerate(rows)]
    frame = batch_from_rows(rows).rename(RENAME, strict=False)
    store.append_stored(frame.with_columns(
        pl.Series("id", ids, pl.Int64),
        pl.Series("batch_id", [r.get("batch_id", 1) for r in rows], pl.Int64),
        pl.Series("created_at", [r.get("created_at") or r["time_source"] for r in rows], pl.Datetime("us", "UTC"))))


def stored_ids(session: Session, rows: Iterable[dict[str, Any]], kind: str | None = None) -> dict[str, int]:
    """The id the store gave each of ``rows``, by ``event_key``."""
    return event_store(session, kind).existing_keys([r["event_key"] for r in rows])


def spread(n: int, *, end: datetime, org_ids: list[int | None], step: timedelta = timedelta(minutes=1),
           same_time_every: int = 3, key_prefix: str = "t") -> list[dict[str, Any]]:
    """``n`` events going back from ``end``; every ``same_time_every`` share a time (ties for the keyset)."""
    return [event_row(i, at=end - step * (i // same_time_every), org_id=org_ids[i % len(org_ids)],
                      key_prefix=key_prefix) for i in range(n)]


def as_batch(rows: Iterable[dict[str, Any]]) -> pl.DataFrame:
    """Rows of :func:`event_row` as a processed batch, as the pipeline hands it to ``EventStore.append``."""
    return batch_from_rows(list(rows))


def principals(a: int, b: int, p: int) -> dict[str, Principal]:
    """Staff, constituents of A and of B, the partner P, and a constituent of no organisation."""
    return {
        "staff": Principal(1, "staff@x", Role.ANALYST),
        "a": Principal(2, "a@x", Role.CONSTITUENT, frozenset({a})),
        "b": Principal(3, "b@x", Role.CONSTITUENT, frozenset({b})),
        "partner": Principal(4, "p@x", Role.PARTNER, frozenset({p})),
        "nobody": Principal(5, "n@x", Role.CONSTITUENT, frozenset()),
    }
