"""Fixtures shared by the data-security tests: the scanner's detectors as of a fixed day, and a
small world on the last day of a year (cross-border totals across the year boundary)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from commonwatch.clock import FrozenClock
from commonwatch.datasec.detectors import ScanContext, build_detectors, identifier_rules
from commonwatch.db import make_sessionmaker, session_scope
from tests.conftest import build_world

TODAY = date(2026, 11, 25)


@pytest.fixture(scope="module")
def ctx() -> ScanContext:
    return ScanContext(TODAY, identifier_rules())


@pytest.fixture(scope="module")
def detectors(ctx):
    return build_detectors(ctx.table)


@pytest.fixture
def store(any_engine):
    """(sessionmaker, clock at 2026-12-31 03:00 UTC, world) on each engine."""
    factory = make_sessionmaker(any_engine)
    clock = FrozenClock(datetime(2026, 12, 31, 3, 0, tzinfo=UTC))
    with session_scope(factory, actor="test") as s:
        s.info["clock"] = clock
        world = build_world(s, clock)
    return factory, clock, world
