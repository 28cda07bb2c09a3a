"""Periodic work: check every running clock once a minute and raise deadline alerts."""

from __future__ import annotations

from typing import Any

from commonwatch.db import session_scope
from commonwatch.incidents import alerts
from commonwatch.incidents.rules import load_incident_rules
from commonwatch.scheduler import Job


def check_clocks(state: Any) -> alerts.CheckResult:
    rules = load_incident_rules(state.settings.data_dir)
    with session_scope(state.sessionmaker, actor="system clocks") as session:
        session.info["clock"] = state.clock
        return alerts.check_clocks(session, state.clock.now(), rules)


JOBS = [Job("incident-clocks", 60.0, check_clocks)]
