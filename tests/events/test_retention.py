"""Retention (``commonwatch events retention`` and the daily job): days older than
``event_retention_days`` are dropped whole, recent days kept, events linked to an incident kept
(legal hold), one audit record a run naming the days; a dry run changes nothing. On the Parquet
store (after a move from the table, as an installation does it) and on the SQL table."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from commonwatch.access import services as access
from commonwatch.access.models import AuditEntry, User
from commonwatch.access.principal import SYSTEM
from commonwatch.db import session_scope
from commonwatch.events.jobs import run_retention
from commonwatch.events.migrate import move_events
from commonwatch.events.search import EventFilter
from commonwatch.events.store import event_store
from commonwatch.events.store.parquet import ParquetEventStore
from commonwatch.events.store.sql import SqlEventStore
from commonwatch.incidents import services as incidents
from commonwatch.incidents.models import IncidentEvent
from commonwatch.incidents.rules import load_incident_rules
from tests.events.eventdata import event_row, insert_events

KINDS = ("parquet", "sql")


def _day(clock, days_ago: int, hour: int = 12) -> datetime:
    midnight = datetime.combine((clock.now() - timedelta(days=days_ago)).date(), datetime.min.time(), UTC)
    return midnight + timedelta(hours=hour)


@pytest.fixture
def stored(app, world, engine, clock, tmp_path):
    """Events 405, 402 and 401 days old (past the 400-day default) and 399 and 3 days old, 20 a
    day; two of the 402-day-old ones linked to an incident. Returns (settings of each kind, rows by
    day age, the held ids)."""
    rows: dict[int, list[dict]] = {}
    n = 0
    for age in (405, 402, 401, 399, 3):
        rows[age] = [event_row(n + i, at=_day(clock, age) + timedelta(minutes=i), org_id=world.org_a)
                     for i in range(20)]
        n += 20
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, [r for day in rows.values() for r in day], "sql")
        ids = SqlEventStore(s).existing_keys([r["event_key"] for day in rows.values() for r in day])
    for day in rows.values():
        for r in day:
            r["id"] = ids[r["event_key"]]
    held = [rows[402][3]["id"], rows[402][11]["id"]]
    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        who = access.principal_for(s, s.get(User, world.ids["user_a"]))
        case = incidents.file_incident(s, who, {
            "title": "Database leak", "affected_system": "CRM database", "category": "DS",
            "subcategory": "DSLEAK", "effects": "Records offered for sale", "discovered_at": "2026-11-25T09:30:00+08:00"},
            now=clock.now(), rules=load_incident_rules(None))
        s.execute(IncidentEvent.__table__.insert(), [{"incident_id": case.id, "event_id": i, "linked_at": clock.now(),
                                                      "linked_by": "test"} for i in held])
    folder = tmp_path / "events"
    move_events(SqlEventStore(engine), ParquetEventStore(folder))
    return rows, held, folder


def _ids(kind, engine, folder) -> set[int]:
    store = ParquetEventStore(folder) if kind == "parquet" else SqlEventStore(engine)
    return set(store.scan(SYSTEM, [], limit=10_000)["id"].to_list())


def _audits(app) -> list[dict]:
    with app.state.sessionmaker() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "events.retention")
                            .order_by(AuditEntry.id)).all()
        return [json.loads(e.after) | {"actor": e.actor} for e in entries]


@pytest.mark.parametrize("kind", KINDS)
def test_dry_run_changes_nothing_and_says_what_would_go(kind, stored, run, app, engine):
    rows, held, folder = stored
    before = _ids(kind, engine, folder)
    result = run("events", "retention", "--dry-run", event_store=kind, event_store_dir=folder)
    assert result.exit_code == 0, result.output
    assert "would drop 58 event(s)" in result.output
    assert _ids(kind, engine, folder) == before
    (audit,) = _audits(app)
    assert audit["dry_run"] is True and audit["dropped"] == 58 and audit["store"] == kind


@pytest.mark.parametrize("kind", KINDS)
def test_old_days_go_recent_days_and_held_events_stay(kind, stored, run, clock, app, engine):
    rows, held, folder = stored
    generation = ParquetEventStore(folder).manifest().generation
    result = run("events", "retention", event_store=kind, event_store_dir=folder)
    assert result.exit_code == 0, result.output
    left = _ids(kind, engine, folder)
    assert left == {r["id"] for age in (399, 3) for r in rows[age]} | set(held)
    (audit,) = _audits(app)
    days = {d["day"]: (d["dropped"], d["kept"]) for d in audit["days"]}
    assert days == {_day(clock, 405).date().isoformat(): (20, 0), _day(clock, 402).date().isoformat(): (18, 2),
                    _day(clock, 401).date().isoformat(): (20, 0)}
    assert (audit["dry_run"], audit["dropped"], audit["kept"], audit["actor"]) == (False, 58, 2, "cli")
    assert audit["cutoff"] == (clock.now() - timedelta(days=400)).date().isoformat()
    # The held events are still whole, readable by id.
    store = ParquetEventStore(folder) if kind == "parquet" else SqlEventStore(engine)
    kept = store.fetch(SYSTEM, held, ["event_key", "time_source"])
    assert sorted(kept["event_key"].to_list()) == sorted(rows[402][i]["event_key"] for i in (3, 11))
    if kind == "parquet":  # every day dropped or rewritten in one manifest commit
        assert ParquetEventStore(folder).manifest().generation == generation + 1
    # A second run finds only the held events.
    again = run("events", "retention", event_store=kind, event_store_dir=folder)
    assert "dropped 0 event(s)" in again.output
    assert _ids(kind, engine, folder) == left


def test_the_daily_job_runs_retention_as_the_system(stored, settings, clock, app, engine):
    rows, held, folder = stored
    state = SimpleNamespace(settings=settings.model_copy(update={"event_store": "parquet", "event_store_dir": folder,
                                                                 "event_retention_days": 402}),
                            sessionmaker=app.state.sessionmaker, clock=clock)
    assert run_retention(state).startswith("20 events dropped")
    assert _ids("parquet", engine, folder) == {r["id"] for age in (402, 401, 399, 3) for r in rows[age]}
    (audit,) = _audits(app)
    assert audit["actor"] == "system retention" and audit["retention_days"] == 402
    assert event_store(engine, "sql").count_capped(SYSTEM, EventFilter())[0] == 100  # the table is untouched


def test_warnings_of_dropped_events_go_with_them(stored, settings, clock, app, engine, world):
    """No foreign key ties a warning to its event (the store may live outside the database):
    retention removes the warnings of what it drops and keeps those of held and recent events."""
    from commonwatch.notify.models import EventWarning

    rows, held, folder = stored
    warned = {"dropped": rows[405][0], "held": next(r for r in rows[402] if r["id"] == held[0]), "recent": rows[3][0]}
    with session_scope(app.state.sessionmaker, actor="test") as s:
        for i, r in enumerate(warned.values()):
            s.add(EventWarning(org_id=world.org_a, event_id=r["id"], obs_key=i, time_source=r["time_source"],
                               classification_type="scanner", severity="low"))
    state = SimpleNamespace(settings=settings.model_copy(update={"event_store": "parquet", "event_store_dir": folder}),
                            sessionmaker=app.state.sessionmaker, clock=clock)
    run_retention(state)
    with app.state.sessionmaker() as s:
        left = set(s.scalars(select(EventWarning.event_id)))
    assert left == {warned["held"]["id"], warned["recent"]["id"]}
    assert _audits(app)[0]["warnings_removed"] == 1
