"""Helpers for the incident tests: the rules in force, principals of the world's users, events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from commonwatch.access import services as access
from commonwatch.access.models import User
from commonwatch.db import session_scope
from commonwatch.incidents.rules import load_incident_rules


@pytest.fixture
def rules():
    return load_incident_rules(None)


def principal(session, world, key):
    return access.principal_for(session, session.get(User, world.ids[f"user_{key}"]))


def report(**overrides):
    """A minimal valid report (Art. 7 items 1 and 2)."""
    data = {"title": "Database leak", "affected_system": "CRM database", "category": "DS", "subcategory": "DSLEAK",
            "effects": "Records offered for sale", "discovered_at": "2026-11-25T09:30:00+08:00"}
    data.update(overrides)
    return data


def insert_events(session, org_id, n, clock, *, rsit=("malicious-code", "infected-system"), start_ip=10):
    """``n`` events of ``org_id`` stored through the configured event store; their ids."""
    from tests.events.eventdata import insert_events as store_events
    from tests.events.eventdata import stored_ids

    rows = [{"event_key": f"k-{org_id}-{start_ip}-{i}", "time_source": clock.now() - timedelta(hours=3, minutes=i),
             "time_observation": clock.now() - timedelta(hours=2, minutes=i), "feed_name": "demo-feed",
             "source_ip": f"198.51.100.{start_ip + i}", "classification_taxonomy": rsit[0],
             "classification_type": rsit[1], "org_id": org_id, "created_at": clock.now()} for i in range(n)]
    store_events(session, rows)
    ids = stored_ids(session, rows)
    return [ids[r["event_key"]] for r in rows]


@pytest.fixture
def app_session(app, clock):
    def make(actor="test"):
        scope = session_scope(app.state.sessionmaker, actor=actor)
        return _Scoped(scope, clock)
    return make


class _Scoped:
    def __init__(self, scope, clock):
        self.scope, self.clock = scope, clock

    def __enter__(self):
        s = self.scope.__enter__()
        s.info["clock"] = self.clock
        return s

    def __exit__(self, *exc):
        return self.scope.__exit__(*exc)
