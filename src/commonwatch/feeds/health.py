"""Feed health: what each run of each feed brought, and the faults that say a feed broke.

At ingest, :class:`RunRecorder` keeps per run and feed the rows read, events, quarantined records,
events matched to the constituency (a column count of each batch, not a loop over events), the
SHA-256 of the bytes the parser read, and the header against the mapping (new columns, kept
under ``extra.*``; required columns that are missing). It writes one ``feed_run_stats`` row per
feed when the run ends.

The health job (``feeds.jobs``) holds each feed's latest run against its own history
(:func:`assess`): late (no run for more than k x its cadence), empty, the same file again,
new or missing columns, every column renamed, and a quarantine rate or volume outside its band
(median +/- k scaled MADs of its last 30 days). Thresholds are in ``rules/feed_health.yaml``. A
fault is an episode (``feed_faults``): opened, alerted once to the coordinators through notify,
closed when the job no longer sees it.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import polars as pl
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from commonwatch.feeds.base import ParsedBatch, Source
from commonwatch.feeds.models import FeedFault, FeedRunStats
from commonwatch.i18n import N_, _, use_language
from commonwatch.rules import RulesError, load_rules

log = logging.getLogger("commonwatch.feeds.health")

RULES_FILE = "feed_health.yaml"
#: 1.4826 x MAD estimates the standard deviation of normally distributed data
MAD_SCALE = 1.4826
#: columns named in a reason or an alert at most (a renamed file may have hundreds)
MAX_NAMED = 20

KINDS: dict[str, str] = {
    "late": N_("late"), "empty": N_("empty"), "same_file": N_("same file again"),
    "new_column": N_("new column"), "missing_column": N_("missing column"),
    "renamed": N_("all columns renamed"), "quarantine": N_("quarantine rate out of band"),
    "volume": N_("volume out of band"),
}


# --- recording at ingest ---------------------------------------------------------------------------

class HashingReader(io.RawIOBase):
    """Passes a stream through, hashing what is read (the parser reads each source once)."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        data = self._stream.read(len(buf))
        self.digest.update(data)
        buf[: len(data)] = data
        return len(data)

    def seekable(self) -> bool:
        return bool(getattr(self._stream, "seekable", lambda: False)())

    def seek(self, offset: int, whence: int = 0) -> int:
        # only a source that failed is read again (its start is quarantined): hash from the start
        pos = self._stream.seek(offset, whence)
        if pos == 0:
            self.digest = hashlib.sha256()
        return pos


@dataclass
class FeedTally:
    """What one run brought of one feed so far."""

    rows: int = 0
    events: int = 0
    quarantined: int = 0
    matched: int = 0
    hashes: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    mapped: set[str] = field(default_factory=set)
    required: list[str] = field(default_factory=list)

    def note_shape(self, parsed: ParsedBatch) -> None:
        shape = parsed.shape
        if shape is not None:
            self.header.extend(c for c in shape.header if c not in self.header)
            self.mapped.update(shape.mapped)
            self.required.extend(c for c in shape.required if c not in self.required)

    def row(self, run_id: int, feed: str, at: datetime, subscription: str = "") -> dict[str, Any]:
        header = self.header
        new = [c for c in header if self.mapped and c not in self.mapped]
        missing = [c for c in self.required if header and c not in header] if self.mapped else []
        digest = self.hashes[0] if len(self.hashes) == 1 else \
            hashlib.sha256("".join(self.hashes).encode()).hexdigest() if self.hashes else ""
        return {"run_id": run_id, "feed_name": feed[:500], "at": at, "rows": self.rows, "events": self.events,
                "quarantined": self.quarantined, "matched": self.matched, "content_hash": digest,
                "header": header[:500], "new_columns": new[:500], "missing_columns": missing[:500],
                "has_mapping": bool(self.mapped), "known_columns": sum(1 for c in header if c in self.mapped),
                "subscription": subscription[:100]}


