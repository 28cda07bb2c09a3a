"""The event store on ClickHouse: a cluster through clickhouse-connect, or chDB in process.

One SQL text serves both. With ``clickhouse_url`` set, the store talks to a server (HTTP, through
clickhouse-connect); with ``clickhouse_cluster`` also set, to a cluster: each shard holds
``events_local`` (ReplicatedReplacingMergeTree, its replicas kept in step by ClickHouse Keeper)
and every server has ``events``, a Distributed table over them, sharded on
``cityHash64(event_key)``. Without a URL the store is chDB (the ClickHouse engine as a Python
module) in ``<event_store_dir>/chdb``: one ReplacingMergeTree table ``events``, no Distributed
table. The test suite runs the contract on chDB.

Tables
    ``events`` is partitioned by the UTC day of ``time_source`` (``toYYYYMMDD``) and ordered by
    ``(classification_type, feed_name, time_source, event_key)``: the filters that never change
    after storage, then the event key. Skip indexes cover the key (bloom filter: the dedup
    check), the ids (minmax: fetch by id, watermark walks) and the address (minmax: network
    filters). The tenancy columns have none: rematch changes them, and an installation has too
    many organisations for a set index to prune by. ``event_id_blocks`` records each range of ids
    handed out.

Exact deduplication
    ``append`` runs under the writer lock: it finds the keys of the batch already stored on the UTC
    days within ``event_dedup_days`` either side of the batch's times (an event key names the
    time window of its observation, so an equal key lies in that window), inserts only the others,
    and only then releases the lock. The stored keys come from the writer's key cache
    (:class:`KeyCache`: a :class:`~commonwatch.events.store.key_index.KeyIndex` of fingerprints per
    day, in this process's memory), each day read from its partition the first time a batch needs
    it. Before each check one query of ``event_id_blocks`` tells what other writers did since: their
    appends (blocks above the ids the cache saw) are read by id, anything else (a move, a retention
    drop, which records the block ``(0, 0)``) makes the cache start again, so the check stays exact
    across writers and restarts. Ids come from the same query, as one block a batch. A
    Distributed insert is sent in the foreground (``distributed_foreground_insert``), so the next
    writer's check sees it. Because the table is
    sharded on the key, all copies of one key would live on one shard, where ReplacingMergeTree and
    ``FINAL`` on every read fold them into one row: a read never shows an event twice, whatever
    the merge state.

Several writers (RabbitMQ workers)
    The check and the insert must not interleave between writers. The lock is ``pg_advisory_xact_lock``
    on the relational database when that is PostgreSQL (taken in the worker's own transaction and
    held until it commits with the ingest run's counters, so workers on any number of machines take
    turns for check + insert; parsing and the stages still run in parallel), and a file lock
    (``flock``) beside it on one machine. Ids come from
    ``event_id_blocks`` under the same lock, so they rise in commit order. Each insert carries an
    ``insert_deduplication_token`` made of its id range and keys: an insert retried after a lost
    answer is dropped by ClickHouse as a repeat of the same block.

Rewrites and retention
    ``rewrite_match`` inserts each changed event again with ``version + 1``; ``FINAL`` reads the
    newest version, merges drop the old. Retention drops whole day partitions
    (``ALTER TABLE ... DROP PARTITION``); a day holding events under a legal hold instead loses
    every other event by a lightweight ``DELETE``.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import logging
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from commonwatch.access.principal import Principal
from commonwatch.errors import Invalid, NotFound
from commonwatch.events.schema import FIELDS, SEVERITIES
from commonwatch.events.search import (
    COUNT_CAP,
    DEFAULT_PAGE_SIZE,
    NEWEST_FIRST,
    NUMBER_KEYS,
    RANKS,
    SORT_COLUMNS,
    EventFilter,
    EventSort,
    Page,
    Position,
)
from commonwatch.events.store import (
    BUCKETS,
    COLUMN_TYPES,
    DIMENSIONS,
    ID_CHUNK,
    MATCH_COLUMNS,
    MENTION_COLUMNS,
    CountRow,
    DayDrop,
    Probe,
    StreamState,
    check_count_keys,
    check_page_request,
    check_probes,
    frames_of_rows,
    keyset_page,
    keyset_stream,
    mentions_frame,
    sort_bounds,
)
from commonwatch.events.store.key_index import KeyIndex, sorted_prints
from commonwatch.events.store.parquet import as_records
from commonwatch.i18n import _
from commonwatch.net import network_bounds

log = logging.getLogger(__name__)

TABLE = "events"
LOCAL = "events_local"
ID_BLOCKS = "event_id_blocks"
COLUMNS: tuple[str, ...] = tuple(COLUMN_TYPES)
RENAME: dict[str, str] = {**{f.name: f.column for f in FIELDS}, "source.ip_bin": "source_ip_bin"}
#: The sorting key: filters that never change after storage, then the event key.
ORDER_BY = ("classification_type", "feed_name", "time_source", "event_key")
#: Columns with few distinct values, stored as dictionaries.
LOW_CARDINALITY = {"feed_name", "feed_provider", "source_cc", "protocol_transport", "protocol_application",
                   "classification_taxonomy", "classification_type", "constituent_sector", "severity",
                   "gbt_category", "tlp"}
NOT_NULL = {"id", "time_source", "event_key", "batch_id", "created_at"}
#: Settings every query runs with (both paths): strings as Arrow strings, long id lists parsed.
QUERY_SETTINGS = {"output_format_arrow_string_as_string": 1, "max_query_size": 64 * 1024 * 1024}
#: Every insert: no ReplacingMergeTree folding inside the block (the check left no repeats in it).
INSERT_SETTINGS = "optimize_on_insert = 0"
#: A key of the PostgreSQL advisory lock that serialises writers (crc32 of the store's name).
ADVISORY_KEY = zlib.crc32(b"commonwatch.events.clickhouse")
#: Stored keys the writer's cache holds at most (16 bytes each) over the days it holds; past it the
#: days looked in least recently are let go, and read again when a batch needs them.
KEY_CACHE_KEYS = 50_000_000


def _ch_type(name: str, dtype: pl.DataType) -> str:
    if dtype == pl.Int64:
        base = "Int64"
    elif isinstance(dtype, pl.Datetime):
        base = "DateTime64(6, 'UTC')"
    elif dtype == pl.Boolean:
        base = "Bool"
    elif dtype == pl.Binary:
        base = "FixedString(16)"
    else:
        base = "String"
    if name in NOT_NULL:
        return base
    if name in LOW_CARDINALITY:
        return f"LowCardinality(Nullable({base}))"
    return f"Nullable({base})"


def table_ddl(cluster: str = "", database: str = "default") -> list[str]:
    """The statements that create the store's tables: one table each on chDB or a single server;
    with ``cluster``, replicated local tables on every shard and Distributed tables over them."""
    on = f" ON CLUSTER {quote_ident(cluster)}" if cluster else ""
    columns = ",\n  ".join([f"{quote_ident(c)} {_ch_type(c, t)}" for c, t in COLUMN_TYPES.items()]
                           + ["version UInt64 DEFAULT 1"])
    indexes = ",\n  ".join([
        "INDEX key_bloom event_key TYPE bloom_filter(0.01) GRANULARITY 1",
        "INDEX id_range id TYPE minmax GRANULARITY 1",
        "INDEX ip_range source_ip_bin TYPE minmax GRANULARITY 1",
    ])
    settings = "allow_nullable_key = 1, non_replicated_deduplication_window = 1000"
    if cluster:
        events_engine = (f"ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/{database}/{LOCAL}', "
                         "'{replica}', version)")
        blocks_engine = (f"ReplicatedMergeTree('/clickhouse/tables/{{shard}}/{database}/{ID_BLOCKS}_local', "
                         "'{replica}')")
        events_name, blocks_name = LOCAL, f"{ID_BLOCKS}_local"
        settings = "allow_nullable_key = 1"
    else:
        events_engine, blocks_engine = "ReplacingMergeTree(version)", "MergeTree"
        events_name, blocks_name = TABLE, ID_BLOCKS
    out = [
        f"CREATE TABLE IF NOT EXISTS {events_name}{on} (\n  {columns},\n  {indexes}\n) ENGINE = {events_engine}\n"
        f"PARTITION BY toYYYYMMDD(time_source)\nORDER BY ({', '.join(ORDER_BY)})\nSETTINGS {settings}",
        f"CREATE TABLE IF NOT EXISTS {blocks_name}{on} (first Int64, last Int64, at DateTime64(6, 'UTC')) "
        f"ENGINE = {blocks_engine} ORDER BY last",
    ]
    if cluster:
        out += [
            f"CREATE TABLE IF NOT EXISTS {TABLE}{on} AS {LOCAL} ENGINE = Distributed({quote_str(cluster)}, "
            f"{quote_str(database)}, {LOCAL}, cityHash64(event_key))",
            f"CREATE TABLE IF NOT EXISTS {ID_BLOCKS}{on} AS {ID_BLOCKS}_local ENGINE = Distributed("
            f"{quote_str(cluster)}, {quote_str(database)}, {ID_BLOCKS}_local, last)",
        ]
    return out


# --- literals ---------------------------------------------------------------------------------------------
# Every value reaches the SQL text through one of these (numbers through int(), strings escaped),
# so the same statement runs on chDB, which has no parameter binding for arrays, and on a server.

def quote_str(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_ident(name: str) -> str:
    return "`" + str(name).replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_time(value: datetime) -> str:
    utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return f"toDateTime64('{utc.strftime('%Y-%m-%d %H:%M:%S.%f')}', 6, 'UTC')"


def quote_ints(values: Iterable[int]) -> str:
    return "(" + ", ".join(str(int(v)) for v in values) + ")"


# --- conditions -------------------------------------------------------------------------------------------

def visible_to(principal: Principal) -> str:
    """The tenancy condition: staff all, others their organisations' events and those routed to them."""
    if principal.sees_all_tenants:
        return "1"
    if not principal.org_ids:
        return "0"
    ids = quote_ints(sorted(principal.org_ids))
    return f"(org_id IN {ids} OR partner_org_id IN {ids})"


