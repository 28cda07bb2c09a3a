"""The in-process runner: collector -> parser -> stages on the calling thread, store on its own.

A run is recorded in ``ingest_runs`` and audited as one act when it ends. Killing the process at
any point loses nothing and stores nothing twice: whole batches commit atomically with the run's
counters, and writes are idempotent, so running the same input again completes the store.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import polars as pl
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from commonwatch.access.audit import append, record
from commonwatch.clock import Clock
from commonwatch.constituency.index import load_index
from commonwatch.enrichment.services import load_enrichment
from commonwatch.errors import Invalid
from commonwatch.events.taxonomy import load_taxonomy
from commonwatch.feeds.base import LINE, BadRecord, ParsedBatch, Parser, Source
from commonwatch.feeds.health import RunRecorder
from commonwatch.i18n import _
from commonwatch.pipeline.models import IngestRun
from commonwatch.pipeline.stages import Params, Processed, References, process_batch
from commonwatch.pipeline.store import write_batch

#: Rows written per transaction at most, unless no batch waits (see ``BatchWriter``).
COMMIT_ROWS = 250_000
#: Seconds a store transaction stays open at most before it commits (see ``BatchWriter``).
COMMIT_SECONDS = 5.0


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process with that number
        return True
    return True


def mark_interrupted(engine: Engine, clock: Clock) -> list[int]:
    """Mark runs left "running" by a process of this host that no longer exists as interrupted
    (audited); returns their ids. Runs of other hosts are left to those hosts."""
    host, me = socket.gethostname(), os.getpid()
    with engine.begin() as conn:
        running = conn.execute(select(IngestRun.id, IngestRun.pid, IngestRun.feed, IngestRun.source)
                               .where(IngestRun.status == "running", IngestRun.host == host)).all()
        gone = [r for r in running if r.pid and r.pid != me and not _alive(r.pid)]
        now = clock.now()
        for r in gone:
            conn.execute(update(IngestRun).where(IngestRun.id == r.id, IngestRun.status == "running").values(
                status="interrupted", finished_at=now,
                error=f"interrupted: process {r.pid} on {host} stopped before the run ended; "
                      "ingest the same input again to complete it (nothing is stored twice)"))
        if gone:
            append(conn, [{"actor": "system", "action": "ingest.interrupted", "entity": "ingest_runs",
                           "entity_id": r.id, "before": None,
                           "after": json.dumps({"feed": r.feed, "source": r.source, "pid": r.pid, "host": host})}
                          for r in gone], at=now)
    return [r.id for r in gone]


def start_run(engine: Engine, feed: str, source: str, actor: str, clock: Clock) -> int:
    mark_interrupted(engine, clock)
    with engine.begin() as conn:
        return int(conn.execute(insert(IngestRun).values(
            feed=feed[:500], source=source, actor=actor, status="running", started_at=clock.now(), notes=[],
            error="", rows_read=0, events_stored=0, duplicates=0, quarantined=0, pid=os.getpid(),
            host=socket.gethostname())).inserted_primary_key[0])


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
                   on_progress: Callable[[Progress], None] | None = None,
                   commit_rows: int = COMMIT_ROWS, commit_seconds: float = COMMIT_SECONDS) -> RunSummary:
    """Ingest every source with ``parser``; returns the run's summary (also stored and audited)."""
    refs = refs or load_references(engine, sessionmaker, data_dir)
    run_id = start_run(engine, feed_label, source_label, actor, clock)
    notes: list[str] = []
    progress = Progress()
    timings: dict[str, float] = {}
    status, error = "done", ""
    writer = BatchWriter(engine, run_id, feed_label, clock, progress, timings, commit_rows, commit_seconds)
    health = RunRecorder(feed_label, actor)  # feed health: per-feed figures of this run (feeds.health)
    try:
        for source in sources:
            source = health.watch(source)
            for parsed in prefetched(parse_safely(parser, source)):
                params = Params(now=clock.now(), dedup_window=dedup_window)
                if parsed.frame.height and "feed.name" not in parsed.frame.columns:
                    parsed.frame = parsed.frame.with_columns(pl.lit(parser.name).alias("feed.name"))
                t0 = time.perf_counter()
                done = process_batch(parsed, refs, params)
                for k, v in done.timings.items():
                    timings[k] = timings.get(k, 0.0) + v
                timings["total_stages"] = timings.get("total_stages", 0.0) + time.perf_counter() - t0
                notes.extend(n for n in done.notes if n not in notes)
                health.add(parsed, done.events, done.quarantine.height, done.rows_in)
                writer.put(done, source.name)
                if on_progress:
                    on_progress(progress)
            health.source_done()
    except Invalid as exc:
        status, error = "failed", str(exc)
    except Exception as exc:
        writer.close(raise_error=False)
        finish_run(sessionmaker, run_id, "failed", notes, f"{type(exc).__name__}: {exc}", clock, actor)
        raise
    try:
        writer.close()
    except Exception as exc:
        finish_run(sessionmaker, run_id, "failed", notes, f"{type(exc).__name__}: {exc}", clock, actor)
        raise
    if on_progress:
        on_progress(progress)
    health.save(engine, run_id, clock.now())
    run = finish_run(sessionmaker, run_id, status, notes, error, clock, actor)
    return RunSummary(run_id, feed_label, source_label, status, run.rows_read, run.events_stored, run.duplicates,
                      run.quarantined, notes, error, timings)


