"""Periodic work of the events capability: compaction every few minutes, retention once a day."""

from __future__ import annotations

from typing import Any

from commonwatch.db import session_scope
from commonwatch.events.retention import apply_retention
from commonwatch.events.store import event_store
from commonwatch.scheduler import Job

#: Compaction runs often: many small ingest batches leave many small segments, and each one a
#: query opens costs a file open and a footer read.
COMPACT_EVERY_SECONDS = 600.0
#: Retention runs once a day (it drops whole days, so more often would find nothing new).
RETENTION_EVERY_SECONDS = 24 * 3600.0


def run_retention(state: Any) -> str:
    """Drop the days past ``event_retention_days`` (holds kept), audited as ``system retention``."""
    with session_scope(state.sessionmaker, actor="system retention", clock=state.clock) as session:
        result = apply_retention(session, event_store(session, settings=state.settings), now=state.clock.now(),
                                 retention_days=state.settings.event_retention_days)
    return f"{result.dropped} events dropped before {result.cutoff}, {result.kept} held"


def run_compaction(state: Any) -> str:
    """Merge the store's small segments into daily ones (nothing to do on the SQL store)."""
    with session_scope(state.sessionmaker, actor="system compaction", clock=state.clock) as session:
        merged = event_store(session, settings=state.settings).compact()
    return f"{merged} segments merged"


JOBS = [Job("events-compaction", COMPACT_EVERY_SECONDS, run_compaction),
        Job("events-retention", RETENTION_EVERY_SECONDS, run_retention)]