def conditions(f: EventFilter) -> list[str]:
    """The WHERE conditions of a filter, as the SQL store's ``conditions`` states them."""
    out: list[str] = []
    if f.time_from is not None:
        out.append(f"time_source >= {quote_time(f.time_from)}")
    if f.time_to is not None:
        out.append(f"time_source < {quote_time(f.time_to)}")
    if f.unmatched:
        out.append("org_id IS NULL")
    elif f.org_id is not None:
        out.append(f"org_id = {int(f.org_id)}")
    if f.sector is not None:
        out.append(f"constituent_sector = {quote_str(f.sector)}")
    if f.cii is not None:
        out.append(f"constituent_cii = {'true' if f.cii else 'false'}")
    if f.classification_type is not None:
        out.append(f"classification_type = {quote_str(f.classification_type)}")
    if f.classification_taxonomy is not None:
        out.append(f"classification_taxonomy = {quote_str(f.classification_taxonomy)}")
    if f.feed_name is not None:
        out.append(f"startsWith(feed_name, {quote_str(f.feed_name[:-1])})" if f.feed_name.endswith("*")
                   else f"feed_name = {quote_str(f.feed_name)}")
    if f.network is not None:
        low, high = network_bounds(f.network)
        out.append(f"source_ip_bin BETWEEN unhex('{low.hex()}') AND unhex('{high.hex()}')")
    if f.asn is not None:
        out.append(f"source_asn = {int(f.asn)}")
    if f.country is not None:
        out.append(f"source_cc = {quote_str(f.country)}")
    if f.severity is not None:
        out.append(f"severity = {quote_str(f.severity)}")
    if f.min_severity is not None:
        levels = SEVERITIES[SEVERITIES.index(f.min_severity):]
        out.append(f"severity IN ({', '.join(quote_str(s) for s in levels)})")
    if f.tlp is not None:
        out.append(f"tlp = {quote_str(f.tlp)}")
    return out