class BatchWriter:
    """Stores processed batches on a thread of its own while the next batch is parsed and processed.

    The database does its work with the GIL released (sqlite3 and psycopg both do), so on a machine
    with two cores the stages and the store run side by side instead of one after the other. At most
    one batch waits in the queue, which bounds memory. Batches are grouped into one transaction
    until ``commit_rows`` rows are pending, the transaction has been open ``commit_seconds``, or
    no batch is waiting: fewer commits write each index page fewer times, a quiet feed is still
    committed at once, and other writers (on SQLite: a sign-in, an edit) wait for the write lock
    at most about ``commit_seconds`` plus one batch, however slow the store. A transaction holds
    whole batches and their run counters, so a crash loses only uncommitted batches, which a
    re-run stores (writes are idempotent).
    """

    _DONE = object()

    def __init__(self, engine: Engine, run_id: int, feed: str, clock: Clock, progress: Progress,
                 timings: dict[str, float], commit_rows: int, commit_seconds: float = COMMIT_SECONDS) -> None:
        self.engine, self.run_id, self.feed, self.clock = engine, run_id, feed, clock
        self.progress, self.timings, self.commit_rows = progress, timings, max(commit_rows, 1)
        self.commit_seconds = commit_seconds
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="commonwatch-store", daemon=True)
        self.thread.start()

    def put(self, done: Processed, source: str) -> None:
        """Hand a batch to the writer; re-raises the writer's error, if it failed."""
        while True:
            self._raise_error()
            try:
                self.queue.put((done, source), timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self, raise_error: bool = True) -> None:
        """Store and commit everything handed over, then stop the thread."""
        while self.thread.is_alive():
            try:
                self.queue.put(self._DONE, timeout=0.5)
                break
            except queue.Full:
                continue
        self.thread.join()
        if raise_error:
            self._raise_error()

    def _raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        conn, pending, opened = None, 0, 0.0
        try:
            while True:
                item = self.queue.get()
                if item is self._DONE:
                    break
                done, source = item
                t0 = time.perf_counter()
                if conn is None:
                    conn = self.engine.connect()
                    conn.begin()
                    opened = t0
                written = write_batch(conn, self.run_id, done.events, done.quarantine, feed=self.feed,
                                      source=source, now=self.clock.now(), rows_read=done.rows_in,
                                      duplicates_in_batch=done.duplicates_in_batch)
                pending += done.rows_in
                if commit_due(pending, time.perf_counter() - opened, not self.queue.empty(),
                              self.commit_rows, self.commit_seconds):
                    conn.commit()
                    conn.close()
                    conn, pending = None, 0
                self.timings["store"] = self.timings.get("store", 0.0) + time.perf_counter() - t0
                self.progress.rows += done.rows_in
                self.progress.stored += written.inserted
                self.progress.duplicates += written.duplicates
                self.progress.quarantined += written.quarantined
            if conn is not None:
                conn.commit()
        except BaseException as exc:  # handed to the ingesting thread, which re-raises it
            self.error = exc
            # Unblock a producer waiting on a full queue.
            while not self.queue.empty():
                self.queue.get_nowait()
        finally:
            if conn is not None:
                conn.close()


def commit_due(pending_rows: int, open_seconds: float, batch_waiting: bool, commit_rows: int,
               commit_seconds: float) -> bool:
    """Whether the store thread commits after the batch it just wrote: enough rows, open long
    enough, or no batch waiting to join the transaction."""
    return pending_rows >= commit_rows or open_seconds >= commit_seconds or not batch_waiting


_END = object()


def prefetched(batches: Iterator[ParsedBatch], depth: int = 1) -> Iterator[ParsedBatch]:
    """``batches`` read on a thread of its own, at most ``depth`` ahead of the consumer.

    Parsing is mostly Polars work with the GIL released, so the next batch is read and parsed on
    one core while this one goes through the stages on the other (and the store thread writes the
    one before). Order is kept; the reader's error is raised here, where the batch would have
    come; a consumer that stops early stops the reader."""
    handoff: queue.Queue = queue.Queue(maxsize=max(depth, 1))
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for parsed in batches:
                if not offer(parsed):
                    return
            offer(_END)
        except BaseException as exc:  # handed to the consumer, which raises it
            offer(exc)

    reader = threading.Thread(target=read, name="commonwatch-parse", daemon=True)
    reader.start()
    try:
        while True:
            item = handoff.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def parse_safely(parser: Parser, source: Source):
    """Batches of a source; a source that cannot be read at all is quarantined, not fatal."""
    try:
        yield from parser.parse(source)
    except Invalid as exc:
        yield source_failure(source, exc)


def store(engine: Engine, run_id: int, done: Processed, feed: str, source: str, clock: Clock):
    """Store one batch in a transaction of its own (the queue worker acknowledges each batch)."""
    with engine.begin() as conn:
        return write_batch(conn, run_id, done.events, done.quarantine, feed=feed, source=source, now=clock.now(),
                           rows_read=done.rows_in, duplicates_in_batch=done.duplicates_in_batch)
