"""Due dates of a CII system's supervision: the next MLPS assessment (by protection level) and the
next annual inspection / risk assessment, from ``rules/cii_supervision.yaml``.

A date is due on the same day of the month ``interval_months`` after the last one (the last day of
the month when that day does not exist). A system with no last date counts from its filing date;
with neither, the item is ``unknown`` (shown as needing a date). States: ``ok``, ``due_soon`` (within
``due_soon_days`` of the due date, the due date included), ``overdue`` (the day after the due date
on), ``unknown``, ``none`` (no periodic duty)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from commonwatch.i18n import pick
from commonwatch.rules import RulesError, load_rules

RULES_FILE = "cii_supervision.yaml"
KINDS = ("mlps", "inspection")
STATUSES = ("verified", "provisional")


@dataclass(frozen=True)
class Interval:
    months: int | None
    status: str
    citation: dict[str, str]


@dataclass(frozen=True)
class SupervisionRules:
    inspection: Interval
    mlps: dict[int, Interval]
    due_soon_days: int
    due_soon_status: str
    version: Any = None
    origin: str = ""


@dataclass
class Due:
    """One supervision item of one system."""

    kind: str  # mlps | inspection
    last: date | None
    due_on: date | None
    state: str  # ok | due_soon | overdue | unknown | none
    days_left: int | None
    status: str  # verified | provisional (of the rule applied)
    citation: dict[str, str] = field(default_factory=dict)

    @property
    def needs_action(self) -> bool:
        return self.state in ("due_soon", "overdue", "unknown")

    def citation_text(self) -> str:
        return pick(self.citation.get("en", ""), self.citation.get("zh", ""))


def _interval(node: Any, where: str, origin: str) -> Interval:
    if not isinstance(node, dict):
        raise RulesError(origin, f"{where} must be a mapping")
    months = node.get("interval_months")
    if months is not None and (not isinstance(months, int) or isinstance(months, bool) or months < 1):
        raise RulesError(origin, f"{where}.interval_months must be a whole number of months, at least 1, or null")
    status = node.get("status")
    if status not in STATUSES:
        raise RulesError(origin, f"{where}.status must be verified or provisional")
    citation = node.get("citation")
    if not isinstance(citation, dict) or not citation.get("en") or not citation.get("zh"):
        raise RulesError(origin, f"{where}.citation needs en and zh")
    return Interval(months, status, {"en": str(citation["en"]), "zh": str(citation["zh"])})


def parse_supervision(data: dict[str, Any], origin: str = RULES_FILE) -> SupervisionRules:
    """Validate the rules; a malformed file is refused naming the key and the reason."""
    inspection = _interval(data.get("inspection"), "inspection", origin)
    if inspection.months is None:
        raise RulesError(origin, "inspection.interval_months is required")
    levels = (data.get("mlps_assessment") or {}).get("levels")
    if not isinstance(levels, list):
        raise RulesError(origin, "mlps_assessment.levels must be a list")
    mlps: dict[int, Interval] = {}
    for i, node in enumerate(levels):
        level = node.get("level") if isinstance(node, dict) else None
        if level not in (1, 2, 3, 4, 5) or level in mlps:
            raise RulesError(origin, f"mlps_assessment.levels[{i}].level must be a distinct level 1-5")
        mlps[level] = _interval(node, f"mlps_assessment.levels[{i}]", origin)
    if set(mlps) != {1, 2, 3, 4, 5}:
        raise RulesError(origin, "mlps_assessment.levels must cover levels 1 to 5")
    soon = data.get("due_soon_days")
    if not isinstance(soon, int) or isinstance(soon, bool) or not 0 <= soon <= 366:
        raise RulesError(origin, "due_soon_days must be a whole number of days from 0 to 366")
    soon_status = data.get("due_soon_status")
    if soon_status not in STATUSES:
        raise RulesError(origin, "due_soon_status must be verified or provisional")
    return SupervisionRules(inspection, mlps, soon, soon_status, data.get("version"), origin)


def load_supervision_rules(data_dir: Path | None = None) -> SupervisionRules:
    return parse_supervision(load_rules(RULES_FILE, data_dir))


def add_months(d: date, months: int) -> date:
    """The same day ``months`` later, or that month's last day when the day does not exist."""
    index = d.month - 1 + months
    year, month = d.year + index // 12, index % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _due(kind: str, last: date | None, base: date | None, rule: Interval, today: date, soon_days: int) -> Due:
    if rule.months is None:
        return Due(kind, last, None, "none", None, rule.status, rule.citation)
    start = last or base
    if start is None:
        return Due(kind, last, None, "unknown", None, rule.status, rule.citation)
    due_on = add_months(start, rule.months)
    left = (due_on - today).days
    if left < 0:
        state = "overdue"
    elif today >= due_on - timedelta(days=soon_days):
        state = "due_soon"
    else:
        state = "ok"
    return Due(kind, last, due_on, state, left, rule.status, rule.citation)


def due_items(system: Any, today: date, rules: SupervisionRules) -> dict[str, Due]:
    """``{"mlps": Due, "inspection": Due}`` for a system (anything with the CiiSystem fields)."""
    return {
        "mlps": _due("mlps", system.last_mlps_assessment, system.filing_date, rules.mlps[int(system.mlps_level)],
                     today, rules.due_soon_days),
        "inspection": _due("inspection", system.last_inspection, system.filing_date, rules.inspection, today,
                           rules.due_soon_days),
    }
