"""A short per-tenant cache for the counts pages show on every visit (the events total, the
overview's figures), so fifty people opening the same page do not count the same rows fifty times.

A cached count is used only while it is younger than the TTL (by the app's clock) *and* the data
it counts has not changed since: each topic has a generation that any write moves, in this process
or another (other workers, an ingest in its own process):

- ``events``: the Parquet store's manifest generation, one more at every commit (by any
  process). Other stores have no such stamp: their counts are not cached.
- ``registry``, ``warnings``: a stamp file ``<data dir>/counts/<topic>`` replaced after every
  commit on the app's engine that wrote to the topic's tables (organisations, networks, ASNs,
  domains, contacts; warnings and their feedback), ORM or Core alike. A write by another program
  (a CLI import on its own engine, a SQL console) is bounded by the TTL.
- ``overview``: the overview's panels (web/pages.py: home), which read a little of many
  capabilities' tables: both the events generation and a stamp that every commit on the app's
  engine moves that wrote to any table but the per-request bookkeeping (sessions, tokens, sign-in
  attempts, the audit chain: :data:`NOT_OVERVIEW`).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Hashable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from commonwatch.access.principal import Principal
from commonwatch.clock import Clock

#: How long a count may be shown before it is counted again, whatever the generation says.
TTL_SECONDS = 10.0
REGISTRY_TABLES = frozenset({"organisations", "networks", "org_asns", "domains", "contacts"})
#: Tables whose writes leave the overview as it was: what serving a request itself writes.
NOT_OVERVIEW = frozenset({"web_sessions", "api_tokens", "login_attempts", "audit_log", "audit_head"})
_MAX_ENTRIES = 4096

Generation = Hashable | None


def tenant_key(principal: Principal) -> tuple:
    """What a principal's counts depend on: staff all see the same; others their organisations."""
    if principal.sees_all_tenants:
        return ("staff",)
    return (str(principal.role), tuple(sorted(principal.org_ids)), principal.user_id if not principal.org_ids
            else None)


def _stamp(path: Path) -> Generation:
    """A stamp file's content (a fresh random token per bump; a stat is not enough: inode numbers
    are reused and mtimes are coarse)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def bump(path: Path) -> None:
    """Move a stamp's generation: a file with a new random token renamed over it (atomic), so a
    reader in any process sees the change with one small read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(uuid.uuid4().hex)
    os.replace(tmp, path)


class CountCache:
    """Counts by (topic, tenant, what), each kept with the generation and time it was counted."""

    def __init__(self, clock: Clock, generations: dict[str, Callable[[], Generation]],
                 ttl_seconds: float = TTL_SECONDS):
        self.clock = clock
        self.generations = generations
        self.ttl = timedelta(seconds=ttl_seconds)
        self._entries: dict[tuple, tuple[Any, Generation, datetime]] = {}
        self._lock = threading.Lock()
        self._computing: dict[tuple, threading.Lock] = {}

    def get(self, topic: str, key: tuple, compute: Callable[[], Any]) -> Any:
        """The cached value for ``key`` if fresh, else ``compute()`` (then kept)."""
        generation = self.generations[topic]()
        if generation is None:  # this topic's writes leave no stamp: never cache
            return compute()
        full = (topic, *key)
        hit = self._fresh(full, generation)
        if hit is not None:
            return hit[0]
        # One count at a time per key: the requests that arrive meanwhile wait for it and use it
        # (fifty readers of a page whose count just expired would otherwise count it fifty times).
        with self._lock:
            computing = self._computing.setdefault(full, threading.Lock())
        with computing:
            generation = self.generations[topic]()
            hit = self._fresh(full, generation)
            if hit is not None:
                return hit[0]
            now = self.clock.now()
            value = compute()
            with self._lock:
                if len(self._entries) >= _MAX_ENTRIES:
                    self._entries.clear()  # a crude bound: only many distinct filters get here
                    self._computing.clear()
                self._entries[full] = (value, generation, now)
            return value

    def _fresh(self, full: tuple, generation: Generation) -> tuple[Any, Generation, datetime] | None:
        hit = self._entries.get(full)
        if hit is not None and hit[1] == generation and self.clock.now() - hit[2] < self.ttl:
            return hit
        return None


def make_count_cache(settings: Any, clock: Clock) -> CountCache:
    """The app's cache, its generations read from the configured stores."""
    generations: dict[str, Callable[[], Generation]] = {
        topic: (lambda path=stamp_path(settings, topic): _stamp(path)) for topic in STAMPED_TOPICS}
    if settings.event_store == "parquet":
        from commonwatch.events.store.parquet import ParquetEventStore

        store = ParquetEventStore(Path(settings.event_store_dir or settings.data_dir / "events"))
        generations["events"] = lambda: store.read_manifest().generation  # +1 at every commit
    else:
        generations["events"] = lambda: None
    overview = stamp_path(settings, "overview")
    events = generations["events"]

    def overview_generation() -> Generation:
        moved = events()
        return None if moved is None else (moved, _stamp(overview))

    generations["overview"] = overview_generation
    return CountCache(clock, generations)


#: topic -> the tables whose writes move its stamp.
STAMPED_TOPICS: dict[str, frozenset[str]] = {
    "registry": REGISTRY_TABLES,
    "warnings": frozenset({"notify_warnings", "notify_feedback"}),
    "inbox": frozenset({"inbox_notifications"}),
}


def stamp_path(settings: Any, topic: str) -> Path:
    return Path(settings.data_dir) / "counts" / topic


def watch_writes(engine: Any, settings: Any) -> None:
    """After a commit on ``engine`` that wrote (ORM or Core INSERT, UPDATE, DELETE) to a topic's
    tables, bump that topic's stamp; a rolled-back write moves nothing."""
    from sqlalchemy.sql.dml import UpdateBase

    by_table = {t: topic for topic, tables in STAMPED_TOPICS.items() for t in tables}

    @event.listens_for(engine, "after_execute")
    def _note(conn: Any, clause: Any, *_args: Any) -> None:
        if isinstance(clause, UpdateBase):
            name = getattr(clause.table, "name", None)
            topic = by_table.get(name)
            if topic is not None:
                conn.info.setdefault("count_topics", set()).add(topic)
            if name not in NOT_OVERVIEW:
                conn.info.setdefault("count_topics", set()).add("overview")

    @event.listens_for(engine, "commit")
    def _bump(conn: Any) -> None:
        for topic in conn.info.pop("count_topics", ()):
            bump(stamp_path(settings, topic))

    @event.listens_for(engine, "rollback")
    def _forget(conn: Any) -> None:
        conn.info.pop("count_topics", None)


def cached_count(state: Any, topic: str, principal: Principal, what: Hashable, compute: Callable[[], Any]) -> Any:
    """``compute()`` through the app's count cache (or directly when the app has none)."""
    cache: CountCache | None = getattr(state, "count_cache", None)
    if cache is None:
        return compute()
    return cache.get(topic, (tenant_key(principal), what), compute)
