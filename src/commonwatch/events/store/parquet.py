"""The event store as immutable Apache Parquet segments, read with Polars (predicate pushdown).

Layout of the store's folder (``event_store_dir``, by default ``<data dir>/events``)::

    manifest.json               the committed state: next id, generation, the live segments
    writer.lock                 one writer at a time (flock); readers never take it
    segments/<day>/<gen>-<n>.parquet
                                events of one UTC day, sorted by (time_source, id)

A segment is written under a temporary name, flushed to disk and renamed; then a new manifest is
written the same way. The manifest's rename is the commit: a reader lists only the segments the
manifest names, so a half-written segment is never read, and readers (the web server, the CLI,
workers: any number of processes) never wait for the writer. Segments are never changed in place:
``rewrite_match`` writes replacements and commits them in one manifest, so a reader sees the old
set or the new one, never an event twice or missing. Files a manifest no longer names are deleted
by a later writer once :data:`RETIRE_SECONDS` have passed (a reader holding an older manifest can
finish), and files no manifest ever named (a writer killed mid-write) are deleted likewise.

Exact deduplication by ``event_key`` checks a batch against the keys of every committed segment
of the days within ``dedup_days`` of the batch's times (an event key names the time window of its
observation, so an equal key lies there; the ClickHouse store's check is the same), held in memory
by the writing process (loaded from those segments, extended by each append), so it holds across
restarts and crashes: the segments are the record. The keys are held as fingerprints in sorted
arrays (:mod:`commonwatch.events.store.key_index`), so a batch's check does not grow with the store,
and each segment's fingerprints lie sorted in a key file beside it (checked before use, rebuilt
from the segment when missing, damaged or stale), so loading them does not hash the keys again.
"""

from __future__ import annotations

import bisect
import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl

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
    EXPORT_COLUMNS,
    MATCH_COLUMNS,
    CountRow,
    DayDrop,
    Probe,
    StreamState,
    check_count_keys,
    check_page_request,
    check_probes,
    key_index,
    keyset_page,
    mentions_frame,
    sort_bounds,
    value_index,
)
from commonwatch.events.store.key_index import KeyIndex, Span
from commonwatch.i18n import _
from commonwatch.net import network_bounds

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
#: How long a file the manifest no longer names is kept for readers that still hold an older one.
RETIRE_SECONDS = 120.0
#: Rows per Parquet row group: small enough that statistics prune most of a segment for a filter.
ROW_GROUP_ROWS = 64 * 1024
# zstd levels: an ingest's segments live only until compaction, so they are written at the fastest
# level (about 15% off each write on the ingest's store thread); compaction re-encodes a day densely.
INGEST_ZSTD_LEVEL = 1
COMPACT_ZSTD_LEVEL = 3
#: Compaction merges a day's segments smaller than this into ones of up to this many rows.
COMPACT_ROWS = 2_000_000
COLUMNS: tuple[str, ...] = tuple(COLUMN_TYPES)
#: Harmonisation name -> stored column, for a batch as the pipeline hands it over.
RENAME: dict[str, str] = {**{f.name: f.column for f in FIELDS}, "source.ip_bin": "source_ip_bin"}
SCHEMA = pl.Schema(COLUMN_TYPES)
#: Days either side of a batch's times whose stored keys its dedup check reads (``event_dedup_days``).
DEDUP_DAYS = 7
#: Internal columns of a batch being written: each key's fingerprints (see ``key_index``).
HASH_COLUMNS = ("_key_hi", "_key_lo")
#: Microseconds in each time bucket of :meth:`ParquetEventStore.counts`.
BUCKET_MICROS: dict[str, int] = {"hour": 3_600_000_000, "day": 86_400_000_000}


@dataclass
class Manifest:
    generation: int = 0
    next_id: int = 1
    #: Each live segment: file (relative), rows, min_id, max_id, min_time, max_time (ISO, UTC).
    segments: list[dict[str, Any]] = field(default_factory=list)
    #: Files no longer live: [file, unix time retired].
    retired: list[list[Any]] = field(default_factory=list)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_durably(tmp: Path, final: Path) -> None:
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    _fsync_dir(final.parent)


def storage_error(folder: Path, exc: Exception) -> Invalid:
    """A write the folder refused (full disk, read-only, permissions), named with the folder."""
    return Invalid("event_store_dir", _("cannot write events to {folder}: {reason}").format(
        folder=folder, reason=getattr(exc, "strerror", None) or exc))


@contextmanager
def _written(tmp: Path, final: Path) -> Iterator[Path]:
    """Write ``tmp``, then make it ``final`` durably; on any failure nothing is left behind.
    (Polars reports a full disk as a ComputeError, not an OSError.)"""
    try:
        yield tmp
        _replace_durably(tmp, final)
    except (OSError, pl.exceptions.PolarsError) as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(getattr(exc, "errno", None), getattr(exc, "strerror", None) or str(exc)) from None


# --- filters as Polars expressions -------------------------------------------------------------------

def visible_to(principal: Principal) -> pl.Expr:
    """The tenancy condition: staff all, others their organisations' events and those routed to them."""
    if principal.sees_all_tenants:
        return pl.lit(True)
    if not principal.org_ids:
        return pl.lit(False)
    ids = sorted(principal.org_ids)
    return (pl.col("org_id").is_in(ids) | pl.col("partner_org_id").is_in(ids)).fill_null(False)


