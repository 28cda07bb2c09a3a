"""Writing a processed batch: events (through the event store's ``append``), quarantined records
and the run's counters in one transaction; quarantined records with each engine's fast path.

Writes are idempotent: events are unique by ``event_key`` and quarantined records by
``record_key``, so a batch written twice (a crash between commit and acknowledgement, a re-run
of the same file) is stored once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import polars as pl
from sqlalchemy import update
from sqlalchemy.engine import Connection

from commonwatch.access.principal import SYSTEM
from commonwatch.events.search import EventFilter
from commonwatch.events.store import event_store
from commonwatch.pipeline.models import IngestRun

QUARANTINE_COLUMNS = ["record_key", "run_id", "feed_name", "source", "line", "reason", "raw", "created_at"]


@dataclass
class Written:
    inserted: int
    duplicates: int
    quarantined: int


def quarantine_keys(feed: str, source: str, frame: pl.DataFrame) -> list[str]:
    """Stable identity of each quarantined record: feed, source, line and raw text."""
    prefix = f"{feed}\x1f{source}\x1f"
    lines, raws = frame["line"].to_list(), frame["raw"].fill_null("").to_list()
    return [hashlib.blake2b(f"{prefix}{n}\x1f{r}".encode(), digest_size=16).hexdigest()
            for n, r in zip(lines, raws, strict=True)]


def write_batch(conn: Connection, run_id: int, events: pl.DataFrame, quarantine: pl.DataFrame, *,
                feed: str, source: str, now: datetime, rows_read: int, duplicates_in_batch: int) -> Written:
    """Store one processed batch and advance the run's counters, inside the caller's transaction."""
    store = event_store(conn)
    before_id = store.latest_id(SYSTEM, EventFilter()) if events.height else 0
    inserted = store.append(events, batch_id=run_id, now=now)
    if inserted:
        # Statistics count these after the commit (reports' rollup job); the first batch sets where.
        from commonwatch.reports.rollup import mark_if_unset

        mark_if_unset(conn, before_id)
    quarantined = 0
    if quarantine.height:
        keys = quarantine_keys(feed, source, quarantine)
        rows = [(k, run_id, feed[:500], source, int(n), reason, raw, now)
                for k, n, reason, raw in zip(keys, quarantine["line"].to_list(), quarantine["reason"].to_list(),
                                             quarantine["raw"].fill_null("").to_list(), strict=True)]
        quarantined = insert_quarantine(conn, rows)
    dups = duplicates_in_batch + (events.height - inserted)
    conn.execute(update(IngestRun).where(IngestRun.id == run_id).values(
        rows_read=IngestRun.rows_read + rows_read, events_stored=IngestRun.events_stored + inserted,
        duplicates=IngestRun.duplicates + dups, quarantined=IngestRun.quarantined + quarantined))
    return Written(inserted, dups, quarantined)


def insert_quarantine(conn: Connection, rows: list[tuple]) -> int:
    if conn.dialect.name == "sqlite":
        fixed = [(*r[:7], r[7].strftime("%Y-%m-%d %H:%M:%S.%f")) for r in rows]
        before = conn.exec_driver_sql("SELECT total_changes()").scalar()
        conn.exec_driver_sql(f"INSERT OR IGNORE INTO quarantine ({', '.join(QUARANTINE_COLUMNS)}) "  # noqa: S608
                             f"VALUES ({', '.join('?' * len(QUARANTINE_COLUMNS))})", fixed)
        return int(conn.exec_driver_sql("SELECT total_changes()").scalar() - before)
    dbapi = conn.connection.driver_connection
    with dbapi.cursor() as cur:
        cur.executemany(f"INSERT INTO quarantine ({', '.join(QUARANTINE_COLUMNS)}) "  # noqa: S608
                        f"VALUES ({', '.join(['%s'] * len(QUARANTINE_COLUMNS))}) "
                        "ON CONFLICT (record_key) DO NOTHING", rows)
        return max(cur.rowcount, 0)
