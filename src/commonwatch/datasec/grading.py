"""Suggesting a grade for a data asset from ``rules/data_grading.yaml``.

Pure: the asset's facts in, a suggestion out that names the rule that produced it, its citation
and its verified/provisional mark. A person confirms (or changes) the suggestion; see services.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from commonwatch.datasec.conditions import all_hold, check_citation, check_when
from commonwatch.datasec.crossborder import cite
from commonwatch.i18n import pick
from commonwatch.rules import RulesError, load_rules

LEVELS = ("core", "important", "general")
FACTS = {"notified_as", "impact_object", "impact_degree", "contains_pi", "contains_sensitive_pi", "public",
         "persons_count", "contains_minors_pi"}


@dataclass
class Suggestion:
    level: str
    subgrade: int | None
    rule: str
    en: str
    zh: str
    citation: dict[str, str]
    status: str
    flags: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@lru_cache(maxsize=4)
def _cached(data_dir: str | None) -> dict[str, Any]:
    return validate_rules(load_rules("data_grading.yaml", Path(data_dir) if data_dir else None), "data_grading.yaml")


def grading_rules(data_dir: Path | None = None) -> dict[str, Any]:
    """The checked grading rules; an operator's copy wins."""
    return _cached(str(data_dir) if data_dir else None)


def validate_rules(data: dict[str, Any], origin: str) -> dict[str, Any]:
    for key in ("sources", "levels", "general_subgrades", "impact_objects", "impact_degrees", "matrix", "rules",
                "review_flags"):
        if key not in data:
            raise RulesError(origin, f"lacks '{key}'")
    if set(data["levels"]) != set(LEVELS):
        raise RulesError(origin, f"levels must be exactly {', '.join(LEVELS)}")
    for obj in data["impact_objects"]:
        row = data["matrix"].get(obj)
        if not isinstance(row, dict) or set(row) != set(data["impact_degrees"]):
            raise RulesError(origin, f"matrix row '{obj}' must give a level for every impact degree")
        if any(v not in LEVELS for v in row.values()):
            raise RulesError(origin, f"matrix row '{obj}' has a level that is not one of {', '.join(LEVELS)}")
    subgrades = {int(k) for k in data["general_subgrades"]}
    ids = set()
    for i, rule in enumerate(data["rules"]):
        where = f"rules[{i}] ({rule.get('id', '?')})"
        if not rule.get("id") or rule["id"] in ids:
            raise RulesError(origin, f"{where}: needs a unique id")
        ids.add(rule["id"])
        check_when(rule.get("when"), origin, where, FACTS, {})
        check_citation(rule, origin, where, data["sources"])
        if rule.get("level") not in (*LEVELS, "matrix"):
            raise RulesError(origin, f"{where}: level must be one of {', '.join(LEVELS)} or 'matrix'")
        if rule.get("subgrade") is not None and int(rule["subgrade"]) not in subgrades:
            raise RulesError(origin, f"{where}: unknown general-data sub-grade {rule['subgrade']}")
    if not data["rules"] or data["rules"][-1].get("when"):
        raise RulesError(origin, "the last rule must apply always (an empty 'when') so every asset gets a grade")
    for i, rule in enumerate(data["review_flags"]):
        where = f"review_flags[{i}] ({rule.get('id', '?')})"
        check_when(rule.get("when"), origin, where, FACTS, {})
        check_citation(rule, origin, where, data["sources"])
    return data


def suggest(facts: dict[str, Any], rules: dict[str, Any]) -> Suggestion:
    """The first rule whose conditions hold decides; the matrix rule may fall through to general data."""
    sources = rules["sources"]
    flags = [{"id": f["id"], "en": f["en"], "zh": f["zh"], "citation": cite(f["citation"], sources),
              "status": f["status"]} for f in rules["review_flags"] if all_hold(f["when"], facts, {})]
    for rule in rules["rules"]:
        if not all_hold(rule["when"], facts, {}):
            continue
        level = rule["level"]
        if level == "matrix":
            level = rules["matrix"].get(facts.get("impact_object"), {}).get(facts.get("impact_degree"))
            if level in (None, "general"):
                continue  # general data: the sub-grade rules below decide
        return Suggestion(level=level, subgrade=rule.get("subgrade") if level == "general" else None, rule=rule["id"],
                          en=rule["en"], zh=rule["zh"], citation=cite(rule["citation"], sources),
                          status=rule["status"], flags=flags)
    raise RulesError("data_grading.yaml", "no rule matched")  # unreachable: validated last rule is unconditional


def grade_label(level: str | None, subgrade: int | None, rules: dict[str, Any]) -> str:
    """'Important data', or 'General data, level 3 (...)' in the current language."""
    if not level:
        return ""
    if level == "general" and subgrade:
        sg = rules["general_subgrades"].get(subgrade) or rules["general_subgrades"].get(str(subgrade))
        if sg:
            return pick(sg["en"], sg["zh"])
    lv = rules["levels"][level]
    return pick(lv["en"], lv["zh"])