class RunRecorder:
    """Collects feed-health figures during one ingest run; :meth:`save` writes them."""

    def __init__(self, default_feed: str, actor: str = ""):
        self.default_feed = default_feed
        #: the scheduled feed (``feeds.services.fetch_due`` runs as ``feed:<name>``), for its set cadence
        self.subscription = actor.removeprefix("feed:") if actor.startswith("feed:") else ""
        self.tallies: dict[str, FeedTally] = {}
        self._reader: HashingReader | None = None
        self._feed: str | None = None

    def watch(self, source: Source) -> Source:
        """The source with its stream hashed as the parser reads it."""
        self._reader = HashingReader(source.stream)
        self._feed = None
        source.stream = io.BufferedReader(self._reader, buffer_size=1 << 20)
        return source

    def add(self, parsed: ParsedBatch, events: pl.DataFrame, quarantined: int, rows_in: int) -> None:
        """Count one processed batch: column sums over the batch's frames."""
        feed = self._feed_of(parsed)
        tally = self.tallies.setdefault(feed, FeedTally())
        tally.rows += rows_in
        tally.events += events.height
        tally.quarantined += quarantined
        tally.matched += matched_in(events)
        tally.note_shape(parsed)

    def add_parsed(self, parsed: ParsedBatch) -> str:
        """At the publisher of a run handed to RabbitMQ workers: count what parsing knows (rows, the
        records the parser refused, the header against the mapping). Returns the feed the batch
        counts under; it travels with the batch, and the worker adds the rest (:func:`add_processed`)."""
        feed = self._feed_of(parsed)
        tally = self.tallies.setdefault(feed, FeedTally())
        tally.rows += parsed.frame.height + len(parsed.bad)
        tally.quarantined += len(parsed.bad)
        tally.note_shape(parsed)
        return feed

    def merge(self, engine: Engine, run_id: int, at: datetime) -> None:
        """Write the publisher's figures into the run's ``feed_run_stats`` rows, which the workers
        may already have begun (whichever comes first makes the row)."""
        for feed, t in self.tallies.items():
            row = t.row(run_id, feed, at, self.subscription)
            adds = {k: row.pop(k) for k in ("rows", "quarantined")}
            for k in ("run_id", "feed_name", "events", "matched"):
                row.pop(k)
            _merge_stats(engine, run_id, feed, adds, row)

    def source_done(self) -> None:
        """The current source is read: its hash joins its feed's."""
        if self._reader is not None:
            feed = self._feed or self.default_feed
            self.tallies.setdefault(feed, FeedTally()).hashes.append(self._reader.digest.hexdigest())
        self._reader, self._feed = None, None

    def _feed_of(self, parsed: ParsedBatch) -> str:
        if self._feed is None:
            if parsed.shape is not None and parsed.shape.feed:
                self._feed = parsed.shape.feed
            elif parsed.frame.height and "feed.name" in parsed.frame.columns:
                self._feed = str(parsed.frame["feed.name"][0] or self.default_feed)
            else:
                return self.default_feed  # decided by a later batch with rows, if any
        return self._feed

    def save(self, engine: Engine, run_id: int, at: datetime) -> None:
        """One ``feed_run_stats`` row per feed of the run, in one transaction."""
        rows = [t.row(run_id, feed, at, self.subscription) for feed, t in self.tallies.items()]
        if rows:
            with engine.begin() as conn:
                conn.execute(insert(FeedRunStats), rows)


def matched_in(events: pl.DataFrame) -> int:
    """Events matched to a constituent (a column count)."""
    if "constituent.org_id" not in events.columns:
        return 0
    return int(events["constituent.org_id"].is_not_null().sum())


def add_processed(engine: Engine, run_id: int, feed: str, at: datetime, *, events: pl.DataFrame,
                  quarantined: int, refused_by_parser: int) -> None:
    """At a RabbitMQ worker, after its batch is stored: the batch's events, the events matched to a
    constituent and the records the stages quarantined (the parser's own refusals the publisher
    counted), added to the run's row for ``feed``. A batch redelivered after a worker died between
    its commit and its acknowledgement is counted again here (its events are stored once)."""
    _merge_stats(engine, run_id, feed, {"events": events.height, "matched": matched_in(events),
                                        "quarantined": max(quarantined - refused_by_parser, 0)},
                 {"at": at}, keep_set=True)


