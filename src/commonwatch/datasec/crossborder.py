"""The cross-border transfer engine: which mechanism a transfer of data abroad needs.

Pure: inputs and the year-to-date counts in, a decision out, every part of it taken from
``rules/crossborder.yaml`` (decision order, thresholds, obligations, warnings, validity) and every
part carrying its citation and its verified/provisional mark. Storage lives in ``services``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from commonwatch.datasec.conditions import all_hold, check_citation, check_when
from commonwatch.errors import FieldError, Invalid
from commonwatch.i18n import _, pick
from commonwatch.rules import RulesError, load_rules

IMPORTANT_DATA = ("none", "notified_or_published", "self_identified_unconfirmed")
FTZ_ANSWERS = ("", "yes", "no", "unclear")
MECHANISMS = ("exempt", "standard_contract_or_certification", "security_assessment")
FACTS = {"is_ciio", "important_data", "contains_pi", "contains_sensitive_pi", "scenario",
         "foreign_origin_no_domestic_mix", "in_ftz", "on_ftz_negative_list", "ytd_non_sensitive", "ytd_sensitive",
         "persons_processed", "treaty_applies", "mechanism"}


@dataclass(frozen=True)
class TransferInputs:
    """What the person assessing a transfer tells us (facts section 9.2)."""

    transfer_date: date
    is_ciio: bool = False
    important_data: str = "none"
    contains_pi: bool = True
    contains_sensitive_pi: bool = False
    scenario: str = "other"
    foreign_origin_no_domestic_mix: bool = False
    ftz: str = ""
    on_ftz_negative_list: str = ""
    persons_non_sensitive: int = 0
    persons_sensitive: int = 0
    prior_non_sensitive_outside: int = 0
    prior_sensitive_outside: int = 0
    persons_processed: int | None = None
    treaty_applies: bool = False

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["transfer_date"] = self.transfer_date.isoformat()
        return d


@dataclass
class Decision:
    mechanism: str
    rule: dict[str, Any]
    counts: dict[str, Any]
    thresholds: list[dict[str, Any]] = field(default_factory=list)
    obligations: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    citations: list[dict[str, Any]] = field(default_factory=list)
    rules_version: str = ""
    #: Whether this transfer counts towards the year's totals, and the rule that says so.
    counting: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- rules ----------------------------------------------------------------------------------------

@lru_cache(maxsize=4)
def _cached(data_dir: str | None) -> dict[str, Any]:
    return validate_rules(load_rules("crossborder.yaml", Path(data_dir) if data_dir else None), "crossborder.yaml")


def crossborder_rules(data_dir: Path | None = None) -> dict[str, Any]:
    """The checked cross-border rules; an operator's copy in ``$COMMONWATCH_DATA_DIR/rules/`` wins."""
    return _cached(str(data_dir) if data_dir else None)


def validate_rules(data: dict[str, Any], origin: str) -> dict[str, Any]:
    """Refuse a malformed rules file, naming the rule and what is wrong with it."""
    for key in ("sources", "thresholds", "decision_order", "mechanisms", "obligations", "warnings", "validity",
                "scenarios", "working_days"):
        if key not in data:
            raise RulesError(origin, f"lacks '{key}'")
    sources = data["sources"]
    thresholds = data["thresholds"]
    for name, t in thresholds.items():
        if not isinstance(t, dict) or not isinstance(t.get("value"), int) or t.get("fact") not in FACTS:
            raise RulesError(origin, f"threshold {name}: needs an integer value and a known fact")
        if t.get("status") not in ("verified", "provisional"):
            raise RulesError(origin, f"threshold {name}: status must be verified or provisional")
    seen = set()
    for i, rule in enumerate(data["decision_order"]):
        where = f"decision_order[{i}] ({rule.get('id', '?')})"
        if not rule.get("id") or rule["id"] in seen:
            raise RulesError(origin, f"{where}: needs a unique id")
        seen.add(rule["id"])
        if rule.get("decision") not in MECHANISMS:
            raise RulesError(origin, f"{where}: decision must be one of {', '.join(MECHANISMS)}")
        check_when(rule.get("when"), origin, where, FACTS, thresholds)
        check_citation(rule, origin, where, sources)
    for section in ("obligations", "warnings"):
        for i, rule in enumerate(data[section]):
            where = f"{section}[{i}] ({rule.get('id', '?')})"
            check_when(rule.get("when"), origin, where, FACTS, thresholds)
            check_citation(rule, origin, where, sources)
    for mech in MECHANISMS:
        if mech not in data["mechanisms"]:
            raise RulesError(origin, f"mechanisms lacks '{mech}'")
    sa = data["validity"].get("security_assessment", {})
    for key in ("years", "extension_window_working_days", "extension_years"):
        if not isinstance(sa.get(key), int):
            raise RulesError(origin, f"validity.security_assessment lacks the integer '{key}'")
    check_exempt_counting(data, origin)
    wd = data["working_days"]
    for key in ("holidays", "makeup_working_days", "years_configured"):
        if not isinstance(wd.get(key), list):
            raise RulesError(origin, f"working_days.{key} must be a list")
    return data