def older_than(pos: Position) -> str:
    t = quote_time(pos.time_source)
    return f"(time_source < {t} OR (time_source = {t} AND id < {int(pos.id)}))"


def newer_than(pos: Position) -> str:
    t = quote_time(pos.time_source)
    return f"(time_source > {t} OR (time_source = {t} AND id > {int(pos.id)}))"


def sort_key(key: str) -> str:
    """The ``key`` order's expression, never NULL, as the SQL store's ``sort_key`` computes it
    (the address key as its hex text, which sorts as its bytes do)."""
    col = quote_ident(SORT_COLUMNS[key])
    if key == "time":
        return col
    if key in RANKS:
        return f"indexOf([{', '.join(quote_str(x) for x in RANKS[key])}], ifNull({col}, ''))"
    if key == "source":
        return f"ifNull(hex({col}), '')"
    if key in NUMBER_KEYS:
        return f"ifNull({col}, 0)"
    return f"ifNull({col}, '')"


def sort_literal(key: str, value: Any) -> str:
    """A cursor's value as a literal comparable with :func:`sort_key`."""
    if key == "time":
        return quote_time(value)
    if key == "source":
        return quote_str(bytes(value).hex().upper())
    if key in NUMBER_KEYS:
        return str(int(value))
    return quote_str(value)


def where(parts: Iterable[str]) -> str:
    parts = [p for p in parts if p and p != "1"]
    return ("WHERE " + " AND ".join(parts)) if parts else ""


def as_frame(table: pa.Table | None, names: Sequence[str]) -> pl.DataFrame:
    """An Arrow result as a frame typed by :data:`COLUMN_TYPES` (fixed-size binary as Binary)."""
    schema = {c: COLUMN_TYPES.get(c, pl.Int64()) for c in names}
    if table is None or table.num_rows == 0:
        return pl.DataFrame(schema=schema)
    arrays = []
    for column in table.columns:
        if pa.types.is_fixed_size_binary(column.type):
            column = column.cast(pa.binary())
        elif pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        arrays.append(column)
    frame = pl.from_arrow(pa.table(arrays, names=table.column_names))
    assert isinstance(frame, pl.DataFrame)
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()])


# --- the writer's cache of stored keys ----------------------------------------------------------------------

def day_number(t: datetime) -> int:
    """The UTC day of ``t`` as ``toYYYYMMDD`` gives it (the partition)."""
    u = t.astimezone(UTC) if t.tzinfo else t
    return u.year * 10000 + u.month * 100 + u.day


def days_between(low: datetime, high: datetime) -> list[int]:
    """Every UTC day from ``low``'s to ``high``'s, as :func:`day_number` gives them."""
    day, last = (t.astimezone(UTC).date() if t.tzinfo else t.date() for t in (low, high))
    out = []
    while day <= last:
        out.append(day.year * 10000 + day.month * 100 + day.day)
        day += timedelta(days=1)
    return out


DAY = (pl.col("time_source").dt.convert_time_zone("UTC").dt.strftime("%Y%m%d").cast(pl.Int64)).alias("day")


@dataclass
class KeyCache:
    """The writer's copy of the stored event keys of the UTC days batches have looked in, one
    :class:`KeyIndex` a day (``toYYYYMMDD``, least recently used first). It holds those days'
    events with ids up to ``seen_id``, as ``event_id_blocks`` stood at ``blocks`` rows."""

    seen_id: int
    blocks: int
    days: OrderedDict[int, KeyIndex] = field(default_factory=OrderedDict)

    def size(self) -> int:
        return sum(len(index) for index in self.days.values())

    def add(self, keyed: pl.DataFrame) -> None:
        """Put ``(day, event_key)`` rows into the days held (others are read whole when needed)."""
        for (day,), part in keyed.partition_by("day", as_dict=True).items():
            index = self.days.get(int(day))
            if index is None:
                continue
            keys = part["event_key"].unique()
            qhi, qlo, order = sorted_prints(keys)
            held = np.empty(len(keys), dtype=bool)
            held[order] = index.stored(qhi, qlo)
            self.days[int(day)] = index.extended(keys.filter(~pl.Series(held)))

    def let_go(self, needed: Iterable[int]) -> None:
        """Drop the days looked in least recently while more than :data:`KEY_CACHE_KEYS` are held."""
        keep, total = set(needed), self.size()
        for day in list(self.days):
            if total <= KEY_CACHE_KEYS:
                break
            if day not in keep:
                total -= len(self.days.pop(day))


#: The key cache of each store (by its location), kept between batches under the writer lock.
_KEY_CACHES: dict[str, KeyCache] = {}


# --- the two ways to reach ClickHouse ----------------------------------------------------------------------

