"""Due dates of MLPS assessments and annual inspections at their boundaries, the rules file's
validation and override, and the reminders mailed through notify once each."""

from __future__ import annotations

import email
from datetime import date, timedelta
from email.header import decode_header, make_header
from types import SimpleNamespace

import pytest

from commonwatch.cii import jobs
from commonwatch.cii import services as cii
from commonwatch.cii.models import CiiSystem, SupervisionReminder
from commonwatch.cii.supervision import add_months, due_items, load_supervision_rules, parse_supervision
from commonwatch.db import session_scope
from commonwatch.rules import RulesError, load_rules

RULES = load_supervision_rules()


def system(level=3, last_mlps=None, last_inspection=None, filing=None):
    return SimpleNamespace(mlps_level=level, last_mlps_assessment=last_mlps, last_inspection=last_inspection,
                           filing_date=filing)


@pytest.mark.parametrize("start, months, due", [
    (date(2025, 1, 31), 1, date(2025, 2, 28)), (date(2024, 1, 31), 1, date(2024, 2, 29)),
    (date(2024, 2, 29), 12, date(2025, 2, 28)), (date(2025, 11, 30), 2, date(2026, 1, 30)),
    (date(2025, 7, 15), 6, date(2026, 1, 15)), (date(2025, 3, 1), 24, date(2027, 3, 1)),
])
def test_add_months(start, months, due):
    assert add_months(start, months) == due


@pytest.mark.parametrize("today, state, left", [
    (date(2026, 10, 20), "ok", 61),         # the day before the 60-day window
    (date(2026, 10, 21), "due_soon", 60),   # the window opens 60 days before
    (date(2026, 12, 20), "due_soon", 0),    # the due date itself is still in time
    (date(2026, 12, 21), "overdue", -1),    # the day after
])
def test_level3_assessment_boundaries(today, state, left):
    d = due_items(system(3, last_mlps=date(2025, 12, 20)), today, RULES)["mlps"]
    assert d.due_on == date(2026, 12, 20) and (d.state, d.days_left) == (state, left)
    assert d.status == "provisional" and d.citation["zh"]


@pytest.mark.parametrize("level, months", [(2, 24), (3, 12), (4, 6), (5, 6)])
def test_interval_by_level(level, months):
    last = date(2024, 3, 10)
    assert due_items(system(level, last_mlps=last), date(2024, 3, 11), RULES)["mlps"].due_on == add_months(last, months)


def test_level1_has_no_periodic_assessment_but_still_the_annual_inspection():
    items = due_items(system(1, last_inspection=date(2025, 11, 25)), date(2026, 11, 25), RULES)
    assert items["mlps"].state == "none" and not items["mlps"].needs_action
    insp = items["inspection"]
    assert insp.due_on == date(2026, 11, 25) and insp.state == "due_soon" and insp.status == "verified"
    assert "Art. 17" in insp.citation["en"] and "第十七条" in insp.citation["zh"]


def test_never_assessed_counts_from_filing_else_unknown():
    filed = due_items(system(3, filing=date(2026, 3, 1)), date(2026, 11, 25), RULES)
    assert filed["mlps"].due_on == date(2027, 3, 1) and filed["mlps"].state == "ok"
    none = due_items(system(3), date(2026, 11, 25), RULES)
    assert none["mlps"].state == none["inspection"].state == "unknown" and none["mlps"].needs_action


def test_malformed_rules_refused_and_operator_copy_wins(tmp_path):
    data = load_rules("cii_supervision.yaml")
    broken = {**data, "due_soon_days": -1}
    with pytest.raises(RulesError, match="due_soon_days"):
        parse_supervision(broken)
    levels = [dict(x) for x in data["mlps_assessment"]["levels"] if x["level"] != 4]
    with pytest.raises(RulesError, match="levels 1 to 5"):
        parse_supervision({**data, "mlps_assessment": {"levels": levels}})
    (tmp_path / "rules").mkdir()
    text = (load_rules.__globals__["rules_path"]("cii_supervision.yaml")).read_text(encoding="utf-8")
    (tmp_path / "rules" / "cii_supervision.yaml").write_text(text.replace("due_soon_days: 60", "due_soon_days: 90"),
                                                             encoding="utf-8")
    assert load_supervision_rules(tmp_path).due_soon_days == 90


def test_reminders_made_once_and_mailed_to_contacts_and_coordinators(app, world, clock):
    state = app.state
    with session_scope(state.sessionmaker, actor="test") as s:
        s.add(CiiSystem(org_id=world.org_b, name="Dispatch SCADA", mlps_level=3, protection_department="NEA",
                        last_mlps_assessment=date(2025, 12, 20), last_inspection=date(2026, 6, 1)))
    assert jobs.remind(state) == "1 reminders made; 1 mailed"
    outbox = sorted((state.settings.data_dir / "notify" / "outbox").glob("cii-reminder-*.eml"))
    msgs = [email.message_from_bytes(p.read_bytes()) for p in outbox]
    to = {m["To"]: str(make_header(decode_header(m["Subject"]))) for m in msgs}
    assert set(to) == {"secret-b@bravo.example", "coordinator@test.example"}
    assert to["coordinator@test.example"] == "Due soon: MLPS assessment of Dispatch SCADA"
    assert to["secret-b@bravo.example"].startswith("即将到期")  # the contact reads Chinese
    # Nothing new the same day; the next state (overdue) is reminded once when the clock reaches it.
    assert jobs.remind(state) == "0 reminders made; 0 mailed"
    clock.advance(timedelta(days=30))
    assert jobs.remind(state) == "1 reminders made; 1 mailed"
    with session_scope(state.sessionmaker, actor="test") as s:
        rows = s.query(SupervisionReminder).order_by(SupervisionReminder.id).all()
        assert [(r.kind, r.state) for r in rows] == [("mlps", "due_soon"), ("mlps", "overdue")]
        assert all(r.delivered_at and "email secret-b@bravo.example" in r.delivery for r in rows)
        assert cii.reminders(s, __import__("tests.cii.conftest", fromlist=["x"]).constituent_of(world.org_a)) == []