def _merge_stats(engine: Engine, run_id: int, feed: str, adds: dict[str, int], sets: dict[str, Any], *,
                 keep_set: bool = False) -> None:
    """Add ``adds`` to the run's ``feed_run_stats`` row for ``feed`` and set ``sets`` (with
    ``keep_set``, only on a row it makes), making the row if there is none. The merges of one run
    are serialised on its ``ingest_runs`` row (on SQLite, by the write lock)."""
    from sqlalchemy import column, table, update

    runs = table("ingest_runs", column("id"))
    feed = feed[:500]
    with engine.begin() as conn:
        conn.execute(select(runs.c.id).where(runs.c.id == run_id).with_for_update())
        found = conn.execute(select(FeedRunStats.id).where(FeedRunStats.run_id == run_id,
                                                           FeedRunStats.feed_name == feed)).first()
        if found is None:
            base = FeedTally().row(run_id, feed, sets["at"])
            conn.execute(insert(FeedRunStats), [{**base, **sets, **adds}])
        else:
            values: dict[str, Any] = {k: getattr(FeedRunStats, k) + v for k, v in adds.items()}
            if not keep_set:
                values.update(sets)
            conn.execute(update(FeedRunStats).where(FeedRunStats.id == found.id).values(**values))


# --- rules -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HealthRules:
    baseline_days: int = 30
    cadence_runs: int = 10
    cadence_min_runs: int = 3
    cadence_set: dict[str, float] = field(default_factory=dict)  # feed -> minutes
    late_factor: float = 2.0
    same_file_runs: int = 3
    quarantine_k: float = 4.0
    quarantine_floor: float = 0.05
    quarantine_min_runs: int = 5
    volume_k: float = 4.0
    volume_floor: float = 0.5
    volume_min_runs: int = 5