class ChdbBackend:
    """chDB in this process. chDB holds one database folder per process at a time: a store in
    another folder closes the open one first. Calls are serialised (one chDB connection)."""

    cluster = ""
    database = "default"
    _lock = threading.RLock()
    _open: tuple[Path, Any, Any] | None = None  # folder, chDB session, the held owner lock

    def __init__(self, path: Path):
        self.path = Path(path)
        self.where = str(self.path)

    def _session(self) -> Any:
        from chdb import session as chdb_session

        cls = type(self)
        if cls._open is not None and cls._open[0] == self.path:
            return cls._open[1]
        if cls._open is not None:
            cls._open[1].close()
            cls._open[2].close()  # releases the owner lock
            cls._open = None
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            owner = open(self.path / "owner.lock", "a+b")  # noqa: SIM115 - held while the session is open
        except OSError as exc:
            raise storage_error(self.where, exc) from None
        try:
            # chDB does not refuse a folder another process has open; it would show that process
            # nothing of it. So one process owns the folder, and another is told so.
            fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner.close()
            raise Invalid("event_store", _("the chDB event store in {folder} is open in another process; for "
                                           "several processes set clickhouse_url to a ClickHouse server").format(
                folder=self.path)) from None
        sess = chdb_session.Session(str(self.path))
        _KEY_CACHES.pop(self.where, None)  # a folder opened anew is read anew
        for name, value in QUERY_SETTINGS.items():
            sess.query(f"SET {name} = {value}")
        for statement in table_ddl():
            sess.query(statement)
        cls._open = (self.path, sess, owner)
        return sess

    def arrow(self, sql: str, incoming: pa.Table | None = None) -> pa.Table | None:
        with self._lock:
            sess = self._session()
            if incoming is not None:
                # What a server receives as an external table is a Memory table here, filled per query.
                name = self._incoming(sess, incoming)
                sql = sql.replace("{incoming}", name)
            result = sess.query(sql, "ArrowStream")
            data = result.bytes()
        if not data:
            return None
        return pa.ipc.open_stream(data).read_all()

    @staticmethod
    def _incoming(sess: Any, incoming: pa.Table) -> str:
        structure = ", ".join(f"{quote_ident(f.name)} {'Int64' if pa.types.is_integer(f.type) else 'String'}"
                              for f in incoming.schema)
        name = "incoming_" + hashlib.blake2b(structure.encode(), digest_size=6).hexdigest()
        sess.query(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ({structure}) ENGINE = Memory")
        sess.query(f"TRUNCATE TABLE {name}")
        if incoming.num_rows:
            ChdbBackend._send(sess, f"INSERT INTO {name}", incoming)
        return name

    @staticmethod
    def _send(sess: Any, statement: str, data: pa.Table) -> None:
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, data.schema) as writer:
            writer.write_table(data)
        with sess.send_insert(statement, "ArrowStream") as inserter:
            inserter.append(sink.getvalue())
            inserter.finish()

    def command(self, sql: str) -> None:
        with self._lock:
            self._session().query(sql)

    def insert(self, table: str, data: pa.Table, token: str) -> None:
        # chDB's Python() table function reads the Arrow table where it lies (by the local name
        # ``rows``): no stream is encoded and parsed again, 40% less CPU than an ArrowStream insert.
        rows = data  # noqa: F841 - read by name by Python(rows)
        cols = ", ".join(quote_ident(n) for n in data.column_names)
        with self._lock:
            self._session().query(f"INSERT INTO {table} ({cols}) SETTINGS {INSERT_SETTINGS}, "  # noqa: S608
                                  f"insert_deduplication_token = {quote_str(token)} "
                                  f"SELECT {cols} FROM Python(rows)")

    def lock_file(self) -> Path:
        return self.path / "writer.lock"


class ServerBackend:
    """A ClickHouse server or cluster over HTTP(S), through clickhouse-connect."""

    _clients: dict[str, Any] = {}
    _ready: set[tuple[str, str]] = set()  # (url, cluster) whose tables this process has created
    _lock = threading.Lock()

    def __init__(self, url: str, cluster: str, lock_dir: Path):
        self.url, self.cluster, self.lock_dir = url, cluster, lock_dir
        self.where = url.split("@")[-1]  # for messages: never the password

    @property
    def client(self) -> Any:
        import clickhouse_connect

        with self._lock:
            client = self._clients.get(self.url)
            if client is None:
                client = clickhouse_connect.get_client(dsn=self.url, autogenerate_session_id=False)
                self._clients[self.url] = client
        if (self.url, self.cluster) not in self._ready:
            for statement in table_ddl(self.cluster, client.database or "default"):
                client.command(statement, settings={"distributed_ddl_task_timeout": 300})
            self._ready.add((self.url, self.cluster))
        return client

    @property
    def database(self) -> str:
        return self.client.database or "default"

    def _external(self, incoming: pa.Table | None):
        if incoming is None:
            return None
        from clickhouse_connect.driver.external import ExternalData

        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, incoming.schema) as writer:
            writer.write_table(incoming)
        structure = ", ".join(f"{f.name} {'Int64' if pa.types.is_integer(f.type) else 'String'}"
                              for f in incoming.schema)
        return ExternalData(file_name="incoming", data=sink.getvalue(), fmt="ArrowStream", structure=structure)

    def arrow(self, sql: str, incoming: pa.Table | None = None) -> pa.Table | None:
        return self.client.query_arrow(sql.replace("{incoming}", "incoming"), settings=QUERY_SETTINGS,
                                       external_data=self._external(incoming), use_strings=True)

    def command(self, sql: str) -> None:
        self.client.command(sql, settings={"mutations_sync": 2, "distributed_ddl_task_timeout": 300})

    def insert(self, table: str, data: pa.Table, token: str) -> None:
        # Foreground: the insert returns once every shard holds its rows (the next check sees them).
        # The token makes a retry of the same block a no-op on Replicated tables.
        settings = {"insert_deduplication_token": token, "distributed_foreground_insert": 1,
                    "optimize_on_insert": 0}
        self.client.insert_arrow(table, data, settings=settings)

    def lock_file(self) -> Path:
        return self.lock_dir / "clickhouse-writer.lock"


def storage_error(where: str, exc: Exception) -> Invalid:
    return Invalid("event_store_dir", _("cannot write events to {folder}: {reason}").format(
        folder=where, reason=getattr(exc, "strerror", None) or exc))


_WRITER_LOCKS: dict[str, threading.Lock] = {}


