"""The event store on the SQL database (SQLite or PostgreSQL): one row per event in ``events``.

Writes use each engine's fast path (SQLite: one ``executemany`` of ``INSERT OR IGNORE``;
PostgreSQL: ``COPY`` into a temporary table, then one ``INSERT ... ON CONFLICT DO NOTHING``), so a
batch written twice is stored once (events are unique by ``event_key``).

Search is keyset-paged and newest first unless another order is asked for (then one query
sorted by that key, see ``SqlEventStore._sorted``): ``time_source`` descending, then ``id`` descending
as the tie break. A cursor is the position ``(time_source, id)`` of the last row shown, so the next
page is an index range scan from that point (``WHERE time_source <= t AND (time_source < t OR id <
i)``) instead of an OFFSET that reads and throws away every earlier row. Every query is built
through ``db.scope``: a constituent reads only its organisations' events, a partner only what is
routed to it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

import polars as pl
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Integer,
    LargeBinary,
    String,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    type_coerce,
    union,
    union_all,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from commonwatch.access.principal import Principal
from commonwatch.db import id_relation, read_only_engine, scope
from commonwatch.errors import NotFound
from commonwatch.events.models import Event
from commonwatch.events.schema import FIELDS, SEVERITIES
from commonwatch.events.search import (
    COUNT_CAP,
    DEFAULT_PAGE_SIZE,
    NUMBER_KEYS,
    RANKS,
    SORT_COLUMNS,
    TEXT_KEYS,
    UNORDERED_INDEXED,
    EventFilter,
    EventSort,
    Page,
    Position,
    SortPosition,
)
from commonwatch.events.search import NEWEST_FIRST as BY_TIME
from commonwatch.events.store import (
    BUCKETS,
    COLUMN_TYPES,
    DIMENSIONS,
    ID_CHUNK,
    MATCH_COLUMNS,
    MENTION_COLUMNS,
    VALUE_CHUNK,
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
from commonwatch.net import network_bounds

#: (harmonisation name, column) in the order the insert statements use.
INSERT_COLUMNS: list[tuple[str, str]] = [(f.name, f.column) for f in FIELDS] + [("source.ip_bin", "source_ip_bin")]
STORE_EXTRA = ["batch_id", "created_at"]
SQLITE_CACHE_KIB = 256 * 1024
#: Every stored field plus the row id, in schema order: what exports and the API return.
EXPORT_COLUMNS: tuple[Any, ...] = (Event.id, *(getattr(Event, f.column) for f in FIELDS))
NEWEST_FIRST = (Event.time_source.desc(), Event.id.desc())
OLDEST_FIRST = (Event.time_source.asc(), Event.id.asc())
#: A non-staff principal's page is found per (organisation, column) pair while there are at most
#: this many pairs; beyond, one query with the plain tenancy condition.
SPLIT_MAX = 64


# --- conditions ----------------------------------------------------------------------------------------

def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


class _Columns:
    """The event columns a filter compares; ``walk_time`` hides the single-column indexes of
    :data:`search.UNORDERED_INDEXED` behind ``coalesce(col, col)`` (the same value, but no index on
    either engine) so the planner reads the ``time_source`` index in order and stops after a page."""

    def __init__(self, walk_time: bool):
        def hide(col):
            return func.coalesce(col, col) if walk_time else col

        self.feed_name = hide(Event.feed_name)
        self.source_asn = hide(Event.source_asn)
        self.source_cc = hide(Event.source_cc)
        self.severity = hide(Event.severity)
        self.source_ip_bin = hide(Event.source_ip_bin)


def conditions(f: EventFilter, *, walk_time: bool = False) -> list[ColumnElement[bool]]:
    """The WHERE conditions of a filter (tenancy is added separately, by ``db.scope``).

    ``walk_time`` asks for conditions that leave the time index to the planner (for a filter
    that many events match); the rows selected are the same.
    """
    c = Event
    h = _Columns(walk_time)
    out: list[ColumnElement[bool]] = []
    if f.time_from is not None:
        out.append(c.time_source >= f.time_from)
    if f.time_to is not None:
        out.append(c.time_source < f.time_to)
    if f.unmatched:
        out.append(c.org_id.is_(None))
    elif f.org_id is not None:
        out.append(c.org_id == f.org_id)
    if f.sector is not None:
        out.append(c.constituent_sector == f.sector)
    if f.cii is not None:
        out.append(c.constituent_cii.is_(f.cii))
    if f.classification_type is not None:
        out.append(c.classification_type == f.classification_type)
    if f.classification_taxonomy is not None:
        out.append(c.classification_taxonomy == f.classification_taxonomy)
    if f.feed_name is not None:
        if f.feed_name.endswith("*"):
            out.append(h.feed_name.like(_like_prefix(f.feed_name[:-1]), escape="\\"))
        else:
            out.append(h.feed_name == f.feed_name)
    if f.network is not None:
        low, high = network_bounds(f.network)
        out.append(h.source_ip_bin.between(low, high))
    if f.asn is not None:
        out.append(h.source_asn == f.asn)
    if f.country is not None:
        out.append(h.source_cc == f.country)
    if f.severity is not None:
        out.append(h.severity == f.severity)
    if f.min_severity is not None:
        out.append(h.severity.in_(SEVERITIES[SEVERITIES.index(f.min_severity):]))
    if f.tlp is not None:
        out.append(c.tlp == f.tlp)
    return out


def selection(principal: Principal, f: EventFilter, *columns: Any, up_to_id: int | None = None,
              walk_time: bool = False) -> Select:
    """``SELECT columns FROM events`` limited to the filter and to what ``principal`` may read.

    ``up_to_id`` freezes a selection: events stored after it was taken are left out.
    """
    stmt = select(*(columns or (Event,))).select_from(Event)
    stmt = scope(stmt, principal, Event).where(*conditions(f, walk_time=walk_time))
    return stmt if up_to_id is None else stmt.where(Event.id <= up_to_id)


def older_than(pos: Position) -> ColumnElement[bool]:
    """Rows after ``pos`` in newest-first order. The leading ``<=`` bounds the index range scan."""
    return and_(Event.time_source <= pos.time_source,
                or_(Event.time_source < pos.time_source, Event.id < pos.id))


def newer_than(pos: Position) -> ColumnElement[bool]:
    return and_(Event.time_source >= pos.time_source,
                or_(Event.time_source > pos.time_source, Event.id > pos.id))


def _position(row: Any) -> Position:
    return Position(row.time_source, row.id)


def sort_key(key: str, *, postgresql: bool) -> ColumnElement:
    """The ``key`` order's expression, never NULL (:data:`search.SORT_COLUMNS`): a rank for
    severity and TLP, text compared byte by byte on PostgreSQL too (``COLLATE "C"``, as SQLite,
    Polars and ClickHouse compare), the address key with ``b""`` for none."""
    col = getattr(Event, SORT_COLUMNS[key])
    if key == "time":
        return col
    if key in RANKS:
        return case({label: i + 1 for i, label in enumerate(RANKS[key])}, value=col, else_=0)
    if key == "source":
        return func.coalesce(col, literal(b"", LargeBinary))
    if key in NUMBER_KEYS:
        return func.coalesce(col, 0)
    assert key in TEXT_KEYS
    text = func.coalesce(col, "")
    return text.collate("C") if postgresql else text


def _branches(principal: Principal) -> list[ColumnElement[bool]] | None:
    """Disjoint, index-friendly parts of a principal's tenancy condition, or None to use it whole.

    ``visible_to`` for events is ``org_id IN (..) OR partner_org_id IN (..)``. Ordered by time
    with a LIMIT, that OR makes SQLite gather every visible row and sort it (seconds on
    millions of rows). Split into one ``col = org`` branch per pair, each branch reads its
    ``(col, time_source)`` index in order and stops after one page. A routed event whose
    organisation is also the principal's belongs to the organisation branch only, so no event
    is found twice.
    """
    if principal.sees_all_tenants or not principal.org_ids:
        return None
    if 2 * len(principal.org_ids) > SPLIT_MAX:
        return None
    orgs = sorted(principal.org_ids)
    own = [Event.org_id == org for org in orgs]
    routed = [and_(Event.partner_org_id == org, or_(Event.org_id.is_(None), Event.org_id.not_in(orgs)))
              for org in orgs]
    return own + routed


# --- reading columns into Polars ----------------------------------------------------------------------

def _raw_column(name: str, sqlite: bool) -> ColumnElement:
    """A column read without per-value conversion in Python; :func:`_typed` converts whole columns."""
    col = getattr(Event, name)
    dtype = COLUMN_TYPES[name]
    if name == "extra":
        return cast(col, Text).label(name)
    if isinstance(dtype, pl.Datetime):
        return type_coerce(col, String if sqlite else DateTime(timezone=True)).label(name)
    if dtype == pl.Boolean:
        return type_coerce(col, Integer if sqlite else Boolean).label(name)
    if dtype == pl.Binary:
        return type_coerce(col, LargeBinary).label(name)
    return col.label(name)


def _typed(rows: Sequence[Any], columns: Sequence[str], sqlite: bool) -> pl.DataFrame:
    """Rows of :func:`_raw_column` columns as a frame typed by :data:`COLUMN_TYPES`."""
    want = {c: COLUMN_TYPES[c] for c in columns}
    raw = {c: (pl.String if isinstance(t, pl.Datetime) and sqlite else pl.Int64 if t == pl.Boolean and sqlite
               else t) for c, t in want.items()}
    frame = pl.DataFrame([tuple(r) for r in rows], schema=raw, orient="row")
    fixes = []
    for name, dtype in want.items():
        if name == "extra":
            fixes.append(pl.when(pl.col(name).is_in(["null", "{}"])).then(None).otherwise(pl.col(name)).alias(name))
        elif sqlite and isinstance(dtype, pl.Datetime):
            fixes.append(pl.col(name).str.to_datetime(time_unit="us", time_zone="UTC", strict=False))
        elif sqlite and dtype == pl.Boolean:
            fixes.append(pl.col(name).cast(pl.Boolean))
    return frame.with_columns(fixes) if fixes else frame


class SqlEventStore:
    """:class:`~commonwatch.events.store.EventStore` on the ``events`` table."""

    name = "sql"

    def __init__(self, bind: Session | Connection | Engine):
        self.bind = bind

    # --- plumbing

    @property
    def engine(self) -> Engine:
        if isinstance(self.bind, Session):
            return self.bind.get_bind()  # type: ignore[return-value]
        if isinstance(self.bind, Connection):
            return self.bind.engine
        return self.bind

    @property
    def _sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def _conn(self) -> Iterator[Session | Connection]:
        """Where statements run: the bound session or connection, or a short read on the engine."""
        if isinstance(self.bind, Engine):
            with read_only_engine(self.bind).connect() as conn:
                yield conn
        else:
            yield self.bind

    def _rows(self, stmt) -> list[Row]:
        with self._conn() as conn:
            return list(conn.execute(stmt))

    def _scalar(self, stmt) -> Any:
        with self._conn() as conn:
            return conn.execute(stmt).scalar_one()

    # --- writing

    def append(self, events: pl.DataFrame, *, batch_id: int, now: datetime) -> int:
        if not events.height:
            return 0
        if isinstance(self.bind, Engine):
            with self.bind.begin() as conn:
                return insert_events(conn, events, batch_id, now)
        conn = self.bind.connection() if isinstance(self.bind, Session) else self.bind
        return insert_events(conn, events, batch_id, now)

    def existing_keys(self, keys: Sequence[str]) -> dict[str, int]:
        wanted = sorted(set(keys))
        out: dict[str, int] = {}
        for start in range(0, len(wanted), ID_CHUNK):
            stmt = select(Event.event_key, Event.id).where(Event.event_key.in_(wanted[start:start + ID_CHUNK]))
            out.update((k, i) for k, i in self._rows(stmt))
        return out

    def rewrite_match(self, changes: pl.DataFrame) -> int:
        if not changes.height:
            return 0
        # Bound names differ from the column names: SQLAlchemy keeps those for the SET clause.
        stmt = update(Event.__table__).where(Event.__table__.c.id == bindparam("the_id")).values(
            {c: bindparam(f"new_{c}") for c in MATCH_COLUMNS})
        rows = changes.select([pl.col("id").alias("the_id"),
                               *(pl.col(c).alias(f"new_{c}") for c in MATCH_COLUMNS)]).to_dicts()
        if isinstance(self.bind, Engine):  # a write: not on the read-only engine _conn() gives
            with self.bind.begin() as conn:
                conn.execute(stmt, rows)
        else:
            self.bind.execute(stmt, rows)
        return changes.height

    def compact(self) -> int:
        return 0  # rows and B-tree indexes: the database keeps its own layout

    def drop_days_before(self, cutoff: date, keep_ids: Iterable[int], *, dry_run: bool = False) -> list[DayDrop]:
        midnight = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC)
        old = pl.DataFrame(self._rows(select(Event.id, self._bucket("day")).where(Event.time_source < midnight)),
                           schema={"id": pl.Int64, "day": pl.String}, orient="row")
        held = pl.DataFrame({"id": sorted(set(keep_ids))}, schema={"id": pl.Int64})
        old = old.with_columns(pl.col("id").is_in(held["id"].implode()).alias("held"))
        per_day = old.group_by("day").agg((~pl.col("held")).sum().alias("dropped"),
                                          pl.col("held").sum().alias("kept")).sort("day")
        out = [DayDrop(str(day), int(dropped), int(kept)) for day, dropped, kept in per_day.iter_rows()]
        doomed = old.filter(~pl.col("held"))["id"].to_list()
        if dry_run or not doomed:
            return out
        table = Event.__table__
        if isinstance(self.bind, Engine):
            with self.bind.begin() as conn:
                for start in range(0, len(doomed), ID_CHUNK):
                    conn.execute(table.delete().where(table.c.id.in_(doomed[start:start + ID_CHUNK])))
        else:
            conn = self.bind.connection() if isinstance(self.bind, Session) else self.bind
            for start in range(0, len(doomed), ID_CHUNK):
                conn.execute(table.delete().where(table.c.id.in_(doomed[start:start + ID_CHUNK])))
        return out

    # --- search

    def is_dense(self, principal: Principal, f: EventFilter, *, up_to_id: int | None = None) -> bool:
        """True when more than :data:`COUNT_CAP` events match a filter on an unordered index.

        Then one page is found fastest by reading the time index and skipping non-matching rows;
        with fewer matches, by the filter's index and a sort of at most that many rows. The count
        stops at the cap, so asking costs little (planner statistics cannot be relied on: SQLite
        has none unless ANALYZE ran).
        """
        if not any(f.as_params().get(k) for k in UNORDERED_INDEXED):
            return False
        return not self.count_capped(principal, f, up_to_id=up_to_id)[1]

    def ordered(self, principal: Principal, f: EventFilter, *, limit: int, after: Position | None = None,
                before: Position | None = None, up_to_id: int | None = None,
                dense: bool | None = None, sort: EventSort = BY_TIME) -> list[Row]:
        """Staff read one query on the time index. For other principals the query is the union of
        one small ordered query per organisation (see :func:`_branches`), each built through
        ``db.scope`` like every other read. Another order is one query sorted by its key."""
        if not sort.is_default:
            return self._sorted(principal, f, sort, limit=limit, after=after, before=before, up_to_id=up_to_id)
        order = OLDEST_FIRST if before is not None else NEWEST_FIRST
        keyset = newer_than(before) if before is not None else older_than(after) if after is not None else None
        if dense is None:
            dense = self.is_dense(principal, f, up_to_id=up_to_id)
        stmt = selection(principal, f, *EXPORT_COLUMNS, up_to_id=up_to_id, walk_time=dense)
        if keyset is not None:
            stmt = stmt.where(keyset)
        branches = _branches(principal)
        if branches is None:
            return self._rows(stmt.order_by(*order).limit(limit))
        parts = [select(*stmt.where(branch).order_by(*order).limit(limit).subquery().c) for branch in branches]
        merged = union_all(*parts).subquery()
        direction = (lambda c: c.asc()) if before is not None else (lambda c: c.desc())
        return self._rows(select(*merged.c).order_by(direction(merged.c.time_source), direction(merged.c.id))
                          .limit(limit))

    def _sorted(self, principal: Principal, f: EventFilter, sort: EventSort, *, limit: int,
                after: Position | SortPosition | None, before: Position | SortPosition | None,
                up_to_id: int | None) -> list[Row]:
        """Rows in a ``(key, id)`` order other than newest first: the whole selection ordered by
        the key (only ``time`` has an index in that order), cut at ``limit``."""
        from commonwatch.web.listing import keyset_condition

        key = sort_key(sort.key, postgresql=not self._sqlite)
        descending, value, ident = sort_bounds(sort, after, before)
        columns = (*EXPORT_COLUMNS, Event.source_ip_bin) if sort.key == "source" else EXPORT_COLUMNS
        stmt = selection(principal, f, *columns, up_to_id=up_to_id)
        if ident is not None:
            stmt = stmt.where(keyset_condition(key, Event.id, value, ident, descending=descending))
        order = (key.desc(), Event.id.desc()) if descending else (key.asc(), Event.id.asc())
        return self._rows(stmt.order_by(*order).limit(limit))

    def search_page(self, principal: Principal, f: EventFilter, *, limit: int = DEFAULT_PAGE_SIZE,
                    after: str | None = None, before: str | None = None, count: bool = True,
                    sort: EventSort = BY_TIME) -> Page:
        check_page_request(limit, after, before)
        total, exact = self.count_capped(principal, f) if count else (None, True)
        dense = (not exact) if count and any(f.as_params().get(k) for k in UNORDERED_INDEXED) else None
        return keyset_page(partial(self.ordered, principal, f, dense=dense, sort=sort), limit=limit, after=after,
                           before=before, total=total, exact=exact, sort=sort)

    def count_capped(self, principal: Principal, f: EventFilter, cap: int = COUNT_CAP, *,
                     up_to_id: int | None = None) -> tuple[int, bool]:
        """The inner LIMIT keeps the cost bounded on any selection, however large the table."""
        inner = selection(principal, f, Event.id, up_to_id=up_to_id).limit(cap + 1).subquery()
        n = self._scalar(select(func.count()).select_from(inner))
        return (n, True) if n <= cap else (cap, False)

    def get(self, principal: Principal, event_id: int) -> Row:
        rows = self._rows(scope(select(*EXPORT_COLUMNS).where(Event.id == event_id), principal, Event))
        if not rows:
            raise NotFound("event")
        return rows[0]

    # --- by id and by watermark

    def fetch(self, principal: Principal, ids: Sequence[int], columns: Sequence[str], *,
              newest_first: bool = False, limit: int | None = None) -> pl.DataFrame:
        names = ["id", *(c for c in columns if c != "id")]
        if newest_first and "time_source" not in names:
            names.append("time_source")
        cols = [_raw_column(c, self._sqlite) for c in names]
        wanted = sorted(set(ids))
        if len(wanted) <= ID_CHUNK:
            stmt = scope(select(*cols), principal, Event).where(Event.id.in_(wanted))
        else:
            # One statement for a large selection: the ids as a relation joined to the table.
            wanted_ids = id_relation(self.engine.dialect.name, wanted)
            stmt = scope(select(*cols).select_from(Event).join(
                wanted_ids, Event.id == cast(wanted_ids.c.value, BigInteger)), principal, Event)
        if newest_first:
            stmt = stmt.order_by(*NEWEST_FIRST)
        if limit is not None:
            stmt = stmt.limit(limit)
        frame = _typed(self._rows(stmt), names, self._sqlite)
        if newest_first:
            frame = frame.sort(["time_source", "id"], descending=True)
        frame = frame if limit is None else frame.head(limit)
        return frame.select(["id", *(c for c in columns if c != "id")])

    def scan(self, principal: Principal, columns: Sequence[str], *, after_id: int = 0, limit: int,
             since: datetime | None = None, created_after: datetime | None = None,
             routed: bool = False) -> pl.DataFrame:
        names = ["id", *(c for c in columns if c != "id")]
        stmt = scope(select(*(_raw_column(c, self._sqlite) for c in names)), principal, Event).where(
            Event.id > after_id)
        if since is not None:
            stmt = stmt.where(Event.time_source >= since)
        if created_after is not None:
            stmt = stmt.where(Event.created_at > created_after)
        if routed:
            stmt = stmt.where(or_(Event.org_id.is_not(None), Event.partner_org_id.is_not(None)))
        return _typed(self._rows(stmt.order_by(Event.id).limit(limit)), names, self._sqlite)

    # --- aggregates and streams

    def _bucket(self, name: str) -> ColumnElement:
        """The UTC hour (``YYYY-MM-DDTHH:00``) or day (``YYYY-MM-DD``) of ``time_source`` (stored UTC)."""
        if self._sqlite:
            return (func.strftime("%Y-%m-%dT%H:00", Event.time_source) if name == "hour"
                    else func.date(Event.time_source))
        utc = func.timezone("UTC", Event.time_source)
        return func.to_char(utc, 'YYYY-MM-DD"T"HH24:00') if name == "hour" else cast(utc, Date)

    def counts(self, principal: Principal, by: Sequence[str], *, since: datetime | None = None,
               until: datetime | None = None, f: EventFilter | None = None) -> list[CountRow]:
        check_count_keys(by)
        columns = []
        for name in by:
            if name in BUCKETS:
                columns.append(self._bucket(name).label(name))
            else:
                columns.append(getattr(Event, DIMENSIONS[name]).label(name))
        n = func.count().label("n")
        stmt = selection(principal, f or EventFilter(), *columns, n)
        if since is not None:
            stmt = stmt.where(Event.time_source >= since)
        if until is not None:
            stmt = stmt.where(Event.time_source < until)
        rows = self._rows(stmt.group_by(*columns).order_by(n.desc(), *columns))
        return [CountRow(tuple(str(v) if name in BUCKETS and v is not None else v
                               for name, v in zip(by, r[:-1], strict=True)), int(r[-1])) for r in rows]

    def _mentioning(self, principal: Principal, family: str, values: Sequence[str]) -> Any:
        """``(v, id)`` of the readable events naming one of ``values`` in a column of ``family``;
        UNION (not UNION ALL) so an event naming a value in two columns counts once."""
        branches = [scope(select(getattr(Event, c).label("v"), Event.id.label("id")), principal, Event)
                    .where(getattr(Event, c).in_(values)) for c in MENTION_COLUMNS[family]]
        return (branches[0] if len(branches) == 1 else union(*branches)).subquery()

    def mentions(self, principal: Principal, probes: Sequence[Probe], *, cap: int) -> pl.DataFrame:
        """Counted per value first (one GROUP BY per chunk of values on the column indexes), then
        the ids read only for values with at most ``cap`` events."""
        check_probes(probes, cap)
        counts: dict[str, int] = {}
        pairs: list[tuple[str, int]] = []
        for family in MENTION_COLUMNS:
            values = sorted({p.value for p in probes if p.family == family})
            for start in range(0, len(values), VALUE_CHUNK):
                u = self._mentioning(principal, family, values[start:start + VALUE_CHUNK])
                found = dict(self._rows(select(u.c.v, func.count()).group_by(u.c.v)))
                counts.update(found)
                listed = [v for v, n in found.items() if n <= cap]
                if listed:
                    u = self._mentioning(principal, family, listed)
                    pairs += [(v, i) for v, i in self._rows(select(u.c.v, u.c.id))]
        for p in {p.value: p for p in probes if p.family == "net"}.values():
            inside = scope(select(Event.id), principal, Event).where(Event.source_ip_bin.between(p.first, p.last))
            n = self._scalar(select(func.count()).select_from(inside.subquery()))
            counts[p.value] = n
            if n <= cap:
                pairs += [(p.value, i) for (i,) in self._rows(inside)]
        frame = pl.DataFrame(pairs, schema={"value": pl.String, "id": pl.Int64}, orient="row")
        return mentions_frame(probes, frame, cap, counts)

    def latest_id(self, principal: Principal, f: EventFilter) -> int:
        return self._scalar(selection(principal, f, func.max(Event.id))) or 0

    def iter_rows(self, principal: Principal, f: EventFilter, *, max_rows: int, batch: int = 2000,
                  up_to_id: int | None = None, state: StreamState | None = None) -> Iterator[Row]:
        """Each batch is its own short read on its own connection, so a long export neither holds
        the whole selection in memory nor keeps a transaction (on SQLite: the write lock) open."""
        reader = SqlEventStore(self.engine)
        dense = reader.is_dense(principal, f, up_to_id=up_to_id)
        return keyset_stream(partial(reader.ordered, principal, f, up_to_id=up_to_id, dense=dense),
                             max_rows=max_rows, batch=batch, state=state)

    def iter_frames(self, principal: Principal, f: EventFilter, *, max_rows: int, batch: int = 2000,
                    up_to_id: int | None = None, state: StreamState | None = None) -> Iterator[pl.DataFrame]:
        return frames_of_rows(self.iter_rows(principal, f, max_rows=max_rows, batch=batch, up_to_id=up_to_id,
                                             state=state), batch)


# --- the bulk insert --------------------------------------------------------------------------------------

def _sqlite_rows(events: pl.DataFrame, batch_id: int, now: datetime) -> list[tuple]:
    fmt = "%Y-%m-%d %H:%M:%S.%6f"
    cols = []
    for name, _col in INSERT_COLUMNS:
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


def insert_events(conn: Connection, events: pl.DataFrame, batch_id: int, now: datetime) -> int:
    """Insert events not stored yet; returns how many were new."""
    names = [c for _n, c in INSERT_COLUMNS] + STORE_EXTRA
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
    for name, _col in INSERT_COLUMNS:
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
