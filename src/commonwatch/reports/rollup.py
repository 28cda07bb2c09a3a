"""Keeping the rollups: per stored batch at ingest, and rebuilt from the event store's counts.

``after_append`` is called by ``pipeline/store.py`` right after ``events.store.append`` in the same
transaction, with the batch it stored: only the events the store took as new are counted (an
``event.key`` stored before is not counted twice). Everything is columnar: one ``group_by`` on the
batch, one upsert per table.

``rebuild`` recomputes whole UTC days from ``since`` on: the hourly rows from
``EventStore.counts(by=["hour", ...])``, the daily rows as sums of those hours, and the per-day
hosts from a watermark walk (``EventStore.scan``), and replaces what was there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from commonwatch.access.principal import SYSTEM
from commonwatch.reports.models import DIMENSION_COLUMNS, EventCount, HostDay

HOUR, DAY = 0, 1
DIMS: tuple[str, ...] = tuple(DIMENSION_COLUMNS)
INT_DIMS = {"org_id", "partner_org_id", "asn"}
#: Rows per executemany.
CHUNK = 50_000
#: Rows per read of the watermark walk when rebuilding hosts.
SCAN_ROWS = 200_000
HOST_SEED = 20986

#: Harmonisation names (a batch as stored) and column names (as the store returns them).
BATCH_NAMES = {"time": "time.source", "type": "classification.type", "severity": "severity",
               "org_id": "constituent.org_id", "partner_org_id": "constituent.partner_org_id",
               "feed": "feed.name", "country": "source.geolocation.cc", "sector": "constituent.sector",
               "asn": "source.asn", "ip": "source.ip_bin", "fqdn": "source.fqdn"}
STORE_NAMES = {"time": "time_source", "type": "classification_type", "severity": "severity",
               "org_id": "org_id", "partner_org_id": "partner_org_id", "feed": "feed_name",
               "country": "source_cc", "sector": "constituent_sector", "asn": "source_asn",
               "ip": "source_ip_bin", "fqdn": "source_fqdn"}


@dataclass
class Rebuilt:
    since: datetime
    hour_rows: int
    day_rows: int
    host_rows: int
    events: int


def host_key(ip: pl.Expr, fqdn: pl.Expr) -> pl.Expr:
    """A 64-bit key of the affected host: its address, else its host name (phishing URLs)."""
    return (pl.when(ip.is_not_null()).then(ip.hash(HOST_SEED))
            .when(fqdn.is_not_null() & (fqdn != "")).then(fqdn.hash(HOST_SEED + 1))
            .otherwise(None).reinterpret(signed=True))


def _dims(names: dict[str, str], schema: Any) -> list[pl.Expr]:
    out = []
    for dim in DIMS:
        src = names[dim]
        if src not in schema:
            out.append(pl.lit(0 if dim in INT_DIMS else "").alias(dim))
        elif dim in INT_DIMS:
            out.append(pl.col(src).cast(pl.Int64).fill_null(0).alias(dim))
        else:
            out.append(pl.col(src).cast(pl.String).fill_null("").alias(dim))
    return out


def hour_counts(frame: pl.DataFrame, names: dict[str, str] = BATCH_NAMES) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(hours, hosts)`` of a frame of events: counts per hour and dimensions, and the distinct
    ``(day, type, org_id, partner_org_id, host)``."""
    schema = frame.schema
    ip = pl.col(names["ip"]) if names["ip"] in schema else pl.lit(None, pl.Binary)
    fqdn = pl.col(names["fqdn"]) if names["fqdn"] in schema else pl.lit(None, pl.String)
    base = frame.select(
        (pl.col(names["time"]).dt.epoch("s") // 3600).alias("bucket"), *_dims(names, schema),
        host_key(ip, fqdn).alias("host"))
    hours = base.group_by(["bucket", *DIMS]).agg(pl.len().cast(pl.Int64).alias("n"))
    hosts = (base.filter(pl.col("host").is_not_null())
             .select((pl.col("bucket") // 24).alias("day"), "type", "org_id", "partner_org_id", "host").unique())
    return hours, hosts


def day_counts(hours: pl.DataFrame) -> pl.DataFrame:
    return (hours.with_columns(pl.col("bucket") // 24)
            .group_by(["bucket", *DIMS]).agg(pl.col("n").sum()))


def _insert(conn: Connection, model: type, rows: list[dict[str, Any]], *, add: bool) -> None:
    """One executemany of an upsert: adding ``n`` to a row already there, or leaving it."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    keys = [c.name for c in model.__table__.primary_key.columns]  # type: ignore[attr-defined]
    stmt = dialect.insert(model)
    if add:
        stmt = stmt.on_conflict_do_update(index_elements=keys,
                                          set_={"n": model.__table__.c.n + stmt.excluded.n})  # type: ignore[attr-defined]
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=keys)
    for start in range(0, len(rows), CHUNK):
        conn.execute(stmt, rows[start:start + CHUNK])


def add_counts(conn: Connection, hours: pl.DataFrame, hosts: pl.DataFrame) -> None:
    """Add hourly counts (and their days) and hosts to the rollups."""
    if hours.height:
        _insert(conn, EventCount, hours.with_columns(pl.lit(HOUR).alias("grain")).to_dicts(), add=True)
        _insert(conn, EventCount, day_counts(hours).with_columns(pl.lit(DAY).alias("grain")).to_dicts(), add=True)
    if hosts.height:
        _insert(conn, HostDay, hosts.to_dicts(), add=False)


def after_append(conn: Connection, store: Any, events: pl.DataFrame, *, inserted: int, before_id: int) -> None:
    """Count the events of ``events`` that the store's ``append`` took as new.

    ``before_id`` is the store's highest id before the append: when some of the batch was already
    stored, the new events are those whose stored id is above it."""
    if not inserted or not events.height:
        return
    if inserted < events.height:
        ids = store.existing_keys(events["event.key"].to_list())
        fresh = [k for k, i in ids.items() if i > before_id]
        events = events.filter(pl.col("event.key").is_in(fresh))
    add_counts(conn, *hour_counts(events))


def _day_start(value: datetime) -> datetime:
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def rebuild(conn: Connection, store: Any, since: datetime, until: datetime | None = None) -> Rebuilt:
    """Recompute the rollups of every UTC day from ``since``'s day up to ``until`` (exclusive,
    rounded up to a day; default: everything after) from the event store, in ``conn``'s
    transaction."""
    start = _day_start(since)
    end = _day_start(until) + (timedelta(days=1) if until != _day_start(until) else timedelta()) if until else None
    h0 = int(start.timestamp()) // 3600
    h1 = int(end.timestamp()) // 3600 if end else None

    def window(col: Any, lo: int, hi: int | None) -> list[Any]:
        return [col >= lo] + ([col < hi] if hi is not None else [])

    conn.execute(delete(EventCount).where(EventCount.grain == HOUR, *window(EventCount.bucket, h0, h1)))
    conn.execute(delete(EventCount).where(EventCount.grain == DAY,
                                          *window(EventCount.bucket, h0 // 24, h1 // 24 if h1 else None)))
    conn.execute(delete(HostDay).where(*window(HostDay.day, h0 // 24, h1 // 24 if h1 else None)))

    rows = store.counts(SYSTEM, ["hour", *DIMENSION_COLUMNS.values()], since=start, until=end)
    frame = pl.DataFrame([r.key for r in rows], schema=["hour", *DIMS], orient="row",
                         schema_overrides={d: (pl.Int64 if d in INT_DIMS else pl.String) for d in DIMS})
    frame = frame.with_columns(pl.Series("n", [r.count for r in rows], dtype=pl.Int64))
    hours = frame.select(
        (pl.col("hour").str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M").dt.epoch("s") // 3600).alias("bucket"),
        *[(pl.col(d).fill_null(0) if d in INT_DIMS else pl.col(d).fill_null("")) for d in DIMS], "n",
    ).group_by(["bucket", *DIMS]).agg(pl.col("n").sum())

    hosts_parts: list[pl.DataFrame] = []
    after, events = 0, 0
    columns = ["time_source", "classification_type", "org_id", "partner_org_id", "source_ip_bin", "source_fqdn"]
    while True:
        chunk = store.scan(SYSTEM, columns, after_id=after, limit=SCAN_ROWS, since=start)
        if not chunk.height:
            break
        after = int(chunk["id"].max())
        if end is not None:
            chunk = chunk.filter(pl.col("time_source") < end)
        events += chunk.height
        hosts_parts.append(hour_counts(chunk, STORE_NAMES)[1])
    hosts = pl.concat(hosts_parts).unique() if hosts_parts else pl.DataFrame()
    add_counts(conn, hours, hosts)
    return Rebuilt(start, hours.height, day_counts(hours).height if hours.height else 0, hosts.height, events)
