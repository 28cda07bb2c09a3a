"""Periodic work: fetch the HTTP(S) feeds that are due."""

from __future__ import annotations

from commonwatch.scheduler import Job


def _fetch(state) -> list[str]:
    from commonwatch.feeds.services import fetch_due

    return fetch_due(state.engine, state.sessionmaker, state.settings, state.clock)


JOBS = [Job("feeds.fetch", 60.0, _fetch)]
