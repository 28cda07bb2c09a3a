"""The reporting clocks indicator, counted in the database, equals the count made incident by
incident: met (done by its due time, the boundary included), missed (done late, or not done and
past due), running; clocks without a due time are not counted; only the period's incidents."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import numpy as np
from sqlalchemy import insert

from commonwatch.access.principal import SYSTEM
from commonwatch.constituency import services as registry
from commonwatch.db import make_sessionmaker, session_scope
from commonwatch.incidents.models import Incident
from commonwatch.reports import indicators as ind
from commonwatch.reports.query import Filters, Period

CLOCKS = {"first report": ("first_report_due", "first_report_at"),
          "escalation": ("escalation_due", "escalated_at"),
          "summary report": ("summary_due", "summary_report_at")}
NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def _incidents(rng: np.random.Generator, org_id: int, k: int) -> list[dict]:
    """``k`` incidents discovered over Oct–Nov 2026 (some outside the November period), each clock
    absent, done early, done exactly on time, done late, or open before or after ``NOW``."""
    rows = []
    for i in range(k):
        found = datetime(2026, 10, 25, tzinfo=UTC) + timedelta(minutes=int(rng.integers(0, 40 * 24 * 60)))
        row = {"ref": f"INC-T-{i}", "org_id": org_id, "title": f"incident {i}", "route": "centre",
               "discovered_at": found, "category": "MPE", "rsit_class": "other", "rsit_type": "other",
               "computed_level": "一般", "level": "一般", "status": "new"}
        for due_col, done_col in CLOCKS.values():
            due = found + timedelta(hours=int(rng.integers(1, 72)))
            kind = int(rng.integers(0, 5))
            row[due_col] = None if kind == 0 else due
            row[done_col] = {0: None, 1: due - timedelta(minutes=5), 2: due, 3: due + timedelta(seconds=1),
                             4: None}[kind]
        rows.append(row)
    return rows


def _expected(rows: list[dict], period: Period) -> Counter:
    since, until = period.since, period.until
    out: Counter = Counter()
    for r in rows:
        if not since <= r["discovered_at"] < until:
            continue
        for name, (due_col, done_col) in CLOCKS.items():
            due, done = r[due_col], r[done_col]
            if due is None:
                continue
            outcome = ("met" if done <= due else "missed") if done is not None else (
                "missed" if due < NOW else "running")
            out[(name, outcome)] += 1
    return out


def test_clocks_counted_in_the_database_equal_each_incidents_own(any_engine):
    factory = make_sessionmaker(any_engine)
    with session_scope(factory, actor="test") as s:
        org = registry.create_org(s, {"name": "A", "kind": "network-operator", "sector": "telecom"}).id
    rows = _incidents(np.random.default_rng(20261206), org, 400)
    with any_engine.begin() as conn:
        conn.execute(insert(Incident), rows)
    period = Period(date(2026, 11, 1), date(2026, 12, 1), "Asia/Shanghai")
    with session_scope(factory, actor="test") as s:
        got = ind.compute("incidents.clocks", ind.Context(s, SYSTEM, period, Filters(), now=NOW))
    counted = Counter({(c, o): n for c, o, n in got.data.iter_rows() if n})
    expected = _expected(rows, period)
    assert counted == expected
    assert {o for _, o in expected} == {"met", "missed", "running"}  # every outcome is exercised
    assert len(got.data) == 9  # each clock's three outcomes, zeros included
