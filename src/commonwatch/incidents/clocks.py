"""Regulatory clocks: pure functions from the case's facts and the rules to deadlines and states.

Every clock runs in absolute time from ``discovered_at`` (stored in UTC); a deadline is shown in the
viewer's zone only when rendered. "Within N hours" includes the last instant: a report made exactly
at the deadline is on time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from commonwatch.clock import ensure_utc
from commonwatch.incidents.rules import GradingRules, ReportingRules, Route, Text


@dataclass(frozen=True)
class CaseFacts:
    """What the clocks read from a case."""

    discovered_at: datetime
    route: str  # cii | central_state_organ | other
    level: str
    category: str = ""
    involves_cii: bool = False
    suspected_crime: bool = False
    facts: dict[str, Any] = field(default_factory=dict)  # grading and duty facts
    first_report_at: datetime | None = None
    escalated_at: datetime | None = None
    handling_closed_at: datetime | None = None
    summary_report_at: datetime | None = None
    duties_done: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class Clock:
    key: str  # first_report | escalation | summary | duty:<id>
    title: Text
    recipients: tuple[Text, ...]
    due_at: datetime | None  # None: no number in the law, or the clock has not started
    started_at: datetime | None
    done_at: datetime | None
    citation: Text
    status: str  # verified | provisional
    note: Text | None = None

    @property
    def window(self) -> timedelta | None:
        if self.due_at is None or self.started_at is None:
            return None
        return self.due_at - self.started_at


@dataclass(frozen=True)
class Clocks:
    reportable: bool
    route: Route
    level: str
    clocks: tuple[Clock, ...]

    def get(self, key: str) -> Clock | None:
        return next((c for c in self.clocks if c.key == key), None)


def reporting_deadline(discovered_at: datetime, route: str, rules: ReportingRules) -> datetime:
    """The first-report deadline: ``discovered_at`` plus the route's limit (1 h, 2 h or 4 h)."""
    return ensure_utc(discovered_at) + timedelta(minutes=rules.routes[route].first_minutes)


def escalation_deadline(anchor: datetime, route: str, rules: ReportingRules) -> datetime:
    """The receiving authority's escalation deadline, from the moment the first report reached it."""
    return ensure_utc(anchor) + timedelta(minutes=rules.routes[route].escalation_minutes)


def summary_deadline(handling_closed_at: datetime, rules: ReportingRules) -> datetime:
    """The summary report is due N days (30) after handling ends."""
    return ensure_utc(handling_closed_at) + timedelta(days=rules.summary_days)


def route_for_org_kind(kind: str, involves_cii: bool, rules: ReportingRules) -> str:
    """The reporting route an organisation kind takes; an incident involving CII always takes the CII route."""
    if involves_cii:
        return "cii"
    return rules.org_kind_routes.get(kind, "other")


def at_least(level: str, floor: str, grading: GradingRules) -> bool:
    return grading.rank(level) >= grading.rank(floor)


def duty_applies(when: dict[str, Any], case: CaseFacts, reportable: bool, grading: GradingRules) -> bool:
    """All conditions of a duty's ``when`` hold for the case."""
    for key, expected in when.items():
        if key == "input":
            value = case.facts.get(expected)
            op = when.get("op")
            if op == "true" and value is not True:
                return False
            if op == "ge" and not (isinstance(value, int | float) and not isinstance(value, bool)
                                   and value >= when.get("value", 0)):
                return False
        elif key in ("op", "value"):
            continue
        elif key == "category":
            if case.category not in expected:
                return False
        elif key == "level_at_least":
            if not at_least(case.level, expected, grading):
                return False
        elif key == "involves_cii":
            if case.involves_cii != bool(expected):
                return False
        elif key == "suspected_crime":
            if case.suspected_crime != bool(expected):
                return False
        elif key == "reportable" and reportable != bool(expected):
            return False
    return True


_FIRST = Text("First report", "首次报告")
_ESCALATION = Text("Escalation by the receiving authority", "接报部门逐级上报")
_SUMMARY = Text("Summary report", "总结报告")
_ESC_NOTE = Text("Counted from the first report; until that is recorded, from its deadline.",
                 "自首次报告起算；尚未记录首次报告时，自首次报告时限起算。")
_SUMMARY_NOTE = Text("Starts when handling ends.", "自事件处置结束起算。")


def reporting_clocks(case: CaseFacts, reporting: ReportingRules, grading: GradingRules) -> Clocks:
    """Every clock that runs for the case: first report, escalation, summary report, parallel duties."""
    route = reporting.routes[case.route]
    discovered = ensure_utc(case.discovered_at)
    reportable = at_least(case.level, reporting.reportable_from, grading)
    clocks: list[Clock] = []
    if reportable:
        first_due = reporting_deadline(discovered, case.route, reporting)
        clocks.append(Clock("first_report", _FIRST, route.first_recipients, first_due, discovered,
                            case.first_report_at, route.citation, route.status))
        if at_least(case.level, reporting.escalation_from, grading) and route.escalation_minutes:
            anchor = case.first_report_at or first_due
            clocks.append(Clock("escalation", _ESCALATION, route.escalation_recipients,
                                escalation_deadline(anchor, case.route, reporting), ensure_utc(anchor),
                                case.escalated_at, reporting.escalation_citation, route.status, _ESC_NOTE))
        closed = case.handling_closed_at
        clocks.append(Clock("summary", _SUMMARY, route.first_recipients,
                            summary_deadline(closed, reporting) if closed else None,
                            ensure_utc(closed) if closed else None, case.summary_report_at,
                            reporting.summary_citation, reporting.summary_status, None if closed else _SUMMARY_NOTE))
    for duty in reporting.duties:
        if not duty_applies(duty.when, case, reportable, grading):
            continue
        due = discovered + timedelta(hours=duty.hours) if duty.hours is not None else None
        clocks.append(Clock(f"duty:{duty.id}", duty.text, (), due, discovered, case.duties_done.get(duty.id),
                            duty.citation, duty.status))
    return Clocks(reportable, route, case.level, tuple(clocks))


def clock_state(clock: Clock, now: datetime, reporting: ReportingRules) -> str:
    """``met`` / ``late`` once done; else ``missed``, ``at_risk``, ``running``; ``open`` with no deadline,
    ``waiting`` before the clock starts."""
    now = ensure_utc(now)
    if clock.done_at is not None:
        if clock.due_at is not None and ensure_utc(clock.done_at) > clock.due_at:
            return "late"
        return "met"
    if clock.due_at is None:
        return "waiting" if clock.started_at is None else "open"
    if now > clock.due_at:
        return "missed"
    if now >= clock.due_at - at_risk_window(clock, reporting):
        return "at_risk"
    return "running"


def at_risk_window(clock: Clock, reporting: ReportingRules) -> timedelta:
    """How long before its deadline a clock counts as at risk: a fraction of its window, at least N minutes."""
    window = clock.window or timedelta(0)
    return max(window * reporting.at_risk_fraction, timedelta(minutes=reporting.at_risk_min_minutes))
