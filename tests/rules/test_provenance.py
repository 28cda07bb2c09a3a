"""Rule provenance (issue 14, item 16): every rule of every shipped rules file names the fact it
rests on, and is ``verified`` only if that fact is tagged PRIMARY in the register (``facts.yaml``,
copied from the research notes); everything else is ``provisional``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from commonwatch.rules import parse_rules
from commonwatch.rules.provenance import load_facts, provenance_problems, rules_in

RULES_DIR = Path(str(resources.files("commonwatch.rules")))
RULE_FILES = sorted(p for p in RULES_DIR.rglob("*.yaml") if p.name != "facts.yaml")
FACTS = load_facts()


def test_every_rules_file_is_walked():
    names = {p.relative_to(RULES_DIR).as_posix() for p in RULE_FILES}
    assert {"incident_grading.yaml", "crossborder.yaml", "pi_identifiers.yaml", "ftz/example-ftz.yaml"} <= names


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.relative_to(RULES_DIR).as_posix())
def test_each_rule_status_follows_the_fact_it_cites(path):
    data = parse_rules(path.read_text(encoding="utf-8"), str(path))
    assert list(rules_in(data)), f"{path.name} has no rule with a status"
    problems = provenance_problems(data, FACTS)
    assert not problems, "\n".join(problems)


def test_a_secondary_figure_marked_verified_is_caught():
    data = yaml.safe_load("""
indicators:
  - {id: a, status: verified, rests_on: grading_annex_relatively_major}
  - {id: b, status: provisional, rests_on: reporting_art4_routes}
  - {id: c, status: verified}
  - {id: d, status: verified, rests_on: [pipl, provisions]}
  - {id: e, status: provisional, rests_on: no_such_fact}
names_status: verified
names_rests_on: gbt20986_names
""")
    problems = provenance_problems(data, FACTS)
    assert len(problems) == 6, problems
    assert any("indicators[a]" in p and "must be provisional" in p for p in problems)
    assert any("indicators[b]" in p and "must be verified" in p for p in problems)
    assert any("indicators[c]" in p and "names no fact" in p for p in problems)
    assert any("indicators[d]" in p and "provisions=SECONDARY" in p for p in problems)
    assert any("unknown fact" in p for p in problems)
    assert any("names_status" in p for p in problems)


def test_a_rule_inherits_the_fact_of_its_enclosing_mapping():
    data = yaml.safe_load("rests_on: rsit_1_3\ntypes:\n  - {type: spam, status: verified}\n"
                          "  - {type: tor, status: provisional, rests_on: commonwatch_policy}\n")
    assert [r.facts for r in rules_in(data)] == [("rsit_1_3",), ("commonwatch_policy",)]
    assert provenance_problems(data, FACTS) == []


def test_the_register_tags_are_the_research_tags():
    assert {f["tag"] for f in FACTS.values()} <= {"PRIMARY", "SECONDARY", "PARTIAL", "UNVERIFIED", "NOT_IN_REFERENCE"}
    assert FACTS["grading_annex_relatively_major"]["tag"] == "SECONDARY"
    assert FACTS["gb11643_resident_id"]["tag"] == "PRIMARY"
