"""The incident rules files, validated into typed objects.

Four files under ``commonwatch/rules/`` (an operator's copy in ``$COMMONWATCH_DATA_DIR/rules/`` wins):
``incident_grading.yaml`` (levels and indicators), ``incident_reporting.yaml`` (routes, clocks,
parallel duties), ``incident_taxonomy.yaml`` (GB/T 20986-2023 with RSIT beside it) and
``incident_sharing.yaml`` (what each TLP label lets a partner see). A malformed file is refused with
the file and the reason; nothing half-loaded is ever used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from commonwatch.i18n import pick
from commonwatch.rules import RulesError, parse_rules, rules_path

GRADING_FILE = "incident_grading.yaml"
REPORTING_FILE = "incident_reporting.yaml"
TAXONOMY_FILE = "incident_taxonomy.yaml"
SHARING_FILE = "incident_sharing.yaml"

STATUSES = ("verified", "provisional")
INPUT_TYPES = ("count", "minutes", "percent", "rmb", "bool", "enum")
ROUTE_KEYS = ("cii", "central_state_organ", "other")
TLP_LABELS = ("TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:RED")


@dataclass(frozen=True)
class Text:
    """A text the rules carry in both languages."""

    en: str
    zh: str

    def __str__(self) -> str:
        return pick(self.en, self.zh)


@dataclass(frozen=True)
class Level:
    key: str  # the Chinese name: 特别重大, 重大, 较大, 一般
    slug: str
    en: str
    roman: str
    rank: int
    warning: str

    @property
    def label(self) -> str:
        """Chinese name with the English display text (in English pages), or the Chinese name alone."""
        return pick(f"{self.key} ({self.en})", self.key)


@dataclass(frozen=True)
class Choice:
    key: str
    text: Text


@dataclass(frozen=True)
class Input:
    name: str
    type: str
    text: Text
    values: tuple[Choice, ...] = ()
    ordered: bool = False

    def value_keys(self) -> list[str]:
        return [v.key for v in self.values]

    def choice_text(self, key: str) -> str:
        for v in self.values:
            if v.key == key:
                return str(v.text)
        return key


@dataclass(frozen=True)
class Indicator:
    id: str
    level: str
    input: str
    op: str  # ge | true
    threshold: Any
    when: dict[str, tuple[str, ...]]
    text: Text
    citation: Text
    status: str
    confidence: str

    @property
    def provisional(self) -> bool:
        return self.status == "provisional"


@dataclass(frozen=True)
class GradingRules:
    name: str
    version: str
    effective: str
    origin: str
    citation: Text
    levels: tuple[Level, ...]  # highest first
    default_level: str
    inputs: dict[str, Input]
    indicators: tuple[Indicator, ...]

    def level(self, key: str) -> Level:
        for lv in self.levels:
            if lv.key == key:
                return lv
        raise KeyError(key)

    def rank(self, key: str) -> int:
        return self.level(key).rank

    def level_keys(self) -> list[str]:
        return [lv.key for lv in self.levels]


@dataclass(frozen=True)
class Route:
    key: str
    text: Text
    first_recipients: tuple[Text, ...]
    first_minutes: int
    escalation_recipients: tuple[Text, ...]
    escalation_by: Text
    escalation_minutes: int
    citation: Text
    status: str


@dataclass(frozen=True)
class Duty:
    id: str
    when: dict[str, Any]
    hours: float | None
    text: Text
    citation: Text
    status: str


@dataclass(frozen=True)
class ReportingRules:
    name: str
    version: str
    effective: str
    origin: str
    reportable_from: str
    reportable_citation: Text
    org_kind_routes: dict[str, str]
    routes: dict[str, Route]
    escalation_from: str
    escalation_citation: Text
    summary_days: float
    summary_text: Text
    summary_citation: Text
    summary_status: str
    initial_required_first: tuple[int, ...]
    initial_citation: Text
    initial_status: str
    duties: tuple[Duty, ...]
    duty_inputs: dict[str, Input]
    channels: Text
    channels_status: str
    at_risk_fraction: float
    at_risk_min_minutes: float


@dataclass(frozen=True)
class Subcategory:
    code: str
    text: Text
    rsit_class: str
    rsit_type: str


@dataclass(frozen=True)
class Category:
    code: str
    text: Text
    subcategories: tuple[Subcategory, ...]
    rsit_class: str = ""
    rsit_type: str = ""


@dataclass(frozen=True)
class Taxonomy:
    origin: str
    version: str
    citation: Text
    codes_status: str
    categories: tuple[Category, ...]
    rsit: dict[str, tuple[Text, dict[str, Text]]]  # class -> (label, {type: label})

    def category(self, code: str) -> Category | None:
        return next((c for c in self.categories if c.code == code), None)

    def subcategory(self, code: str) -> tuple[Category, Subcategory] | None:
        for c in self.categories:
            for s in c.subcategories:
                if s.code == code:
                    return c, s
        return None

    def rsit_for(self, category: str, subcategory: str | None) -> tuple[str, str]:
        found = self.subcategory(subcategory) if subcategory else None
        if found:
            return found[1].rsit_class, found[1].rsit_type
        cat = self.category(category)
        if cat and cat.rsit_class:
            return cat.rsit_class, cat.rsit_type
        return "other", "undetermined"

    def from_rsit(self, rsit_class: str, rsit_type: str) -> tuple[str, str | None]:
        """The first GB/T subcategory mapped to an RSIT class/type (events carry RSIT)."""
        for c in self.categories:
            for s in c.subcategories:
                if (s.rsit_class, s.rsit_type) == (rsit_class, rsit_type):
                    return c.code, s.code
        for c in self.categories:
            for s in c.subcategories:
                if s.rsit_class == rsit_class:
                    return c.code, s.code
        return "OTH", None

    def rsit_label(self, rsit_class: str, rsit_type: str) -> str:
        entry = self.rsit.get(rsit_class)
        if not entry:
            return f"{rsit_class}/{rsit_type}"
        type_text = entry[1].get(rsit_type)
        return f"{entry[0]} / {type_text or rsit_type}"


@dataclass(frozen=True)
class SharingRules:
    origin: str
    version: str
    citation: Text
    fields: dict[str, Text]
    levels: dict[str, tuple[str, ...]]


# --- loading ----------------------------------------------------------------------------------------

@dataclass
class _Checker:
    origin: str
    problems: list[str] = field(default_factory=list)

    def fail(self, where: str, reason: str) -> None:
        self.problems.append(f"{where}: {reason}")

    def text(self, node: Any, where: str) -> Text:
        if not isinstance(node, dict) or not isinstance(node.get("en"), str) or not isinstance(node.get("zh"), str) \
                or not node["en"].strip() or not node["zh"].strip():
            self.fail(where, "needs both 'en' and 'zh' texts")
            return Text("", "")
        return Text(node["en"], node["zh"])

    def own_text(self, node: dict, where: str) -> Text:
        return self.text({"en": node.get("en"), "zh": node.get("zh")}, where)

    def status(self, node: dict, where: str, key: str = "status") -> str:
        value = node.get(key)
        if value not in STATUSES:
            self.fail(where, f"'{key}' must be one of {', '.join(STATUSES)} (got {value!r})")
            return "provisional"
        return value

    def number(self, node: dict, key: str, where: str, *, allow_none: bool = False) -> float | None:
        value = node.get(key)
        if value is None and allow_none:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            self.fail(where, f"'{key}' must be a number of at least 0 (got {value!r})")
            return 0
        return value

    def done(self) -> None:
        if self.problems:
            more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
            raise RulesError(self.origin, "; ".join(self.problems[:5]) + more)


def _read(name: str, data_dir: Path | None) -> tuple[dict[str, Any], str]:
    path = rules_path(name, data_dir)
    return parse_rules(path.read_text(encoding="utf-8"), str(path)), str(path)


def _inputs(c: _Checker, node: Any, where: str) -> dict[str, Input]:
    out: dict[str, Input] = {}
    if not isinstance(node, dict) or not node:
        c.fail(where, "must map input names to their definitions")
        return out
    for name, spec in node.items():
        w = f"{where}.{name}"
        if not isinstance(spec, dict):
            c.fail(w, "must be a mapping")
            continue
        kind = spec.get("type")
        if kind not in INPUT_TYPES:
            c.fail(w, f"'type' must be one of {', '.join(INPUT_TYPES)} (got {kind!r})")
            continue
        values: list[Choice] = []
        if kind == "enum":
            raw = spec.get("values")
            if not isinstance(raw, list) or not raw:
                c.fail(w, "an enum needs a list of 'values'")
            else:
                for i, v in enumerate(raw):
                    if not isinstance(v, dict) or not isinstance(v.get("key"), str):
                        c.fail(f"{w}.values[{i}]", "needs a 'key'")
                        continue
                    values.append(Choice(v["key"], c.own_text(v, f"{w}.values[{i}]")))
        out[name] = Input(name, kind, c.own_text(spec, w), tuple(values), bool(spec.get("ordered")))
    return out


def parse_grading(data: dict[str, Any], origin: str) -> GradingRules:
    """Validate a grading rules document; raises :class:`RulesError` naming every problem found."""
    c = _Checker(origin)
    levels: list[Level] = []
    for i, lv in enumerate(data.get("levels") or []):
        w = f"levels[{i}]"
        if not isinstance(lv, dict) or not isinstance(lv.get("key"), str) or not isinstance(lv.get("rank"), int):
            c.fail(w, "needs a 'key' (the Chinese name) and an integer 'rank'")
            continue
        levels.append(Level(lv["key"], str(lv.get("slug") or lv["key"]), str(lv.get("en") or lv["key"]),
                            str(lv.get("roman") or ""), lv["rank"], str(lv.get("warning") or "")))
    if not levels:
        c.fail("levels", "must list the levels")
    levels.sort(key=lambda lv: -lv.rank)
    keys = [lv.key for lv in levels]
    if len(set(keys)) != len(keys) or len({lv.rank for lv in levels}) != len(levels):
        c.fail("levels", "level keys and ranks must be unique")
    default = data.get("default_level")
    if default not in keys:
        c.fail("default_level", f"must be one of the levels (got {default!r})")
    inputs = _inputs(c, data.get("inputs"), "inputs")
    indicators: list[Indicator] = []
    seen: set[str] = set()
    for i, ind in enumerate(data.get("indicators") or []):
        w = f"indicators[{i}]"
        if not isinstance(ind, dict):
            c.fail(w, "must be a mapping")
            continue
        ident = str(ind.get("id") or "")
        w = f"indicator {ident or i}"
        if not ident or ident in seen:
            c.fail(w, "needs a unique 'id'")
        seen.add(ident)
        if ind.get("level") not in keys:
            c.fail(w, f"'level' must be one of {', '.join(keys)} (got {ind.get('level')!r})")
        spec = inputs.get(str(ind.get("input")))
        if spec is None:
            c.fail(w, f"'input' {ind.get('input')!r} is not defined under inputs")
            continue
        op = str(ind.get("op") or "")
        threshold = ind.get("threshold")
        if op == "ge":
            if spec.type == "enum":
                if not spec.ordered or threshold not in spec.value_keys():
                    c.fail(w, f"'threshold' must be a value of the ordered enum {spec.name}")
            elif spec.type == "bool" or isinstance(threshold, bool) or not isinstance(threshold, int | float) \
                    or threshold < 0:
                c.fail(w, "'threshold' must be a number of at least 0")
        elif op == "true":
            if spec.type != "bool":
                c.fail(w, f"op 'true' needs a yes/no input ({spec.name} is {spec.type})")
        else:
            c.fail(w, f"'op' must be 'ge' or 'true' (got {op!r})")
        when: dict[str, tuple[str, ...]] = {}
        for key, allowed in (ind.get("when") or {}).items():
            cond = inputs.get(key)
            if cond is None or cond.type != "enum" or not isinstance(allowed, list) \
                    or any(a not in cond.value_keys() for a in allowed):
                c.fail(w, f"'when: {key}' must list values of an enum input")
                continue
            when[key] = tuple(allowed)
        indicators.append(Indicator(
            ident, str(ind.get("level")), spec.name, op, threshold, when, c.own_text(ind, w),
            c.text(ind.get("citation"), f"{w}.citation"), c.status(ind, w), str(ind.get("confidence") or ""),
        ))
    if not indicators:
        c.fail("indicators", "must list at least one indicator")
    citation = c.text(data.get("citation"), "citation")
    c.done()
    return GradingRules(data["name"], str(data["version"]), str(data["effective"]), origin, citation, tuple(levels),
                        default, inputs, tuple(indicators))


_DUTY_KEYS = {"input", "op", "value", "category", "level_at_least", "involves_cii", "suspected_crime", "reportable"}


def parse_reporting(data: dict[str, Any], origin: str, levels: list[str]) -> ReportingRules:
    """Validate a reporting rules document against the level names of the grading rules."""
    c = _Checker(origin)
    routes: dict[str, Route] = {}
    raw_routes = data.get("routes") or {}
    for key in ROUTE_KEYS:
        r = raw_routes.get(key)
        w = f"routes.{key}"
        if not isinstance(r, dict):
            c.fail(w, "is missing")
            continue
        firsts = tuple(c.text(x, f"{w}.first_recipients") for x in (r.get("first_recipients") or []))
        escs = tuple(c.text(x, f"{w}.escalation_recipients") for x in (r.get("escalation_recipients") or []))
        if not firsts:
            c.fail(w, "needs 'first_recipients'")
        first = c.number(r, "first_minutes", w)
        esc = c.number(r, "escalation_minutes", w)
        if first == 0:
            c.fail(w, "'first_minutes' must be more than 0")
        routes[key] = Route(key, c.own_text(r, w), firsts, int(first or 0), escs,
                            c.text(r.get("escalation_by"), f"{w}.escalation_by"), int(esc or 0),
                            c.text(r.get("citation"), f"{w}.citation"), c.status(r, w))
    kinds = data.get("org_kind_routes") or {}
    if not isinstance(kinds, dict) or any(v not in ROUTE_KEYS for v in kinds.values()):
        c.fail("org_kind_routes", f"must map organisation kinds to one of {', '.join(ROUTE_KEYS)}")
        kinds = {}
    for key in ("reportable_from", "escalation_from"):
        if data.get(key) not in levels:
            c.fail(key, f"must be one of {', '.join(levels)} (got {data.get(key)!r})")
    summary = data.get("summary_report") or {}
    days = c.number(summary, "days_after_handling_ends", "summary_report")
    initial = data.get("initial_report") or {}
    duty_inputs = _inputs(c, data.get("duty_inputs"), "duty_inputs") if data.get("duty_inputs") else {}
    duties: list[Duty] = []
    for i, d in enumerate(data.get("duties") or []):
        w = f"duties[{i}]"
        if not isinstance(d, dict) or not d.get("id"):
            c.fail(w, "needs an 'id'")
            continue
        w = f"duty {d['id']}"
        when = d.get("when") or {}
        if not isinstance(when, dict) or not when or set(when) - _DUTY_KEYS:
            c.fail(w, f"'when' must use only {', '.join(sorted(_DUTY_KEYS))}")
        if "level_at_least" in when and when["level_at_least"] not in levels:
            c.fail(w, f"'level_at_least' must be one of {', '.join(levels)}")
        if "input" in when and when.get("op") not in ("ge", "true"):
            c.fail(w, "'op' must be 'ge' or 'true'")
        hours = c.number(d, "hours", w, allow_none=True)
        duties.append(Duty(str(d["id"]), dict(when), hours, c.own_text(d, w),
                           c.text(d.get("citation"), f"{w}.citation"), c.status(d, w)))
    alerting = data.get("alerting") or {}
    fraction = alerting.get("at_risk_fraction", 0.25)
    if not isinstance(fraction, int | float) or not 0 <= fraction < 1:
        c.fail("alerting.at_risk_fraction", "must be a number from 0 up to (not including) 1")
        fraction = 0.25
    channels = data.get("channels") or {}
    result = ReportingRules(
        data["name"], str(data["version"]), str(data["effective"]), origin, str(data.get("reportable_from")),
        c.text(data.get("reportable_citation"), "reportable_citation"), dict(kinds), routes,
        str(data.get("escalation_from")), c.text(data.get("escalation_citation"), "escalation_citation"),
        float(days or 0), c.own_text(summary, "summary_report"),
        c.text(summary.get("citation"), "summary_report.citation"),
        c.status(summary, "summary_report"), tuple(initial.get("required_first") or (1, 2)),
        c.text(initial.get("citation"), "initial_report.citation"), c.status(initial, "initial_report"),
        tuple(duties), duty_inputs, c.own_text(channels, "channels"), c.status(channels, "channels"),
        float(fraction), float(alerting.get("at_risk_min_minutes", 15)),
    )
    c.done()
    return result


def parse_taxonomy(data: dict[str, Any], origin: str) -> Taxonomy:
    c = _Checker(origin)
    rsit: dict[str, tuple[Text, dict[str, Text]]] = {}
    for i, cls in enumerate(data.get("rsit") or []):
        w = f"rsit[{i}]"
        if not isinstance(cls, dict) or not cls.get("class"):
            c.fail(w, "needs a 'class'")
            continue
        types = {str(t.get("type")): c.own_text(t, f"{w}.{t.get('type')}") for t in (cls.get("types") or [])
                 if isinstance(t, dict) and t.get("type")}
        rsit[str(cls["class"])] = (c.own_text(cls, w), types)

    def check_rsit(pair: Any, where: str) -> tuple[str, str]:
        if not isinstance(pair, list) or len(pair) != 2 or pair[0] not in rsit or pair[1] not in rsit[pair[0]][1]:
            c.fail(where, f"'rsit' must be [class, type] from the RSIT list (got {pair!r})")
            return "other", "undetermined"
        return str(pair[0]), str(pair[1])

    categories: list[Category] = []
    codes: set[str] = set()
    for i, cat in enumerate(data.get("categories") or []):
        if not isinstance(cat, dict) or not cat.get("code"):
            c.fail(f"categories[{i}]", "needs a 'code'")
            continue
        w = f"category {cat['code']}"
        subs: list[Subcategory] = []
        for s in cat.get("subcategories") or []:
            if not isinstance(s, dict) or not s.get("code"):
                c.fail(w, "every subcategory needs a 'code'")
                continue
            if s["code"] in codes:
                c.fail(w, f"code {s['code']} is used twice")
            codes.add(s["code"])
            rc, rt = check_rsit(s.get("rsit"), f"{w}.{s['code']}")
            subs.append(Subcategory(str(s["code"]), c.own_text(s, f"{w}.{s['code']}"), rc, rt))
        rc, rt = check_rsit(cat["rsit"], w) if "rsit" in cat else ("", "")
        if not subs and not rc:
            c.fail(w, "a category without subcategories needs its own 'rsit'")
        if cat["code"] in codes:
            c.fail(w, f"code {cat['code']} is used twice")
        codes.add(cat["code"])
        categories.append(Category(str(cat["code"]), c.own_text(cat, w), tuple(subs), rc, rt))
    if not categories:
        c.fail("categories", "must list the categories")
    result = Taxonomy(origin, str(data["version"]), c.text(data.get("citation"), "citation"),
                      c.status(data, "codes_status", "codes_status"), tuple(categories), rsit)
    c.done()
    return result


def parse_sharing(data: dict[str, Any], origin: str) -> SharingRules:
    c = _Checker(origin)
    fields = {str(k): c.text(v, f"fields.{k}") for k, v in (data.get("fields") or {}).items()}
    levels: dict[str, tuple[str, ...]] = {}
    raw = data.get("levels") or {}
    for label in TLP_LABELS:
        allowed = raw.get(label)
        if not isinstance(allowed, list):
            c.fail(f"levels.{label}", "must list the fields shared at this label")
            continue
        unknown = [f for f in allowed if f not in fields]
        if unknown:
            c.fail(f"levels.{label}", f"names unknown fields {', '.join(map(str, unknown))}")
        levels[label] = tuple(allowed)
    extra = set(raw) - set(TLP_LABELS)
    if extra:
        c.fail("levels", f"unknown TLP labels {', '.join(sorted(extra))}")
    result = SharingRules(origin, str(data["version"]), c.text(data.get("citation"), "citation"), fields, levels)
    c.done()
    return result


@dataclass(frozen=True)
class IncidentRules:
    grading: GradingRules
    reporting: ReportingRules
    taxonomy: Taxonomy
    sharing: SharingRules

    @property
    def version(self) -> str:
        """Names the rules a decision was taken under, recorded with every grading."""
        return (f"grading v{self.grading.version} ({self.grading.effective}), "
                f"reporting v{self.reporting.version} ({self.reporting.effective})")


def _mtimes(data_dir: Path | None) -> tuple[tuple[str, int], ...]:
    out = []
    for name in (GRADING_FILE, REPORTING_FILE, TAXONOMY_FILE, SHARING_FILE):
        p = rules_path(name, data_dir)
        out.append((str(p), p.stat().st_mtime_ns))
    return tuple(out)


@lru_cache(maxsize=8)
def _load(data_dir: Path | None, _stamp: tuple[tuple[str, int], ...]) -> IncidentRules:
    g_data, g_origin = _read(GRADING_FILE, data_dir)
    grading = parse_grading(g_data, g_origin)
    r_data, r_origin = _read(REPORTING_FILE, data_dir)
    reporting = parse_reporting(r_data, r_origin, grading.level_keys())
    t_data, t_origin = _read(TAXONOMY_FILE, data_dir)
    s_data, s_origin = _read(SHARING_FILE, data_dir)
    return IncidentRules(grading, reporting, parse_taxonomy(t_data, t_origin), parse_sharing(s_data, s_origin))


def load_incident_rules(data_dir: Path | None = None) -> IncidentRules:
    """The rules in force: re-read when a file changes, so an operator's edit applies without a restart."""
    return _load(data_dir, _mtimes(data_dir))
