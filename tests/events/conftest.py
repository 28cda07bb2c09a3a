"""Fixtures for the events tests: a world with events of A, A's unit, B, unmatched ones and some
routed to the partner CERT."""

from __future__ import annotations

from datetime import timedelta

import pytest

from commonwatch.db import session_scope
from tests.events.eventdata import insert_events, spread, stored_ids


@pytest.fixture
def events_of(app, world, clock):
    """Insert ``n`` events spread over orgs A, A's unit, B and none; every 10th routed to the partner."""

    def make(n: int, *, step: timedelta = timedelta(minutes=1)) -> list[dict]:
        owners = [world.org_a, world.org_a_unit, world.org_b, None]
        rows = spread(n, end=clock.now(), org_ids=owners, step=step)
        for i, row in enumerate(rows):
            if i % 10 == 9:
                row["partner_org_id"] = world.partner
        with session_scope(app.state.sessionmaker, actor="test") as session:
            insert_events(session, rows)
            keys = stored_ids(session, rows)
        for row in rows:
            row["id"] = keys[row["event_key"]]
        return rows

    return make


@pytest.fixture
def run(cli_run):
    """The CLI on the test's database and clock (``tests/conftest.py: cli_run``)."""
    return cli_run
