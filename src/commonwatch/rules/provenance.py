"""Rule provenance: every rule names the fact it rests on, and its status follows that fact's tag.

A *rule* is a mapping of a rules file with ``status: verified|provisional`` (or a key
``<name>_status`` whose companion is ``<name>_rests_on``). It names the fact(s) it rests on with
``rests_on: <id>`` or ``rests_on: [<id>, ...]``; without its own ``rests_on`` it rests on ``<key>_rests_on`` set
beside the key that holds it (``types_rests_on`` for the rows of ``types``), else on the nearest
enclosing mapping's ``rests_on``. The facts and their research tags are in ``facts.yaml``. A rule is ``verified`` only
if every fact it rests on is tagged PRIMARY; otherwise it is ``provisional``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from commonwatch.rules import RulesError, load_rules

STATUSES = ("verified", "provisional")
FACTS_FILE = "facts.yaml"


@dataclass(frozen=True)
class RuleProvenance:
    """One rule of a file: where it is, its status, and the facts it rests on."""

    where: str
    status: str
    facts: tuple[str, ...]


def load_facts() -> dict[str, dict[str, Any]]:
    """The shipped register of facts (id -> tag, ref), checked."""
    data = load_rules(FACTS_FILE)
    tags = set(data.get("tags") or ())
    facts = data.get("facts")
    if not isinstance(facts, dict) or not facts:
        raise RulesError(FACTS_FILE, "lacks 'facts'")
    for fid, fact in facts.items():
        if not isinstance(fact, dict) or fact.get("tag") not in tags or not fact.get("ref"):
            raise RulesError(FACTS_FILE, f"fact '{fid}' needs a tag (one of {', '.join(sorted(tags))}) and a ref")
    return facts


def _as_ids(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def rules_in(data: Any, where: str = "", inherited: tuple[str, ...] = ()) -> Iterator[RuleProvenance]:
    """Every rule in a parsed rules file, with the facts it rests on (its own or inherited)."""
    if isinstance(data, list):
        for i, item in enumerate(data):
            label = item.get("id") or item.get("type") or i if isinstance(item, dict) else i
            yield from rules_in(item, f"{where}[{label}]", inherited)
        return
    if not isinstance(data, dict):
        return
    own = _as_ids(data.get("rests_on")) or inherited
    if data.get("status") in STATUSES:
        yield RuleProvenance(where or "(top level)", data["status"], own)
    for key, value in data.items():
        if isinstance(key, str) and key.endswith("_status") and value in STATUSES:
            prefix = key[: -len("_status")]
            facts = _as_ids(data.get(f"{prefix}_rests_on")) or own
            yield RuleProvenance(f"{where}.{key}" if where else key, value, facts)
        elif isinstance(value, dict | list):
            beside = _as_ids(data.get(f"{key}_rests_on")) if isinstance(key, str) else ()
            yield from rules_in(value, f"{where}.{key}" if where else str(key), beside or own)


def provenance_problems(data: dict[str, Any], facts: dict[str, dict[str, Any]]) -> list[str]:
    """What is wrong with a file's provenance: rules without a known fact, or whose status does
    not follow the facts' tags. Empty when all is well."""
    problems = []
    for rule in rules_in(data):
        if not rule.facts:
            problems.append(f"{rule.where}: names no fact (add 'rests_on: <id>' from {FACTS_FILE})")
            continue
        unknown = [f for f in rule.facts if f not in facts]
        if unknown:
            problems.append(f"{rule.where}: unknown fact(s) {', '.join(unknown)}")
            continue
        expected = "verified" if all(facts[f]["tag"] == "PRIMARY" for f in rule.facts) else "provisional"
        if rule.status != expected:
            tags = ", ".join(f"{f}={facts[f]['tag']}" for f in rule.facts)
            problems.append(f"{rule.where}: status {rule.status}, but it rests on {tags}: must be {expected}")
    return problems
