"""Clocks by operator kind with an injected clock that travels across day boundaries, time zones and
a daylight-saving change; stored in UTC, shown in the viewer's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from commonwatch.clock import FrozenClock
from commonwatch.errors import Invalid
from commonwatch.incidents.clocks import (
    CaseFacts,
    clock_state,
    reporting_clocks,
    reporting_deadline,
    route_for_org_kind,
)
from commonwatch.incidents.rules import load_incident_rules
from commonwatch.incidents.timing import humanize_delta, parse_time
from commonwatch.web.templating import format_datetime

RULES = load_incident_rules(None)
REP, GRD = RULES.reporting, RULES.grading
SHANGHAI = ZoneInfo("Asia/Shanghai")


def case(discovered, route="other", level="较大", **kw) -> CaseFacts:
    return CaseFacts(discovered_at=discovered, route=route, level=level, **kw)


@pytest.mark.parametrize(("kind", "cii", "route", "hours"), [
    ("cii-operator", False, "cii", 1),  # the registry says CII: the CII route unless told otherwise
    ("government", False, "central_state_organ", 2),
    ("network-operator", False, "other", 4),
    ("other", False, "other", 4),
    ("network-operator", True, "cii", 1),  # an incident involving CII always takes the CII route
    ("government", True, "cii", 1),
])
def test_route_and_first_deadline_by_operator_kind(kind, cii, route, hours):
    involves = cii or kind == "cii-operator"
    chosen = route_for_org_kind(kind, involves, REP)
    assert chosen == route
    discovered = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    assert reporting_deadline(discovered, chosen, REP) == discovered + timedelta(hours=hours)


def test_a_general_incident_has_no_report_clock():
    clocks = reporting_clocks(case(datetime(2026, 11, 25, tzinfo=UTC), level="一般"), REP, GRD)
    assert not clocks.reportable
    assert clocks.get("first_report") is None and clocks.get("summary") is None


def test_four_hour_clock_crosses_midnight_in_beijing_and_travels_in_time():
    # Discovered 22:30 in Beijing (14:30 UTC): due 02:30 the next day in Beijing, 19:30 the same day in Berlin.
    discovered = datetime(2026, 11, 25, 22, 30, tzinfo=SHANGHAI)
    first = reporting_clocks(case(discovered), REP, GRD).get("first_report")
    assert first.due_at == datetime(2026, 11, 25, 18, 30, tzinfo=UTC)
    assert format_datetime(first.due_at, "Asia/Shanghai") == "2026-11-26 02:30 CST"
    assert format_datetime(first.due_at, "Europe/Berlin") == "2026-11-25 19:30 CET"
    assert format_datetime(first.due_at, "America/New_York") == "2026-11-25 13:30 EST"

    clock = FrozenClock(discovered)
    assert clock_state(first, clock.now(), REP) == "running"
    clock.advance(timedelta(hours=2, minutes=59))  # 1 h 1 min left: not yet at risk (at risk = last 60 min)
    assert clock_state(first, clock.now(), REP) == "running"
    clock.advance(timedelta(minutes=1))  # 23:30 -> exactly 60 minutes left
    assert clock_state(first, clock.now(), REP) == "at_risk"
    clock.set(first.due_at)  # exactly at the deadline: still within it
    assert clock_state(first, clock.now(), REP) == "at_risk"
    clock.advance(timedelta(seconds=1))
    assert clock_state(first, clock.now(), REP) == "missed"
    assert humanize_delta(first.due_at - clock.now()) == "-00:00:01"


@pytest.mark.parametrize(("sent_after", "state"), [
    (timedelta(hours=4) - timedelta(seconds=1), "met"),
    (timedelta(hours=4), "met"),
    (timedelta(hours=4, seconds=1), "late"),
])
def test_report_made_at_just_under_and_just_over_the_deadline(sent_after, state):
    discovered = datetime(2026, 12, 31, 21, 0, tzinfo=SHANGHAI)  # a year boundary too
    sent = discovered + sent_after
    first = reporting_clocks(case(discovered, first_report_at=sent), REP, GRD).get("first_report")
    assert clock_state(first, sent + timedelta(days=1), REP) == state


def test_cii_hour_and_escalation_only_for_major_and_above():
    discovered = datetime(2026, 11, 25, 23, 40, tzinfo=SHANGHAI)
    relatively = reporting_clocks(case(discovered, route="cii", level="较大"), REP, GRD)
    assert relatively.get("first_report").due_at == discovered + timedelta(hours=1)
    assert relatively.get("escalation") is None
    major = reporting_clocks(case(discovered, route="cii", level="重大"), REP, GRD)
    esc = major.get("escalation")
    # Until the first report is recorded the escalation counts from its deadline: 00:40 + 30 min.
    assert esc.due_at == discovered + timedelta(hours=1, minutes=30)
    reported = discovered + timedelta(minutes=20)
    esc = reporting_clocks(case(discovered, route="cii", level="特别重大", first_report_at=reported), REP, GRD) \
        .get("escalation")
    assert esc.due_at == reported + timedelta(minutes=30)
    assert format_datetime(esc.due_at, "Asia/Shanghai") == "2026-11-26 00:30 CST"
    other = reporting_clocks(case(discovered, route="other", level="重大"), REP, GRD).get("escalation")
    assert other.due_at - other.started_at == timedelta(hours=1)


def test_summary_report_due_thirty_days_after_handling_ends():
    discovered = datetime(2026, 11, 1, 9, 0, tzinfo=SHANGHAI)
    waiting = reporting_clocks(case(discovered), REP, GRD).get("summary")
    assert waiting.due_at is None and clock_state(waiting, discovered, REP) == "waiting"
    closed = datetime(2026, 11, 30, 23, 59, tzinfo=SHANGHAI)
    summary = reporting_clocks(case(discovered, handling_closed_at=closed), REP, GRD).get("summary")
    assert summary.due_at == closed + timedelta(days=30)
    assert format_datetime(summary.due_at, "Asia/Shanghai") == "2026-12-30 23:59 CST"
    clock = FrozenClock(closed)
    clock.advance(timedelta(days=22))
    assert clock_state(summary, clock.now(), REP) == "running"
    clock.advance(timedelta(days=1))  # 7 days left = within the last quarter of 30 days
    assert clock_state(summary, clock.now(), REP) == "at_risk"
    clock.advance(timedelta(days=7, seconds=1))
    assert clock_state(summary, clock.now(), REP) == "missed"


def test_a_one_hour_clock_across_the_daylight_saving_change_is_sixty_real_minutes():
    # Berlin leaves summer time on 25 Oct 2026 at 03:00 CEST -> 02:00 CET.
    berlin = ZoneInfo("Europe/Berlin")
    discovered = datetime(2026, 10, 25, 2, 30, tzinfo=berlin, fold=0)  # 02:30 CEST = 00:30 UTC
    first = reporting_clocks(case(discovered, route="cii"), REP, GRD).get("first_report")
    assert first.due_at == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert format_datetime(first.due_at, "Europe/Berlin") == "2026-10-25 02:30 CET"


def test_parallel_duties_follow_the_facts():
    discovered = datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)
    clocks = reporting_clocks(case(discovered, level="一般", category="DS", suspected_crime=True,
                                   facts={"pi_persons_leaked": 1, "vulnerability_endangers_public_interest": True}),
                              REP, GRD)
    keys = {c.key for c in clocks.clocks}
    assert {"duty:pipl-57", "duty:ndsmr-11", "duty:dsl-29", "duty:police-report", "duty:ndsmr-10"} <= keys
    assert "duty:sector-rules" not in keys  # only for reportable incidents
    assert clocks.get("duty:ndsmr-10").due_at == discovered + timedelta(hours=24)
    assert clocks.get("duty:pipl-57").due_at is None  # the PIPL sets no day count
    none = reporting_clocks(case(discovered, level="一般", category="NA", facts={"pi_persons_leaked": 0}), REP, GRD)
    assert not none.clocks
    cii = reporting_clocks(case(discovered, route="cii", level="重大", involves_cii=True), REP, GRD)
    assert cii.get("duty:cii-18") is not None
    done = reporting_clocks(case(discovered, level="一般", facts={"vulnerability_endangers_public_interest": True},
                                 duties_done={"ndsmr-10": discovered + timedelta(hours=25)}), REP, GRD)
    assert clock_state(done.get("duty:ndsmr-10"), discovered + timedelta(days=2), REP) == "late"


@pytest.mark.parametrize(("value", "zone", "expected"), [
    ("2026-11-25T22:30", "Asia/Shanghai", datetime(2026, 11, 25, 14, 30, tzinfo=UTC)),
    ("2026-11-25T22:30", "Europe/Berlin", datetime(2026, 11, 25, 21, 30, tzinfo=UTC)),
    ("2026-11-25T22:30+08:00", None, datetime(2026, 11, 25, 14, 30, tzinfo=UTC)),
    ("2026-11-25T14:30Z", None, datetime(2026, 11, 25, 14, 30, tzinfo=UTC)),
])
def test_times_are_read_in_the_viewers_zone_and_stored_in_utc(value, zone, expected):
    assert parse_time(value, "discovered_at", zone) == expected


def test_times_without_offset_in_the_api_and_times_in_a_dst_gap_are_refused():
    with pytest.raises(Invalid, match="time zone offset"):
        parse_time("2026-11-25T22:30", "discovered_at")
    with pytest.raises(Invalid, match="does not exist"):
        parse_time("2026-03-29T02:30", "discovered_at", "Europe/Berlin")
    with pytest.raises(Invalid, match="not a date and time"):
        parse_time("yesterday", "discovered_at", "Asia/Shanghai")
