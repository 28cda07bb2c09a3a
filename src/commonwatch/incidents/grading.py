"""Grading an incident into a national level: pure functions over the facts and the rules.

The level is the highest one any indicator reaches; "以上" (at least) includes the threshold. The
result names every indicator that fired, so a reader sees why, with the citation of each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from commonwatch.errors import FieldError, Invalid
from commonwatch.i18n import _
from commonwatch.incidents.rules import GradingRules, Indicator, Input

MAX_COUNT = 10_000_000_000  # more persons than exist: a typo, not a fact


@dataclass(frozen=True)
class Fired:
    indicator: Indicator
    value: Any


@dataclass(frozen=True)
class Grading:
    level: str
    fired: tuple[Fired, ...]  # every indicator that fired, highest level first

    def deciding(self) -> tuple[Fired, ...]:
        """The indicators that put the incident at its level."""
        return tuple(f for f in self.fired if f.indicator.level == self.level)

    @property
    def provisional(self) -> bool:
        """True when the level rests only on provisional indicators."""
        deciding = self.deciding()
        return bool(deciding) and all(f.indicator.provisional for f in deciding)

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "fired": [
            {"id": f.indicator.id, "level": f.indicator.level, "input": f.indicator.input, "value": f.value,
             "threshold": f.indicator.threshold, "status": f.indicator.status} for f in self.fired]}


def _number(spec: Input, raw: Any, field: str, errors: list[FieldError]) -> float | int | None:
    if isinstance(raw, bool):
        errors.append(FieldError(field, _("must be a number")))
        return None
    try:
        value = float(str(raw).replace(",", "").strip()) if not isinstance(raw, int | float) else raw
    except ValueError:
        errors.append(FieldError(field, _("must be a number")))
        return None
    if value != value or value in (float("inf"), float("-inf")):
        errors.append(FieldError(field, _("must be a number")))
        return None
    if value < 0:
        errors.append(FieldError(field, _("cannot be negative")))
        return None
    if spec.type == "percent" and value > 100:
        errors.append(FieldError(field, _("is a percentage and cannot be more than 100")))
        return None
    if spec.type == "count":
        if value != int(value):
            errors.append(FieldError(field, _("must be a whole number")))
            return None
        if value > MAX_COUNT:
            errors.append(FieldError(field, _("is implausibly large")))
            return None
        return int(value)
    return int(value) if value == int(value) else value


def _boolean(raw: Any, field: str, errors: list[FieldError]) -> bool | None:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes", "on", "y"):
        return True
    if text in ("false", "0", "no", "off", "n"):
        return False
    errors.append(FieldError(field, _("must be yes or no")))
    return None


def parse_facts(raw: dict[str, Any] | None, inputs: dict[str, Input], prefix: str = "impact") -> dict[str, Any]:
    """Check and normalise the grading facts of a report; raises :class:`Invalid` naming each bad field.

    Empty values are left out (a fact not yet known); unknown names are refused so a typo in an API
    call does not silently grade as 一般.
    """
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    for name, value in (raw or {}).items():
        field = f"{prefix}.{name}"
        spec = inputs.get(name)
        if spec is None:
            errors.append(FieldError(field, _("is not a known fact (see the grading rules)")))
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if spec.type == "bool":
            parsed = _boolean(value, field, errors)
        elif spec.type == "enum":
            key = str(value).strip()
            if key not in spec.value_keys():
                allowed = ", ".join(spec.value_keys())
                errors.append(FieldError(field, _("must be one of {values}").format(values=allowed)))
                continue
            parsed = key
        else:
            parsed = _number(spec, value, field, errors)
        if parsed is not None:
            out[name] = parsed
    if errors:
        raise Invalid(errors)
    return out


def _fires(ind: Indicator, facts: dict[str, Any], inputs: dict[str, Input]) -> bool:
    for key, allowed in ind.when.items():
        if facts.get(key) not in allowed:
            return False
    value = facts.get(ind.input)
    if value is None:
        return False
    if ind.op == "true":
        return value is True
    spec = inputs[ind.input]
    if spec.type == "enum":
        order = spec.value_keys()
        return order.index(value) >= order.index(ind.threshold)
    return value >= ind.threshold  # "以上" includes the number itself


def grade(facts: dict[str, Any], rules: GradingRules) -> Grading:
    """The level the facts reach under ``rules``, with every indicator that fired."""
    fired = [Fired(ind, facts.get(ind.input)) for ind in rules.indicators if _fires(ind, facts, rules.inputs)]
    fired.sort(key=lambda f: -rules.rank(f.indicator.level))
    level = fired[0].indicator.level if fired else rules.default_level
    return Grading(level, tuple(fired))
