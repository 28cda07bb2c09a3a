"""Fixtures for the CII tests: a world on each engine, and principals of each side."""

from __future__ import annotations

import pytest

from commonwatch.access.principal import Principal, Role
from commonwatch.clock import FrozenClock
from commonwatch.db import make_sessionmaker, session_scope
from tests.conftest import START, build_world


def constituent_of(*org_ids: int) -> Principal:
    return Principal(user_id=900, email="c@test.example", role=Role.CONSTITUENT, org_ids=frozenset(org_ids))


COORDINATOR = Principal(user_id=901, email="co@test.example", role=Role.COORDINATOR)


@pytest.fixture
def store(any_engine):
    """(sessionmaker, clock, world) on each engine."""
    factory = make_sessionmaker(any_engine)
    clock = FrozenClock(START)
    with session_scope(factory, actor="test") as s:
        s.info["clock"] = clock
        world = build_world(s, clock)
    return factory, clock, world