def _number(data: dict[str, Any], section: str, key: str, origin: str, *, minimum: float = 0.0) -> float:
    value = (data.get(section) or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise RulesError(origin, f"{section}.{key} must be a number >= {minimum:g}, not {value!r}")
    return float(value)


def load_health_rules(data_dir: Path | None = None) -> HealthRules:
    """The thresholds of ``rules/feed_health.yaml`` (the operator's copy wins), checked."""
    data = load_rules(RULES_FILE, data_dir)
    origin = RULES_FILE
    days = data.get("baseline_days")
    if not isinstance(days, int) or days < 1:
        raise RulesError(origin, f"baseline_days must be a whole number of days >= 1, not {days!r}")
    cadence_set = (data.get("cadence") or {}).get("set") or {}
    if not isinstance(cadence_set, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in cadence_set.values()):
        raise RulesError(origin, "cadence.set must map feed names to minutes > 0")
    return HealthRules(
        baseline_days=days,
        cadence_runs=int(_number(data, "cadence", "runs", origin, minimum=2)),
        cadence_min_runs=int(_number(data, "cadence", "min_runs", origin, minimum=2)),
        cadence_set={str(k): float(v) for k, v in cadence_set.items()},
        late_factor=_number(data, "late", "factor", origin, minimum=1),
        same_file_runs=int(_number(data, "same_file", "runs", origin, minimum=2)),
        quarantine_k=_number(data, "quarantine", "k", origin),
        quarantine_floor=_number(data, "quarantine", "floor", origin),
        quarantine_min_runs=int(_number(data, "quarantine", "min_runs", origin, minimum=1)),
        volume_k=_number(data, "volume", "k", origin), volume_floor=_number(data, "volume", "floor", origin),
        volume_min_runs=int(_number(data, "volume", "min_runs", origin, minimum=1)))


# --- assessment ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    """A fault seen now; ``detail`` holds what its reason is built from."""

    kind: str
    detail: dict[str, Any]


def band(values: np.ndarray, k: float, floor: float) -> tuple[float, float, float]:
    """(median, low, high): median +/- max(k x scaled MAD, floor)."""
    med = float(np.median(values))
    mad = float(np.median(np.abs(values - med))) * MAD_SCALE
    width = max(k * mad, floor)
    return med, med - width, med + width


def cadence_minutes(times: list[datetime], feed: str, rules: HealthRules,
                    every: float | None = None) -> tuple[float | None, str]:
    """The expected minutes between runs and where it comes from: ``set`` (the rules file's
    ``cadence.set``, else ``every``, the schedule of the subscription that fetches it) or ``learned``."""
    if feed in rules.cadence_set:
        return rules.cadence_set[feed], "set"
    if every:
        return float(every), "set"
    recent = sorted(times)[-rules.cadence_runs:]
    if len(recent) < rules.cadence_min_runs:
        return None, ""
    gaps = np.diff(np.array([t.timestamp() for t in recent])) / 60.0
    gaps = gaps[gaps > 0]
    if not gaps.size:
        return None, ""
    return float(np.median(gaps)), "learned"


def assess(feed: str, runs: pl.DataFrame, now: datetime, rules: HealthRules,
           every: float | None = None) -> list[Finding]:
    """The faults of one feed now, from its runs (``feed_run_stats`` rows, any order); ``every`` is
    the schedule in minutes of the subscription that fetches it, if one does."""
    if runs.is_empty():
        return []
    runs = runs.sort("at")
    last = runs.row(-1, named=True)
    found: list[Finding] = []
    cadence, _src = cadence_minutes(runs["at"].to_list(), feed, rules, every)
    if cadence is not None:
        silent = (now - last["at"]).total_seconds() / 60.0
        if silent > rules.late_factor * cadence:
            found.append(Finding("late", {"last_run": last["at"].isoformat(), "cadence_minutes": round(cadence, 1),
                                          "silent_minutes": round(silent, 1), "factor": rules.late_factor}))
    if last["rows"] == 0:
        found.append(Finding("empty", {"run_id": last["run_id"]}))
    tail = runs.tail(rules.same_file_runs)
    if (tail.height >= rules.same_file_runs and tail["content_hash"].n_unique() == 1 and last["content_hash"]
            and int(tail["rows"].min()) > 0):
        found.append(Finding("same_file", {"runs": tail.height, "content_hash": last["content_hash"]}))
    header = list(last["header"] or [])
    if last["has_mapping"] and header and last["known_columns"] == 0:
        found.append(Finding("renamed", {"columns": header[:MAX_NAMED], "count": len(header)}))
    else:
        if last["new_columns"]:
            found.append(Finding("new_column", {"columns": list(last["new_columns"])[:MAX_NAMED]}))
        if last["missing_columns"]:
            found.append(Finding("missing_column", {"columns": list(last["missing_columns"])[:MAX_NAMED]}))
    if last["rows"] > 0:
        since = last["at"] - timedelta(days=rules.baseline_days)
        before = runs.head(runs.height - 1).filter((pl.col("at") >= since) & (pl.col("rows") > 0))
        rate = last["quarantined"] / last["rows"]
        if before.height >= rules.quarantine_min_runs:
            rates = (before["quarantined"] / before["rows"]).to_numpy().astype(float)
            med, lo, hi = band(rates, rules.quarantine_k, rules.quarantine_floor)
            if not lo <= rate <= hi:
                found.append(Finding("quarantine", {"rate": round(rate, 4), "median": round(med, 4),
                                                    "low": round(max(lo, 0.0), 4), "high": round(min(hi, 1.0), 4)}))
        if before.height >= rules.volume_min_runs:
            volumes = before["rows"].to_numpy().astype(float)
            med = float(np.median(volumes))
            med, lo, hi = band(volumes, rules.volume_k, max(rules.volume_floor * med, 1.0))
            if not lo <= last["rows"] <= hi:
                found.append(Finding("volume", {"rows": last["rows"], "median": round(med, 1),
                                                "low": round(max(lo, 0.0), 1), "high": round(hi, 1)}))
    return found


def reason(kind: str, detail: dict[str, Any]) -> str:
    """Why the fault was raised, in the current language."""
    cols = ", ".join(str(c) for c in detail.get("columns") or [])
    if kind == "late":
        return _("no run for {silent} minutes; expected every {cadence} minutes (late after {factor}x); "
                 "last run {last}").format(silent=f"{detail['silent_minutes']:g}",
                                           cadence=f"{detail['cadence_minutes']:g}",
                                           factor=f"{detail['factor']:g}", last=detail["last_run"][:16])
    if kind == "empty":
        return _("the last run read no rows (run {run})").format(run=detail.get("run_id"))
    if kind == "same_file":
        return _("the last {runs} runs received the same file (SHA-256 {hash}...): the feed may be stuck").format(
            runs=detail["runs"], hash=str(detail["content_hash"])[:12])
    if kind == "new_column":
        return _("columns not in the mapping, kept under extra.*: {columns}").format(columns=cols)
    if kind == "missing_column":
        return _("required columns missing: {columns}").format(columns=cols)
    if kind == "renamed":
        return _("none of the {count} columns is in the mapping (all renamed?): {columns}").format(
            count=detail["count"], columns=cols)
    if kind == "quarantine":
        return _("quarantine rate {rate} outside its usual band {low} to {high} (median {median})").format(
            rate=f"{detail['rate']:.1%}", low=f"{detail['low']:.1%}", high=f"{detail['high']:.1%}",
            median=f"{detail['median']:.1%}")
    if kind == "volume":
        return _("{rows} rows, outside its usual band {low} to {high} (median {median})").format(
            rows=detail["rows"], low=f"{detail['low']:g}", high=f"{detail['high']:g}",
            median=f"{detail['median']:g}")
    return kind


def kind_label(kind: str) -> str:
    return _(KINDS.get(kind, kind))


# --- reading the history ---------------------------------------------------------------------------

STAT_COLUMNS = ("run_id", "feed_name", "at", "rows", "events", "quarantined", "matched", "content_hash", "header",
                "new_columns", "missing_columns", "has_mapping", "known_columns", "subscription")


def history(session: Session, now: datetime, rules: HealthRules, feed: str | None = None) -> dict[str, pl.DataFrame]:
    """Each feed's runs of the baseline window, and at least its last runs however old (a feed
    silent for longer than the window is still judged late)."""
    cols = [getattr(FeedRunStats, c) for c in STAT_COLUMNS]
    since = now - timedelta(days=rules.baseline_days)
    stmt = select(*cols).where(FeedRunStats.at >= since, FeedRunStats.at <= now)
    if feed is not None:
        stmt = stmt.where(FeedRunStats.feed_name == feed)
    rows = [r._asdict() for r in session.execute(stmt)]
    names_stmt = select(FeedRunStats.feed_name).distinct()
    if feed is not None:
        names_stmt = names_stmt.where(FeedRunStats.feed_name == feed)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["feed_name"]] = counts.get(r["feed_name"], 0) + 1
    keep = max(rules.cadence_runs, rules.same_file_runs)
    for name in session.scalars(names_stmt):
        if counts.get(name, 0) < keep:  # few runs in the window: take its last ones too
            seen = {r["run_id"] for r in rows if r["feed_name"] == name}
            older = session.execute(select(*cols).where(FeedRunStats.feed_name == name, FeedRunStats.at <= now)
                                    .order_by(FeedRunStats.at.desc()).limit(keep)).all()
            rows.extend(r._asdict() for r in older if r.run_id not in seen)
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["feed_name"], []).append(r)
    return {name: _frame(items) for name, items in sorted(out.items())}


