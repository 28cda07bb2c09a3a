"""The event store seam: every read and write of stored events goes through :class:`EventStore`.

No module outside this package names the events table. A reader gets ids from its own table
(ledger entries, warnings, incident links) and asks the store for those events' columns; the store
never joins with other tables, so an implementation that is not SQL (columnar segments, ClickHouse)
can stand behind the same interface. Tenancy is applied here, once: every read takes the acting
principal (a constituent sees its organisations' events, a partner what is routed to it, staff all).

:func:`event_store` is the one factory; the setting ``COMMONWATCH_EVENT_STORE`` selects the
implementation (``sql``: the table on SQLite or PostgreSQL, :mod:`commonwatch.events.store.sql`;
``parquet``: :mod:`commonwatch.events.store.parquet`; ``clickhouse``: a ClickHouse cluster or chDB,
:mod:`commonwatch.events.store.clickhouse`).
The contract every implementation meets is ``tests/events/test_store_contract.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any, Protocol

import polars as pl

from commonwatch.access.principal import Principal
from commonwatch.errors import Invalid
from commonwatch.events.schema import FIELDS
from commonwatch.events.search import (
    COUNT_CAP,
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    NEWEST_FIRST,
    RANKS,
    EventFilter,
    EventSort,
    Page,
    Position,
    SortPosition,
    rank_of,
)
from commonwatch.i18n import _

#: The stored columns and their Polars type, as :meth:`EventStore.fetch` and :meth:`EventStore.scan`
#: return them. Integers are Int64 whatever their width; ``extra`` is its JSON text.
COLUMN_TYPES: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    **{f.column: (pl.Int64() if f.dtype in (pl.Int32, pl.Int64) else
                  f.dtype if isinstance(f.dtype, pl.DataType) else f.dtype())
       for f in FIELDS},
    "source_ip_bin": pl.Binary(),
    "batch_id": pl.Int64(),
    "created_at": pl.Datetime("us", "UTC"),
}
#: The columns of a streamed export (:meth:`EventStore.iter_frames`), in this order.
EXPORT_COLUMNS: tuple[str, ...] = ("id", *(f.column for f in FIELDS))
#: The columns ``events rematch`` may rewrite (enrichment, match and classification outcomes).
MATCH_COLUMNS: tuple[str, ...] = (
    "source_asn", "source_as_name", "source_cc", "org_id", "partner_org_id", "constituent_sector",
    "constituent_cii", "severity", "gbt_category", "classification_taxonomy")
#: Dimensions :meth:`EventStore.counts` groups by (besides the time buckets ``hour`` and ``day``).
DIMENSIONS: dict[str, str] = {
    "type": "classification_type",
    "taxonomy": "classification_taxonomy",
    "severity": "severity",
    "org": "org_id",
    "partner": "partner_org_id",
    "feed": "feed_name",
    "country": "source_cc",
    "sector": "constituent_sector",
    "tlp": "tlp",
    "asn": "source_asn",
}
BUCKETS: tuple[str, ...] = ("hour", "day")
#: Ids per request when fetching by id: well under SQLite's and PostgreSQL's parameter limits.
ID_CHUNK = 5000
#: The event columns a value of each family is looked for in by :meth:`EventStore.mentions`;
#: the family ``net`` (a CIDR) is looked for as a range of ``source_ip_bin``.
MENTION_COLUMNS: dict[str, tuple[str, ...]] = {
    "ip": ("source_ip", "destination_ip"),
    "domain": ("source_fqdn", "destination_fqdn", "source_reverse_dns"),
    "url": ("source_url",),
}
MENTION_FAMILIES: tuple[str, ...] = (*MENTION_COLUMNS, "net")
#: What :meth:`EventStore.mentions` returns: one row per value asked about.
MENTION_SCHEMA: dict[str, pl.DataType] = {"value": pl.String(), "events": pl.Int64(), "ids": pl.List(pl.Int64())}
#: Values per SQL statement when looking for mentions.
VALUE_CHUNK = 500
#: Up to this many values of a family are looked for with a filter rather than a join.
SMALL_PROBE = 1000


@dataclass(frozen=True)
class CountRow:
    key: tuple[Any, ...]  # one value per dimension asked for, in that order
    count: int


@dataclass(frozen=True)
class DayDrop:
    """What retention did to one UTC day: events dropped and events kept (legal holds)."""

    day: str  # YYYY-MM-DD
    dropped: int
    kept: int


@dataclass
class StreamState:
    """What a stream has done so far (for the audit record and the CLI summary)."""

    rows: int = 0
    batches: int = 0


@dataclass(frozen=True)
class Probe:
    """A value to look for in the events: its normalised text and family (``ip``, ``domain``,
    ``url``: equal to one of :data:`MENTION_COLUMNS`; ``net``: ``source_ip_bin`` in
    ``[first, last]``, the 16-byte keys of :mod:`commonwatch.net`)."""

    value: str
    family: str
    first: bytes | None = None
    last: bytes | None = None


class EventStore(Protocol):
    """What every event store offers. Rows of :meth:`ordered`, :meth:`iter_rows` and :meth:`get` have
    the attributes ``id`` and each :data:`schema.FIELDS` column (``extra`` as a dict)."""

    name: str

    # --- writing
    def append(self, events: pl.DataFrame, *, batch_id: int, now: datetime) -> int:
        """Store a processed batch (harmonisation-named columns plus ``source.ip_bin``); an
        ``event.key`` already stored is skipped. Returns how many were new."""
        ...

    def existing_keys(self, keys: Sequence[str]) -> dict[str, int]:
        """The stored event id of each of ``keys`` that is stored."""
        ...

    def rewrite_match(self, changes: pl.DataFrame) -> int:
        """Set :data:`MATCH_COLUMNS` of the events in ``changes`` (columns ``id`` and those)."""
        ...

    def drop_days_before(self, cutoff: date, keep_ids: Iterable[int], *, dry_run: bool = False) -> list[DayDrop]:
        """Drop the events of every UTC day before ``cutoff`` except those in ``keep_ids`` (legal
        holds); per day what went and what stayed, oldest first. ``dry_run`` changes nothing."""
        ...

    def compact(self) -> int:
        """Merge small storage units written by many small batches into larger ones, with no
        reader seeing an event twice or missing one; returns how many units were merged (0 where
        the engine keeps its own layout, as SQL does)."""
        ...

    # --- reading, always under the principal's tenancy
    def search_page(self, principal: Principal, f: EventFilter, *, limit: int = DEFAULT_PAGE_SIZE,
                    after: str | None = None, before: str | None = None, count: bool = True,
                    sort: EventSort = NEWEST_FIRST) -> Page:
        """One page in the order ``sort`` (newest first by default), after the ``after`` cursor or
        before the ``before`` one. Every store gives the same rows in the same order."""
        ...

    def ordered(self, principal: Principal, f: EventFilter, *, limit: int, after: Position | None = None,
                before: Position | None = None, up_to_id: int | None = None,
                dense: bool | None = None, sort: EventSort = NEWEST_FIRST) -> list[Any]:
        """Up to ``limit`` rows newest first after ``after`` (oldest first after ``before``); with
        ``sort``, in its ``(key, id)`` order after ``after`` (reversed before ``before``), the
        positions being :class:`SortPosition` for a key other than time. Rows sorted by
        ``source`` carry ``source_ip_bin``."""
        ...

    def count_capped(self, principal: Principal, f: EventFilter, cap: int = COUNT_CAP, *,
                     up_to_id: int | None = None) -> tuple[int, bool]:
        """``(n, True)`` when ``n <= cap`` events match, else ``(cap, False)``."""
        ...

    def get(self, principal: Principal, event_id: int) -> Any:
        """One event the principal may read, else :class:`NotFound`."""
        ...

    def fetch(self, principal: Principal, ids: Sequence[int], columns: Sequence[str], *,
              newest_first: bool = False, limit: int | None = None) -> pl.DataFrame:
        """The events among ``ids`` the principal may read, with ``id`` and ``columns``."""
        ...

    def scan(self, principal: Principal, columns: Sequence[str], *, after_id: int = 0, limit: int,
             since: datetime | None = None, created_after: datetime | None = None,
             routed: bool = False) -> pl.DataFrame:
        """Events with ``id > after_id`` in id order (at most ``limit``): a watermark walk for the
        planner, promotion and rematch. ``since`` bounds ``time_source``, ``created_after`` the
        storage time; ``routed`` keeps events matched to an organisation or a partner."""
        ...

    def counts(self, principal: Principal, by: Sequence[str], *, since: datetime | None = None,
               until: datetime | None = None, f: EventFilter | None = None) -> list[CountRow]:
        """Events in ``[since, until)`` counted per combination of ``by``, largest first."""
        ...

    def mentions(self, principal: Principal, probes: Sequence[Probe], *, cap: int) -> pl.DataFrame:
        """For each probe, the events the principal may read that mention it (:data:`MENTION_SCHEMA`):
        ``events`` how many (each event once), ``ids`` all their ids, highest first, when there are
        at most ``cap`` of them, else empty (a common value is counted, not listed)."""
        ...

    def latest_id(self, principal: Principal, f: EventFilter) -> int:
        """The highest id in a selection (0 if empty): freezes it for a count and a stream."""
        ...

    def iter_rows(self, principal: Principal, f: EventFilter, *, max_rows: int, batch: int = 2000,
                  up_to_id: int | None = None, state: StreamState | None = None) -> Iterator[Any]:
        """Every matching row newest first, read in short batches (an export)."""
        ...

    def iter_frames(self, principal: Principal, f: EventFilter, *, max_rows: int, batch: int = 2000,
                    up_to_id: int | None = None, state: StreamState | None = None) -> Iterator[pl.DataFrame]:
        """What :meth:`iter_rows` streams, as frames of at most ``batch`` rows with the columns
        :data:`EXPORT_COLUMNS` typed as :data:`COLUMN_TYPES` (``extra`` as its JSON text): for
        exports rendered column by column."""
        ...


_IMPLEMENTATIONS = ("sql", "parquet", "clickhouse")


def event_store(bind: Any, kind: str | None = None, settings: Any = None) -> EventStore:
    """The configured event store, bound to ``bind`` (a Session, Connection or Engine).

    ``kind`` overrides the setting ``COMMONWATCH_EVENT_STORE`` (tests use it to run the contract
    on each implementation); ``settings`` those of the process (a CLI runtime's own).
    """
    from commonwatch.config import get_settings

    settings = settings or get_settings()
    kind = settings.event_store if kind is None else kind
    if kind == "sql":
        from commonwatch.events.store.sql import SqlEventStore

        return SqlEventStore(bind)
    if kind == "parquet":
        from commonwatch.events.store.parquet import opened

        return opened(settings.event_store_dir or settings.data_dir / "events", dedup_days=settings.event_dedup_days)
    if kind == "clickhouse":
        from commonwatch.events.store.clickhouse import opened as clickhouse

        return clickhouse(bind, settings)
    raise Invalid("event_store", _("“{value}” is not one of: {choices}").format(
        value=kind, choices=", ".join(_IMPLEMENTATIONS)))


def batch_from_rows(rows: Sequence[dict[str, Any]]) -> pl.DataFrame:
    """Events given as dicts keyed by column (``source_ip``, ``extra`` as a dict) as a batch for
    :meth:`EventStore.append`: harmonisation names, ``extra`` as JSON text, ``source.ip_bin`` filled
    in from ``source.ip`` when absent. For the few events of demos and tests, not for feeds."""
    import json

    from commonwatch.net import ip_key

    data: dict[str, list[Any]] = {}
    schema: dict[str, Any] = {}
    for f in FIELDS:
        values = [r.get(f.column) for r in rows]
        if f.column == "extra":
            values = [json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else v for v in values]
        data[f.name], schema[f.name] = values, f.dtype
    data["source.ip_bin"] = [r["source_ip_bin"] if r.get("source_ip_bin") is not None
                             else ip_key(r["source_ip"]) if r.get("source_ip") else None for r in rows]
    schema["source.ip_bin"] = pl.Binary
    return pl.DataFrame(data, schema=schema)


def check_count_keys(by: Sequence[str]) -> None:
    """At least one grouping key for :meth:`EventStore.counts`, each a bucket or a dimension
    (checked before any work is done, the same in every store)."""
    choices = ", ".join([*DIMENSIONS, *BUCKETS])
    if not by:
        raise Invalid("by", _("name at least one of: {choices}").format(choices=choices))
    for name in by:
        if name not in BUCKETS and name not in DIMENSIONS:
            raise Invalid("by", _("“{value}” is not one of: {choices}").format(value=name, choices=choices))


def check_probes(probes: Sequence[Probe], cap: int) -> None:
    """Every probe of a known family (a network with its bounds) and a cap of at least 0."""
    for p in probes:
        if p.family not in MENTION_FAMILIES:
            raise Invalid("family", _("“{value}” is not one of: {choices}").format(
                value=p.family, choices=", ".join(MENTION_FAMILIES)))
        if p.family == "net" and (p.first is None or p.last is None):
            raise Invalid("value", _("a network needs its first and last address"))
    if cap < 0:
        raise Invalid("cap", _("must be at least 0"))


def probe_frames(probes: Sequence[Probe]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The exact probes as ``(value, family)`` and the networks as ``(value, f_hi, f_lo, l_hi, l_lo)``
    (each bound split into two unsigned 64-bit halves, so a range test is four integer comparisons)."""
    exact = pl.DataFrame({"value": [p.value for p in probes if p.family != "net"],
                          "family": [p.family for p in probes if p.family != "net"]},
                         schema={"value": pl.String, "family": pl.String}).unique()
    nets = [p for p in probes if p.family == "net"]
    bounds = pl.DataFrame({"value": [p.value for p in nets], "first": [p.first for p in nets],
                           "last": [p.last for p in nets]}, schema={"value": pl.String, "first": pl.Binary,
                                                                    "last": pl.Binary})
    bounds = bounds.select("value", *halves("first", "f"), *halves("last", "l")).unique("value")
    return exact, bounds


def halves(column: str, prefix: str) -> list[pl.Expr]:
    """A 16-byte big-endian key column as its high and low 64-bit halves (``<prefix>_hi``, ``_lo``)."""
    c = pl.col(column)
    return [c.bin.slice(0, 8).bin.reinterpret(dtype=pl.UInt64, endianness="big").alias(f"{prefix}_hi"),
            c.bin.slice(8, 8).bin.reinterpret(dtype=pl.UInt64, endianness="big").alias(f"{prefix}_lo")]


def mention_pairs(events: pl.LazyFrame, probes: Sequence[Probe], *, streaming: bool = True) -> pl.DataFrame:
    """``(value, id)`` for every event of ``events`` (already limited to what the reader may see)
    that mentions a probe: one hash join per column and family, one interval join for networks.
    Works on whole columns (a columnar store, the benchmark); nothing loops per event."""
    exact, nets = probe_frames(probes)
    engine = "streaming" if streaming else "auto"
    parts: list[pl.LazyFrame] = []
    for family, columns in MENTION_COLUMNS.items():
        values = exact.filter(pl.col("family") == family).select("value").lazy()
        if not values.collect().height:
            continue
        few = values.collect()["value"]
        if few.len() <= SMALL_PROBE:  # a page's few values: one filtering pass over the family's columns
            wanted = few.implode()
            hit = events.filter(pl.any_horizontal([pl.col(c).is_in(wanted) for c in columns])).select(
                "id", *columns).collect(engine=engine)
            parts += [hit.lazy().filter(pl.col(c).is_in(wanted)).select(pl.col(c).alias("value"), "id")
                      for c in columns]
            continue
        for column in columns:
            parts.append(events.select(pl.col(column).alias("value"), "id").join(values, on="value", how="inner"))
    out = [pl.concat(parts).collect(engine=engine)] if parts else []
    if nets.height:
        addresses = (events.select("id", "source_ip_bin")
                     .filter(pl.col("source_ip_bin").is_not_null() & (pl.col("source_ip_bin").bin.size() == 16))
                     .select("id", *halves("source_ip_bin", "a")).collect(engine=engine))
        # Network bounds are aligned, so (hi, lo) inside [first, last] is four independent inequalities.
        out.append(addresses.join_where(nets, pl.col("a_hi") >= pl.col("f_hi"), pl.col("a_hi") <= pl.col("l_hi"),
                                        pl.col("a_lo") >= pl.col("f_lo"), pl.col("a_lo") <= pl.col("l_lo"))
                   .select("value", "id"))
    if not out:
        return pl.DataFrame(schema={"value": pl.String, "id": pl.Int64})
    return pl.concat(out).unique()


def mentions_frame(probes: Sequence[Probe], pairs: pl.DataFrame, cap: int,
                   counts: dict[str, int] | None = None) -> pl.DataFrame:
    """The answer of :meth:`EventStore.mentions` from ``(value, id)`` pairs (each event once per
    value): every probe's value, its count, and its ids highest first when at most ``cap``.
    ``counts`` gives the count of values whose pairs were not all read (common ones)."""
    values = pl.DataFrame({"value": sorted({p.value for p in probes})}, schema={"value": pl.String})
    grouped = pairs.unique().group_by("value").agg(pl.len().cast(pl.Int64).alias("n"),
                                                  pl.col("id").sort(descending=True).alias("all_ids"))
    out = values.join(grouped, on="value", how="left")
    if counts:
        known = pl.DataFrame({"value": list(counts), "known": list(counts.values())},
                             schema={"value": pl.String, "known": pl.Int64})
        out = out.join(known, on="value", how="left").with_columns(
            pl.coalesce("known", "n").alias("n")).drop("known")
    out = out.with_columns(pl.col("n").fill_null(0).alias("events"))
    return out.select(
        "value", "events",
        pl.when(pl.col("events") <= cap).then(pl.col("all_ids").fill_null(pl.lit([], pl.List(pl.Int64))))
        .otherwise(pl.lit([], pl.List(pl.Int64))).alias("ids")).sort("value")


def check_page_request(limit: int, after: str | None, before: str | None) -> None:
    """A page size in range and at most one cursor (checked before any work is done)."""
    if after and before:
        raise Invalid("before", _("give either “cursor” or “before”, not both"))
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise Invalid("limit", _("must be between 1 and {max}").format(max=MAX_PAGE_SIZE))


def sort_value(key: str, row: Any) -> Any:
    """A row's value in the ``key`` order, as every store compares it (see
    :data:`search.SORT_COLUMNS`): what a cursor records of the last row shown."""
    from commonwatch.events.search import NUMBER_KEYS, SORT_COLUMNS

    value = getattr(row, SORT_COLUMNS[key])
    if key == "time":
        return value
    if key in RANKS:
        return rank_of(key, value)
    if key == "source":
        return bytes(value) if value is not None else b""
    if key in NUMBER_KEYS:
        return int(value) if value is not None else 0
    return value if value is not None else ""


def sort_position(sort: EventSort, row: Any) -> Position | SortPosition:
    """The position of ``row`` in the order ``sort``."""
    if sort.key == "time":
        return Position(row.time_source, row.id)
    return SortPosition(sort.key, sort_value(sort.key, row), row.id)


def sort_bounds(sort: EventSort, after: Position | SortPosition | None,
                before: Position | SortPosition | None) -> tuple[bool, Any, int | None]:
    """For a store's ``ordered`` in a sorted walk: whether rows are read largest first, and the
    value and id of the position they continue from (None, None for the first page)."""
    descending = sort.descending if before is None else not sort.descending
    pos = after if after is not None else before
    if pos is None:
        return descending, None, None
    return descending, (pos.time_source if isinstance(pos, Position) else pos.value), pos.id


def keyset_page(ordered: Callable[..., list[Any]], *, limit: int, after: str | None, before: str | None,
                total: int | None, exact: bool, sort: EventSort = NEWEST_FIRST) -> Page:
    """One page of a keyset walk in the order ``sort``, from a store's ``ordered(limit=, after=|before=)``.

    The checks and the cursors are the same for every implementation; only ``ordered`` differs.
    The walk is the one every list uses (:func:`commonwatch.web.listing.walk_page`)."""
    from commonwatch.web.listing import walk_page

    check_page_request(limit, after, before)
    walked = walk_page(ordered, lambda row: sort_position(sort, row).encode(), limit=limit,
                       after=sort.decode(after, "cursor") if after else None,
                       before=sort.decode(before, "before") if before else None, total=total, exact=exact)
    return Page(walked.items, next_cursor=walked.next_cursor, prev_cursor=walked.prev_cursor, total=total,
                total_exact=exact, limit=limit)


def keyset_stream(ordered: Callable[..., list[Any]], *, max_rows: int, batch: int,
                  state: StreamState | None = None) -> Iterator[Any]:
    """Every row of a newest-first walk, read ``batch`` rows at a time from a store's
    ``ordered(limit=, after=)``, at most ``max_rows``; ``state`` counts rows and batches."""
    state = state if state is not None else StreamState()
    last: Position | None = None
    while state.rows < max_rows:
        size = min(batch, max_rows - state.rows)
        rows = ordered(limit=size, after=last)
        if not rows:
            return
        state.batches += 1
        state.rows += len(rows)
        last = Position(rows[-1].time_source, rows[-1].id)
        yield from rows
        if len(rows) < size:
            return


def frames_of_rows(rows: Iterable[Any], batch: int) -> Iterator[pl.DataFrame]:
    """Rows of a row-wise store (attributes named by column, ``extra`` a dict) as the frames of
    :meth:`EventStore.iter_frames`, ``batch`` rows each."""
    import json

    schema = {name: COLUMN_TYPES[name] for name in EXPORT_COLUMNS}
    chunk: list[Any] = []

    def frame() -> pl.DataFrame:
        columns = {name: [getattr(r, name) for r in chunk] for name in EXPORT_COLUMNS}
        columns["extra"] = [v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False, sort_keys=True)
                            for v in columns["extra"]]
        return pl.DataFrame(columns, schema=schema)

    for row in rows:
        chunk.append(row)
        if len(chunk) >= batch:
            yield frame()
            chunk = []
    if chunk:
        yield frame()


def records(frame: pl.DataFrame) -> list[SimpleNamespace]:
    """The rows of a fetched frame as objects with one attribute per column (for templates and
    response models that read ``e.source_ip``)."""
    return [SimpleNamespace(**row) for row in frame.iter_rows(named=True)]
