"""Periodic work: fetch the HTTP(S) feeds that are due; check the feeds' health and alert the
coordinators of each new fault (``feeds.health``)."""

from __future__ import annotations

from commonwatch.db import session_scope
from commonwatch.scheduler import Job


def _fetch(state) -> list[str]:
    from commonwatch.feeds.services import fetch_due

    return fetch_due(state.engine, state.sessionmaker, state.settings, state.clock)


def check_health(state) -> str:
    """Open and close the feeds' fault episodes and alert the coordinators of the new ones."""
    from commonwatch.feeds.health import run_checks
    from commonwatch.notify.config import get_notify_settings
    from commonwatch.notify.runner import Notifier

    notifier = Notifier(settings=state.settings, sessions=state.sessionmaker, clock=state.clock, env=state.jinja,
                        nset=get_notify_settings())
    try:
        with session_scope(state.sessionmaker, actor="job:feeds-health") as session:
            session.info["clock"] = state.clock
            opened, closed, alerted = run_checks(session, notifier, state.clock.now(), state.settings.data_dir)
    finally:
        if notifier.transport is not None:
            notifier.transport.close()
    return f"{opened} fault(s) opened, {closed} closed; {alerted} alerted"


JOBS = [Job("feeds.fetch", 60.0, _fetch), Job("feeds.health", 10 * 60.0, check_health)]