_SCHEMA = {"run_id": pl.Int64, "feed_name": pl.String, "at": pl.Datetime("us", "UTC"), "rows": pl.Int64,
           "events": pl.Int64, "quarantined": pl.Int64, "matched": pl.Int64, "content_hash": pl.String,
           "header": pl.List(pl.String), "new_columns": pl.List(pl.String), "missing_columns": pl.List(pl.String),
           "has_mapping": pl.Boolean, "known_columns": pl.Int64, "subscription": pl.String}


def _frame(items: list[dict[str, Any]]) -> pl.DataFrame:
    items = sorted(items, key=lambda r: (r["at"], r["run_id"]))
    return pl.DataFrame({c: [r[c] for r in items] for c in _SCHEMA}, schema=_SCHEMA)


def schedules(session: Session, runs: pl.DataFrame) -> dict[str, float]:
    """feed -> minutes between fetches of the enabled subscription that brought its last run."""
    from commonwatch.feeds.models import FeedSubscription

    if runs.is_empty() or not runs["subscription"][-1]:
        return {}
    sub = session.scalar(select(FeedSubscription).where(FeedSubscription.name == runs["subscription"][-1],
                                                        FeedSubscription.enabled.is_(True)))
    return {runs["feed_name"][-1]: float(sub.every_minutes)} if sub is not None else {}


