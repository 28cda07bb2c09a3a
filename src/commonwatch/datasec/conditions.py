"""The small condition language of the datasec rules files (cross-border, grading).

A condition is ``{fact: NAME, OP: VALUE}`` with OP one of ``is``, ``in``, ``not_in``, ``gte``,
``lt``; or ``{any: [conditions]}``. A ``when`` list holds when every condition in it holds. A
number written ``"$name"`` is the value of the named threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from commonwatch.rules import RulesError

OPS = ("is", "in", "not_in", "gte", "lt")


def resolve(value: Any, thresholds: Mapping[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        return thresholds[value[1:]]["value"]
    return value


def holds(condition: Mapping[str, Any], facts: Mapping[str, Any], thresholds: Mapping[str, Any]) -> bool:
    """Whether one condition holds for ``facts``."""
    if "any" in condition:
        return any(holds(c, facts, thresholds) for c in condition["any"])
    value = facts.get(condition["fact"])
    for op in OPS:
        if op in condition:
            target = resolve(condition[op], thresholds)
            if op == "is":
                return value == target
            if op == "in":
                return value in target
            if op == "not_in":
                return value not in target
            if value is None:
                return False
            if op == "gte":
                return value >= target
            return value < target
    raise ValueError(f"condition without an operator: {condition}")


def all_hold(when: list[Mapping[str, Any]], facts: Mapping[str, Any], thresholds: Mapping[str, Any]) -> bool:
    return all(holds(c, facts, thresholds) for c in when)


def check_when(when: Any, origin: str, where: str, facts: set[str], thresholds: Mapping[str, Any]) -> None:
    """Refuse a malformed ``when`` list, naming the rule and the problem."""
    if not isinstance(when, list):
        raise RulesError(origin, f"{where}: 'when' must be a list of conditions")
    for cond in when:
        if not isinstance(cond, dict):
            raise RulesError(origin, f"{where}: a condition must be a mapping, not {cond!r}")
        if "any" in cond:
            check_when(cond["any"], origin, where, facts, thresholds)
            continue
        if cond.get("fact") not in facts:
            raise RulesError(origin, f"{where}: unknown fact {cond.get('fact')!r}")
        ops = [op for op in OPS if op in cond]
        if len(ops) != 1:
            raise RulesError(origin, f"{where}: a condition needs exactly one of {', '.join(OPS)}")
        target = cond[ops[0]]
        if isinstance(target, str) and target.startswith("$") and target[1:] not in thresholds:
            raise RulesError(origin, f"{where}: unknown threshold {target}")


def check_citation(rule: Mapping[str, Any], origin: str, where: str, sources: Mapping[str, Any]) -> None:
    """Every rule cites its source and article and says whether it is verified."""
    citation = rule.get("citation")
    if not isinstance(citation, dict) or "article" not in citation or citation.get("source") not in sources:
        raise RulesError(origin, f"{where}: needs a citation with a known source and an article")
    if rule.get("status") not in ("verified", "provisional"):
        raise RulesError(origin, f"{where}: status must be verified or provisional")
    for lang in ("en", "zh"):
        if not rule.get(lang):
            raise RulesError(origin, f"{where}: lacks its '{lang}' text")