def check_exempt_counting(data: dict[str, Any], origin: str) -> None:
    """``counting.exempt_transfers``: a yes/no with the exemption rules it covers, its citation and mark."""
    rule = (data.get("counting") or {}).get("exempt_transfers")
    where = "counting.exempt_transfers"
    if not isinstance(rule, dict) or not isinstance(rule.get("count"), bool):
        raise RulesError(origin, f"{where} must say whether exempt transfers count (count: true or false)")
    exempt = {r["id"] for r in data["decision_order"] if r.get("decision") == "exempt"}
    listed = rule.get("exempt_rules")
    if not isinstance(listed, list) or not listed or any(r not in exempt for r in listed):
        raise RulesError(origin, f"{where}.exempt_rules must list exempt rules of the decision order")
    for key in ("id", "en", "zh", "en_counted", "zh_counted"):
        if not rule.get(key):
            raise RulesError(origin, f"{where} lacks '{key}'")
    check_citation(rule, origin, where, data["sources"])


def exempt_counting(rules: dict[str, Any]) -> dict[str, Any]:
    """The rule on whether Arts. 3-6 exempt transfers count towards the year."""
    return rules["counting"]["exempt_transfers"]


def not_counted_rules(rules: dict[str, Any]) -> list[str]:
    """Decision rules whose transfers do not add to the year's totals (empty if exempt ones count)."""
    rule = exempt_counting(rules)
    return [] if rule["count"] else list(rule["exempt_rules"])


def counting_record(rules: dict[str, Any], rule_id: str) -> dict[str, Any]:
    """What an assessment records about counting: the choice in force, its citation and mark, and
    whether the transfer decided by ``rule_id`` counts."""
    rule = exempt_counting(rules)
    covered = rule_id in rule["exempt_rules"]
    return {"id": rule["id"], "exempt_transfers_count": rule["count"],
            "this_transfer_counted": not covered or rule["count"],
            "en": rule["en_counted"] if rule["count"] else rule["en"],
            "zh": rule["zh_counted"] if rule["count"] else rule["zh"],
            "citation": cite(rule["citation"], rules["sources"]), "status": rule["status"]}


# --- citations in both languages --------------------------------------------------------------------

_ABBREVIATIONS = {
    "NDSMR": ("NDSMR", "《网络数据安全管理条例》"),
    "PIPL": ("PIPL", "《个人信息保护法》"),
    "DSL": ("DSL", "《数据安全法》"),
    "Provisions": ("Provisions", "《促进和规范数据跨境流动规定》"),
    "Certification Measures": ("Certification Measures", "《个人信息出境认证办法》"),
}


def zh_article(text: str) -> str:
    """'Art. 5(1)-(3); NDSMR Art. 35' -> '第5条第(1)-(3)项；《网络数据安全管理条例》第35条'."""
    out = text
    for en, (_short, zh) in _ABBREVIATIONS.items():
        out = out.replace(en + " ", zh)
    out = re.sub(r"Art\. (\d+(?:-\d+)?)((?:\(\d+\)(?:-\(\d+\))?)?)",
                 lambda m: f"第{m.group(1)}条" + (f"第{m.group(2)}项" if m.group(2) else ""), out)
    out = out.replace("; ", "；").replace(" para. 2", "第二款").replace("Annex", "附录")
    return out


