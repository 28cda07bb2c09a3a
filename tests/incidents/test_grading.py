"""Grading: every indicator at, just under and just over its threshold ("以上" includes the number);
the shipped numbers match the facts; the rules file is validated and an operator's copy wins."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commonwatch.errors import Invalid
from commonwatch.incidents.grading import grade, parse_facts
from commonwatch.incidents.rules import (
    GRADING_FILE,
    REPORTING_FILE,
    load_incident_rules,
    parse_grading,
)
from commonwatch.rules import RulesError, load_rules, rules_path

RULES = load_incident_rules(None)
GRADING = RULES.grading
PI_1M = "    input: pi_persons_leaked\n    op: ge\n    threshold: 1000000\n"
STEP = {"count": 1, "minutes": 1, "rmb": 1, "percent": 0.1}


def _context(ind) -> dict:
    """The enum conditions under which the indicator applies (its first allowed value each)."""
    return {key: allowed[0] for key, allowed in ind.when.items()}


def _cases():
    for ind in GRADING.indicators:
        spec = GRADING.inputs[ind.input]
        if spec.type == "bool":
            yield pytest.param(ind, True, True, id=f"{ind.id}-true")
            yield pytest.param(ind, False, False, id=f"{ind.id}-false")
        elif spec.type == "enum":
            order = spec.value_keys()
            at = order.index(ind.threshold)
            yield pytest.param(ind, ind.threshold, True, id=f"{ind.id}-at")
            yield pytest.param(ind, order[at - 1], False, id=f"{ind.id}-under")
            if at + 1 < len(order):
                yield pytest.param(ind, order[at + 1], True, id=f"{ind.id}-over")
        else:
            step = STEP[spec.type]
            yield pytest.param(ind, ind.threshold, True, id=f"{ind.id}-at")
            yield pytest.param(ind, ind.threshold - step, False, id=f"{ind.id}-under")
            yield pytest.param(ind, ind.threshold + step, True, id=f"{ind.id}-over")


@pytest.mark.parametrize(("ind", "value", "fires"), list(_cases()))
def test_every_indicator_at_under_and_over_its_threshold(ind, value, fires):
    facts = {**_context(ind), ind.input: value}
    result = grade(facts, GRADING)
    fired_ids = {f.indicator.id for f in result.fired}
    assert (ind.id in fired_ids) is fires
    if fires:
        # The level is at least the indicator's; it is exactly that unless a higher one fired on the same fact.
        assert GRADING.rank(result.level) >= GRADING.rank(ind.level)
        assert any(f.indicator.citation.en for f in result.deciding())
    else:
        assert GRADING.rank(result.level) < GRADING.rank(ind.level) or any(
            f.indicator.level == result.level for f in result.fired)


def test_every_indicator_carries_citation_and_status():
    for ind in GRADING.indicators:
        assert ind.citation.en and ind.citation.zh, ind.id
        assert ind.status in ("verified", "provisional"), ind.id
    # Only figures read in the official text (PRIMARY) are verified; the annex is known through
    # secondary sources (facts 1.4), so even its two-source figures are provisional.
    by_id = {i.id: i for i in GRADING.indicators}
    assert by_id["maj-cii-full-2h"].provisional and by_id["rel-content-views-10k"].provisional
    assert by_id["rel-loss-5m"].provisional  # single source
    assert by_id["rel-pi-1m"].provisional and by_id["eml-pi-100m"].provisional  # SECONDARY, two sources


@pytest.mark.parametrize(("facts", "level"), [
    ({"pi_persons_leaked": 999_999}, "一般"),
    ({"pi_persons_leaked": 1_000_000}, "较大"),
    ({"pi_persons_leaked": 9_999_999}, "较大"),
    ({"pi_persons_leaked": 10_000_000}, "重大"),
    ({"pi_persons_leaked": 100_000_000}, "特别重大"),
    ({"cii_full_outage_minutes": 9}, "一般"),
    ({"cii_full_outage_minutes": 10}, "较大"),
    ({"cii_main_function_outage_minutes": 29}, "一般"),
    ({"cii_main_function_outage_minutes": 30}, "较大"),
    ({"cii_full_outage_minutes": 360}, "特别重大"),
    ({"cii_main_function_outage_minutes": 1440}, "特别重大"),
    ({"direct_economic_loss_rmb": 5_000_000}, "较大"),
    ({"direct_economic_loss_rmb": 20_000_000}, "重大"),
    ({"direct_economic_loss_rmb": 100_000_000}, "特别重大"),
    ({"people_affected_daily_life": 10_000_000}, "特别重大"),
    ({"population_admin_level": "prefecture", "population_share_percent": 30}, "较大"),
    ({"population_admin_level": "prefecture", "population_share_percent": 29.9}, "一般"),
    ({"population_admin_level": "province", "population_share_percent": 50}, "特别重大"),
    ({"portal_kind": "provincial_gov", "portal_unreachable_minutes": 1440}, "特别重大"),
    # A central key news site down 24 h is 特别重大; an ordinary website down 24 h reaches no portal indicator.
    ({"portal_kind": "central_key_news", "portal_unreachable_minutes": 1440}, "特别重大"),
    ({"portal_kind": "other", "portal_unreachable_minutes": 1440}, "一般"),
    ({"data_threat_degree": "relatively_serious"}, "较大"),
    ({"data_threat_degree": "especially_serious"}, "特别重大"),
    ({}, "一般"),
])
def test_shipped_numbers_match_the_facts(facts, level):
    assert grade(facts, GRADING).level == level


def test_the_highest_level_wins_and_every_fired_indicator_is_named():
    result = grade({"pi_persons_leaked": 12_000_000, "cii_full_outage_minutes": 15}, GRADING)
    assert result.level == "重大"
    assert {f.indicator.id for f in result.fired} == {"maj-pi-10m", "rel-pi-1m", "rel-cii-full-10min"}
    assert [f.indicator.id for f in result.deciding()] == ["maj-pi-10m"]
    assert result.provisional  # the annex's figures are SECONDARY


def test_a_level_resting_on_provisional_indicators_says_so():
    result = grade({"direct_economic_loss_rmb": 20_000_000}, GRADING)
    assert result.level == "重大" and result.provisional


@pytest.mark.parametrize(("raw", "field", "words"), [
    ({"pi_persons_leaked": -5}, "impact.pi_persons_leaked", "negative"),
    ({"pi_persons_leaked": "12.5"}, "impact.pi_persons_leaked", "whole"),
    ({"population_share_percent": 130}, "impact.population_share_percent", "100"),
    ({"portal_kind": "moon_base"}, "impact.portal_kind", "one of"),
    ({"pi_leaked": 10}, "impact.pi_leaked", "not a known fact"),
    ({"cii_full_outage_minutes": "ten"}, "impact.cii_full_outage_minutes", "number"),
])
def test_bad_facts_are_refused_naming_the_field(raw, field, words):
    with pytest.raises(Invalid) as err:
        parse_facts(raw, GRADING.inputs)
    assert field in err.value.by_field()
    assert words in err.value.by_field()[field]


def test_facts_are_normalised():
    facts = parse_facts({"pi_persons_leaked": "1,000,000", "portal_kind": "", "content_determined_by_authority":
                         "yes"}, GRADING.inputs)
    assert facts == {"pi_persons_leaked": 1_000_000, "content_determined_by_authority": True}


def _write_copy(data_dir: Path, name: str, text: str) -> Path:
    target = data_dir / "rules" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def test_an_operators_copy_wins(tmp_path):
    shipped = rules_path(GRADING_FILE).read_text(encoding="utf-8")
    edited = shipped.replace(PI_1M, PI_1M.replace("1000000", "500000"))
    assert edited != shipped
    _write_copy(tmp_path, GRADING_FILE, edited)
    rules = load_incident_rules(tmp_path)
    assert rules.grading.origin.startswith(str(tmp_path))
    assert grade({"pi_persons_leaked": 500_000}, rules.grading).level == "较大"


@pytest.mark.parametrize(("old", "new", "message"), [
    (PI_1M, PI_1M.replace("1000000", "-3"), "rel-pi-1m: 'threshold' must be a number"),
    ("    status: provisional\n", "    status: maybe\n",
     "'status' must be one of verified, provisional"),
    ("    input: pi_persons_leaked\n", "    input: pi_leaked\n", "'input' 'pi_leaked' is not defined"),
    ("    level: 较大\n", "    level: 很大\n", "'level' must be one of"),
    ("default_level: 一般", "default_level: none", "default_level"),
])
def test_a_malformed_rules_file_is_refused_with_the_reason(tmp_path, old, new, message):
    shipped = rules_path(GRADING_FILE).read_text(encoding="utf-8")
    assert old in shipped
    path = _write_copy(tmp_path, GRADING_FILE, shipped.replace(old, new, 1))
    with pytest.raises(RulesError) as err:
        load_incident_rules(tmp_path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_malformed_yaml_and_reporting_rules_are_refused(tmp_path):
    path = _write_copy(tmp_path, GRADING_FILE, "name: x\nversion: [1\n")
    with pytest.raises(RulesError, match="not valid YAML"):
        load_incident_rules(tmp_path)
    path.unlink()
    shipped = rules_path(REPORTING_FILE).read_text(encoding="utf-8")
    _write_copy(tmp_path, REPORTING_FILE, shipped.replace("first_minutes: 240", "first_minutes: four hours"))
    with pytest.raises(RulesError, match="routes.other: 'first_minutes' must be a number"):
        load_incident_rules(tmp_path)


def test_parse_grading_lists_several_problems_at_once():
    data = load_rules(GRADING_FILE)
    data["indicators"][0]["op"] = "gt"
    data["indicators"][1]["citation"] = {"en": "only English"}
    with pytest.raises(RulesError) as err:
        parse_grading(data, "test")
    assert "'op' must be 'ge' or 'true'" in str(err.value) and "needs both 'en' and 'zh'" in str(err.value)


NUMERIC = [n for n, spec in GRADING.inputs.items() if spec.type in ("count", "minutes", "percent", "rmb")]
_values = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=12))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([*GRADING.inputs, "unknown_fact"]), _values, max_size=6))
def test_any_facts_are_either_accepted_or_refused_naming_fields(raw):
    try:
        facts = parse_facts(raw, GRADING.inputs)
    except Invalid as exc:
        assert exc.errors and all(e.field.startswith("impact.") for e in exc.errors)
        return
    assert grade(facts, GRADING).level in GRADING.level_keys()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(NUMERIC), st.integers(0, 200_000_000), st.integers(0, 200_000_000),
       st.sampled_from(["province", "prefecture"]), st.sampled_from(["provincial_gov", "prefecture_gov", "other"]))
def test_a_larger_figure_never_lowers_the_level(name, x, y, admin_level, portal_kind):
    low, high = sorted((x, y))
    if GRADING.inputs[name].type == "percent":
        low, high = low % 101, min(high % 101 + low % 101, 100)
        low, high = sorted((low, high))
    context = {"population_admin_level": admin_level, "portal_kind": portal_kind}
    a = grade({**context, name: low}, GRADING).level
    b = grade({**context, name: high}, GRADING).level
    assert GRADING.rank(b) >= GRADING.rank(a)
