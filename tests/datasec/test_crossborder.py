"""The cross-border engine: every row of the decision order, every threshold on both sides, the
calendar-year boundary of the cumulative counts, obligations, warnings, validity and reminders."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime

import pytest
import yaml

from commonwatch.access.principal import SYSTEM
from commonwatch.clock import FrozenClock
from commonwatch.datasec import crossborder as xb
from commonwatch.datasec import services as ds
from commonwatch.datasec.ftz import answer_for, load_ftz_lists, parse_ftz_list
from commonwatch.datasec.models import ApprovalReminder
from commonwatch.db import session_scope
from commonwatch.errors import Invalid
from commonwatch.rules import RulesError

RULES = xb.crossborder_rules()
DAY = date(2026, 6, 1)


def decide(recorded=(0, 0), **kw) -> xb.Decision:
    inputs = xb.TransferInputs(transfer_date=kw.pop("transfer_date", DAY), **kw)
    xb.check_inputs(inputs, RULES, {"example-ftz"})
    return xb.decide(inputs, recorded, RULES)


# --- the decision order, row by row ---------------------------------------------------------------

@pytest.mark.parametrize(("step", "rule", "mechanism", "inputs"), [
    (1, "art3_no_pi_trade", "exempt", dict(contains_pi=False, scenario="trade")),
    (1, "art3_no_pi_trade", "exempt", dict(contains_pi=False, scenario="academic", is_ciio=True)),
    (1, "art3_inference_no_pi_no_important", "exempt", dict(contains_pi=False, scenario="other")),
    (2, "art4_foreign_origin", "exempt", dict(scenario="foreign_origin_return", foreign_origin_no_domestic_mix=True,
                                              persons_non_sensitive=5_000_000, is_ciio=True)),
    (3, "art5_necessary", "exempt", dict(scenario="contract_with_individual", persons_non_sensitive=2_000_000,
                                         contains_sensitive_pi=True, persons_sensitive=50_000)),
    (3, "art5_necessary", "exempt", dict(scenario="cross_border_hr", persons_non_sensitive=300_000, is_ciio=True)),
    (3, "art5_necessary", "exempt", dict(scenario="emergency", persons_non_sensitive=10)),
    (4, "art6_ftz_not_on_list", "exempt", dict(ftz="example-ftz", on_ftz_negative_list="no",
                                               persons_non_sensitive=5_000_000)),
    (5, "art7_important_data", "security_assessment", dict(contains_pi=False, important_data="notified_or_published",
                                                           scenario="trade")),
    (5, "art7_important_data", "security_assessment", dict(important_data="notified_or_published",
                                                           scenario="contract_with_individual",
                                                           persons_non_sensitive=10)),
    (6, "art7_ciio", "security_assessment", dict(is_ciio=True, persons_non_sensitive=1)),
    (7, "art7_volume", "security_assessment", dict(persons_non_sensitive=1_000_000)),
    (7, "art7_volume", "security_assessment", dict(contains_sensitive_pi=True, persons_sensitive=10_000,
                                                   persons_non_sensitive=1)),
    (8, "art8_contract_or_certification", "standard_contract_or_certification", dict(persons_non_sensitive=100_000)),
    (8, "art8_contract_or_certification", "standard_contract_or_certification",
     dict(contains_sensitive_pi=True, persons_sensitive=1)),
    (9, "art5_4_small_volume", "exempt", dict(persons_non_sensitive=99_999)),
])
def test_every_row_of_the_decision_order(step, rule, mechanism, inputs):
    d = decide(**inputs)
    assert (d.rule["step"], d.rule["id"], d.mechanism) == (step, rule, mechanism)
    assert d.rule["citation"]["en"] and d.rule["citation"]["zh"]
    assert d.rule["status"] in ("verified", "provisional")
    assert d.rule["citation"] in d.citations


def test_ftz_list_unclear_or_listed_falls_through_with_a_warning():
    listed = decide(ftz="example-ftz", on_ftz_negative_list="yes", persons_non_sensitive=200_000)
    assert listed.rule["id"] == "art8_contract_or_certification"
    unclear = decide(ftz="example-ftz", on_ftz_negative_list="unclear", important_data="notified_or_published",
                     persons_non_sensitive=10)
    assert unclear.rule["id"] == "art7_important_data"
    assert "ftz_list_unclear" in {w["id"] for w in unclear.warnings}


# --- thresholds on both sides ------------------------------------------------------------------------

@pytest.mark.parametrize(("non_sensitive", "sensitive", "mechanism", "rule"), [
    (99_999, 0, "exempt", "art5_4_small_volume"),
    (100_000, 0, "standard_contract_or_certification", "art8_contract_or_certification"),
    (999_999, 0, "standard_contract_or_certification", "art8_contract_or_certification"),
    (1_000_000, 0, "security_assessment", "art7_volume"),
    (1, 0, "exempt", "art5_4_small_volume"),
    (0, 1, "standard_contract_or_certification", "art8_contract_or_certification"),
    (0, 9_999, "standard_contract_or_certification", "art8_contract_or_certification"),
    (0, 10_000, "security_assessment", "art7_volume"),
    (99_999, 9_999, "standard_contract_or_certification", "art8_contract_or_certification"),
    (999_999, 9_999, "standard_contract_or_certification", "art8_contract_or_certification"),
])
def test_thresholds_on_both_sides(non_sensitive, sensitive, mechanism, rule):
    d = decide(persons_non_sensitive=non_sensitive, persons_sensitive=sensitive,
               contains_sensitive_pi=sensitive > 0)
    assert (d.mechanism, d.rule["id"]) == (mechanism, rule)


@pytest.mark.parametrize(("before", "now", "mechanism"), [
    (99_998, 1, "exempt"), (99_999, 1, "standard_contract_or_certification"),
    (999_998, 1, "standard_contract_or_certification"), (999_999, 1, "security_assessment"),
])
def test_cumulative_counts_cross_thresholds(before, now, mechanism):
    d = decide(recorded=(before, 0), persons_non_sensitive=now)
    assert d.mechanism == mechanism
    crossed = [t["id"] for t in d.thresholds if t["crossed_now"]]
    if before + now in (100_000, 1_000_000):
        assert crossed, d.thresholds
    else:
        assert not crossed


def test_sensitive_counts_are_kept_apart():
    d = decide(recorded=(50_000, 9_998), contains_sensitive_pi=True, persons_sensitive=1, persons_non_sensitive=10)
    assert d.mechanism == "standard_contract_or_certification"
    assert (d.counts["non_sensitive_after"], d.counts["sensitive_after"]) == (50_010, 9_999)
    d = decide(recorded=(50_000, 9_999), contains_sensitive_pi=True, persons_sensitive=1, persons_non_sensitive=10)
    assert d.mechanism == "security_assessment"


def test_exports_made_outside_are_added():
    d = decide(prior_non_sensitive_outside=99_000, persons_non_sensitive=1_000)
    assert d.mechanism == "standard_contract_or_certification"


def test_approach_warnings_before_a_threshold_is_crossed():
    near = decide(persons_non_sensitive=95_000)
    assert near.mechanism == "exempt"
    assert "approaching_exempt_non_sensitive_below" in {w["id"] for w in near.warnings}
    far = decide(persons_non_sensitive=50_000)
    assert not [w for w in far.warnings if w["id"].startswith("approaching")]
    near_sa = decide(contains_sensitive_pi=True, persons_sensitive=9_500, persons_non_sensitive=1)
    assert "approaching_assessment_sensitive" in {w["id"] for w in near_sa.warnings}


# --- obligations and warnings ----------------------------------------------------------------------

def test_obligations_remain_whatever_the_mechanism():
    exempt = decide(persons_non_sensitive=10)
    ids = {o["id"] for o in exempt.obligations}
    assert {"notice", "separate_consent", "pipia"} <= ids
    pipia = next(o for o in exempt.obligations if o["id"] == "pipia")
    assert pipia["keep_until"] == "2029-06-01"
    contract = decide(persons_non_sensitive=200_000)
    filing = next(o for o in contract.obligations if o["id"] == "filing_standard_contract")
    assert filing["deadline_working_days"] == 10
    assert "no_splitting" in {w["id"] for w in contract.warnings}
    sa = decide(is_ciio=True, persons_non_sensitive=5)
    assert "filing_security_assessment" in {o["id"] for o in sa.obligations}
    no_pi = decide(contains_pi=False, scenario="trade")
    assert not no_pi.obligations


def test_warnings_from_the_rules():
    d = decide(important_data="self_identified_unconfirmed", persons_non_sensitive=10, treaty_applies=True,
               persons_processed=12_000_000, scenario="statutory_duty")
    assert {"self_identified_important", "treaty", "old_processing_trigger", "statutory_duty",
            "large_volume_important_duties"} <= {w["id"] for w in d.warnings}
    assert all(w["citation"]["en"] for w in d.warnings)


def test_an_existing_assessment_is_named():
    inputs = xb.TransferInputs(transfer_date=DAY, is_ciio=True, persons_non_sensitive=5)
    d = xb.decide(inputs, (0, 0), RULES, covering_approval={"reference": "SA-1", "valid_until": "2027-01-01"})
    assert "covered_by_approval" in {w["id"] for w in d.warnings}


@pytest.mark.parametrize(("fields", "bad"), [
    (dict(contains_pi=False, persons_non_sensitive=5), "contains_pi"),
    (dict(contains_sensitive_pi=True, persons_non_sensitive=5), "persons_sensitive"),
    (dict(persons_sensitive=5, persons_non_sensitive=5), "contains_sensitive_pi"),
    (dict(persons_non_sensitive=-1), "persons_non_sensitive"),
    (dict(persons_non_sensitive=0), "persons_non_sensitive"),
    (dict(scenario="holiday", persons_non_sensitive=5), "scenario"),
    (dict(important_data="maybe", persons_non_sensitive=5), "important_data"),
    (dict(ftz="nowhere", on_ftz_negative_list="no", persons_non_sensitive=5), "ftz"),
    (dict(ftz="example-ftz", persons_non_sensitive=5), "on_ftz_negative_list"),
])
def test_inconsistent_inputs_are_refused_naming_the_field(fields, bad):
    with pytest.raises(Invalid) as info:
        decide(**fields)
    assert bad in info.value.by_field()


def test_citations_in_chinese():
    assert xb.zh_article("Art. 5(1)-(3); NDSMR Art. 35") == "第5条第(1)-(3)项；《网络数据安全管理条例》第35条"
    d = decide(persons_non_sensitive=10)
    assert "《促进和规范数据跨境流动规定》" in d.rule["citation"]["zh"] and "第5条第(4)项" in d.rule["citation"]["zh"]


# --- the rules file is checked -----------------------------------------------------------------------

def _broken(mutate) -> dict:
    data = copy.deepcopy(RULES)
    mutate(data)
    return data


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["decision_order"][0].pop("citation"), "citation"),
    (lambda d: d["decision_order"][0].update(status="final"), "status"),
    (lambda d: d["decision_order"][0].update(decision="maybe"), "decision"),
    (lambda d: d["decision_order"][1].update(id=d["decision_order"][0]["id"]), "unique id"),
    (lambda d: d["decision_order"][0]["when"].append({"fact": "colour", "is": "red"}), "unknown fact"),
    (lambda d: d["decision_order"][7]["when"][2]["any"].append({"fact": "ytd_sensitive", "gte": "$nope"}),
     "unknown threshold"),
    (lambda d: d["thresholds"]["assessment_sensitive"].update(value="ten thousand"), "integer"),
    (lambda d: d.pop("obligations"), "obligations"),
    (lambda d: d["validity"]["security_assessment"].pop("years"), "years"),
])
def test_a_malformed_rules_file_is_refused(mutate, message):
    with pytest.raises(RulesError, match=message):
        xb.validate_rules(_broken(mutate), "crossborder.yaml")


def test_an_operator_copy_of_the_rules_wins(tmp_path):
    data = copy.deepcopy(RULES)
    data["thresholds"]["exempt_non_sensitive_below"]["value"] = 50_000
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "crossborder.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    mine = xb.crossborder_rules(tmp_path)
    inputs = xb.TransferInputs(transfer_date=DAY, persons_non_sensitive=60_000)
    assert xb.decide(inputs, (0, 0), mine).mechanism == "standard_contract_or_certification"
    assert xb.decide(inputs, (0, 0), RULES).mechanism == "exempt"


# --- free-trade-zone lists ------------------------------------------------------------------------------

def test_ftz_lists_load_as_dated_files_and_the_example_says_so(tmp_path):
    lists = load_ftz_lists()
    example = lists["example-ftz"]
    assert example.example and example.status == "provisional" and example.effective == date(2024, 5, 1)
    assert answer_for(example, ["EX-2"], False) == "yes"
    assert answer_for(example, [], True) == "unclear"
    assert answer_for(example, [], False) == "no"
    (tmp_path / "rules" / "ftz").mkdir(parents=True)
    (tmp_path / "rules" / "ftz" / "tianjin-2024-05.yaml").write_text(
        "name: ftz_negative_list\nversion: 1\neffective: 2024-05-09\nid: tianjin\nstatus: provisional\n"
        "zone: {en: Tianjin FTZ, zh: 天津自贸试验区}\ncitation: {en: list, zh: 清单}\n"
        "categories:\n  - {code: T1, en: one, zh: 一}\n", encoding="utf-8")
    both = load_ftz_lists(tmp_path)
    assert set(both) == {"example-ftz", "tianjin"} and not both["tianjin"].example


@pytest.mark.parametrize(("text", "message"), [
    ("name: x\nversion: 1\neffective: 2024-01-01\n", "lacks 'id'"),
    ("name: x\nversion: 1\neffective: nope\nid: a\nstatus: provisional\nzone: {}\ncitation: {}\n"
     "categories: [{code: a, en: b, zh: c}]\n", "effective"),
    ("name: x\nversion: 1\neffective: 2024-01-01\nid: a\nstatus: provisional\nzone: {}\ncitation: {}\n"
     "categories: [{code: a}]\n", "categories"),
])
def test_a_malformed_ftz_list_is_refused(text, message):
    with pytest.raises(RulesError, match=message):
        parse_ftz_list(text, "bad.yaml")


# --- validity, the extension window and working days ------------------------------------------------------

def test_validity_is_three_years_and_the_window_opens_60_working_days_before():
    v = xb.validity("security_assessment", date(2026, 3, 2), RULES)
    assert v["valid_until"] == date(2029, 3, 1)
    cal = xb.WorkingCalendar.from_rules(RULES)
    opens = v["window_opens"]
    days = sum(1 for n in range((v["valid_until"] - opens).days + 1)
               if cal.is_working_day(date.fromordinal(opens.toordinal() + n)))
    assert days == 60 and cal.is_working_day(opens)
    assert v["warnings"], "no holiday calendar configured: the result must say so"


def test_holidays_and_makeup_days_move_the_window():
    data = copy.deepcopy(RULES)
    data["working_days"] = {"holidays": ["2029-02-12", "2029-02-13"], "makeup_working_days": ["2029-02-17"],
                            "years_configured": [2028, 2029]}
    cal = xb.WorkingCalendar.from_rules(data)
    assert not cal.is_working_day(date(2029, 2, 12)) and cal.is_working_day(date(2029, 2, 17))
    plain = xb.WorkingCalendar.from_rules(RULES)
    end = date(2029, 3, 1)
    assert cal.minus_working_days(end, 60) < plain.minus_working_days(end, 60)
    assert xb.validity("security_assessment", date(2026, 3, 2), data)["warnings"] == []
    assert plain.plus_working_days(date(2026, 11, 27), 10) == date(2026, 12, 11)  # Friday + 10 working days


def test_a_leap_day_issue_ends_on_28_february():
    assert xb.add_years(date(2028, 2, 29), 3) == date(2031, 2, 28)


# --- services: year-to-date totals across the year boundary, reminders (both engines) -------------------

def _transfer(factory, clock, org, day: str, ns: int, s: int = 0, recorded: bool = True):
    with session_scope(factory, actor="test") as session:
        session.info["clock"] = clock
        row = ds.create_assessment(session, SYSTEM, org, {
            "title": f"transfer {day}", "transfer_date": day, "persons_non_sensitive": ns,
            "persons_sensitive": s, "contains_sensitive_pi": s > 0, "recorded": recorded, "is_ciio": False},
            clock.now())
        return row.mechanism, row.result["counts"]


def test_year_to_date_counts_and_the_year_boundary(store):
    factory, clock, world = store
    org = world.org_a
    assert _transfer(factory, clock, org, "2026-03-01", 60_000)[0] == "exempt"
    assert _transfer(factory, clock, org, "2026-12-31", 39_999)[0] == "exempt"  # 99,999 so far
    assert _transfer(factory, clock, org, "2026-12-31", 1, recorded=False)[0] == "standard_contract_or_certification"
    mech, counts = _transfer(factory, clock, org, "2027-01-01", 1)  # a new year starts from zero
    assert mech == "exempt" and counts["non_sensitive_before"] == 0
    mech, counts = _transfer(factory, clock, org, "2026-12-31", 1)  # back in 2026: the line is crossed
    assert mech == "standard_contract_or_certification" and counts["non_sensitive_before"] == 99_999
    with session_scope(factory) as session:
        assert ds.recorded_ytd(session, org, 2026) == (100_000, 0)
        assert ds.recorded_ytd(session, org, 2027) == (1, 0)
        assert ds.recorded_ytd(session, world.org_b, 2026) == (0, 0)  # per organisation
        summary = ds.year_summary(session, org, 2026)
        assert [h["left"] for h in summary.headroom if h["id"] == "assessment_non_sensitive"] == [900_000]


def test_sensitive_year_to_date_at_10000(store):
    factory, clock, world = store
    assert _transfer(factory, clock, world.org_a, "2026-05-01", 1, 9_999)[0] == "standard_contract_or_certification"
    assert _transfer(factory, clock, world.org_a, "2026-05-02", 1, 1)[0] == "security_assessment"


def test_the_year_follows_beijing_time(store):
    factory, _clock, world = store
    late = FrozenClock(datetime(2026, 12, 31, 16, 30, tzinfo=UTC))  # 00:30 on 1 January 2027 in Beijing
    with session_scope(factory, actor="test") as session:
        row = ds.create_assessment(session, SYSTEM, world.org_a, {"title": "t", "persons_non_sensitive": 5,
                                                                   "is_ciio": False}, late.now())
        assert row.year == 2027


def test_reminders_are_made_once_each_and_only_when_due(store):
    factory, clock, world = store
    with session_scope(factory, actor="test") as session:
        approval = ds.create_approval(session, SYSTEM, world.org_a, {"reference": "SA-7", "issued_on": "2024-03-01"})
        window, until = approval.window_opens, approval.valid_until
    assert until == date(2027, 2, 28)
    schedule = [(date(2026, 9, 1), 0), (window.fromordinal(window.toordinal() - 30), 1),
                (window.fromordinal(window.toordinal() - 30), 0), (window.fromordinal(window.toordinal() - 7), 1),
                (window, 1), (until, 0), (until.fromordinal(until.toordinal() + 1), 1)]
    for today, made in schedule:
        with session_scope(factory, actor="job") as session:
            assert ds.run_reminders(session, today) == made, today
    with session_scope(factory) as session:
        from sqlalchemy import select

        kinds = session.scalars(select(ApprovalReminder.kind).order_by(ApprovalReminder.id)).all()
        assert kinds == ["window_in_30", "window_in_7", "window_open", "expired"]


def test_an_extension_adds_three_years_and_supersedes(store):
    factory, _clock, world = store
    with session_scope(factory, actor="test") as session:
        first = ds.create_approval(session, SYSTEM, world.org_a, {"reference": "SA-1", "issued_on": "2024-03-01"})
        ext = ds.create_approval(session, SYSTEM, world.org_a, {"reference": "SA-1-ext", "issued_on": "2027-01-10",
                                                                "extended_from": first.id})
        assert ext.valid_until == date(2030, 2, 28) and first.superseded
        assert ds.approval_state(first, date(2027, 6, 1))["alert"] == "superseded"