def cite(citation: dict[str, Any], sources: dict[str, Any]) -> dict[str, str]:
    """A citation in both languages: source title and article."""
    src = sources[citation["source"]]
    return {"en": f"{src['en']}, {citation['article']}", "zh": f"{src['zh']} {zh_article(citation['article'])}"}


def _item(rule: dict[str, Any], sources: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": rule["id"], "en": rule["en"], "zh": rule["zh"], "citation": cite(rule["citation"], sources),
            "status": rule["status"], **extra}


# --- the decision -----------------------------------------------------------------------------------

def check_inputs(inputs: TransferInputs, rules: dict[str, Any], ftz_ids: set[str] | None = None) -> None:
    """Refuse inconsistent inputs, every bad field with its reason."""
    errors: list[FieldError] = []
    if inputs.important_data not in IMPORTANT_DATA:
        errors.append(FieldError("important_data", _("must be one of: {values}").format(values=", ".join(
            IMPORTANT_DATA))))
    if inputs.scenario not in rules["scenarios"]:
        errors.append(FieldError("scenario", _("is not a known scenario")))
    if inputs.on_ftz_negative_list not in FTZ_ANSWERS:
        errors.append(FieldError("on_ftz_negative_list", _("must be yes, no or unclear")))
    if inputs.ftz and not inputs.on_ftz_negative_list:
        errors.append(FieldError("on_ftz_negative_list", _("say whether the data are on the zone's negative list")))
    if inputs.ftz and ftz_ids is not None and inputs.ftz not in ftz_ids:
        errors.append(FieldError("ftz", _("no negative list is loaded for this free-trade zone")))
    for name in ("persons_non_sensitive", "persons_sensitive", "prior_non_sensitive_outside",
                 "prior_sensitive_outside"):
        if getattr(inputs, name) < 0:
            errors.append(FieldError(name, _("cannot be negative")))
    if inputs.persons_processed is not None and inputs.persons_processed < 0:
        errors.append(FieldError("persons_processed", _("cannot be negative")))
    if not inputs.contains_pi and (inputs.persons_non_sensitive or inputs.persons_sensitive
                                   or inputs.contains_sensitive_pi):
        errors.append(FieldError("contains_pi", _("persons are counted but the transfer is said to hold no "
                                                  "personal information")))
    if inputs.contains_sensitive_pi and inputs.persons_sensitive < 1:
        errors.append(FieldError("persons_sensitive", _("sensitive personal information is present: give the "
                                                        "number of persons (at least 1)")))
    if not inputs.contains_sensitive_pi and inputs.persons_sensitive:
        errors.append(FieldError("contains_sensitive_pi", _("persons with sensitive personal information are "
                                                            "counted: tick sensitive personal information")))
    if inputs.contains_pi and not (inputs.persons_non_sensitive or inputs.persons_sensitive):
        errors.append(FieldError("persons_non_sensitive", _("give the number of persons whose personal "
                                                            "information is transferred")))
    if errors:
        raise Invalid(errors)


