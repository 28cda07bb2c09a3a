"""Periodic work of the events capability: retention, once a day."""

from __future__ import annotations

from typing import Any

from commonwatch.db import session_scope
from commonwatch.events.retention import apply_retention
from commonwatch.events.store import event_store
from commonwatch.scheduler import Job

#: Retention runs once a day (it drops whole days, so more often would find nothing new).
RETENTION_EVERY_SECONDS = 24 * 3600.0


def run_retention(state: Any) -> str:
    """Drop the days past ``event_retention_days`` (holds kept), audited as ``system retention``."""
    with session_scope(state.sessionmaker, actor="system retention", clock=state.clock) as session:
        result = apply_retention(session, event_store(session, settings=state.settings), now=state.clock.now(),
                                 retention_days=state.settings.event_retention_days)
    return f"{result.dropped} events dropped before {result.cutoff}, {result.kept} held"


JOBS = [Job("events-retention", RETENTION_EVERY_SECONDS, run_retention)]