def filter_expr(f: EventFilter) -> pl.Expr:
    """The conditions of a filter, as the SQL store's ``conditions`` states them."""
    c = pl.col
    out: list[pl.Expr] = []
    if f.time_from is not None:
        out.append(c("time_source") >= f.time_from)
    if f.time_to is not None:
        out.append(c("time_source") < f.time_to)
    if f.unmatched:
        out.append(c("org_id").is_null())
    elif f.org_id is not None:
        out.append(c("org_id") == f.org_id)
    if f.sector is not None:
        out.append(c("constituent_sector") == f.sector)
    if f.cii is not None:
        out.append(c("constituent_cii") == f.cii)
    if f.classification_type is not None:
        out.append(c("classification_type") == f.classification_type)
    if f.classification_taxonomy is not None:
        out.append(c("classification_taxonomy") == f.classification_taxonomy)
    if f.feed_name is not None:
        out.append(c("feed_name").str.starts_with(f.feed_name[:-1]) if f.feed_name.endswith("*")
                   else c("feed_name") == f.feed_name)
    if f.network is not None:
        low, high = network_bounds(f.network)
        out.append((c("source_ip_bin") >= pl.lit(low, pl.Binary)) & (c("source_ip_bin") <= pl.lit(high, pl.Binary)))
    if f.asn is not None:
        out.append(c("source_asn") == f.asn)
    if f.country is not None:
        out.append(c("source_cc") == f.country)
    if f.severity is not None:
        out.append(c("severity") == f.severity)
    if f.min_severity is not None:
        out.append(c("severity").is_in(list(SEVERITIES[SEVERITIES.index(f.min_severity):])))
    if f.tlp is not None:
        out.append(c("tlp") == f.tlp)
    return pl.all_horizontal(out).fill_null(False) if out else pl.lit(True)


def older_than(pos: Position) -> pl.Expr:
    t = pl.lit(pos.time_source).dt.cast_time_unit("us")
    return (pl.col("time_source") < t) | ((pl.col("time_source") == t) & (pl.col("id") < pos.id))


def newer_than(pos: Position) -> pl.Expr:
    t = pl.lit(pos.time_source).dt.cast_time_unit("us")
    return (pl.col("time_source") > t) | ((pl.col("time_source") == t) & (pl.col("id") > pos.id))


def sort_expr(key: str) -> pl.Expr:
    """The ``key`` order's value, never null, as the SQL store's ``sort_key`` computes it."""
    c = pl.col(SORT_COLUMNS[key])
    if key == "time":
        return c
    if key in RANKS:
        ranks = {label: i + 1 for i, label in enumerate(RANKS[key])}
        return c.replace_strict(ranks, default=0, return_dtype=pl.Int64).fill_null(0)
    if key == "source":
        return c.fill_null(pl.lit(b"", pl.Binary))
    if key in NUMBER_KEYS:
        return c.cast(pl.Int64).fill_null(0)
    return c.fill_null("")


def past(key: str, value: Any, ident: int, *, descending: bool) -> pl.Expr:
    """Rows strictly past ``(value, ident)`` in the ``(key, id)`` order."""
    v = pl.col("_sort")
    lit = (pl.lit(value).dt.cast_time_unit("us") if key == "time"
           else pl.lit(value, pl.Binary) if key == "source" else pl.lit(value))
    if descending:
        return (v < lit) | ((v == lit) & (pl.col("id") < ident))
    return (v > lit) | ((v == lit) & (pl.col("id") > ident))


def as_records(frame: pl.DataFrame) -> list[SimpleNamespace]:
    """Rows as objects with one attribute per column, ``extra`` as a dict (as the SQL store's rows)."""
    out = []
    for row in frame.iter_rows(named=True):
        if "extra" in row:
            row["extra"] = json.loads(row["extra"]) if row["extra"] else None
        out.append(SimpleNamespace(**row))
    return out


def segments_holding(segments: list[dict[str, Any]], ids: list[int]) -> list[dict[str, Any]]:
    """The segments whose id range holds one of ``ids`` (sorted): a page's few events scattered over
    a year of daily segments open those few files, not every file between the lowest and highest id."""
    return [s for s in segments if (i := bisect.bisect_left(ids, s["min_id"])) < len(ids) and ids[i] <= s["max_id"]]


def companions(segment_file: str) -> tuple[str, ...]:
    """The files that live and go with a segment: its value index and its key file."""
    return value_index.companion(segment_file), key_index.companion(segment_file)


def segment_day(segment: dict[str, Any]) -> str:
    """A segment's UTC day, as its folder names it."""
    return segment["file"].split("/")[1]


def dedup_span(times: pl.Series, days: int) -> Span:
    """The days (ISO, inclusive) whose stored keys a batch of ``times`` is checked against; None
    (every day) when a time is missing."""
    if not len(times) or times.null_count():
        return None
    return _utc_day(times.min() - timedelta(days=days)), _utc_day(times.max() + timedelta(days=days))


def _utc_day(at: datetime) -> str:
    """``at``'s UTC day, ISO; a time without a zone is UTC, as the store casts it."""
    return (at.astimezone(UTC) if at.tzinfo else at).date().isoformat()


def _position(row: Any) -> Position:
    return Position(row.time_source, row.id)


# --- the writer's key index, one per store folder in this process -----------------------------------------

_INDEXES: dict[Path, tuple[int, KeyIndex]] = {}
_INDEX_LOCK = threading.Lock()


def _forget_index(location: Path) -> None:
    with _INDEX_LOCK:
        _INDEXES.pop(location.resolve(), None)


def _carry_index(location: Path, before: int, after: int) -> None:
    """A commit that kept every key (compaction, rewrite): the cached index stays valid."""
    with _INDEX_LOCK:
        cached = _INDEXES.get(location.resolve())
        if cached is not None and cached[0] == before:
            _INDEXES[location.resolve()] = (after, cached[1])


# --- what readers ask of each segment again and again, kept per process ---------------------------------
#
# A segment never changes (a rewrite writes a new file under a new name), so what a read found in
# one stays true while the file lives: its count for a viewer's filter, its newest rows. A page
# then reads only the segments written since (an ingest's newest), not every segment at every
# request. Entries are keyed by the segment's path; a retired file's entries age out of the LRU.

#: Entries kept (each a count or at most a page of rows of one segment).
SEGMENT_MEMO_ENTRIES = 20_000
#: Segments of at most this many rows are held in memory as one frame (see ``_lazy_held``) while
#: they hold at most HELD_ROWS rows in all (tens of MB a process); compaction merges small
#: segments into large ones.
SMALL_SEGMENT_ROWS = 2_000
HELD_ROWS = 200_000
#: store folder -> (the small segments' paths, their rows as one frame)
_HELD: dict[Path, tuple[tuple[str, ...], pl.DataFrame, Any]] = {}
_SEGMENT_MEMO: OrderedDict[tuple, Any] = OrderedDict()
_MEMO_LOCK = threading.Lock()


