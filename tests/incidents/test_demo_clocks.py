"""The demo stays alive: its clocks are set from the time the demo is loaded, and one of them (the
summary report, 30 days after handling ends) is still running a day later. The first-report
clocks are 1–4 hours by law, so they are expected to run out within hours of `make run`."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from commonwatch.demo import load_demo
from commonwatch.incidents.alerts import clock_state, clocks_for
from commonwatch.incidents.models import Incident
from commonwatch.incidents.rules import load_incident_rules
from commonwatch.runtime import Runtime


def test_a_demo_clock_runs_for_more_than_a_day_from_when_the_demo_is_loaded(app, settings, clock):
    clock.advance(timedelta(days=40, hours=5))  # any moment: the demo is set relative to it
    now = clock.now()
    load_demo(Runtime(settings, clock))
    rules = load_incident_rules(settings.data_dir)
    with app.state.sessionmaker() as s:
        clocks = [(i, c) for i in s.scalars(select(Incident)) for c in clocks_for(i, rules).clocks]
    assert clocks
    running = [(i, c) for i, c in clocks if clock_state(c, now, rules.reporting) == "running"]
    long = [(i, c) for i, c in running if c.due_at and c.due_at - now > timedelta(days=1)]
    assert long and all(clock_state(c, now + timedelta(days=1), rules.reporting) == "running" for _i, c in long)
    assert {c.key for _i, c in long} == {"summary"}
    # First-report clocks start from discoveries minutes or hours before the load, not at a fixed date.
    firsts = [c for _i, c in clocks if c.key == "first_report" and c.due_at]
    assert all(abs(c.due_at - now) < timedelta(days=13) for c in firsts)
    assert any(c.due_at > now for c in firsts)