def decide(inputs: TransferInputs, recorded_ytd: tuple[int, int], rules: dict[str, Any], *,
           covering_approval: dict[str, Any] | None = None) -> Decision:
    """The mechanism for a transfer, given the persons already recorded this calendar year.

    ``recorded_ytd`` is (non-sensitive, sensitive) persons of earlier recorded transfers in the
    calendar year of ``inputs.transfer_date``; the transfer itself and exports the user reports
    as made outside commonwatch are added to it.
    """
    sources = rules["sources"]
    thresholds = rules["thresholds"]
    before_ns = recorded_ytd[0] + inputs.prior_non_sensitive_outside
    before_s = recorded_ytd[1] + inputs.prior_sensitive_outside
    after_ns = before_ns + (inputs.persons_non_sensitive if inputs.contains_pi else 0)
    after_s = before_s + (inputs.persons_sensitive if inputs.contains_sensitive_pi else 0)
    facts: dict[str, Any] = {
        "is_ciio": inputs.is_ciio, "important_data": inputs.important_data, "contains_pi": inputs.contains_pi,
        "contains_sensitive_pi": inputs.contains_sensitive_pi, "scenario": inputs.scenario,
        "foreign_origin_no_domestic_mix": inputs.foreign_origin_no_domestic_mix, "in_ftz": bool(inputs.ftz),
        "on_ftz_negative_list": inputs.on_ftz_negative_list or None, "ytd_non_sensitive": after_ns,
        "ytd_sensitive": after_s, "persons_processed": inputs.persons_processed,
        "treaty_applies": inputs.treaty_applies,
    }
    chosen = next((r for r in rules["decision_order"] if all_hold(r["when"], facts, thresholds)), None)
    if chosen is None:
        raise RulesError("crossborder.yaml", "no rule of the decision order matched; the table is incomplete")
    facts["mechanism"] = chosen["decision"]
    counting = counting_record(rules, chosen["id"])
    if not counting["this_transfer_counted"]:
        # An exemption of Arts. 3-6 decided it without the volumes: its persons stay out of the year.
        after_ns, after_s = before_ns, before_s
        facts.update(ytd_non_sensitive=after_ns, ytd_sensitive=after_s)
    year = inputs.transfer_date.year
    counts = {
        "year": year, "window": {"from": date(year, 1, 1).isoformat(), "to": date(year, 12, 31).isoformat()},
        "non_sensitive_before": before_ns, "sensitive_before": before_s,
        "non_sensitive_after": after_ns, "sensitive_after": after_s,
        "recorded_non_sensitive": recorded_ytd[0], "recorded_sensitive": recorded_ytd[1],
    }
    decision = Decision(
        mechanism=chosen["decision"],
        rule=_item(chosen, sources, step=chosen.get("step"), inference=bool(chosen.get("inference"))),
        counts=counts, rules_version=f"{rules['name']} v{rules['version']} ({rules['effective']})",
        counting=counting,
    )
    decision.thresholds = threshold_report(facts, before_ns, before_s, rules) if inputs.contains_pi else []
    decision.obligations = [_obligation(o, sources, inputs, rules) for o in rules["obligations"]
                            if all_hold(o["when"], facts, thresholds)]
    decision.warnings = [_item(w, sources) for w in rules["warnings"] if all_hold(w["when"], facts, thresholds)]
    decision.warnings += approach_warnings(facts, rules) if inputs.contains_pi else []
    if covering_approval and decision.mechanism == "security_assessment":
        decision.warnings.append(_covered(covering_approval, rules))
    cited = [decision.rule["citation"]] + [o["citation"] for o in decision.obligations] + [
        w["citation"] for w in decision.warnings if w.get("citation")] + [counting["citation"]]
    decision.citations = [c for i, c in enumerate(cited) if c not in cited[:i]]
    return decision


def threshold_report(facts: dict[str, Any], before_ns: int, before_s: int, rules: dict[str, Any]) -> list[dict]:
    """Each threshold: the count it watches, whether it is reached, and whether this transfer crossed it."""
    out = []
    for name, t in rules["thresholds"].items():
        current = facts[t["fact"]]
        before = before_ns if t["fact"] == "ytd_non_sensitive" else before_s
        out.append({"id": name, "fact": t["fact"], "value": t["value"], "count": current,
                    "reached": current >= t["value"], "crossed_now": before < t["value"] <= current,
                    "en": t["en"], "zh": t["zh"], "citation": cite(t["citation"], rules["sources"]),
                    "status": t["status"]})
    return out


def approach_warnings(facts: dict[str, Any], rules: dict[str, Any]) -> list[dict[str, Any]]:
    """A warning for each threshold that the year-to-date count is close to but has not reached."""
    share = float(rules.get("approach_warning_share", 0.9))
    out = []
    for name, t in rules["thresholds"].items():
        current, line = facts[t["fact"]], t["value"]
        if line > 1 and share * line <= current < line:
            left = line - current
            out.append({
                "id": f"approaching_{name}",
                "en": f"Year-to-date count {current:,} is within {left:,} persons of the line of {t['en']}.",
                "zh": f"本年累计{current:,}人，距{t['zh']}的界线仅差{left:,}人。",
                "citation": cite(t["citation"], rules["sources"]), "status": t["status"]})
    return out


