"""Periodic work: reminders about security-assessment validity and extension windows."""

from __future__ import annotations

from typing import Any

from commonwatch.db import session_scope
from commonwatch.scheduler import Job


def remind(state: Any) -> int:
    """Make the reminders that are due today (each once); the pages show them to the organisation."""
    from commonwatch.datasec import services as ds

    with session_scope(state.sessionmaker, actor="job:datasec-reminders") as session:
        session.info["clock"] = state.clock
        return ds.run_reminders(session, ds.local_today(state.clock.now()), state.settings.data_dir)


JOBS = [Job(name="datasec-reminders", every_seconds=6 * 3600, run=remind)]
