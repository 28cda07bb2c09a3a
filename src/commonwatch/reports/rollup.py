"""Keeping the rollups: counted after the ingest by a job, and rebuilt from the event store's counts.

``catch_up`` counts the stored events above the rollups' mark (``RollupMark``, the highest event
id counted) and moves the mark in the same transaction, so each event is counted exactly once
whatever stops when. It runs as the ``reports-rollups`` job, not inside the ingest's transaction:
with one rollup row per organisation, hour and dimension value, a national constituency's rollups
are about as many rows as the events themselves, and upserting them in every stored batch made
the pipeline several times slower. Dashboards therefore trail the ingest by up to the job's
period. Everything is columnar: one ``group_by`` per chunk of events, one upsert per table.

``rebuild`` recomputes whole UTC months from ``since``'s month on: the part-day rows from
``EventStore.counts(by=["hour", ...])``, the daily and monthly rows as sums of those, and the
host sets per day and month from a watermark walk (``EventStore.scan``), and replaces what was there; also the
time-to-acknowledge rollup from notify's warnings (``reports.acks``).

Three grains. A dashboard over a year reads months, the days at the edges of its months, and the
part-days at the edges of its days; the finest grain is not the hour but the part of a UTC day
between two **day edges**: UTC's midnight and the centre's zone's (``settings.timezone``; both
offsets of a zone with summer time). For Asia/Shanghai that is 00:00–16:00 and 16:00–24:00 UTC,
so a day in either zone is exact and a part-day row holds what 16 or 8 hourly rows did (with
thousands of organisations the hourly rows were about as many as the events). A viewer in another
zone gets each of their days from the day edge at or before its midnight (a row counts where its
part-day starts); changing the centre's zone needs a ``rebuild`` to move the edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import polars as pl
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from commonwatch.access.principal import SYSTEM
from commonwatch.events.search import EventFilter
from commonwatch.reports.models import ALL, ANY_TYPE, DIMENSIONS, EventCount, HostSet, RollupMark

#: Grains: the part of a UTC day between two day edges (``bucket`` = its first hour since the
#: epoch), the UTC day (days since the epoch) and the UTC month (months since January 1970).
HOUR, DAY, MONTH = 0, 1, 2
#: The centre's zone when no setting is given (``config.Settings.timezone``'s default).
DEFAULT_ZONE = "Asia/Shanghai"
#: Dimensions counted from the events; ``org`` is derived from the ``type`` rows (see :func:`layout`).
DIMS: tuple[str, ...] = tuple(d for d in DIMENSIONS if d != "org")
KEYS = ["bucket", "dim", "value", "type", "org_id", "partner_org_id"]
#: Rows per executemany.
CHUNK = 50_000
#: Rows per read of the watermark walk when rebuilding hosts.
SCAN_ROWS = 200_000
HOST_SEED = 20986

#: Harmonisation names (a batch as stored) and column names (as the store returns them).
BATCH_NAMES = {"time": "time.source", "type": "classification.type", "severity": "severity",
               "org": "constituent.org_id", "partner": "constituent.partner_org_id",
               "feed": "feed.name", "country": "source.geolocation.cc", "sector": "constituent.sector",
               "asn": "source.asn", "ip": "source.ip_bin", "fqdn": "source.fqdn"}
STORE_NAMES = {"time": "time_source", "type": "classification_type", "severity": "severity",
               "org": "org_id", "partner": "partner_org_id", "feed": "feed_name",
               "country": "source_cc", "sector": "constituent_sector", "asn": "source_asn",
               "ip": "source_ip_bin", "fqdn": "source_fqdn"}


@dataclass
class Rebuilt:
    since: datetime
    hour_rows: int
    day_rows: int
    host_rows: int
    events: int
    answers: int = 0  # answered warnings counted into the time-to-acknowledge rollup


def host_key(ip: pl.Expr, fqdn: pl.Expr) -> pl.Expr:
    """A 64-bit key of the affected host: its address, else its host name (phishing URLs)."""
    return (pl.when(ip.is_not_null()).then(ip.hash(HOST_SEED))
            .when(fqdn.is_not_null() & (fqdn != "")).then(fqdn.hash(HOST_SEED + 1))
            .otherwise(None).reinterpret(signed=True))


def _col(names: dict[str, str], schema: Any, key: str, dtype: Any) -> pl.Expr:
    return pl.col(names[key]).cast(dtype) if names[key] in schema else pl.lit(None, dtype)


def layout(per_org: pl.DataFrame) -> pl.DataFrame:
    """The rows kept (``KEYS`` + ``n``) from counts per organisation and partner of every dimension:

    - per organisation and partner, every dimension but ``org`` (its value is the row's own
      ``org_id``: the organisation split of these rows is their ``dim = "type"`` rows by ``org_id``);
    - centre-wide (``org_id`` :data:`ALL`), every dimension with the type beside, and once more
      for every type together (``type`` :data:`ANY_TYPE`), except ``org``, kept without the type
      (``type = ""``), so a year split by organisation reads at most 365 x organisations rows."""
    own = per_org.filter(pl.col("dim") != "org").select([*KEYS, "n"])
    centre = own.group_by(["bucket", "dim", "value", "type"]).agg(pl.col("n").sum())
    any_type = own.group_by(["bucket", "dim", "value"]).agg(pl.col("n").sum()).with_columns(
        pl.lit(ANY_TYPE).alias("type"))
    centre = pl.concat([centre, any_type.select(centre.columns)])
    orgs = (own.filter(pl.col("dim") == "type").group_by(["bucket", "org_id"]).agg(pl.col("n").sum())
            .select("bucket", pl.lit("org").alias("dim"),
                    pl.when(pl.col("org_id") == 0).then(pl.lit("")).otherwise(pl.col("org_id").cast(pl.String))
                    .alias("value"), pl.lit("").alias("type"), "n"))
    centre = pl.concat([centre, orgs.select(centre.columns)]).with_columns(
        pl.lit(ALL, pl.Int64).alias("org_id"), pl.lit(ALL, pl.Int64).alias("partner_org_id"))
    return pl.concat([own, centre.select(own.columns)])


def long_counts(wide: pl.DataFrame) -> pl.DataFrame:
    """From columns ``bucket, type, org_id, partner_org_id, v_<dim>..., n`` to one row per
    dimension value (``KEYS`` + ``n``), laid out as :func:`layout` keeps them."""
    per_org = (wide.unpivot(index=["bucket", "type", "org_id", "partner_org_id", "n"],
                            on=[f"v_{d}" for d in DIMS], variable_name="dim", value_name="value")
               .with_columns(pl.col("dim").str.strip_prefix("v_"))
               .group_by(KEYS).agg(pl.col("n").sum()))
    return layout(per_org)


def hour_counts(frame: pl.DataFrame, names: dict[str, str] = BATCH_NAMES) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(hours, hosts)`` of a frame of events: counts per hour, dimension value, type and
    organisation (``KEYS`` + ``n``), and the distinct ``(day, type, org_id, partner_org_id, host)``."""
    schema = frame.schema
    org = _col(names, schema, "org", pl.Int64)
    base = frame.select(
        (pl.col(names["time"]).dt.epoch("s") // 3600).alias("bucket"),
        _col(names, schema, "type", pl.String).fill_null("").alias("type"),
        org.fill_null(0).alias("org_id"), _col(names, schema, "partner", pl.Int64).fill_null(0).alias("partner_org_id"),
        *[_col(names, schema, d, pl.String).fill_null("").alias(f"v_{d}") for d in DIMS],
        host_key(_col(names, schema, "ip", pl.Binary), _col(names, schema, "fqdn", pl.String)).alias("host"))
    wide = base.group_by(["bucket", "type", "org_id", "partner_org_id", *[f"v_{d}" for d in DIMS]]).agg(
        pl.len().cast(pl.Int64).alias("n"))
    hosts = (base.filter(pl.col("host").is_not_null())
             .select((pl.col("bucket") // 24).alias("day"), "type", "org_id", "partner_org_id", "host").unique())
    return long_counts(wide), hosts


def day_edges(zone: str = DEFAULT_ZONE) -> tuple[int, ...]:
    """The UTC hours at which a day starts in UTC or in ``zone`` (every whole-hour offset the zone
    has had or will have over the years around now, so summer time is covered)."""
    edges = {0}
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return (0,)
    for year in range(2015, 2036):
        for month in (1, 4, 7, 10):
            offset = datetime(year, month, 15, 12, tzinfo=tz).utcoffset() or timedelta()
            minutes = int(offset.total_seconds()) // 60
            if minutes % 60 == 0:
                edges.add((-minutes // 60) % 24)
    return tuple(sorted(edges))


def part_of_day(bucket: pl.Expr, edges: tuple[int, ...]) -> pl.Expr:
    """The first hour of the part-day (between two of ``edges``) that hour ``bucket`` falls in."""
    first = [max(e for e in edges if e <= h) for h in range(24)]
    return bucket - bucket % 24 + (bucket % 24).replace_strict(list(range(24)), first, return_dtype=pl.Int64)


def part_counts(hours: pl.DataFrame, edges: tuple[int, ...]) -> pl.DataFrame:
    return hours.with_columns(part_of_day(pl.col("bucket"), edges)).group_by(KEYS).agg(pl.col("n").sum())


def day_counts(hours: pl.DataFrame) -> pl.DataFrame:
    return hours.with_columns(pl.col("bucket") // 24).group_by(KEYS).agg(pl.col("n").sum())


def month_of_day(day: pl.Expr) -> pl.Expr:
    """Months since January 1970 of a day since the epoch."""
    d = day.cast(pl.Int32).cast(pl.Date)
    return (d.dt.year().cast(pl.Int64) - 1970) * 12 + d.dt.month().cast(pl.Int64) - 1


def month_counts(days: pl.DataFrame) -> pl.DataFrame:
    return days.with_columns(month_of_day(pl.col("bucket"))).group_by(KEYS).agg(pl.col("n").sum())


def _insert(conn: Connection, model: type, frame: pl.DataFrame, *, add: bool) -> None:
    """One upsert of every row of ``frame``: adding ``n`` to a row already there, or leaving it.

    The rows go to the driver as tuples in primary-key order (one ``executemany`` per chunk, no
    per-row dict or SQLAlchemy parameter processing): a batch of 100,000 events makes several
    hundred thousand rollup rows, and sorted keys keep the B-tree's pages in cache."""
    if not frame.height:
        return
    table = model.__table__  # type: ignore[attr-defined]
    keys = [c.name for c in table.primary_key.columns]
    cols = [c.name for c in table.columns if c.name in frame.columns]
    frame = frame.select(cols).sort([k for k in keys if k in cols])
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    conflict = (f"DO UPDATE SET n = {table.name}.n + excluded.n" if add else "DO NOTHING")
    sql = (f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))}) "  # noqa: S608
           f"ON CONFLICT ({', '.join(keys)}) {conflict}")
    for start in range(0, frame.height, CHUNK):
        conn.exec_driver_sql(sql, frame.slice(start, CHUNK).rows())


SET_KEYS = ["grain", "bucket", "type", "org_id", "partner_org_id"]


def host_sets(hosts: pl.DataFrame) -> pl.DataFrame:
    """The members of the host sets (``SET_KEYS`` + ``host``, unique) of hosts per day
    (``day, type, org_id, partner_org_id, host``): per UTC day and month; per type and with
    ``type = ""`` for every type; per organisation and partner, and centre-wide (``ALL``) for the
    hosts of events that matched an organisation."""
    base = hosts.select(pl.col("day").cast(pl.Int64).alias("bucket"), "type", pl.col("org_id").cast(pl.Int64),
                        pl.col("partner_org_id").cast(pl.Int64), pl.col("host").cast(pl.Int64))
    per_org = pl.concat([base.filter(pl.col("type") != ""), base.with_columns(pl.lit("").alias("type"))])
    centre = per_org.filter(pl.col("org_id") != 0).with_columns(
        pl.lit(ALL, pl.Int64).alias("org_id"), pl.lit(ALL, pl.Int64).alias("partner_org_id"))
    days = pl.concat([per_org, centre]).unique()
    months = days.with_columns(month_of_day(pl.col("bucket")).alias("bucket")).unique()
    return pl.concat([days.select(pl.lit(DAY, pl.Int64).alias("grain"), pl.all()),
                      months.select(pl.lit(MONTH, pl.Int64).alias("grain"), pl.all())])


def decode_hosts(blobs: list[bytes]) -> np.ndarray:
    """The hosts of stored sets, one array (not deduplicated across sets)."""
    return np.concatenate([np.frombuffer(b, dtype="<i8") for b in blobs]) if blobs else np.zeros(0, dtype="<i8")


def _stored_sets(conn: Connection, keys: pl.DataFrame) -> pl.DataFrame:
    """The members already stored of the sets ``keys`` names (read a bucket at a time)."""
    parts = []
    for (grain, bucket), want in keys.group_by(["grain", "bucket"]):
        rows = conn.execute(select(HostSet.type, HostSet.org_id, HostSet.partner_org_id, HostSet.hosts).where(
            HostSet.grain == grain, HostSet.bucket == bucket)).all()
        if not rows:
            continue
        sizes = [len(r[3]) // 8 for r in rows]
        found = pl.DataFrame({
            "grain": pl.repeat(grain, sum(sizes), dtype=pl.Int64, eager=True),
            "bucket": pl.repeat(bucket, sum(sizes), dtype=pl.Int64, eager=True),
            "type": np.repeat(np.array([r[0] for r in rows], dtype=object), sizes).astype(str),
            "org_id": np.repeat(np.array([r[1] for r in rows], dtype=np.int64), sizes),
            "partner_org_id": np.repeat(np.array([r[2] for r in rows], dtype=np.int64), sizes),
            "host": decode_hosts([r[3] for r in rows]).astype(np.int64)})
        parts.append(found.join(want.select(SET_KEYS), on=SET_KEYS, how="semi"))
    return pl.concat(parts) if parts else keys.head(0).with_columns(pl.lit(0, pl.Int64).alias("host"))


def add_host_sets(conn: Connection, members: pl.DataFrame) -> None:
    """Add members (``SET_KEYS`` + ``host``) to the stored host sets: each set touched is read,
    joined with its new members and written back whole (one upsert per chunk of sets)."""
    if not members.height:
        return
    members = members.select(SET_KEYS + ["host"])
    keys = members.select(SET_KEYS).unique()
    merged = pl.concat([members, _stored_sets(conn, keys).select(members.columns)]).unique().sort([*SET_KEYS, "host"])
    sizes = merged.group_by(SET_KEYS, maintain_order=True).agg(pl.len().alias("n"))
    hosts = merged["host"].to_numpy().astype("<i8")
    ends = np.cumsum(sizes["n"].to_numpy())
    starts = ends - sizes["n"].to_numpy()
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    sql = (f"INSERT INTO reports_host_sets ({', '.join(SET_KEYS)}, n, hosts) VALUES ({', '.join([mark] * 7)}) "  # noqa: S608
           f"ON CONFLICT ({', '.join(SET_KEYS)}) DO UPDATE SET n = excluded.n, hosts = excluded.hosts")
    rows = [(*key, int(n), hosts[a:b].tobytes())
            for key, n, a, b in zip(sizes.select(SET_KEYS).iter_rows(), sizes["n"], starts, ends, strict=True)]
    for at in range(0, len(rows), 5_000):
        conn.exec_driver_sql(sql, rows[at:at + 5_000])


def add_counts(conn: Connection, hours: pl.DataFrame, hosts: pl.DataFrame,
               edges: tuple[int, ...] = day_edges()) -> None:
    """Add hourly counts (as part-days, days and months) and hosts to the rollups."""
    if hours.height:
        days = day_counts(hours)
        _insert(conn, EventCount, part_counts(hours, edges).with_columns(pl.lit(HOUR).alias("grain")), add=True)
        _insert(conn, EventCount, days.with_columns(pl.lit(DAY).alias("grain")), add=True)
        _insert(conn, EventCount, month_counts(days).with_columns(pl.lit(MONTH).alias("grain")), add=True)
    if hosts.height:
        add_host_sets(conn, host_sets(hosts))


def mark_if_unset(conn: Connection, before_id: int) -> None:
    """Set the rollups' mark at ``before_id`` (the store's highest id before a batch) if it was
    never set: the first batch after an installation or an upgrade starts the count there."""
    conn.execute(_insert_ignore(conn)(RollupMark).values(id=1, last_event_id=before_id))


def _insert_ignore(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return lambda table: pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return lambda table: sqlite_insert(table).on_conflict_do_nothing()


def _mark(conn: Connection, store: Any) -> int:
    found = conn.execute(select(RollupMark.last_event_id).where(RollupMark.id == 1).with_for_update()).scalar()
    if found is not None:
        return int(found)
    # Never set: no batch went through the pipeline since the rollups existed. Events stored
    # before (the earlier releases counted them at ingest) are in the rollups already when any are.
    counted = conn.execute(select(EventCount.n).limit(1)).first() is not None
    start = store.latest_id(SYSTEM, EventFilter()) if counted else 0
    mark_if_unset(conn, start)
    return start


def catch_up(conn: Connection, store: Any, *, limit: int = SCAN_ROWS, zone: str = DEFAULT_ZONE) -> int:
    """Count up to ``limit`` stored events above the mark into the rollups and move the mark past
    them, in ``conn``'s transaction; returns how many were counted (0: the rollups are current).
    ``zone``: the centre's time zone (its midnight is a day edge)."""
    after = _mark(conn, store)
    columns = [STORE_NAMES[k] for k in ("time", "type", "severity", "org", "partner", "feed", "country",
                                        "sector", "asn", "ip", "fqdn")]
    chunk = store.scan(SYSTEM, columns, after_id=after, limit=limit)
    if not chunk.height:
        return 0
    add_counts(conn, *hour_counts(chunk, STORE_NAMES), day_edges(zone))
    conn.execute(update(RollupMark).where(RollupMark.id == 1).values(last_event_id=int(chunk["id"].max())))
    return chunk.height


def _day_start(value: datetime) -> datetime:
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def _month_start(value: datetime, *, up: bool = False) -> datetime:
    day = _day_start(value)
    first = day.replace(day=1)
    if up and first != value.astimezone(UTC):
        first = (first + timedelta(days=32)).replace(day=1)
    return first


def _months(value: datetime) -> int:
    return (value.year - 1970) * 12 + value.month - 1


def rebuild(conn: Connection, store: Any, since: datetime, until: datetime | None = None, *,
            zone: str = DEFAULT_ZONE) -> Rebuilt:
    """Recompute the rollups of every UTC month from ``since``'s month up to ``until`` (exclusive,
    rounded up to a month; default: everything after) from the event store, in ``conn``'s
    transaction. Whole months, because a month's row is the sum of all its days."""
    while catch_up(conn, store, zone=zone):  # first what the job has not yet counted: none is counted twice
        pass
    start = _month_start(since)
    end = _month_start(until, up=True) if until else None
    h0 = int(start.timestamp()) // 3600
    h1 = int(end.timestamp()) // 3600 if end else None

    def window(col: Any, lo: int, hi: int | None) -> list[Any]:
        return [col >= lo] + ([col < hi] if hi is not None else [])

    conn.execute(delete(EventCount).where(EventCount.grain == HOUR, *window(EventCount.bucket, h0, h1)))
    conn.execute(delete(EventCount).where(EventCount.grain == DAY,
                                          *window(EventCount.bucket, h0 // 24, h1 // 24 if h1 else None)))
    conn.execute(delete(EventCount).where(EventCount.grain == MONTH,
                                          *window(EventCount.bucket, _months(start),
                                                  _months(end) if end else None)))
    conn.execute(delete(HostSet).where(HostSet.grain == DAY,
                                       *window(HostSet.bucket, h0 // 24, h1 // 24 if h1 else None)))
    conn.execute(delete(HostSet).where(HostSet.grain == MONTH,
                                       *window(HostSet.bucket, _months(start), _months(end) if end else None)))

    parts = []
    for dim in DIMS:
        store_dim = DIMENSIONS[dim]
        rows = store.counts(SYSTEM, ["hour", "type", store_dim, "org", "partner"], since=start, until=end)
        if not rows:
            continue
        keys = list(zip(*[r.key for r in rows], strict=True))
        part = pl.DataFrame({
            "hour": pl.Series(keys[0], dtype=pl.String),
            "type": pl.Series(keys[1], dtype=pl.String).fill_null(""),
            "value": pl.Series([None if v is None else str(v) for v in keys[2]], dtype=pl.String).fill_null(""),
            "org_id": pl.Series(keys[3], dtype=pl.Int64).fill_null(0),
            "partner_org_id": pl.Series(keys[4], dtype=pl.Int64).fill_null(0),
            "n": pl.Series([r.count for r in rows], dtype=pl.Int64)})
        parts.append(part.select(
            (pl.col("hour").str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M").dt.epoch("s") // 3600).alias("bucket"),
            pl.lit(dim).alias("dim"), "value", "type", "org_id", "partner_org_id", "n"))
    if parts:
        hours = layout(pl.concat(parts).group_by(KEYS).agg(pl.col("n").sum()))
    else:
        hours = pl.DataFrame(schema={"bucket": pl.Int64, "dim": pl.String, "value": pl.String, "type": pl.String,
                                     "org_id": pl.Int64, "partner_org_id": pl.Int64, "n": pl.Int64})

    hosts_parts: list[pl.DataFrame] = []
    after, events = 0, 0
    columns = ["time_source", "classification_type", "org_id", "partner_org_id", "source_ip_bin", "source_fqdn"]
    host_names = {**STORE_NAMES, **{k: "_absent" for k in ("severity", "feed", "country", "sector", "asn")}}
    while True:
        chunk = store.scan(SYSTEM, columns, after_id=after, limit=SCAN_ROWS, since=start)
        if not chunk.height:
            break
        after = int(chunk["id"].max())
        if end is not None:
            chunk = chunk.filter(pl.col("time_source") < end)
        events += chunk.height
        hosts_parts.append(hour_counts(chunk, host_names)[1])
    hosts = pl.concat(hosts_parts).unique() if hosts_parts else pl.DataFrame()
    add_counts(conn, hours, hosts, day_edges(zone))
    parts = part_counts(hours, day_edges(zone)).height if hours.height else 0
    from commonwatch.reports import acks  # it reads notify's warnings with this module's grains

    answers = acks.rebuild(conn, start, end, zone=zone)
    return Rebuilt(start, parts, day_counts(hours).height if hours.height else 0, hosts.height, events, answers)