def _obligation(rule: dict[str, Any], sources: dict[str, Any], inputs: TransferInputs,
                rules: dict[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if rule.get("retention_years"):
        extra["keep_until"] = add_years(inputs.transfer_date, int(rule["retention_years"])).isoformat()
    if rule.get("deadline_working_days"):
        extra["deadline_working_days"] = int(rule["deadline_working_days"])
    return _item(rule, sources, **extra)


def _covered(approval: dict[str, Any], rules: dict[str, Any]) -> dict[str, Any]:
    return {"id": "covered_by_approval",
            "en": f"An approved security assessment ({approval['reference']}) is valid until "
                  f"{approval['valid_until']}; the transfer must stay within its assessed purpose, method, scope, "
                  "types and scale.",
            "zh": f"已通过的数据出境安全评估（{approval['reference']}）有效期至{approval['valid_until']}；"
                  "出境活动不得超出评估时明确的目的、方式、范围、种类和规模。",
            "citation": cite({"source": "ndsmr", "article": "Art. 38"}, rules["sources"]), "status": "verified"}


def mechanism_label(mechanism: str, rules: dict[str, Any]) -> str:
    m = rules["mechanisms"].get(mechanism)
    return pick(m["en"], m["zh"]) if m else mechanism


# --- dates: validity, working days -------------------------------------------------------------------

def add_years(d: date, years: int) -> date:
    """The same day ``years`` later (29 February becomes 28 February)."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


@dataclass(frozen=True)
class WorkingCalendar:
    holidays: frozenset[date]
    makeup_days: frozenset[date]
    years: frozenset[int]

    @classmethod
    def from_rules(cls, rules: dict[str, Any]) -> WorkingCalendar:
        wd = rules["working_days"]
        return cls(frozenset(_as_date(d) for d in wd["holidays"]), frozenset(_as_date(d) for d in
                                                                              wd["makeup_working_days"]),
                   frozenset(int(y) for y in wd["years_configured"]))

    def is_working_day(self, d: date) -> bool:
        if d in self.makeup_days:
            return True
        return d.weekday() < 5 and d not in self.holidays

    def minus_working_days(self, end: date, n: int) -> date:
        """The date on which a window of ``n`` working days ending on ``end`` (inclusive) opens."""
        d, counted = end, 0
        while True:
            if self.is_working_day(d):
                counted += 1
                if counted == n:
                    return d
            d -= timedelta(days=1)

    def plus_working_days(self, start: date, n: int) -> date:
        """The ``n``-th working day after ``start``."""
        d, counted = start, 0
        while counted < n:
            d += timedelta(days=1)
            if self.is_working_day(d):
                counted += 1
        return d

    def unconfigured_years(self, start: date, end: date) -> list[int]:
        return [y for y in range(min(start, end).year, max(start, end).year + 1) if y not in self.years]


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def validity(kind: str, issued_on: date, rules: dict[str, Any]) -> dict[str, Any]:
    """Expiry, and for a security assessment the opening of its extension window, from the rules."""
    spec = rules["validity"][kind]
    valid_until = add_years(issued_on, int(spec["years"])) - timedelta(days=1)
    out: dict[str, Any] = {"valid_until": valid_until, "window_opens": None, "warnings": []}
    if spec.get("extension_window_working_days"):
        cal = WorkingCalendar.from_rules(rules)
        out["window_opens"] = cal.minus_working_days(valid_until, int(spec["extension_window_working_days"]))
        missing = cal.unconfigured_years(out["window_opens"], valid_until)
        if missing:
            out["warnings"].append({
                "en": "No public-holiday calendar is configured for {years}: the extension window was counted "
                      "with weekends only. Add the State Council holiday notice to the rules file.".format(
                          years=", ".join(map(str, missing))),
                "zh": ("{years}年未配置法定节假日日历：续期申请期限仅按周末计算。"
                       "请在规则文件中加入国务院节假日安排通知。").format(
                    years="、".join(map(str, missing)))})
    return out