def _memo_get(key: tuple) -> Any:
    with _MEMO_LOCK:
        value = _SEGMENT_MEMO.get(key)
        if value is not None:
            _SEGMENT_MEMO.move_to_end(key)
        return value


def _memo_put(key: tuple, value: Any) -> None:
    with _MEMO_LOCK:
        _SEGMENT_MEMO[key] = value
        _SEGMENT_MEMO.move_to_end(key)
        while len(_SEGMENT_MEMO) > SEGMENT_MEMO_ENTRIES:
            _SEGMENT_MEMO.popitem(last=False)


def viewer_key(principal: Principal) -> tuple:
    """What :func:`visible_to` depends on, as a key: staff see all; others their organisations."""
    return ("all",) if principal.sees_all_tenants else ("orgs", *sorted(principal.org_ids))


class ParquetEventStore:
    """:class:`~commonwatch.events.store.EventStore` on Parquet segments in ``location``."""

    name = "parquet"

    def __init__(self, location: Path | str, *, dedup_days: int = DEDUP_DAYS):
        self.location = Path(location)
        self.dedup_days = dedup_days

    # --- the manifest

    def manifest(self) -> Manifest:
        path = self.location / MANIFEST
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return Manifest()
        return Manifest(data["generation"], data["next_id"], data["segments"], data.get("retired", []))

    def read_manifest(self) -> Manifest:
        """The manifest for a reader, parsed again only when the file's bytes changed (a stat is
        not enough: an inode number can be reused and mtimes are coarse). Not for writers, which
        change what they are given."""
        path = self.location / MANIFEST
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return Manifest()
        held = _READ_MANIFESTS.get(path)
        if held is not None and held[0] == raw:
            return held[1]
        data = json.loads(raw)
        m = Manifest(data["generation"], data["next_id"], data["segments"], data.get("retired", []))
        _READ_MANIFESTS[path] = (raw, m)
        return m

    def _commit(self, m: Manifest) -> None:
        m.generation += 1
        with _written(self.location / f".{MANIFEST}.{uuid.uuid4().hex}", self.location / MANIFEST) as tmp:
            tmp.write_text(json.dumps({"generation": m.generation, "next_id": m.next_id, "segments": m.segments,
                                       "retired": m.retired}))

    @contextmanager
    def _writing(self) -> Iterator[Manifest]:
        """The manifest under the writer lock; unnamed files are cleaned first."""
        try:
            (self.location / "segments").mkdir(parents=True, exist_ok=True)
            lock = open(self.location / "writer.lock", "a+b")  # noqa: SIM115 - held for the block
        except OSError as exc:
            raise storage_error(self.location, exc) from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            m = self.manifest()
            self._collect_garbage(m)
            try:
                yield m
            except OSError as exc:
                raise storage_error(self.location, exc) from None

    def _collect_garbage(self, m: Manifest) -> None:
        live = {s["file"] for s in m.segments}
        now = time.time()
        keep = []
        for name, at in m.retired:
            if now - at >= RETIRE_SECONDS:
                for file in (name, *companions(name)):
                    (self.location / file).unlink(missing_ok=True)
            else:
                keep.append([name, at])
        m.retired = keep
        known = live | {name for name, _at in keep}
        known |= {c for name in known for c in companions(name)}  # a segment's indexes go with it
        for path in (self.location / "segments").rglob("*"):
            rel = str(path.relative_to(self.location))
            # A writer killed before its manifest: its files were never read; remove them.
            if path.is_file() and rel not in known and now - path.stat().st_mtime >= RETIRE_SECONDS:
                path.unlink(missing_ok=True)

    def _write_segments(self, m: Manifest, frame: pl.DataFrame,
                        level: int = INGEST_ZSTD_LEVEL) -> list[dict[str, Any]]:
        """One segment per UTC day of ``frame``, each sorted by (time_source, id); not yet committed."""
        out: list[dict[str, Any]] = []
        try:
            return self._write_days(m, frame, out, level)
        except OSError:  # nothing of this call is committed: its files go now, not after RETIRE_SECONDS
            for seg in out:
                for file in (seg["file"], *companions(seg["file"])):
                    (self.location / file).unlink(missing_ok=True)
            raise

    def _write_days(self, m: Manifest, frame: pl.DataFrame, out: list[dict[str, Any]],
                    level: int) -> list[dict[str, Any]]:
        days = frame.with_columns(pl.col("time_source").dt.strftime("%Y-%m-%d").alias("_day"))
        for (day,), part in days.group_by(["_day"], maintain_order=True):
            part = part.drop("_day").sort(["time_source", "id"])
            # The keys' fingerprints: computed by the dedup check for an append, else here.
            run = key_index.sorted_run(*((part[c].to_numpy() for c in HASH_COLUMNS) if HASH_COLUMNS[0] in part.columns
                                          else key_index.fingerprints(part["event_key"])))
            part = part.drop(HASH_COLUMNS, strict=False)
            folder = self.location / "segments" / str(day)
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{m.generation + 1:010d}-{uuid.uuid4().hex[:12]}.parquet"
            with _written(folder / f".{name}.tmp", folder / name) as tmp:
                part.write_parquet(tmp, compression="zstd", compression_level=level, statistics=True,
                                   row_group_size=ROW_GROUP_ROWS)
            value_index.write(folder / name, part, _written)  # its value index, before the commit
            try:
                key_index.write(folder / name, run, _written)  # and its key file
            except OSError:
                for file in (name, *companions(name)):
                    (folder / file).unlink(missing_ok=True)
                raise
            out.append({"file": f"segments/{day}/{name}", "rows": part.height,
                        "min_id": int(part["id"].min()), "max_id": int(part["id"].max()),
                        "min_time": part["time_source"].min().isoformat(),
                        "max_time": part["time_source"].max().isoformat()})
        return out

    # --- upkeep

    def compact(self) -> int:
        """Merge each day's small segments into larger ones; returns how many segments went.

        The merged segment replaces its parts in one manifest commit, so a reader sees either the
        parts or the whole, never both and never neither."""
        merged = 0
        with self._writing() as m:
            by_day: dict[str, list[dict[str, Any]]] = {}
            for seg in m.segments:
                if seg["rows"] < COMPACT_ROWS:
                    by_day.setdefault(seg["file"].split("/")[1], []).append(seg)
            groups: list[list[dict[str, Any]]] = []
            for parts in by_day.values():
                group: list[dict[str, Any]] = []
                for seg in parts:
                    if group and sum(g["rows"] for g in group) + seg["rows"] > COMPACT_ROWS:
                        groups.append(group)
                        group = []
                    group.append(seg)
                groups.append(group)
            for group in (g for g in groups if len(g) > 1):
                whole = pl.concat([pl.read_parquet(self.location / g["file"]) for g in group])
                new = self._write_segments(m, whole, COMPACT_ZSTD_LEVEL)
                gone = {g["file"] for g in group}
                m.segments = [s for s in m.segments if s["file"] not in gone] + new
                m.retired += [[name, time.time()] for name in sorted(gone)]
                merged += len(group)
            if merged:
                before = m.generation
                self._commit(m)
                _carry_index(self.location, before, m.generation)
            value_index.rebuild_missing(self.location, m.segments, _written)  # an older store's, a lost one
            for seg in m.segments:  # likewise the key files
                if not (self.location / key_index.companion(seg["file"])).exists():
                    key_index.load_run(self.location / seg["file"], int(seg["rows"]), _written)
        return merged

    def check(self) -> list[str]:
        """Set aside every live segment that cannot be read whole (truncated, corrupt, missing):
        it is moved to ``corrupt/`` and leaves the manifest, so it is never read; returns what was
        found, one line a segment, for the log and the operator."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        problems: list[str] = []
        if not (self.location / MANIFEST).exists():
            return problems
        with self._writing() as m:
            bad = []
            for seg in m.segments:
                path = self.location / seg["file"]
                try:
                    rows = pq.read_metadata(path).num_rows
                    reason = None if rows == seg["rows"] else _("holds {n} rows, the manifest says {m}").format(
                        n=rows, m=seg["rows"])
                except (OSError, pa.ArrowException) as exc:
                    reason = str(exc) or type(exc).__name__
                if reason is not None:
                    bad.append(seg)
                    problems.append(_("segment {file} set aside: {reason}").format(file=seg["file"], reason=reason))
            if bad:
                corrupt = self.location / "corrupt"
                corrupt.mkdir(exist_ok=True)
                for seg in bad:
                    path = self.location / seg["file"]
                    if path.exists():
                        os.replace(path, corrupt / path.name)
                gone = {seg["file"] for seg in bad}
                m.segments = [s for s in m.segments if s["file"] not in gone]
                self._commit(m)
                _forget_index(self.location)
        return problems

    # --- reading

    def _lazy(self, m: Manifest | None = None, *, min_id: int | None = None, max_id: int | None = None,
              time_from: datetime | None = None, time_to: datetime | None = None) -> pl.LazyFrame:
        """The live segments that can hold rows in the given id and time ranges (pruned by the
        manifest's bounds before any file is opened)."""
        segments = self._segments(m, min_id=min_id, max_id=max_id, time_from=time_from, time_to=time_to)
        if not segments:
            return pl.LazyFrame(schema=SCHEMA)
        return pl.scan_parquet([str(self.location / s["file"]) for s in segments], schema=SCHEMA)

    def _segments(self, m: Manifest | None = None, *, min_id: int | None = None, max_id: int | None = None,
                  time_from: datetime | None = None, time_to: datetime | None = None) -> list[dict]:
        m = m or self.read_manifest()
        files = []
        for s in m.segments:
            if min_id is not None and s["max_id"] < min_id:
                continue
            if max_id is not None and s["min_id"] > max_id:
                continue
            if time_from is not None and datetime.fromisoformat(s["max_time"]) < time_from:
                continue
            if time_to is not None and datetime.fromisoformat(s["min_time"]) >= time_to:
                continue
            files.append(s)
        return files

    def _lazy_held(self, m: Manifest, segments: list[dict[str, Any]]) -> pl.LazyFrame:
        """``segments`` as one frame for a read by id: the small ones from memory, all the store's
        small segments as one frame (:func:`_small_segments`), which a filter on ids reads in a
        few milliseconds; a warnings page's few events scattered over a year of small daily
        segments then open no file. The large segments are scanned (row-group statistics prune).
        ``segments`` are of ``m``."""
        small = [s for s in segments if s["rows"] <= SMALL_SEGMENT_ROWS]
        held = self._small_segments(m) if small else None
        scanned = [str(self.location / s["file"]) for s in segments if held is None or s["rows"] > SMALL_SEGMENT_ROWS]
        parts = [held.lazy()] if held is not None else []  # its other rows hold other ids: filtered out
        if scanned:
            parts.append(pl.scan_parquet(scanned, schema=SCHEMA))
        return pl.concat(parts, how="vertical") if parts else pl.LazyFrame(schema=SCHEMA)

    def _small_segments(self, m: Manifest) -> pl.DataFrame | None:
        """Every live small segment's rows as one frame, read again only when the set of small
        segments changed; None when they hold more than HELD_ROWS rows."""
        key = self.location.resolve()
        held = _HELD.get(key)
        if held is not None and held[2] is m:  # the same parsed manifest (read_manifest keeps it): no walk
            return held[1]
        small = [s for s in m.segments if s["rows"] <= SMALL_SEGMENT_ROWS]
        if sum(s["rows"] for s in small) > HELD_ROWS:
            return None
        paths = tuple(str(self.location / s["file"]) for s in small)
        if held is not None and held[0] == paths:
            _HELD[key] = (paths, held[1], m)
            return held[1]
        frame = pl.scan_parquet(list(paths), schema=SCHEMA).collect().rechunk() if paths \
            else pl.DataFrame(schema=SCHEMA)
        _HELD[key] = (paths, frame, m)
        return frame

    def _selection(self, principal: Principal, f: EventFilter, *, up_to_id: int | None = None) -> pl.LazyFrame:
        lf = self._lazy(max_id=up_to_id, time_from=f.time_from, time_to=f.time_to)
        lf = lf.filter(visible_to(principal) & filter_expr(f))
        return lf if up_to_id is None else lf.filter(pl.col("id") <= up_to_id)

    # --- writing

    def append(self, events: pl.DataFrame, *, batch_id: int, now: datetime) -> int:
        if not events.height:
            return 0
        batch = events.rename({k: v for k, v in RENAME.items() if k in events.columns})
        batch = batch.unique("event_key", keep="first", maintain_order=True)
        batch = batch.with_columns(self._hashes(batch["event_key"]))
        with self._writing() as m:
            index = self._key_index(m, dedup_span(batch["time_source"], self.dedup_days))
            fresh = batch.filter(~pl.Series(index.contains_fingerprints(*self._fingerprints(batch))))
            if not fresh.height:
                return 0
            fresh = fresh.with_columns(
                pl.int_range(m.next_id, m.next_id + fresh.height, dtype=pl.Int64).alias("id"),
                pl.lit(batch_id, pl.Int64).alias("batch_id"),
                pl.lit(now).dt.cast_time_unit("us").dt.convert_time_zone("UTC").alias("created_at"),
            )
            fresh = fresh.select([pl.col(c).cast(t) if c in fresh.columns else pl.lit(None, t).alias(c)
                                  for c, t in COLUMN_TYPES.items()] + list(HASH_COLUMNS))
            m.segments += self._write_segments(m, fresh)
            m.next_id += fresh.height
            self._commit(m)
            self._extend_index(m.generation, index.extended_fingerprints(*self._fingerprints(fresh)))
            return fresh.height

    @staticmethod
    def _hashes(keys: pl.Series) -> list[pl.Series]:
        """The fingerprint columns of ``keys`` (:data:`HASH_COLUMNS`)."""
        return [pl.Series(name, h) for name, h in zip(HASH_COLUMNS, key_index.fingerprints(keys), strict=True)]

    @staticmethod
    def _fingerprints(frame: pl.DataFrame) -> tuple:
        return tuple(frame[c].to_numpy() for c in HASH_COLUMNS)

    def append_stored(self, events: pl.DataFrame) -> int:
        """Store events that already have their ids (every stored column, as :meth:`scan` of another
        store returns them), for moving a store over: each keeps its id, ``batch_id`` and
        ``created_at``, and ``next_id`` moves past the highest. An ``event_key`` or an id already
        stored is skipped, so a batch given twice (a move resumed after a kill) is stored once."""
        if not events.height:
            return 0
        batch = events.select([pl.col(c).cast(t) for c, t in COLUMN_TYPES.items()])
        batch = batch.unique("event_key", keep="first", maintain_order=True).unique("id", keep="first")
        with self._writing() as m:
            index = self._key_index(m, dedup_span(batch["time_source"], self.dedup_days))
            ids = batch["id"]
            taken = self._lazy(m, min_id=int(ids.min()), max_id=int(ids.max())).select("id") \
                .filter(pl.col("id").is_in(ids.implode())).collect()
            fresh = batch.filter(~pl.Series(index.contains(batch["event_key"]))) \
                .join(taken, on="id", how="anti")
            if not fresh.height:
                return 0
            m.segments += self._write_segments(m, fresh)
            m.next_id = max(m.next_id, int(fresh["id"].max()) + 1)
            self._commit(m)
            self._extend_index(m.generation, index.extended(fresh["event_key"]))
            return fresh.height

    def drop_days_before(self, cutoff: date, keep_ids: Iterable[int], *, dry_run: bool = False) -> list[DayDrop]:
        """Drop every day partition before ``cutoff`` (UTC days), except the events in ``keep_ids``
        (legal holds): a day with none held loses its segments; a day with some is rewritten with
        only those. All of it is one manifest commit, as in :meth:`compact`. Returns per day what
        went and what stayed; with ``dry_run`` nothing is changed."""
        first_kept = cutoff.isoformat()
        held = pl.DataFrame({"id": sorted(set(keep_ids))}, schema={"id": pl.Int64})
        with self._writing() as m:
            old = [s for s in m.segments if s["file"].split("/")[1] < first_kept]
            by_day: dict[str, list[dict[str, Any]]] = {}
            for seg in old:
                by_day.setdefault(seg["file"].split("/")[1], []).append(seg)
            out: list[DayDrop] = []
            added: list[dict[str, Any]] = []
            for day in sorted(by_day):
                parts = by_day[day]
                ids = pl.concat([pl.read_parquet(self.location / s["file"], columns=["id"]) for s in parts])
                kept_ids = ids.join(held, on="id", how="semi")
                out.append(DayDrop(day, ids.height - kept_ids.height, kept_ids.height))
                if kept_ids.height and not dry_run:
                    whole = pl.concat([pl.read_parquet(self.location / s["file"]) for s in parts])
                    added += self._write_segments(m, whole.join(held, on="id", how="semi"))
            if dry_run or not old:
                return out
            gone = {s["file"] for s in old}
            m.segments = [s for s in m.segments if s["file"] not in gone] + added
            m.retired += [[name, time.time()] for name in sorted(gone)]
            self._commit(m)
            _forget_index(self.location)  # keys left the store: the cached index no longer holds
            return out

    def _key_index(self, m: Manifest, span: Span) -> KeyIndex:
        """The stored keys of (at least) the days of ``span``: the cached index if it is of this
        manifest and holds those days, else the key files of the segments of those days (so the
        index holds the dedup window's days, not the whole store's)."""
        with _INDEX_LOCK:
            cached = _INDEXES.get(self.location.resolve())
        if cached is not None and cached[0] == m.generation and cached[1].holds(span):
            return cached[1]
        segments = [s for s in m.segments
                    if span is None or not _is_day(segment_day(s)) or span[0] <= segment_day(s) <= span[1]]
        index = KeyIndex.of_runs((key_index.load_run(self.location / s["file"], int(s["rows"]), _written)
                                  for s in segments), span)
        with _INDEX_LOCK:
            _INDEXES[self.location.resolve()] = (m.generation, index)
        return index

    def _extend_index(self, generation: int, index: KeyIndex) -> None:
        with _INDEX_LOCK:
            _INDEXES[self.location.resolve()] = (generation, index)

    def existing_keys(self, keys: Sequence[str]) -> dict[str, int]:
        wanted = pl.DataFrame({"event_key": list(set(keys))}, schema={"event_key": pl.String})
        found = self._lazy().select("event_key", "id").join(wanted.lazy(), on="event_key", how="semi").collect()
        return dict(zip(found["event_key"].to_list(), found["id"].to_list(), strict=True))

    def rewrite_match(self, changes: pl.DataFrame) -> int:
        if not changes.height:
            return 0
        changes = changes.select([pl.col("id").cast(pl.Int64),
                                  *(pl.col(c).cast(COLUMN_TYPES[c]) for c in MATCH_COLUMNS)])
        low, high = int(changes["id"].min()), int(changes["id"].max())
        with self._writing() as m:
            touched, kept, added = [], [], []
            for s in m.segments:
                if s["max_id"] < low or s["min_id"] > high:
                    kept.append(s)
                    continue
                part = pl.read_parquet(self.location / s["file"])
                hit = part.join(changes.select("id"), on="id", how="semi")
                if not hit.height:
                    kept.append(s)
                    continue
                updated = part.update(changes, on="id", how="left", include_nulls=True).select(COLUMNS)
                touched.append(s)
                added += self._write_segments(m, updated)
            if not touched:
                return 0
            m.segments = kept + added
            m.retired += [[s["file"], time.time()] for s in touched]
            before = m.generation
            self._commit(m)
            _carry_index(self.location, before, m.generation)
        found = self._lazy(min_id=low, max_id=high).filter(pl.col("id").is_in(changes["id"].implode())) \
            .select(pl.len()).collect().item()
        return int(found)

    # --- search

    def ordered(self, principal: Principal, f: EventFilter, *, limit: int, after: Position | None = None,
                before: Position | None = None, up_to_id: int | None = None,
                dense: bool | None = None, sort: EventSort = NEWEST_FIRST) -> list[SimpleNamespace]:
        if not sort.is_default:  # another order: the selection's top rows by (key, id), one pass
            lf = self._selection(principal, f, up_to_id=up_to_id)
            descending, value, ident = sort_bounds(sort, after, before)
            lf = lf.with_columns(sort_expr(sort.key).alias("_sort"))
            if ident is not None:
                lf = lf.filter(past(sort.key, value, ident, descending=descending))
            lf = lf.sort(["_sort", "id"], descending=descending).head(limit).drop("_sort")
            return as_records(lf.collect())
        if before is not None:
            lf = self._selection(principal, f, up_to_id=up_to_id)
            lf = lf.filter(newer_than(before)).sort(["time_source", "id"]).head(limit)
            return as_records(lf.collect())
        return as_records(self._newest(principal, f, limit=limit, after=after, up_to_id=up_to_id))

    def _newest(self, principal: Principal, f: EventFilter, *, limit: int, after: Position | None,
                up_to_id: int | None) -> pl.DataFrame:
        """The ``limit`` newest matching rows (older than ``after``), reading segments newest first
        and stopping once the next one cannot hold a row newer than the last of those found: a
        first page opens the few newest segments, not every one (the manifest has each segment's
        time bounds). A first page's rows of a segment are kept (:data:`_SEGMENT_MEMO`), so the
        next first page reads only segments committed since."""
        segments = self._segments(max_id=up_to_id, time_from=f.time_from, time_to=f.time_to)
        if after is not None:
            at = after.time_source
            segments = [s for s in segments if datetime.fromisoformat(s["min_time"]) <= at]
        segments.sort(key=lambda s: s["max_time"], reverse=True)  # ISO UTC text sorts as time
        keep = visible_to(principal) & filter_expr(f)
        if up_to_id is not None:
            keep = keep & (pl.col("id") <= up_to_id)
        if after is not None:
            keep = keep & older_than(after)
        order = {"by": ["time_source", "id"], "descending": True}
        # A segment's top rows for a first page are the same for every first page: kept whole
        # (:data:`_SEGMENT_MEMO`). Elsewhere (a page at depth, a bound that cuts a segment) the
        # positions alone are read, the filter's and the order's columns, and then the whole rows of
        # only the ``limit`` found: a page reads every column of 50 rows, not of every row matched.
        viewer = viewer_key(principal)
        position = ["time_source", "id"]
        found = pl.DataFrame(schema={"time_source": SCHEMA["time_source"], "id": SCHEMA["id"]})
        whole: list[pl.DataFrame] = []
        i, step = 0, 1
        while i < len(segments):
            if found.height >= limit and datetime.fromisoformat(segments[i]["max_time"]) < found["time_source"][-1]:
                break  # every segment left holds only older rows
            chunk, i, step = segments[i:i + step], i + step, min(step * 2, 64)
            keys = [("top", str(self.location / s["file"]), viewer, f, limit)
                    if after is None and (up_to_id is None or s["max_id"] <= up_to_id) else None for s in chunk]
            tops = [_memo_get(k) if k is not None else None for k in keys]
            todo = [n for n, top in enumerate(tops) if top is None]
            reads = []
            for n in todo:
                lf = pl.scan_parquet(str(self.location / chunk[n]["file"]), schema=SCHEMA).filter(keep)
                reads.append((lf if keys[n] is not None else lf.select(position)).sort(**order).head(limit))
            for n, part in zip(todo, pl.collect_all(reads) if reads else [], strict=True):
                tops[n] = part
                if keys[n] is not None:
                    _memo_put(keys[n], part)
            whole += [top for top in tops if top.width > len(position)]
            found = pl.concat([found, *(top.select(position) for top in tops)]).sort(**order).head(limit)
        if whole:
            held = pl.concat(whole).join(found, on=position, how="semi")
            if held.height == found.height:
                return held.sort(**order)
        return self._rows_at(segments, found).sort(**order)

    def _rows_at(self, segments: list[dict[str, Any]], found: pl.DataFrame) -> pl.DataFrame:
        """The whole rows at the ``(time_source, id)`` positions of ``found``, from the segments
        (of ``segments``) whose time bounds hold them; row-group statistics on ``time_source``
        (segments are sorted by it) keep the read to the groups of those times."""
        if not found.height:
            return pl.DataFrame(schema=SCHEMA)
        low, high = found["time_source"].min(), found["time_source"].max()
        files = [str(self.location / s["file"]) for s in segments
                 if datetime.fromisoformat(s["min_time"]) <= high and datetime.fromisoformat(s["max_time"]) >= low]
        t_low, t_high = (pl.lit(t).dt.cast_time_unit("us") for t in (low, high))
        return pl.scan_parquet(files, schema=SCHEMA).filter(
            (pl.col("time_source") >= t_low) & (pl.col("time_source") <= t_high)
            & pl.col("id").is_in(found["id"].implode())).collect()

    def search_page(self, principal: Principal, f: EventFilter, *, limit: int = DEFAULT_PAGE_SIZE,
                    after: str | None = None, before: str | None = None, count: bool = True,
                    sort: EventSort = NEWEST_FIRST) -> Page:
        check_page_request(limit, after, before)
        total, exact = self.count_capped(principal, f) if count else (None, True)
        return keyset_page(partial(self.ordered, principal, f, sort=sort), limit=limit, after=after, before=before,
                           total=total, exact=exact, sort=sort)

    def count_capped(self, principal: Principal, f: EventFilter, cap: int = COUNT_CAP, *,
                     up_to_id: int | None = None) -> tuple[int, bool]:
        # Newest segments first, a growing number at a time, stopping once past the cap: a common
        # filter's count opens a few segments, not the whole store; each segment's count is kept.
        segments = sorted(self._segments(max_id=up_to_id, time_from=f.time_from, time_to=f.time_to),
                          key=lambda s: s["max_time"], reverse=True)
        n, i, step = 0, 0, 1
        while i < len(segments) and n <= cap:
            chunk, i, step = segments[i:i + step], i + step, min(step * 2, 64)
            n += sum(self._segment_counts(principal, f, chunk, up_to_id=up_to_id).values())
        return (n, True) if n <= cap else (cap, False)

    def _segment_counts(self, principal: Principal, f: EventFilter, segments: list[dict[str, Any]], *,
                        up_to_id: int | None) -> dict[str, int]:
        """The matching rows of each of ``segments``, by file: kept per segment
        (:data:`_SEGMENT_MEMO`), so a count reads only segments it has not counted yet, all of them
        in one scan."""
        viewer = viewer_key(principal)
        out: dict[str, int] = {}
        todo: dict[str, tuple | None] = {}
        for s in segments:
            path = str(self.location / s["file"])
            key = ("count", path, viewer, f) if up_to_id is None or s["max_id"] <= up_to_id else None
            held = _memo_get(key) if key is not None else None
            if held is None:
                todo[path] = key
            else:
                out[path] = held
        if todo:
            lf = pl.scan_parquet(list(todo), schema=SCHEMA, include_file_paths="_file") \
                .filter(visible_to(principal) & filter_expr(f))
            if up_to_id is not None:
                lf = lf.filter(pl.col("id") <= up_to_id)
            per = dict(lf.group_by("_file").agg(pl.len()).collect().iter_rows())
            for path, key in todo.items():
                out[path] = int(per.get(path, 0))
                if key is not None:
                    _memo_put(key, out[path])
        return out

    def get(self, principal: Principal, event_id: int) -> SimpleNamespace:
        frame = self._lazy(min_id=event_id, max_id=event_id).filter(
            (pl.col("id") == event_id) & visible_to(principal)).collect()
        if not frame.height:
            raise NotFound("event")
        return as_records(frame.select(["id", *(f.column for f in FIELDS)]))[0]

    # --- by id and by watermark

    def fetch(self, principal: Principal, ids: Sequence[int], columns: Sequence[str], *,
              newest_first: bool = False, limit: int | None = None) -> pl.DataFrame:
        names = ["id", *(c for c in columns if c != "id")]
        if not ids:
            return pl.DataFrame(schema={c: COLUMN_TYPES[c] for c in names})
        wanted = pl.Series("id", sorted(set(ids)), dtype=pl.Int64)
        m = self.read_manifest()
        lf = self._lazy_held(m, segments_holding(m.segments, wanted.to_list())).filter(
            pl.col("id").is_in(wanted.implode()) & visible_to(principal))
        if newest_first:
            lf = lf.sort(["time_source", "id"], descending=True)
        if limit is not None:
            lf = lf.head(limit)
        return lf.select(names).collect()

    def scan(self, principal: Principal, columns: Sequence[str], *, after_id: int = 0, limit: int,
             since: datetime | None = None, created_after: datetime | None = None,
             routed: bool = False) -> pl.DataFrame:
        names = ["id", *(c for c in columns if c != "id")]
        lf = self._lazy(min_id=after_id + 1, time_from=since).filter(
            (pl.col("id") > after_id) & visible_to(principal))
        if since is not None:
            lf = lf.filter(pl.col("time_source") >= since)
        if created_after is not None:
            lf = lf.filter(pl.col("created_at") > created_after)
        if routed:
            lf = lf.filter(pl.col("org_id").is_not_null() | pl.col("partner_org_id").is_not_null())
        return lf.sort("id").head(limit).select(names).collect()

    # --- aggregates and streams

    def counts(self, principal: Principal, by: Sequence[str], *, since: datetime | None = None,
               until: datetime | None = None, f: EventFilter | None = None) -> list[CountRow]:
        check_count_keys(by)
        # Keys are named by position: a caller may name one dimension twice (each is then a key).
        # A time bucket is grouped as its number (microseconds // bucket), formatted once per group
        # afterwards: formatting every event's time was most of the query. A segment holds one UTC
        # day, so its ``day`` is a constant: the time column is not read for it.
        names = [f"k{i}" for i in range(len(by))]
        formats: list[pl.Expr] = []
        for name, alias in zip(by, names, strict=True):
            if name in BUCKETS:
                width = BUCKET_MICROS[name]
                fmt = "%Y-%m-%dT%H:00" if name == "hour" else "%Y-%m-%d"
                formats.append((pl.col(alias) * width).cast(pl.Datetime("us", "UTC")).dt.strftime(fmt).alias(alias))

        def keys(seg: dict[str, Any]) -> list[pl.Expr]:
            out = []
            for name, alias in zip(by, names, strict=True):
                if name == "day":
                    day = date.fromisoformat(seg["file"].split("/")[1])
                    out.append(pl.lit((day - date(1970, 1, 1)).days, pl.Int64).alias(alias))
                elif name in BUCKETS:
                    out.append((pl.col("time_source").dt.epoch("us") // BUCKET_MICROS[name]).alias(alias))
                else:
                    out.append(pl.col(DIMENSIONS[name]).alias(alias))
            return out

        f = f or EventFilter()
        low = max(filter(None, (since, f.time_from)), default=None)
        high = min(filter(None, (until, f.time_to)), default=None)
        keep = visible_to(principal) & filter_expr(replace(f, time_from=None, time_to=None))
        parts = []
        for seg in self._segments(time_from=low, time_to=high):
            lf = pl.scan_parquet(str(self.location / seg["file"]), schema=SCHEMA)
            # Only a segment that straddles a bound is filtered by time (the others lie inside).
            if low is not None and datetime.fromisoformat(seg["min_time"]) < low:
                lf = lf.filter(pl.col("time_source") >= low)
            if high is not None and datetime.fromisoformat(seg["max_time"]) >= high:
                lf = lf.filter(pl.col("time_source") < high)
            parts.append(lf.filter(keep).group_by(keys(seg)).agg(pl.len().alias("n")))
        if not parts:
            return []
        grouped = pl.concat(parts).group_by(names).agg(pl.col("n").sum()).collect().with_columns(formats)
        grouped = grouped.sort(["n", *names], descending=[True, *([False] * len(by))], nulls_last=True)
        return [CountRow(tuple(row[:-1]), int(row[-1])) for row in grouped.select([*names, "n"]).iter_rows()]

    def mentions(self, principal: Principal, probes: Sequence[Probe], *, cap: int) -> pl.DataFrame:
        """Hash joins of the probes with each value column of every live segment (only the columns
        read, streaming), an interval join for networks."""
        check_probes(probes, cap)
        m = self.read_manifest()
        pairs = value_index.mention_pairs_indexed(
            self.location, m.segments, visible_to(principal), probes,
            lambda segs: self._lazy(Manifest(m.generation, m.next_id, segs, [])))
        return mentions_frame(probes, pairs, cap)

    def latest_id(self, principal: Principal, f: EventFilter) -> int:
        if principal.sees_all_tenants and f == EventFilter():  # the writer's question, every batch
            return max((int(seg["max_id"]) for seg in self.manifest().segments), default=0)
        value = self._selection(principal, f).select(pl.col("id").max()).collect().item()
        return int(value or 0)

    def iter_rows(self, principal: Principal, f: EventFilter, *, max_rows: int, batch: int = 2000,
                  up_to_id: int | None = None, state: StreamState | None = None) -> Iterator[SimpleNamespace]:
        for frame in self.iter_frames(principal, f, max_rows=max_rows, batch=batch, up_to_id=up_to_id,
                                      state=state):
            yield from as_records(frame)

    def iter_frames(self, principal: Principal, f: EventFilter, *, max_rows: int, batch: int = 2000,
                    up_to_id: int | None = None, state: StreamState | None = None) -> Iterator[pl.DataFrame]:
        """Newest first, a UTC day at a time: each day's selection is read and sorted once (not
        once per batch, as a keyset walk over the whole selection would), from one manifest, so
        memory holds one day and a compaction meanwhile changes nothing the stream sees."""
        state = state if state is not None else StreamState()
        m = self.manifest()
        days = sorted({datetime.fromisoformat(seg[k]).astimezone(UTC).date()
                       for seg in m.segments for k in ("min_time", "max_time")}, reverse=True)
        for day in days:
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            end = start + timedelta(days=1)
            if (f.time_to is not None and start >= f.time_to) or (f.time_from is not None and end <= f.time_from):
                continue
            lf = self._lazy(m, max_id=up_to_id, time_from=start, time_to=end).filter(
                visible_to(principal) & filter_expr(f)
                & (pl.col("time_source") >= start) & (pl.col("time_source") < end))
            if up_to_id is not None:
                lf = lf.filter(pl.col("id") <= up_to_id)
            lf = lf.sort(["time_source", "id"], descending=True).head(max_rows - state.rows)
            frame = lf.select(EXPORT_COLUMNS).collect()
            for offset in range(0, frame.height, batch):
                part = frame.slice(offset, batch)
                state.batches += 1
                state.rows += part.height
                yield part
            if state.rows >= max_rows:
                return


_CHECKED: set[Path] = set()
#: manifest path -> (its bytes, the manifest parsed from them), for readers (read_manifest).
_READ_MANIFESTS: dict[Path, tuple[bytes, Manifest]] = {}


def _is_day(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def opened(location: Path | str, *, dedup_days: int = DEDUP_DAYS) -> ParquetEventStore:
    """The store in ``location``; the first time a process opens it, its segments are checked
    (:meth:`ParquetEventStore.check`) and what was set aside is logged."""
    store = ParquetEventStore(location, dedup_days=dedup_days)
    key = store.location.resolve()
    if key not in _CHECKED:
        _CHECKED.add(key)
        for problem in store.check():
            log.error("event store: %s", problem)
    return store
