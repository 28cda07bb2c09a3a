"""Every indicator, defined once: its key, its name in English and Chinese, what it counts, the
capability it comes from, how it is charted and how it is computed.

Dashboards, the API, the CSV downloads and the reports all read this registry, so a figure in a
report names its indicator and its period and is the same number as on the page.

Another capability plugs its indicators in by providing ``commonwatch.<capability>.reports_indicators``
with ``INDICATORS: list[Indicator]`` (found through ``capabilities.parts``). Indicators declared
here for a capability that is not installed (``vulns``, ``cooperation``) answer "not available"
with the reason until that capability provides them: never an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

import polars as pl
from sqlalchemy import and_, case, func, literal_column, select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.capabilities import _find, parts
from commonwatch.constituency.models import Organisation
from commonwatch.db import scope
from commonwatch.i18n import N_, _, pick
from commonwatch.labels import label
from commonwatch.reports import query
from commonwatch.reports.query import Filters, Period

#: Top-N tables and the series split show this many values; the rest is "other".
TOP = 10
SPLIT = 8


@dataclass
class Context:
    session: Session
    principal: Principal
    period: Period
    filters: Filters = field(default_factory=Filters)
    now: datetime | None = None


@dataclass
class Result:
    """The numbers of one indicator for one period: ``data`` holds the table (its columns are the
    indicator's ``columns``), ``value`` a single figure when there is one."""

    indicator: Indicator
    period: Period
    data: pl.DataFrame
    value: float | None = None
    note: str = ""
    absent: str = ""  # why the indicator has no figures (its capability is not installed)

    @property
    def empty(self) -> bool:
        return not self.absent and (self.data.height == 0 or int(self.data["n"].sum() or 0) == 0) \
            if "n" in self.data.columns else self.data.height == 0 and self.value is None

    def to_json(self) -> dict[str, Any]:
        ind = self.indicator
        return {"indicator": ind.key, "name": ind.name(), "counts": ind.what(), "source": ind.source,
                "period": {"start": self.period.start.isoformat(), "end": self.period.end.isoformat(),
                           "tz": self.period.tz},
                "unit": ind.unit, "value": self.value, "note": self.note, "absent": self.absent or None,
                "empty": self.empty, "columns": self.data.columns, "rows": self.data.to_dicts()}


@dataclass(frozen=True)
class Indicator:
    key: str
    en: str
    zh: str
    counts_en: str
    counts_zh: str
    source: str  # the capability whose data it counts
    chart: str  # line | stacked | bar | table | figure
    compute: Callable[[Context], Result] | None = None
    #: for a chart: x, y and colour fields of ``data``
    x: str = "when"
    y: str = "n"
    color: str = ""
    unit: str = "events"
    dashboards: tuple[str, ...] = ("coordinator", "sector", "constituent")

    def name(self) -> str:
        return pick(self.en, self.zh)

    def what(self) -> str:
        return pick(self.counts_en, self.counts_zh)

    def unit_label(self) -> str:
        return _(UNITS.get(self.unit, self.unit))


UNITS = {"events": N_("events"), "hosts": N_("hosts"), "organisations": N_("organisations"),
         "deliveries": N_("deliveries"), "warnings": N_("warnings"), "hours": N_("hours"), "days": N_("days"),
         "incidents": N_("incidents"), "clocks": N_("clocks"), "vulnerabilities": N_("vulnerabilities"),
         "exchanges": N_("exchanges"), "requests": N_("requests")}
COLUMN_LABELS = {"when": N_("Date"), "n": N_("Count"), "type": N_("Type"), "severity": N_("Severity"),
                 "feed": N_("Feed"), "sector": N_("Sector"), "region": N_("Region"), "country": N_("Country"),
                 "org": N_("Organisation"), "asn": N_("ASN"), "level": N_("Level"), "category": N_("Category"),
                 "status": N_("Status"), "measure": N_("Measure"), "clock": N_("Clock"), "outcome": N_("Outcome")}


#: Columns whose values are codes of a registered enumeration (``commonwatch.labels``).
COLUMN_ENUMS = {"type": "event_type", "severity": "severity", "sector": "sector", "level": "incident_level"}


#: ``status`` means a different enumeration in each indicator that has one.
STATUS_ENUMS = {"notify.deliveries": "delivery_status", "notify.acknowledged": "warning_status",
                "incidents.status": "incident_status"}


def labelled(frame: pl.DataFrame, say: Callable[[str, str], str] | None = None, indicator: str = "") -> pl.DataFrame:
    """``frame`` with the codes of its enumeration columns replaced by their labels, for people.

    ``say(code, kind)`` gives a label (default: the current language's); one look-up per distinct
    code, then one columnar replace."""
    say = say or label
    exprs = []
    enums = {**COLUMN_ENUMS, **({"status": STATUS_ENUMS[indicator]} if indicator in STATUS_ENUMS else {})}
    for column, kind in enums.items():
        if column in frame.columns and frame.schema[column] == pl.String:
            codes = frame[column].drop_nulls().unique().to_list()
            exprs.append(pl.col(column).replace({code: say(code, kind) for code in codes}))
    return frame.with_columns(exprs) if exprs else frame


def _cap(frame: pl.DataFrame, by: str, limit: int = SPLIT) -> pl.DataFrame:
    """Keep the ``limit`` largest values of ``by``; the rest becomes ``other``."""
    if frame.height == 0:
        return frame
    top = frame.group_by(by).agg(pl.col("n").sum()).sort("n", descending=True).head(limit)[by]
    other = _("other")
    return (frame.with_columns(pl.when(pl.col(by).is_in(top.implode())).then(pl.col(by).cast(pl.String))
                               .otherwise(pl.lit(other)).alias(by))
            .group_by([c for c in frame.columns if c != "n"]).agg(pl.col("n").sum()))


def _blank(frame: pl.DataFrame, by: str) -> pl.DataFrame:
    return frame.with_columns(pl.when(pl.col(by).cast(pl.String).fill_null("") == "")
                              .then(pl.lit(_("(none)"))).otherwise(pl.col(by).cast(pl.String)).alias(by))


def _note(p: Period) -> str:
    return "" if p.daily else _("per month of UTC days (periods over {days} days)").format(days=query.MAX_DAILY_DAYS)


def events_over_time(dim: str) -> Callable[[Context], Result]:
    def compute(ctx: Context) -> Result:
        frame = query.series(ctx.session, ctx.principal, ctx.period, [dim], ctx.filters)
        if dim == "org":
            frame = _org_names(ctx, frame)
        frame = _cap(_blank(frame, dim), dim).sort(["when", dim])
        return Result(registry()[f"events.{dim}"], ctx.period, frame, value=float(frame["n"].sum() or 0),
                      note=_note(ctx.period))
    return compute


def _org_names(ctx: Context, frame: pl.DataFrame) -> pl.DataFrame:
    ids = [i for i in frame["org"].unique().to_list() if i]
    stmt = scope(select(Organisation.id, Organisation.name).where(Organisation.id.in_(ids)), ctx.principal,
                 Organisation)
    names = dict(ctx.session.execute(stmt).all()) if ids else {}
    return frame.with_columns(pl.col("org").replace_strict(names, default=None, return_dtype=pl.String)
                              .fill_null(pl.col("org").cast(pl.String)).alias("org"))


def top(dim: str, key: str) -> Callable[[Context], Result]:
    def compute(ctx: Context) -> Result:
        frame = query.totals(ctx.session, ctx.principal, ctx.period, [dim], ctx.filters)
        frame = frame.filter(pl.col(dim).cast(pl.String).fill_null("").is_in(["", "0"]).not_()).head(TOP)
        if dim == "org":
            frame = _org_names(ctx, frame)
        frame = frame.with_columns(pl.col(dim).cast(pl.String))
        return Result(registry()[key], ctx.period, frame.select(dim, "n"))
    return compute


def hosts(key: str, types: tuple[str, ...] = (), per_org: bool = False) -> Callable[[Context], Result]:
    def compute(ctx: Context) -> Result:
        n = query.distinct_hosts(ctx.session, ctx.principal, ctx.period, ctx.filters, types=types, per_org=per_org)
        return Result(registry()[key], ctx.period, pl.DataFrame({"n": [n]}, schema={"n": pl.Int64}), value=float(n),
                      note=_("counted over the UTC days the period touches"))
    return compute


def _by(model: Any, column: Any, label: str, ctx: Context, time_col: Any, *where: Any) -> pl.DataFrame:
    stmt = select(column.label(label), func.count().label("n")).where(
        time_col >= ctx.period.since, time_col < ctx.period.until, *where)
    stmt = scope(stmt, ctx.principal, model)
    if ctx.filters.org_id:
        stmt = stmt.where(model.org_id == ctx.filters.org_id)
    if ctx.filters.sector or ctx.filters.region:
        orgs = select(Organisation.id)
        if ctx.filters.sector:
            orgs = orgs.where(Organisation.sector == ctx.filters.sector)
        if ctx.filters.region:
            orgs = orgs.where(Organisation.region == ctx.filters.region)
        stmt = stmt.where(model.org_id.in_(orgs))
    rows = ctx.session.execute(stmt.group_by(column).order_by(func.count().desc())).all()
    return pl.DataFrame([tuple(r) for r in rows], schema={label: pl.String, "n": pl.Int64}, orient="row")


#: Durations are counted in the database to this step (0.01 hours), so that a period's
#: thousands of warnings or incidents come back as one row per step, not one per case.
STEP_SECONDS = 36


def _steps_between(session: Session, a: Any, b: Any) -> Any:
    """``b - a`` in :data:`STEP_SECONDS` steps (a float), one expression per database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", b - a) / float(STEP_SECONDS)
    return (func.julianday(b) - func.julianday(a)) * literal_column(repr(86400.0 / STEP_SECONDS))


def _quantile(steps: list[tuple[float, int]], q: float, *, midpoint: bool) -> float:
    """The ``q`` quantile of values given as ``(value, how many)`` sorted by value: the value at
    rank ``q * (n - 1)`` (``midpoint``: the mean of the two values around it, as a median is)."""
    n = sum(k for _v, k in steps)
    rank = q * (n - 1)
    lo, hi = int(rank), int(rank) + (1 if midpoint and rank != int(rank) else 0)
    if not midpoint:
        lo = hi = int(round(rank))
    found, seen = [], 0
    for value, k in steps:
        while len(found) < 2 and seen + k > (lo if not found else hi):
            found.append(value)
        seen += k
        if len(found) == 2:
            break
    return (found[0] + found[1]) / 2


def _durations(ctx: Context, model: Any, start: Any, stop: Any, key: str, labels: tuple[str, str]) -> Result:
    """Median and 90th percentile of ``stop - start`` over the period's cases, to the nearest
    :data:`STEP_SECONDS`: one aggregate query (a count per step), read through the index on
    ``start``."""
    step = func.round(_steps_between(ctx.session, start, stop)).label("step")
    stmt = scope(select(step, func.count()).where(start >= ctx.period.since, start < ctx.period.until,
                                                  stop.is_not(None)), ctx.principal, model)
    if ctx.filters.org_id:
        stmt = stmt.where(model.org_id == ctx.filters.org_id)
    # grouped by the output column's name, so that each row's duration is computed once
    rows = ctx.session.execute(stmt.group_by(literal_column("step")).order_by(literal_column("step"))).all()
    steps = [(float(r[0]) * STEP_SECONDS / 3600.0, int(r[1])) for r in rows if r[0] is not None]
    if not steps:
        return _duration_result(key, ctx.period, 0.0, 0.0, 0, labels)
    return _duration_result(key, ctx.period, _quantile(steps, 0.5, midpoint=True),
                            _quantile(steps, 0.9, midpoint=False), sum(k for _v, k in steps), labels)


def _duration_result(key: str, period: Period, median: float, p90: float, cases: int,
                     labels: tuple[str, str]) -> Result:
    """A duration indicator's table (median, 90th percentile, cases; empty without cases)."""
    if not cases:
        return Result(registry()[key], period, pl.DataFrame(schema={"measure": pl.String, "n": pl.Float64}))
    data = pl.DataFrame({"measure": [_(labels[0]), _(labels[1]), _("cases")],
                         "n": [round(median, 2), round(p90, 2), float(cases)]})
    return Result(registry()[key], period, data, value=round(median, 2))


# --- notify ---------------------------------------------------------------------------------------

def _notify(fn: Callable[[Context, Any], Result]) -> Callable[[Context], Result]:
    def compute(ctx: Context) -> Result:
        from commonwatch.notify import models
        return fn(ctx, models)
    return compute


def deliveries(ctx: Context, m: Any) -> Result:
    data = _by(m.Delivery, m.Delivery.status, "status", ctx, m.Delivery.created_at)
    return Result(registry()["notify.deliveries"], ctx.period, data, value=float(data["n"].sum() or 0))


def acknowledgements(ctx: Context, m: Any) -> Result:
    data = _by(m.EventWarning, m.EventWarning.status, "status", ctx, m.EventWarning.created_at)
    return Result(registry()["notify.acknowledged"], ctx.period, data, value=float(data["n"].sum() or 0))


def time_to_ack(ctx: Context, m: Any) -> Result:
    """From the answers' rollup (``reports.acks``), kept when a warning is answered: a year reads
    its bins, then the steps of the bins its median and 90th percentile fall in."""
    from commonwatch.reports import acks

    median, p90, n = acks.quantiles(ctx.session, ctx.principal, ctx.period, ctx.filters)
    return _duration_result("notify.time_to_ack", ctx.period, median, p90, n,
                            (N_("median hours"), N_("90th percentile hours")))


# --- incidents ------------------------------------------------------------------------------------

def _incidents(column: str, key: str) -> Callable[[Context], Result]:
    def compute(ctx: Context) -> Result:
        from commonwatch.incidents.models import Incident
        data = _by(Incident, getattr(Incident, column), column, ctx, Incident.discovered_at)
        return Result(registry()[key], ctx.period, data, value=float(data["n"].sum() or 0))
    return compute


def time_to_first_report(ctx: Context) -> Result:
    from commonwatch.incidents.models import Incident
    return _durations(ctx, Incident, Incident.discovered_at, Incident.first_report_at,
                      "incidents.time_to_first_report", (N_("median hours"), N_("90th percentile hours")))


def time_to_close(ctx: Context) -> Result:
    from commonwatch.incidents.models import Incident
    return _durations(ctx, Incident, Incident.discovered_at, Incident.handling_closed_at,
                      "incidents.time_to_close", (N_("median hours"), N_("90th percentile hours")))


def clocks(ctx: Context) -> Result:
    """Each reporting clock of the period's incidents: met (done by its due time), missed (done
    late, or not done and past due) or running."""
    from commonwatch.incidents.models import Incident
    pairs = {N_("first report"): ("first_report_due", "first_report_at"),
             N_("escalation"): ("escalation_due", "escalated_at"),
             N_("summary report"): ("summary_due", "summary_report_at")}
    now = ctx.now or datetime.now().astimezone()
    # Counted in the database (one row back, not one per incident): each clock's three outcomes.
    sums = []
    for due_name, done_name in pairs.values():
        due, done = getattr(Incident, due_name), getattr(Incident, done_name)
        sums += [func.coalesce(func.sum(case((and_(due.is_not(None), done.is_not(None), done <= due), 1), else_=0)), 0),
                 func.coalesce(func.sum(case((and_(due.is_not(None), done.is_not(None), done > due), 1),
                                             (and_(due.is_not(None), done.is_(None), due < now), 1), else_=0)), 0),
                 func.coalesce(func.sum(case((and_(due.is_not(None), done.is_(None), due >= now), 1), else_=0)), 0)]
    stmt = scope(select(*sums).where(Incident.discovered_at >= ctx.period.since,
                                     Incident.discovered_at < ctx.period.until), ctx.principal, Incident)
    if ctx.filters.org_id:
        stmt = stmt.where(Incident.org_id == ctx.filters.org_id)
    counts = ctx.session.execute(stmt).one()
    out: list[tuple[str, str, int]] = []
    for i, name in enumerate(pairs):
        met, missed, running = (int(v) for v in counts[3 * i:3 * i + 3])
        out += [(_(name), _("met"), met), (_(name), _("missed"), missed), (_(name), _("running"), running)]
    data = pl.DataFrame(out, schema={"clock": pl.String, "outcome": pl.String, "n": pl.Int64}, orient="row")
    return Result(registry()["incidents.clocks"], ctx.period, data)


# --- the registry ---------------------------------------------------------------------------------

def _ind(key: str, en: str, zh: str, counts_en: str, counts_zh: str, source: str, chart: str,
         compute: Callable[[Context], Result] | None, **kw: Any) -> Indicator:
    return Indicator(key, en, zh, counts_en, counts_zh, source, chart, compute, **kw)


_DIM_NAMES = {"type": ("type", "类型"), "sector": ("sector", "行业"), "region": ("region", "地区"),
              "feed": ("feed", "数据源"), "severity": ("severity", "严重程度")}

BUILTIN: list[Indicator] = [
    *[_ind(f"events.{d}", f"Events by {en} over time", f"按{zh}统计的事件趋势",
           f"Stored security events per day (or month) and {en}; each event once.",
           f"每日(或每月)按{zh}统计的已入库安全事件,每个事件只计一次。", "events", "stacked",
           events_over_time(d), color=d) for d, (en, zh) in _DIM_NAMES.items()],
    _ind("events.hosts", "Distinct affected hosts", "受影响主机数(去重)",
         "Distinct addresses (else host names) in the constituency's networks seen in events.",
         "事件中出现的、位于服务对象网络内的不同地址(无地址时按主机名)。", "events", "figure",
         hosts("events.hosts"), unit="hosts"),
    _ind("events.orgs", "Distinct affected organisations", "受影响单位数(去重)",
         "Organisations with at least one event in the period.", "本期至少有一个事件的单位。", "events", "figure",
         hosts("events.orgs", per_org=True), unit="organisations"),
    _ind("events.c2", "C2 servers in the constituency", "服务对象网络内的僵尸网络控制服务器",
         "Distinct hosts in constituents' networks reported as botnet command-and-control servers.",
         "被报告为僵尸网络命令与控制服务器、位于服务对象网络内的不同主机。", "events", "figure",
         hosts("events.c2", types=("c2-server",)), unit="hosts"),
    _ind("events.phishing", "Phishing sites in the constituency", "服务对象网络内的钓鱼网站",
         "Distinct hosts in constituents' networks reported as phishing sites.",
         "被报告为钓鱼网站、位于服务对象网络内的不同主机。", "events", "figure",
         hosts("events.phishing", types=("phishing",)), unit="hosts"),
    _ind("events.defaced", "Defaced websites in the constituency", "服务对象网络内被篡改的网站",
         "Distinct hosts in constituents' networks reported as compromised applications (defacement).",
         "被报告为应用被入侵(网页篡改)、位于服务对象网络内的不同主机。", "events", "figure",
         hosts("events.defaced", types=("application-compromise",)), unit="hosts"),
    _ind("events.top_asns", "Top autonomous systems", "事件最多的自治系统",
         f"The {TOP} autonomous systems with the most events.", f"事件最多的 {TOP} 个自治系统。", "events", "bar",
         top("asn", "events.top_asns"), x="asn"),
    _ind("events.top_orgs", "Top organisations", "事件最多的单位",
         f"The {TOP} organisations with the most events.", f"事件最多的 {TOP} 个单位。", "events", "bar",
         top("org", "events.top_orgs"), x="org"),
    _ind("notify.deliveries", "Notification deliveries", "通报投递",
         "Warning digests handed to a channel in the period, by status.", "本期交给发送渠道的预警摘要,按状态。",
         "notify", "bar", _notify(deliveries), x="status", unit="deliveries"),
    _ind("notify.acknowledged", "Warnings and their acknowledgement", "预警及其确认情况",
         "Warnings created in the period, by what the recipient did (open, acknowledged, resolved, false positive).",
         "本期产生的预警,按接收方的处理(未处理、已确认、已解决、误报)。", "notify", "bar",
         _notify(acknowledgements), x="status", unit="warnings"),
    _ind("notify.time_to_ack", "Time to acknowledge", "确认用时",
         "Hours from a warning to the recipient's response (median, 90th percentile).",
         "从预警产生到接收方响应的小时数(中位数、第 90 百分位)。", "notify", "table",
         _notify(time_to_ack), x="measure", unit="hours"),
    _ind("incidents.level", "Incidents by level", "按级别统计的事件(案件)",
         "Incidents discovered in the period, by national level.", "本期发现的网络安全事件,按国家分级。",
         "incidents", "bar", _incidents("level", "incidents.level"), x="level", unit="incidents"),
    _ind("incidents.category", "Incidents by category", "按类别统计的事件(案件)",
         "Incidents discovered in the period, by GB/T 20986 category.", "本期发现的网络安全事件,按 GB/T 20986 类别。",
         "incidents", "bar", _incidents("category", "incidents.category"), x="category", unit="incidents"),
    _ind("incidents.status", "Incidents by status", "按状态统计的事件(案件)",
         "Incidents discovered in the period, by their status now.", "本期发现的网络安全事件,按当前状态。",
         "incidents", "bar", _incidents("status", "incidents.status"), x="status", unit="incidents"),
    _ind("incidents.time_to_first_report", "Time to first report", "首次报告用时",
         "Hours from discovery to the first report (median, 90th percentile).",
         "从发现到首次报告的小时数(中位数、第 90 百分位)。", "incidents", "table", time_to_first_report,
         x="measure", unit="hours"),
    _ind("incidents.time_to_close", "Time to close", "处置完成用时",
         "Hours from discovery to the end of handling (median, 90th percentile).",
         "从发现到处置结束的小时数(中位数、第 90 百分位)。", "incidents", "table", time_to_close,
         x="measure", unit="hours"),
    _ind("incidents.clocks", "Reporting clocks met and missed", "报告时限的遵守情况",
         "Each reporting clock of the period's incidents: met, missed or still running.",
         "本期事件的各项报告时限:按时、超时或仍在计时。", "incidents", "stacked", clocks, x="clock",
         color="outcome", unit="clocks"),
    # Declared for capabilities being built: they answer "not available" until those provide them.
    _ind("vulns.by_severity", "Vulnerabilities by severity", "按严重程度统计的漏洞",
         "Vulnerabilities matched to constituents' assets, by severity.", "与服务对象资产匹配的漏洞,按严重程度。",
         "vulns", "bar", None, x="severity", unit="vulnerabilities"),
    _ind("vulns.kev_cii", "Known exploited vulnerabilities on CII assets", "关键信息基础设施资产上的已被利用漏洞",
         "Known exploited vulnerabilities (KEV) matched to CII operators' assets.",
         "与关键信息基础设施运营者资产匹配的已知被利用漏洞(KEV)。", "vulns", "figure", None, unit="vulnerabilities"),
    _ind("vulns.time_to_remediate", "Time to remediate", "修复用时",
         "Days from a vulnerability's match to its remediation (median, 90th percentile).",
         "从漏洞匹配到修复的天数(中位数、第 90 百分位)。", "vulns", "table", None, x="measure", unit="days"),
    _ind("cooperation.exchanges", "Cross-border exchanges by country", "按国家统计的跨境交流",
         "Incidents exchanged with partner CERTs, by country.", "与境外合作组织交换的事件,按国家。",
         "cooperation", "bar", None, x="country", unit="exchanges"),
    _ind("cooperation.assistance", "Assistance requests by country", "按国家统计的协助请求",
         "Cybercrime-assistance requests sent and received, by country.", "发出和收到的网络犯罪协助请求,按国家。",
         "cooperation", "bar", None, x="country", unit="requests"),
]


@cache
def registry() -> dict[str, Indicator]:
    """Every indicator by key: the built-in ones and those other capabilities provide."""
    out = {i.key: i for i in BUILTIN}
    for _cap_name, module in parts("reports_indicators"):
        for ind in getattr(module, "INDICATORS", []):
            out[ind.key] = ind  # a capability's own definition replaces the declared placeholder
    return out


def available(ind: Indicator) -> bool:
    return ind.compute is not None and _find(f"commonwatch.{ind.source}")


def compute(key: str, ctx: Context) -> Result:
    """The figures of one indicator for ``ctx``; an absent capability answers with the reason."""
    ind = registry()[key]
    if not available(ind):
        return Result(ind, ctx.period, pl.DataFrame(schema={ind.x: pl.String, "n": pl.Int64}),
                      absent=_("not available: the “{capability}” capability is not installed").format(
                          capability=label(ind.source, "capability")))
    return ind.compute(ctx)  # type: ignore[misc]
