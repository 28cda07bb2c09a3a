"""The in-process runner: collector -> parser -> stages -> store, one transaction per batch.

A run is recorded in ``ingest_runs`` and audited as one act when it ends. Killing the process at
any point loses nothing and stores nothing twice: each batch commits atomically with the run's
counters, and writes are idempotent, so running the same input again completes the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import polars as pl
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from commonwatch.access.audit import record
from commonwatch.clock import Clock
from commonwatch.constituency.index import load_index
from commonwatch.enrichment.services import load_enrichment
from commonwatch.errors import Invalid
from commonwatch.events.taxonomy import load_taxonomy
from commonwatch.feeds.base import LINE, BadRecord, ParsedBatch, Parser, Source
from commonwatch.i18n import _
from commonwatch.pipeline.models import IngestRun
from commonwatch.pipeline.stages import Params, Processed, References, process_batch
from commonwatch.pipeline.store import write_batch


@dataclass
class Progress:
    rows: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        return self.rows / max(time.monotonic() - self.started, 1e-9)


@dataclass
class RunSummary:
    run_id: int
    feed: str
    source: str
    status: str
    rows_read: int
    events_stored: int
    duplicates: int
    quarantined: int
    notes: list[str]
    error: str = ""
    timings: dict[str, float] = field(default_factory=dict)


def load_references(engine: Engine, sessionmaker, data_dir: Path | None) -> References:
    with sessionmaker() as session:
        return References(load_index(session), load_enrichment(session), load_taxonomy(data_dir))


def start_run(engine: Engine, feed: str, source: str, actor: str, clock: Clock) -> int:
    with engine.begin() as conn:
        return int(conn.execute(insert(IngestRun).values(
            feed=feed[:500], source=source, actor=actor, status="running", started_at=clock.now(), notes=[],
            error="", rows_read=0, events_stored=0, duplicates=0, quarantined=0)).inserted_primary_key[0])


def finish_run(sessionmaker, run_id: int, status: str, notes: list[str], error: str, clock: Clock,
               actor: str) -> IngestRun:
    """Close the run and append the one audit act that covers it."""
    with sessionmaker() as session:
        session.info["actor"] = actor
        session.info["clock"] = clock
        session.execute(update(IngestRun).where(IngestRun.id == run_id).values(
            status=status, finished_at=clock.now(), notes=notes[:200], error=error[:4000]))
        run = session.scalars(select(IngestRun).where(IngestRun.id == run_id)).one()
        record(session, "ingest", "ingest_runs", run_id, after={
            "feed": run.feed, "source": run.source, "status": status, "rows_read": run.rows_read,
            "events_stored": run.events_stored, "duplicates": run.duplicates, "quarantined": run.quarantined})
        session.commit()
        return run


def source_failure(source: Source, exc: Exception) -> ParsedBatch:
    """A document the parser could not read at all becomes one quarantined record, with its start."""
    try:
        source.stream.seek(0)
        head = source.stream.read(4096)
    except (OSError, ValueError, AttributeError):
        head = b""
    return ParsedBatch(pl.DataFrame({LINE: pl.Series([], dtype=pl.Int64)}),
                       [BadRecord(0, str(exc), head.decode("utf-8", errors="replace"))],
                       [_("{source}: {error}").format(source=source.name, error=exc)])


def ingest_sources(engine: Engine, sessionmaker, sources: Iterable[Source], parser: Parser, *, feed_label: str,
                   source_label: str, clock: Clock, data_dir: Path | None, actor: str = "cli",
                   dedup_window: timedelta = timedelta(days=1), refs: References | None = None,
                   on_progress: Callable[[Progress], None] | None = None) -> RunSummary:
    """Ingest every source with ``parser``; returns the run's summary (also stored and audited)."""
    refs = refs or load_references(engine, sessionmaker, data_dir)
    run_id = start_run(engine, feed_label, source_label, actor, clock)
    notes: list[str] = []
    progress = Progress()
    timings: dict[str, float] = {}
    status, error = "done", ""
    try:
        for source in sources:
            for parsed in parse_safely(parser, source):
                params = Params(now=clock.now(), dedup_window=dedup_window)
                if parsed.frame.height and "feed.name" not in parsed.frame.columns:
                    parsed.frame = parsed.frame.with_columns(pl.lit(parser.name).alias("feed.name"))
                t0 = time.perf_counter()
                done = process_batch(parsed, refs, params)
                for k, v in done.timings.items():
                    timings[k] = timings.get(k, 0.0) + v
                t1 = time.perf_counter()
                written = store(engine, run_id, done, feed_label, source.name, clock)
                timings["store"] = timings.get("store", 0.0) + time.perf_counter() - t1
                timings["total_stages"] = timings.get("total_stages", 0.0) + t1 - t0
                notes.extend(n for n in done.notes if n not in notes)
                progress.rows += done.rows_in
                progress.stored += written.inserted
                progress.duplicates += written.duplicates
                progress.quarantined += written.quarantined
                if on_progress:
                    on_progress(progress)
    except Invalid as exc:
        status, error = "failed", str(exc)
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        finish_run(sessionmaker, run_id, status, notes, error, clock, actor)
        raise
    run = finish_run(sessionmaker, run_id, status, notes, error, clock, actor)
    return RunSummary(run_id, feed_label, source_label, status, run.rows_read, run.events_stored, run.duplicates,
                      run.quarantined, notes, error, timings)


def parse_safely(parser: Parser, source: Source):
    """Batches of a source; a source that cannot be read at all is quarantined, not fatal."""
    try:
        yield from parser.parse(source)
    except Invalid as exc:
        yield source_failure(source, exc)


def store(engine: Engine, run_id: int, done: Processed, feed: str, source: str, clock: Clock):
    with engine.begin() as conn:
        return write_batch(conn, run_id, done.events, done.quarantine, feed=feed, source=source, now=clock.now(),
                           rows_read=done.rows_in, duplicates_in_batch=done.duplicates_in_batch)