class ClickHouseEventStore:
    """:class:`~commonwatch.events.store.EventStore` on ClickHouse (a server) or chDB."""

    name = "clickhouse"

    def __init__(self, backend: ChdbBackend | ServerBackend, bind: Any = None, *, dedup_days: int = 7):
        self.backend = backend
        self.bind = bind
        self.dedup_window = timedelta(days=dedup_days)

    @property
    def location(self) -> str:
        return self.backend.where

    # --- plumbing

    def _select(self, sql: str, names: Sequence[str], incoming: pa.Table | None = None) -> pl.DataFrame:
        return as_frame(self.backend.arrow(sql, incoming), names)

    def _scalar(self, sql: str) -> Any:
        table = self.backend.arrow(sql)
        return table.column(0)[0].as_py() if table is not None and table.num_rows else None

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One writer at a time: this process's threads, processes on this machine (flock) and,
        when the relational database is PostgreSQL, writers anywhere (an advisory lock)."""
        key = str(self.backend.lock_file())
        local = _WRITER_LOCKS.setdefault(key, threading.Lock())
        with local:
            try:
                self.backend.lock_file().parent.mkdir(parents=True, exist_ok=True)
                handle = open(self.backend.lock_file(), "a+b")  # noqa: SIM115 - held for the block
            except OSError as exc:
                raise storage_error(self.location, exc) from None
            with handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                with self._advisory_lock():
                    yield

    @contextmanager
    def _advisory_lock(self) -> Iterator[None]:
        from sqlalchemy import text
        from sqlalchemy.engine import Connection, Engine
        from sqlalchemy.orm import Session

        bind = self.bind
        engine = bind.get_bind() if isinstance(bind, Session) else bind.engine if isinstance(bind, Connection) \
            else bind
        if not isinstance(engine, Engine) or engine.dialect.name != "postgresql":
            yield
            return
        if isinstance(bind, Session | Connection):
            # Held until the caller's transaction ends, so its own records commit under it too.
            bind.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_KEY})
            yield
            return
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                conn.commit()

    def _caught_up(self) -> tuple[KeyCache, int]:
        """The writer's key cache brought up to what is stored, and the highest id handed out: one
        query of ``event_id_blocks`` (under the writer lock). Blocks other writers added above what
        the cache saw are their appends, whose keys are read by id; a block at or below it (a move
        of stored events, a retention's deletion) makes the cache start again."""
        cache = _KEY_CACHES.get(self.location)
        seen = cache.seen_id if cache is not None else 0
        table = self.backend.arrow(f"SELECT count(), max(last), countIf(last > {int(seen)}), "  # noqa: S608
                                   f"minIf(first, last > {int(seen)}) FROM {ID_BLOCKS}")
        blocks, high, newer, lowest = (int(table.column(i)[0].as_py() or 0) for i in range(4)) if table is not None \
            else (0, 0, 0, 0)
        if cache is not None and blocks != cache.blocks:
            if blocks - cache.blocks == newer and lowest > seen:
                if cache.days:
                    cache.add(self._select(f"SELECT toYYYYMMDD(time_source) AS day, event_key FROM {TABLE} "  # noqa: S608
                                           f"WHERE id > {int(seen)} AND id <= {int(high)}", ["day", "event_key"]))
            else:
                cache = None
        if cache is None:
            cache = KeyCache(seen_id=high, blocks=blocks)
        cache.seen_id, cache.blocks = max(cache.seen_id, high), blocks
        _KEY_CACHES[self.location] = cache
        return cache, high

    def _forget_keys(self) -> None:
        _KEY_CACHES.pop(self.location, None)

    def _held(self, cache: KeyCache, days: list[int]) -> list[KeyIndex]:
        """The key index of each of ``days``, the days not held read from their partitions."""
        missing = [d for d in days if d not in cache.days]
        if missing:
            found = self._select(f"SELECT toYYYYMMDD(time_source) AS day, event_key FROM {TABLE} "  # noqa: S608
                                 f"WHERE toYYYYMMDD(time_source) IN {quote_ints(missing)}", ["day", "event_key"])
            parts = {int(k[0]): p["event_key"].unique() for k, p in found.partition_by("day", as_dict=True).items()}
            for day in missing:
                keys = parts.get(day)
                cache.days[day] = KeyIndex() if keys is None else KeyIndex.of([keys])
        for day in days:
            cache.days.move_to_end(day)
        return [cache.days[d] for d in days]

    def _stored_in_window(self, cache: KeyCache, keys: pl.Series, low: datetime, high: datetime) -> np.ndarray:
        """For each of ``keys``, whether it is stored on a UTC day from ``low``'s to ``high``'s."""
        qhi, qlo, order = sorted_prints(keys)
        found = np.zeros(len(keys), dtype=bool)
        for index in self._held(cache, days_between(low, high)):
            found |= index.stored(qhi, qlo)
        out = np.empty(len(keys), dtype=bool)
        out[order] = found
        return out

    def _record_block(self, first: int, last: int, now: datetime, token: str = "") -> None:
        block = pa.table({"first": pa.array([first], pa.int64()), "last": pa.array([last], pa.int64()),
                          "at": pa.array([now.astimezone(UTC)], pa.timestamp("us", tz="UTC"))})
        self.backend.insert(ID_BLOCKS, block, token or f"ids-{first}-{last}")

    def _stored_keys(self, keys: pl.Series, low: datetime | None, high: datetime | None) -> pl.DataFrame:
        """(event_key, id) of each of ``keys`` stored, looked for between ``low`` and ``high``."""
        if not keys.len():
            return pl.DataFrame(schema={"event_key": pl.String, "id": pl.Int64})
        incoming = pa.table({"event_key": keys.unique().to_arrow().cast(pa.string())})
        bounds = []
        if low is not None:
            bounds.append(f"time_source >= {quote_time(low)}")
        if high is not None:
            bounds.append(f"time_source <= {quote_time(high)}")
        sql = (f"SELECT event_key, min(id) AS id FROM {TABLE} "  # noqa: S608
               f"{where([*bounds, 'event_key IN (SELECT event_key FROM {incoming})'])} GROUP BY event_key")
        return self._select(sql, ["event_key", "id"], incoming)

    def _insert(self, rows: pl.DataFrame) -> None:
        """Insert full rows (every stored column and ``version``) as one block; its token names the
        ids and keys, so the same block given again is dropped by ClickHouse."""
        keys = rows["event_key"].sort().str.join("\x1f").item()
        digest = hashlib.blake2b(keys.encode(), digest_size=16).hexdigest()
        ids = rows["id"]
        token = f"events-{int(ids.min())}-{int(ids.max())}-{rows['version'].max()}-{digest}"
        table = rows.to_arrow(compat_level=pl.CompatLevel.oldest())
        try:
            self.backend.insert(TABLE, table, token)
        except OSError as exc:
            raise storage_error(self.location, exc) from None

    @staticmethod
    def _full(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select([pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c)
                             for c, t in COLUMN_TYPES.items()]
                            + [pl.col("version").cast(pl.UInt64) if "version" in frame.columns
                               else pl.lit(1, pl.UInt64).alias("version")])

    # --- writing

    def append(self, events: pl.DataFrame, *, batch_id: int, now: datetime) -> int:
        if not events.height:
            return 0
        batch = events.rename({k: v for k, v in RENAME.items() if k in events.columns})
        batch = batch.unique("event_key", keep="first", maintain_order=True)
        times = batch["time_source"]
        with self._writing():
            try:
                cache, high_id = self._caught_up()
                if times.null_count():  # not from the pipeline (it refuses such rows): the whole table
                    stored = self._stored_keys(batch["event_key"], None, None)
                    fresh = batch.join(stored.select("event_key"), on="event_key", how="anti")
                    cache.days.clear()
                else:
                    low, high = times.min() - self.dedup_window, times.max() + self.dedup_window
                    fresh = batch.filter(~pl.Series(self._stored_in_window(cache, batch["event_key"], low, high)))
                if not fresh.height:
                    return 0
                first, last = high_id + 1, high_id + fresh.height
                self._record_block(first, last, now)
                fresh = fresh.with_columns(
                    pl.int_range(first, last + 1, dtype=pl.Int64).alias("id"),
                    pl.lit(batch_id, pl.Int64).alias("batch_id"),
                    pl.lit(now).dt.cast_time_unit("us").dt.convert_time_zone("UTC").alias("created_at"),
                )
                self._insert(self._full(fresh))
            except BaseException:
                self._forget_keys()  # an insert that failed may have stored some of it: read again
                raise
            cache.seen_id, cache.blocks = last, cache.blocks + 1
            cache.add(fresh.select(DAY, "event_key"))
            cache.let_go(days_between(low, high) if not times.null_count() else ())
            return fresh.height

    def append_stored(self, events: pl.DataFrame) -> int:
        """Store events that already have their ids (as another store's :meth:`scan` returns them),
        for ``events migrate-store``: ids, ``batch_id`` and ``created_at`` are kept; an event key
        or an id already stored is skipped, so a batch given twice (a move resumed) is stored once."""
        if not events.height:
            return 0
        batch = events.select([pl.col(c).cast(t) for c, t in COLUMN_TYPES.items()])
        batch = batch.unique("event_key", keep="first", maintain_order=True).unique("id", keep="first")
        with self._writing():
            known = self._stored_keys(batch["event_key"], None, None)
            low, high = int(batch["id"].min()), int(batch["id"].max())
            ids = self._select(f"SELECT id FROM {TABLE} WHERE id BETWEEN {low} AND {high}", ["id"])  # noqa: S608
            fresh = batch.join(known.select("event_key"), on="event_key", how="anti").join(ids, on="id", how="anti")
            if not fresh.height:
                return 0
            self._forget_keys()  # ids below those handed out: the cache starts again, as other writers' do
            self._record_block(int(fresh["id"].min()), int(fresh["id"].max()), datetime.now(UTC))
            self._insert(self._full(fresh))
            return fresh.height

    def existing_keys(self, keys: Sequence[str]) -> dict[str, int]:
        found = self._stored_keys(pl.Series("event_key", list(keys), dtype=pl.String), None, None)
        return dict(zip(found["event_key"].to_list(), found["id"].to_list(), strict=True))

    def rewrite_match(self, changes: pl.DataFrame) -> int:
        if not changes.height:
            return 0
        changes = changes.select([pl.col("id").cast(pl.Int64),
                                  *(pl.col(c).cast(COLUMN_TYPES[c]) for c in MATCH_COLUMNS)])
        changes = changes.unique("id", keep="last")
        with self._writing():
            current = self._rows_by_id(changes["id"].to_list(), [*COLUMNS, "version"])
            if not current.height:
                return 0
            updated = current.update(changes, on="id", how="left", include_nulls=True)
            updated = updated.with_columns((pl.col("version") + 1).alias("version"))
            self._insert(self._full(updated))
            return updated.height

    def _rows_by_id(self, ids: Sequence[int], names: Sequence[str], principal: Principal | None = None,
                    order: str = "", limit: int | None = None) -> pl.DataFrame:
        wanted = sorted(set(ids))
        parts = []
        tenancy = visible_to(principal) if principal is not None else "1"
        cols = ", ".join(quote_ident(n) for n in names)
        for start in range(0, len(wanted), ID_CHUNK):
            chunk = wanted[start:start + ID_CHUNK]
            sql = (f"SELECT {cols} FROM {TABLE} FINAL "  # noqa: S608
                   f"{where([f'id IN {quote_ints(chunk)}', tenancy])} {order}"
                   f"{f' LIMIT {int(limit)}' if limit is not None else ''}")
            parts.append(self._select(sql, names))
        return pl.concat(parts) if parts else as_frame(None, names)

    def drop_days_before(self, cutoff: date, keep_ids: Iterable[int], *, dry_run: bool = False) -> list[DayDrop]:
        """Every UTC day before ``cutoff``: a day with no held event loses its partition whole; a day
        with some keeps only those (a lightweight DELETE of the others). Per day what went and stayed."""
        midnight = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC)
        held = sorted(set(int(i) for i in keep_ids))
        incoming = pa.table({"id": pa.array(held, pa.int64())})
        sql = (f"SELECT toYYYYMMDD(time_source) AS day, count() AS n, "  # noqa: S608
               f"countIf(id IN (SELECT id FROM {{incoming}})) AS held FROM {TABLE} FINAL "
               f"WHERE time_source < {quote_time(midnight)} GROUP BY day ORDER BY day")
        table = self.backend.arrow(sql, incoming)
        days = [] if table is None else list(zip(*(table.column(i).to_pylist() for i in range(3)), strict=True))
        out = [DayDrop(f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d}", int(n) - int(k), int(k))
               for d, n, k in days]
        if dry_run or not days:
            return out
        on = f" ON CLUSTER {quote_ident(self.backend.cluster)}" if self.backend.cluster else ""
        local = LOCAL if self.backend.cluster else TABLE
        with self._writing():
            # Keys leave the store: a block (0, 0) tells every writer's key cache to start again.
            self._forget_keys()
            now = datetime.now(UTC)
            self._record_block(0, 0, now, f"drop-{now.isoformat()}")
            for d, _n, kept in days:
                if not kept:
                    self.backend.command(f"ALTER TABLE {local}{on} DROP PARTITION {int(d)}")
                    continue
                mine = self._select(f"SELECT id FROM {TABLE} WHERE toYYYYMMDD(time_source) = {int(d)} "  # noqa: S608
                                    "AND id IN (SELECT id FROM {incoming})", ["id"], incoming)["id"].to_list()
                self.backend.command(f"DELETE FROM {local}{on} WHERE toYYYYMMDD(time_source) = {int(d)} "  # noqa: S608
                                     f"AND id NOT IN {quote_ints(mine)}")
        return out

    # --- search

    def _selection_where(self, principal: Principal, f: EventFilter, *extra: str, up_to_id: int | None = None) -> str:
        parts = [visible_to(principal), *conditions(f), *extra]
        if up_to_id is not None:
            parts.append(f"id <= {int(up_to_id)}")
        return where(parts)

    def ordered(self, principal: Principal, f: EventFilter, *, limit: int, after: Position | None = None,
                before: Position | None = None, up_to_id: int | None = None,
                dense: bool | None = None, sort: EventSort = NEWEST_FIRST) -> list[SimpleNamespace]:
        names = ["id", *(x.column for x in FIELDS)]
        if not sort.is_default:
            if sort.key == "source":
                names.append("source_ip_bin")
            descending, value, ident = sort_bounds(sort, after, before)
            key, way = sort_key(sort.key), "DESC" if descending else "ASC"
            keyset = []
            if ident is not None:
                lit, sign = sort_literal(sort.key, value), "<" if descending else ">"
                keyset = [f"({key} {sign} {lit} OR ({key} = {lit} AND id {sign} {int(ident)}))"]
            order = f"ORDER BY {key} {way}, id {way}"
        elif before is not None:
            keyset, order = [newer_than(before)], "ORDER BY time_source ASC, id ASC"
        else:
            keyset, order = ([older_than(after)] if after is not None else []), "ORDER BY time_source DESC, id DESC"
        sql = (f"SELECT {', '.join(quote_ident(n) for n in names)} FROM {TABLE} FINAL "  # noqa: S608
               f"{self._selection_where(principal, f, *keyset, up_to_id=up_to_id)} {order} LIMIT {int(limit)}")
        return as_records(self._select(sql, names))

    def search_page(self, principal: Principal, f: EventFilter, *, limit: int = DEFAULT_PAGE_SIZE,
                    after: str | None = None, before: str | None = None, count: bool = True,
                    sort: EventSort = NEWEST_FIRST) -> Page:
        check_page_request(limit, after, before)
        total, exact = self.count_capped(principal, f) if count else (None, True)
        return keyset_page(partial(self.ordered, principal, f, sort=sort), limit=limit, after=after, before=before,
                           total=total, exact=exact, sort=sort)

    def count_capped(self, principal: Principal, f: EventFilter, cap: int = COUNT_CAP, *,
                     up_to_id: int | None = None) -> tuple[int, bool]:
        n = int(self._scalar(f"SELECT count() FROM (SELECT id FROM {TABLE} FINAL "  # noqa: S608
                             f"{self._selection_where(principal, f, up_to_id=up_to_id)} LIMIT {int(cap) + 1})") or 0)
        return (n, True) if n <= cap else (cap, False)

    def get(self, principal: Principal, event_id: int) -> SimpleNamespace:
        frame = self._rows_by_id([event_id], ["id", *(x.column for x in FIELDS)], principal)
        if not frame.height:
            raise NotFound("event")
        return as_records(frame)[0]

    # --- by id and by watermark

    def fetch(self, principal: Principal, ids: Sequence[int], columns: Sequence[str], *,
              newest_first: bool = False, limit: int | None = None) -> pl.DataFrame:
        names = ["id", *(c for c in columns if c != "id")]
        if not ids:
            return as_frame(None, names)
        read = names if not newest_first or "time_source" in names else [*names, "time_source"]
        frame = self._rows_by_id(ids, read, principal, "ORDER BY time_source DESC, id DESC" if newest_first else "",
                                 limit)
        if newest_first:
            frame = frame.sort(["time_source", "id"], descending=True)
        frame = frame if limit is None else frame.head(limit)
        return frame.select(names)

    def scan(self, principal: Principal, columns: Sequence[str], *, after_id: int = 0, limit: int,
             since: datetime | None = None, created_after: datetime | None = None,
             routed: bool = False) -> pl.DataFrame:
        names = ["id", *(c for c in columns if c != "id")]
        parts = [f"id > {int(after_id)}", visible_to(principal)]
        if since is not None:
            parts.append(f"time_source >= {quote_time(since)}")
        if created_after is not None:
            parts.append(f"created_at > {quote_time(created_after)}")
        if routed:
            parts.append("(org_id IS NOT NULL OR partner_org_id IS NOT NULL)")
        sql = (f"SELECT {', '.join(quote_ident(n) for n in names)} FROM {TABLE} FINAL {where(parts)} "  # noqa: S608
               f"ORDER BY id LIMIT {int(limit)}")
        return self._select(sql, names)

    # --- aggregates and streams

    def counts(self, principal: Principal, by: Sequence[str], *, since: datetime | None = None,
               until: datetime | None = None, f: EventFilter | None = None) -> list[CountRow]:
        check_count_keys(by)
        # Keys are named by position: a caller may name one dimension twice (each is then a key).
        keys = []
        names = [f"k{i}" for i in range(len(by))]
        for name, alias in zip(by, names, strict=True):
            if name in BUCKETS:
                fmt = "%Y-%m-%dT%H:00" if name == "hour" else "%Y-%m-%d"
                keys.append(f"formatDateTime(time_source, '{fmt}', 'UTC') AS {alias}")
            else:
                keys.append(f"{DIMENSIONS[name]} AS {alias}")
        extra = []
        if since is not None:
            extra.append(f"time_source >= {quote_time(since)}")
        if until is not None:
            extra.append(f"time_source < {quote_time(until)}")
        group = ", ".join(names)
        sql = (f"SELECT {', '.join(keys)}, count() AS n FROM {TABLE} FINAL "  # noqa: S608
               f"{self._selection_where(principal, f or EventFilter(), *extra)} GROUP BY {group} "
               f"ORDER BY n DESC, {group}")
        table = self.backend.arrow(sql)
        if table is None:
            return []
        columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
        return [CountRow(tuple(row[:-1]), int(row[-1])) for row in zip(*columns, strict=True)]

    def _pairs(self, sql: str, incoming: pa.Table | None = None) -> pl.DataFrame:
        table = self.backend.arrow(sql, incoming)
        if table is None or table.num_rows == 0:
            return pl.DataFrame(schema={"value": pl.String, "id": pl.Int64})
        frame = pl.from_arrow(table)
        return frame.select(pl.col(frame.columns[0]).cast(pl.String).alias("value"),
                            pl.col(frame.columns[1]).cast(pl.Int64).alias("id"))

    def mentions(self, principal: Principal, probes: Sequence[Probe], *, cap: int) -> pl.DataFrame:
        """The probes go in as a table; ClickHouse counts the distinct events per value (a semi-join
        per column) and sends ids only for the values with at most ``cap`` of them."""
        check_probes(probes, cap)
        tenancy = visible_to(principal)
        exact = sorted({(p.value, p.family) for p in probes if p.family in MENTION_COLUMNS})
        counts: dict[str, int] = {}
        pairs = [pl.DataFrame(schema={"value": pl.String, "id": pl.Int64})]
        if exact:
            incoming = pa.table({"value": pa.array([v for v, _f in exact], pa.string()),
                                 "family": pa.array([f for _v, f in exact], pa.string())})
            def branch(family: str, column: str) -> str:
                wanted = f"SELECT value FROM {{incoming}} WHERE family = {quote_str(family)}"  # noqa: S608
                return (f"SELECT {quote_ident(column)} AS v, id FROM {TABLE} FINAL "  # noqa: S608
                        f"{where([tenancy, f'{quote_ident(column)} IN ({wanted})'])}")

            branches = [branch(fam, c) for fam, cols in MENTION_COLUMNS.items() for c in cols]
            union = " UNION ALL ".join(branches)
            found = self._pairs(f"SELECT v, uniqExact(id) AS n FROM ({union}) GROUP BY v", incoming)  # noqa: S608
            counts = dict(zip(found["value"].to_list(), found["id"].to_list(), strict=True))
            pairs.append(self._pairs(
                f"SELECT DISTINCT v, id FROM ({union}) WHERE v IN (SELECT v FROM ({union}) "  # noqa: S608
                f"GROUP BY v HAVING uniqExact(id) <= {int(cap)})", incoming))
        for p in {p.value: p for p in probes if p.family == "net"}.values():
            inside = where([tenancy, f"source_ip_bin BETWEEN unhex('{p.first.hex()}') AND unhex('{p.last.hex()}')"])
            n = int(self._scalar(f"SELECT count() FROM {TABLE} FINAL {inside}") or 0)  # noqa: S608
            counts[p.value] = n
            if n <= cap:
                pairs.append(self._pairs(f"SELECT {quote_str(p.value)} AS v, id FROM {TABLE} FINAL {inside}"))  # noqa: S608
        return mentions_frame(probes, pl.concat(pairs), cap, counts)

    def compact(self) -> int:
        return 0  # ClickHouse merges a partition's parts in the background itself

    def latest_id(self, principal: Principal, f: EventFilter) -> int:
        selection = self._selection_where(principal, f)
        # With no condition (the writer's watermark, asked before every batch) the id column alone:
        # FINAL folds only copies of one event, and those carry its id (a rewrite, a retried block),
        # so it reads the whole table's sorting key for the same answer.
        final = " FINAL" if selection else ""
        return int(self._scalar(f"SELECT max(id) FROM {TABLE}{final} {selection}") or 0)  # noqa: S608

    def iter_rows(self, principal: Principal, f: EventFilter, *, max_rows: int, batch: int = 2000,
                  up_to_id: int | None = None, state: StreamState | None = None) -> Iterator[SimpleNamespace]:
        return keyset_stream(partial(self.ordered, principal, f, up_to_id=up_to_id), max_rows=max_rows,
                             batch=batch, state=state)

    def iter_frames(self, principal: Principal, f: EventFilter, *, max_rows: int, batch: int = 2000,
                    up_to_id: int | None = None, state: StreamState | None = None) -> Iterator[pl.DataFrame]:
        return frames_of_rows(self.iter_rows(principal, f, max_rows=max_rows, batch=batch, up_to_id=up_to_id,
                                             state=state), batch)


def opened(bind: Any, settings: Any) -> ClickHouseEventStore:
    """The store the settings name: the server at ``clickhouse_url`` (a cluster when
    ``clickhouse_cluster`` is set), else chDB in ``<event_store_dir>/chdb``."""
    folder = Path(settings.event_store_dir or settings.data_dir / "events")
    if settings.clickhouse_url:
        backend: ChdbBackend | ServerBackend = ServerBackend(settings.clickhouse_url, settings.clickhouse_cluster,
                                                             folder)
    else:
        backend = ChdbBackend(folder / "chdb")
    return ClickHouseEventStore(backend, bind, dedup_days=settings.event_dedup_days)