@dataclass
class FeedHealth:
    """One feed's figures for the Feeds page."""

    name: str
    cadence: float | None
    cadence_source: str
    last_run: datetime
    rows: int
    events: int
    quarantine_rate: float | None
    matched_share: float | None
    new_columns: list[str]
    missing_columns: list[str]
    runs: pl.DataFrame
    faults: list[FeedFault] = field(default_factory=list)


def overview(session: Session, now: datetime, rules: HealthRules, feed: str | None = None) -> list[FeedHealth]:
    """Every feed's figures and open faults (by name)."""
    open_faults: dict[str, list[FeedFault]] = {}
    stmt = select(FeedFault).where(FeedFault.closed_at.is_(None)).order_by(FeedFault.opened_at)
    for f in session.scalars(stmt):
        open_faults.setdefault(f.feed_name, []).append(f)
    out = []
    for name, runs in history(session, now, rules, feed).items():
        last = runs.row(-1, named=True)
        cadence, source = cadence_minutes(runs["at"].to_list(), name, rules, schedules(session, runs).get(name))
        out.append(FeedHealth(
            name=name, cadence=cadence, cadence_source=source, last_run=last["at"], rows=last["rows"],
            events=last["events"], quarantine_rate=last["quarantined"] / last["rows"] if last["rows"] else None,
            matched_share=last["matched"] / last["events"] if last["events"] else None,
            new_columns=list(last["new_columns"] or []), missing_columns=list(last["missing_columns"] or []),
            runs=runs, faults=open_faults.get(name, [])))
    return out


def fault_history(session: Session, feed: str | None = None, limit: int = 200) -> list[FeedFault]:
    stmt = select(FeedFault).order_by(FeedFault.opened_at.desc(), FeedFault.id.desc()).limit(limit)
    if feed is not None:
        stmt = stmt.where(FeedFault.feed_name == feed)
    return list(session.scalars(stmt))


def open_fault_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(FeedFault).where(FeedFault.closed_at.is_(None))) or 0


# --- episodes and alerts ---------------------------------------------------------------------------

def update_faults(session: Session, now: datetime, rules: HealthRules) -> tuple[list[FeedFault], list[FeedFault]]:
    """Open an episode for each fault seen now that has none open, close the open ones no longer
    seen; returns (opened, closed). Running it again at once changes nothing."""
    seen: dict[tuple[str, str], Finding] = {}
    for name, runs in history(session, now, rules).items():
        for finding in assess(name, runs, now, rules, schedules(session, runs).get(name)):
            seen[(name, finding.kind)] = finding
    open_now = {(f.feed_name, f.kind): f
                for f in session.scalars(select(FeedFault).where(FeedFault.closed_at.is_(None)))}
    opened, closed = [], []
    for key, finding in sorted(seen.items()):
        if key not in open_now:
            fault = FeedFault(feed_name=key[0], kind=key[1], opened_at=now, detail=finding.detail, delivery="")
            session.add(fault)
            opened.append(fault)
    for key, fault in open_now.items():
        if key not in seen:
            fault.closed_at = now
            closed.append(fault)
    session.flush()
    return opened, closed


def coordinators(session: Session) -> list[tuple[str, str]]:
    """(address, language) of the active coordinators."""
    from commonwatch.access.models import User

    return [(u.email, u.language) for u in session.scalars(
        select(User).where(User.role == "coordinator", User.active.is_(True)).order_by(User.id))]


