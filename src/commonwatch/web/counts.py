"""A short per-tenant cache for the counts pages show on every visit (the events total, the
overview's figures), so fifty people opening the same page do not count the same rows fifty times.

A cached count is used only while it is younger than the TTL (by the app's clock) *and* the data
it counts has not changed since: each topic has a generation that any write moves, in this process
or another (other workers, an ingest in its own process):

- ``events``: the Parquet store's manifest; every commit renames a new one into place, so its inode
  and mtime are the generation. Other stores have no such stamp: their counts are not cached.
- ``registry``: a stamp file ``<data dir>/counts/registry`` replaced after every commit that
  changed organisations, networks, ASNs, domains or contacts (an ORM listener); a bulk statement
  that bypasses the ORM is bounded by the TTL.
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
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.clock import Clock

#: How long a count may be shown before it is counted again, whatever the generation says.
TTL_SECONDS = 10.0
REGISTRY_TABLES = frozenset({"organisations", "networks", "org_asns", "domains", "contacts"})
_MAX_ENTRIES = 4096

Generation = Hashable | None


def tenant_key(principal: Principal) -> tuple:
    """What a principal's counts depend on: staff all see the same; others their organisations."""
    if principal.sees_all_tenants:
        return ("staff",)
    return (str(principal.role), tuple(sorted(principal.org_ids)), principal.user_id if not principal.org_ids
            else None)


def _stamp(path: Path) -> Generation:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return 0
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def bump(path: Path) -> None:
    """Move a stamp file's generation: a new file renamed over it (a new inode), so a reader in
    any process sees the change with one stat."""
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

    def get(self, topic: str, key: tuple, compute: Callable[[], Any]) -> Any:
        """The cached value for ``key`` if fresh, else ``compute()`` (then kept)."""
        generation = self.generations[topic]()
        if generation is None:  # this topic's writes leave no stamp: never cache
            return compute()
        now = self.clock.now()
        full = (topic, *key)
        hit = self._entries.get(full)
        if hit is not None and hit[1] == generation and now - hit[2] < self.ttl:
            return hit[0]
        value = compute()
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()  # a crude bound: only many distinct filters get here
            self._entries[full] = (value, generation, now)
        return value


def make_count_cache(settings: Any, clock: Clock) -> CountCache:
    """The app's cache, its generations read from the configured stores."""
    registry_stamp = registry_stamp_path(settings)
    generations: dict[str, Callable[[], Generation]] = {"registry": lambda: _stamp(registry_stamp)}
    if settings.event_store == "parquet":
        manifest = Path(settings.event_store_dir or settings.data_dir / "events") / "manifest.json"
        generations["events"] = lambda: _stamp(manifest)
    else:
        generations["events"] = lambda: None
    return CountCache(clock, generations)


def registry_stamp_path(settings: Any) -> Path:
    return Path(settings.data_dir) / "counts" / "registry"


def watch_registry_writes(sessionmaker: Any, settings: Any) -> None:
    """After a commit that changed a registry table through the ORM, bump the registry stamp."""
    stamp = registry_stamp_path(settings)

    @event.listens_for(sessionmaker, "after_flush")
    def _note(session: Session, _ctx: Any) -> None:
        for obj in (*session.new, *session.dirty, *session.deleted):
            table = getattr(getattr(obj, "__table__", None), "name", None)
            if table in REGISTRY_TABLES:
                session.info["registry_changed"] = True
                return

    @event.listens_for(sessionmaker, "after_commit")
    def _bump(session: Session) -> None:
        if session.info.pop("registry_changed", False):
            bump(stamp)

    @event.listens_for(sessionmaker, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop("registry_changed", None)


def cached_count(state: Any, topic: str, principal: Principal, what: Hashable, compute: Callable[[], Any]) -> Any:
    """``compute()`` through the app's count cache (or directly when the app has none)."""
    cache: CountCache | None = getattr(state, "count_cache", None)
    if cache is None:
        return compute()
    return cache.get(topic, (tenant_key(principal), what), compute)
