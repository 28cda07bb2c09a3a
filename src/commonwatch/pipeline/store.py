"""Writing a processed batch: events, quarantined records and the run's counters in one
transaction, with each engine's fast path (SQLite: one ``executemany`` of ``INSERT OR IGNORE``;
PostgreSQL: ``COPY`` into a temporary table, then one ``INSERT ... ON CONFLICT DO NOTHING``).

Writes are idempotent: events are unique by ``event_key`` and quarantined records by
``record_key``, so a batch written twice (a crash between commit and acknowledgement, a re-run
of the same file) is stored once.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import datetime

import polars as pl
from sqlalchemy import update
from sqlalchemy.engine import Connection

from commonwatch.events.schema import FIELDS
from commonwatch.pipeline.models import IngestRun

#: (harmonisation name, column) in the order the insert statements use.
EVENT_COLUMNS: list[tuple[str, str]] = [(f.name, f.column) for f in FIELDS] + [("source.ip_bin", "source_ip_bin")]
STORE_EXTRA = ["batch_id", "created_at"]
SQLITE_CACHE_KIB = 256 * 1024
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


def _sqlite_rows(events: pl.DataFrame, batch_id: int, now: datetime) -> list[tuple]:
    fmt = "%Y-%m-%d %H:%M:%S.%6f"
    cols = []
    for name, _col in EVENT_COLUMNS:
        c = pl.col(name)
        dtype = events.schema[name]
        if isinstance(dtype, pl.Datetime):
            c = c.dt.convert_time_zone("UTC").dt.strftime(fmt)
        elif dtype == pl.Boolean:
            c = c.cast(pl.Int8)
        cols.append(c)
    cols += [pl.lit(batch_id, pl.Int64).alias("batch_id"),
             pl.lit(now.strftime("%Y-%m-%d %H:%M:%S.%f")).alias("created_at")]
    return events.select(cols).rows()


def write_batch(conn: Connection, run_id: int, events: pl.DataFrame, quarantine: pl.DataFrame, *,
                feed: str, source: str, now: datetime, rows_read: int, duplicates_in_batch: int) -> Written:
    """Store one processed batch and advance the run's counters, inside the caller's transaction."""
    inserted = insert_events(conn, events, run_id, now) if events.height else 0
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


def insert_events(conn: Connection, events: pl.DataFrame, batch_id: int, now: datetime) -> int:
    """Insert events not stored yet; returns how many were new."""
    names = [c for _n, c in EVENT_COLUMNS] + STORE_EXTRA
    if conn.dialect.name == "sqlite":
        # The events table carries many indexes whose keys arrive in random order: give this
        # connection a page cache big enough to keep their upper levels (SQLite's default is 2 MB).
        conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        rows = _sqlite_rows(events, batch_id, now)
        sql = f"INSERT OR IGNORE INTO events ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"  # noqa: S608
        before = conn.exec_driver_sql("SELECT total_changes()").scalar()
        conn.exec_driver_sql(sql, rows)
        return int(conn.exec_driver_sql("SELECT total_changes()").scalar() - before)
    return _copy_events(conn, events, batch_id, now, names)


def _copy_events(conn: Connection, events: pl.DataFrame, batch_id: int, now: datetime, names: list[str]) -> int:
    cols = []
    for name, _col in EVENT_COLUMNS:
        c = pl.col(name)
        dtype = events.schema[name]
        if isinstance(dtype, pl.Datetime):
            c = c.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S%.6f+00")
        elif dtype == pl.Binary:
            c = pl.lit("\\x") + c.bin.encode("hex")
        elif dtype == pl.Boolean:
            c = pl.when(c).then(pl.lit("t")).otherwise(pl.lit("f"))
        cols.append(c.cast(pl.String).alias(name))
    cols += [pl.lit(str(batch_id)).alias("batch_id"), pl.lit(now.isoformat()).alias("created_at")]
    buf = io.BytesIO()
    # NULL is \N so an empty string stays an empty string.
    events.select(cols).write_csv(buf, include_header=False, null_value="\\N", quote_style="necessary")
    dbapi = conn.connection.driver_connection
    with dbapi.cursor() as cur:
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS events_incoming (LIKE events INCLUDING DEFAULTS) "
                    "ON COMMIT DELETE ROWS")
        cur.execute("TRUNCATE events_incoming")
        with cur.copy(f"COPY events_incoming ({', '.join(names)}) FROM STDIN "
                      "WITH (FORMAT csv, NULL '\\N')") as copy:
            copy.write(buf.getvalue())
        cur.execute(f"INSERT INTO events ({', '.join(names)}) SELECT {', '.join(names)} "  # noqa: S608
                    "FROM events_incoming ON CONFLICT (event_key) DO NOTHING")
        return cur.rowcount


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
