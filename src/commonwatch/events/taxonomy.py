"""The event taxonomy: RSIT class and GB/T 20986-2023 category of every event type, and the
default severity rules, read from ``rules/taxonomy.yaml`` (an operator's copy wins).

:func:`load_taxonomy` validates the file and refuses a malformed one naming the file and the
problem; :func:`classify` applies it to a whole batch at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from commonwatch.events.schema import SEVERITIES
from commonwatch.rules import RulesError, load_rules, parse_rules, rules_path

RSIT_CLASSES = ("abusive-content", "malicious-code", "information-gathering", "intrusion-attempts", "intrusions",
                "availability", "information-content-security", "fraud", "vulnerable", "other", "test")
GBT_CATEGORIES = ("MP", "NA", "DS", "IC", "DE", "RO", "SHE", "AB", "FOC", "OTH")
STATUSES = ("verified", "provisional")


@dataclass(frozen=True)
class SeverityRule:
    types: frozenset[str] = frozenset()
    identifiers: frozenset[str] = frozenset()
    cii: bool | None = None
    severity: str = ""
    by: int = 0


@dataclass
class Taxonomy:
    version: Any
    origin: str
    #: type -> (RSIT class, GB/T category, GB/T subcategory, status)
    types: dict[str, tuple[str, str, str, str]]
    aliases: dict[str, str]
    base: list[SeverityRule]
    raises: list[SeverityRule]
    default_severity: str
    unknown: set[str] = field(default_factory=set)

    def canonical_type(self, value: str) -> str | None:
        """The canonical type of a spelling (an alias or the type itself), or None if unknown."""
        text = value.strip().lower()
        text = self.aliases.get(text, text)
        return text if text in self.types else None


def load_taxonomy(data_dir: Path | None = None) -> Taxonomy:
    """The taxonomy in force (the operator's copy under ``data_dir/rules`` if present)."""
    return validate_taxonomy(load_rules("taxonomy.yaml", data_dir), str(rules_path("taxonomy.yaml", data_dir)))


def parse_taxonomy(text: str, origin: str = "taxonomy.yaml") -> Taxonomy:
    return validate_taxonomy(parse_rules(text, origin), origin)


def _need(cond: bool, origin: str, reason: str) -> None:
    if not cond:
        raise RulesError(origin, reason)


def _rule(entry: Any, origin: str, where: str, *, base: bool) -> SeverityRule:
    _need(isinstance(entry, dict), origin, f"{where} must be a mapping")
    _need(bool(entry.get("citation")), origin, f"{where} lacks a citation")
    _need(entry.get("status") in STATUSES, origin, f"{where} needs status verified or provisional")
    when = entry.get("when")
    _need(isinstance(when, dict) and bool(when), origin, f"{where} needs a non-empty 'when'")
    unknown_keys = set(when) - {"type", "identifier", "cii"}
    _need(not unknown_keys, origin, f"{where} has unknown condition(s) {sorted(unknown_keys)}")
    types = when.get("type", [])
    idents = when.get("identifier", [])
    _need(isinstance(types, list) and isinstance(idents, list), origin, f"{where}: type/identifier must be lists")
    cii = when.get("cii")
    _need(cii is None or isinstance(cii, bool), origin, f"{where}: cii must be true or false")
    if base:
        _need(entry.get("severity") in SEVERITIES, origin, f"{where}: severity must be one of {', '.join(SEVERITIES)}")
        return SeverityRule(frozenset(map(str, types)), frozenset(map(str, idents)), cii, entry["severity"])
    by = entry.get("by")
    _need(isinstance(by, int) and 1 <= by <= 4, origin, f"{where}: 'by' must be a whole number from 1 to 4")
    return SeverityRule(frozenset(map(str, types)), frozenset(map(str, idents)), cii, "", by)


def validate_taxonomy(data: dict[str, Any], origin: str) -> Taxonomy:
    """Check every entry; raise :class:`RulesError` naming the entry and what is wrong with it."""
    entries = data.get("types")
    _need(isinstance(entries, list) and bool(entries), origin, "needs a non-empty list 'types'")
    types: dict[str, tuple[str, str, str, str]] = {}
    for i, e in enumerate(entries, 1):
        where = f"types entry {i}"
        _need(isinstance(e, dict), origin, f"{where} must be a mapping")
        t = e.get("type")
        _need(isinstance(t, str) and bool(t), origin, f"{where} lacks 'type'")
        where = f"type {t!r}"
        _need(t not in types, origin, f"{where} is listed twice")
        _need(e.get("taxonomy") in RSIT_CLASSES, origin, f"{where}: taxonomy must be an RSIT class")
        _need(e.get("gbt") in GBT_CATEGORIES, origin, f"{where}: gbt must be one of {', '.join(GBT_CATEGORIES)}")
        _need(bool(e.get("citation")), origin, f"{where} lacks a citation")
        _need(e.get("status") in STATUSES, origin, f"{where} needs status verified or provisional")
        types[t] = (e["taxonomy"], e["gbt"], str(e.get("gbt_sub", "")), e["status"])
    aliases_block = data.get("aliases") or {}
    _need(isinstance(aliases_block, dict), origin, "'aliases' must be a mapping")
    aliases = {str(k).lower(): str(v) for k, v in (aliases_block.get("map") or {}).items()}
    for alias, target in aliases.items():
        _need(target in types, origin, f"alias {alias!r} points to unknown type {target!r}")
    sev = data.get("severity")
    _need(isinstance(sev, dict), origin, "needs a 'severity' section")
    base = [_rule(r, origin, f"severity base rule {i}", base=True) for i, r in enumerate(sev.get("base") or [], 1)]
    raises = [_rule(r, origin, f"severity raise rule {i}", base=False) for i, r in enumerate(sev.get("raise") or [], 1)]
    for rule in base + raises:
        for t in rule.types:
            _need(t in types or t in aliases, origin, f"a severity rule names unknown type {t!r}")
    default = sev.get("default", "low")
    _need(default in SEVERITIES, origin, f"severity default must be one of {', '.join(SEVERITIES)}")
    return Taxonomy(data.get("version"), origin, types, aliases, base, raises, default)


def _condition(rule: SeverityRule) -> pl.Expr:
    cond = pl.lit(True)
    if rule.types:
        cond = cond & pl.col("classification.type").is_in(sorted(rule.types))
    if rule.identifiers:
        cond = cond & pl.col("classification.identifier").is_in(sorted(rule.identifiers))
    if rule.cii is not None:
        cond = cond & (pl.col("constituent.cii") == rule.cii)
    return cond.fill_null(False)


def classify(frame: pl.DataFrame, taxonomy: Taxonomy) -> pl.DataFrame:
    """Canonical ``classification.type`` and ``classification.taxonomy``, ``gbt20986.category`` and
    ``severity`` for every row. Needs ``classification.type``, ``classification.identifier`` and
    ``constituent.cii`` columns; unknown types become ``undetermined`` (the original kept in
    ``classification.identifier`` when that is empty)."""
    raw_type = pl.col("classification.type").fill_null("undetermined").str.strip_chars().str.to_lowercase()
    alias_keys = list(taxonomy.aliases)
    canon = raw_type.replace_strict(alias_keys, [taxonomy.aliases[k] for k in alias_keys], default=raw_type) \
        if alias_keys else raw_type
    known = list(taxonomy.types)
    frame = frame.with_columns(canon.alias("_type"))
    frame = frame.with_columns(
        pl.when(pl.col("_type").is_in(known)).then(pl.col("_type")).otherwise(pl.lit("undetermined"))
        .alias("classification.type"),
        pl.when(pl.col("_type").is_in(known) | pl.col("classification.identifier").is_not_null())
        .then(pl.col("classification.identifier")).otherwise(pl.col("_type")).alias("classification.identifier"),
    ).drop("_type")
    t = pl.col("classification.type")
    frame = frame.with_columns(
        t.replace_strict(known, [v[0] for v in taxonomy.types.values()], default="other")
        .alias("classification.taxonomy"),
        t.replace_strict(known, [v[1] for v in taxonomy.types.values()], default="OTH").alias("gbt20986.category"),
    )
    sev: pl.Expr = pl.lit(taxonomy.default_severity)
    for rule in reversed(taxonomy.base):
        sev = pl.when(_condition(rule)).then(pl.lit(rule.severity)).otherwise(sev)
    level = sev.replace_strict(list(SEVERITIES), list(range(len(SEVERITIES))), return_dtype=pl.Int8)
    for rule in taxonomy.raises:
        level = level + pl.when(_condition(rule)).then(pl.lit(rule.by, pl.Int8)).otherwise(pl.lit(0, pl.Int8))
    level = level.clip(0, len(SEVERITIES) - 1)
    return frame.with_columns(
        level.replace_strict(list(range(len(SEVERITIES))), list(SEVERITIES), return_dtype=pl.String)
        .alias("severity"))
