"""Periodic work: reminders of partner agreements coming up for renewal; mail to partners."""

from __future__ import annotations

from typing import Any

from commonwatch.db import session_scope
from commonwatch.scheduler import Job


def remind(state: Any) -> int:
    """Make the renewal reminders that are due today (each once); the directory page shows them."""
    from commonwatch.cooperation import services as coop

    with session_scope(state.sessionmaker, actor="job:cooperation-renewals") as session:
        session.info["clock"] = state.clock
        return coop.run_renewal_reminders(session, coop.local_today(state.clock.now()), state.settings.data_dir)


def deliver(state: Any) -> int:
    """Send the queued mails to partners (acknowledgements of polled reports, documents) and retry the
    temporary failures whose time has come."""
    from commonwatch.cooperation.mailing import deliver_pending

    return len(deliver_pending(state.sessionmaker, state.settings, state.clock))


JOBS = [Job(name="cooperation-renewals", every_seconds=6 * 3600, run=remind),
        Job(name="cooperation-partner-mails", every_seconds=60, run=deliver)]