def alert_text(fault: FeedFault) -> tuple[str, str]:
    """Subject and body of a fault's alert, in the current language."""
    subject = _("Feed health: {feed} — {kind}").format(feed=fault.feed_name, kind=kind_label(fault.kind))
    lines = [_("The feed {feed} needs a look.").format(feed=fault.feed_name), "",
             _("Fault: {kind}").format(kind=kind_label(fault.kind)),
             _("Why: {reason}").format(reason=reason(fault.kind, fault.detail)),
             _("Since: {when}").format(when=fault.opened_at.isoformat(timespec="minutes")), "",
             _("Thresholds are provisional defaults of this centre (rules/feed_health.yaml)."),
             _("The Feeds page shows its history: /feeds/health")]
    return subject, "\n".join(lines)


def send_alerts(session: Session, notifier) -> int:
    """Alert the coordinators of every fault episode not yet alerted; returns how many were handed
    over. A temporary failure leaves the episode for the next run; one alert per episode."""
    from commonwatch.notify.staff import send_to_person

    pending = session.scalars(select(FeedFault).where(FeedFault.alerted_at.is_(None), FeedFault.closed_at.is_(None))
                              .order_by(FeedFault.id)).all()
    people = coordinators(session)
    sent = 0
    for fault in pending:
        outcomes = []
        for address, language in people:
            with use_language(language):
                subject, text = alert_text(fault)
            outcome = send_to_person(notifier, address=address, subject=subject, text=text + "\n",
                                     name=f"feed-health-{fault.id:08d}-{len(outcomes)}", language=language)
            outcomes.append((address, outcome))
        if any(o.status == "retry" for _a, o in outcomes):
            log.info("feed-health alert will be retried", extra={"fault": fault.id})
            continue
        ok = [a for a, o in outcomes if o.status == "sent"]
        failed = [f"{a}: {o.error}" for a, o in outcomes if o.status != "sent"]
        fault.alerted_at = notifier.clock.now()
        fault.delivery = ("; ".join([*(f"email {a}" for a in ok), *(f"failed {f}" for f in failed)])
                          or "none: no coordinator")[:4000]
        sent += bool(ok)
        session.commit()
    return sent


# --- chart -----------------------------------------------------------------------------------------

def chart_spec(feed: FeedHealth, width: int = 520) -> dict[str, Any]:
    """A Vega-Lite spec of the feed's runs: rows per run (bars) and quarantine rate (line)."""
    from commonwatch.reports.charts import OKABE_ITO

    runs = feed.runs
    values = [{"at": r["at"].isoformat(timespec="minutes"), "rows": r["rows"],
               "rate": (r["quarantined"] / r["rows"]) if r["rows"] else 0.0}
              for r in runs.select("at", "rows", "quarantined").iter_rows(named=True)]
    # temporal, not ordinal: a gap in the runs (a late feed) shows as a gap
    x = {"field": "at", "type": "temporal", "title": _("Run"), "axis": {"format": "%m-%d", "labelAngle": 0}}
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json", "width": width, "height": 140,
        "background": "white", "data": {"values": values},
        "config": {"font": "sans-serif", "axis": {"labelFontSize": 10, "titleFontSize": 10}, "view": {"stroke": None}},
        "layer": [
            {"mark": {"type": "bar", "color": OKABE_ITO[0], "width": 6},
             "encoding": {"x": x, "y": {"field": "rows", "type": "quantitative", "title": _("Rows read")}}},
            {"mark": {"type": "line", "color": OKABE_ITO[5], "point": True},
             "encoding": {"x": x, "y": {"field": "rate", "type": "quantitative", "title": _("Quarantine rate"),
                                        "axis": {"format": "%"}}}},
        ],
        "resolve": {"scale": {"y": "independent"}},
    }


def chart_svg(feed: FeedHealth) -> str:
    from commonwatch.reports import charts

    return charts.svg(chart_spec(feed))


def run_checks(session: Session, notifier, now: datetime, data_dir: Path | None) -> tuple[int, int, int]:
    """The job's work: update the episodes and alert the new ones; (opened, closed, alerted)."""
    rules = load_health_rules(data_dir)
    opened, closed = update_faults(session, now, rules)
    session.commit()
    return len(opened), len(closed), send_alerts(session, notifier)


def names(items: Iterable[FeedHealth]) -> list[str]:
    return [i.name for i in items]
