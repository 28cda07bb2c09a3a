"""The initial report (Art. 7) and the summary report (Art. 8), bilingual, as HTML and PDF.

Both are built once as a list of sections (headings in Chinese and English, in the order the
Measures give) and then rendered by the HTML template or by ``commonwatch.pdf``. An item not yet
known is marked "to follow" (待补报): items 1 and 2 may be sent first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from commonwatch.clock import ensure_utc
from commonwatch.constituency.models import Organisation
from commonwatch.incidents.clocks import clock_state
from commonwatch.incidents.models import Incident
from commonwatch.incidents.rules import IncidentRules, Text
from commonwatch.incidents.services import clocks_for
from commonwatch.pdf import PdfDocument, Section, render_pdf
from commonwatch.web.templating import format_datetime

TO_FOLLOW = "待补报 / to follow"
_STATES = {"running": "计时中 / running", "at_risk": "即将届满 / at risk", "missed": "已超时 / missed"}
PROVISIONAL = "暂定 / provisional"


def both(text: Text) -> str:
    return f"{text.zh} / {text.en}" if text.zh != text.en else text.en


def _when(value: datetime | None, tz: str) -> str:
    if value is None:
        return "—"
    local = format_datetime(value, tz)
    return f"{local} ({ensure_utc(value).strftime('%Y-%m-%d %H:%M')} UTC)"


def _or_follow(value: str) -> str:
    return value.strip() if value and value.strip() else TO_FOLLOW


def _level_text(incident: Incident, rules: IncidentRules) -> str:
    level = rules.grading.level(incident.level)
    text = f"{level.key} ({level.en}, {level.roman})"
    if incident.level_override_reason:
        computed = rules.grading.level(incident.computed_level)
        text += f" — 人工调整 / set by hand (规则计算 / computed: {computed.key}): {incident.level_override_reason}"
    return text


def _basis_rows(incident: Incident, rules: IncidentRules) -> list[list[str]]:
    rows = [["依据 / Indicator", "事实 / Fact", "出处 / Citation", "状态 / Status"]]
    by_id = {i.id: i for i in rules.grading.indicators}
    for fired in (incident.grading or {}).get("fired", []):
        ind = by_id.get(fired["id"])
        if ind is None or ind.level != incident.computed_level:
            continue
        status = "已核实 / verified" if ind.status == "verified" else PROVISIONAL
        rows.append([f"{ind.text.zh}\n{ind.text.en}", str(fired.get("value")), both(ind.citation), status])
    if len(rows) == 1:
        rows.append(["未触发任何量化指标 / no quantitative indicator fired", "—", both(rules.grading.citation), "—"])
    return rows


def _named_recipient(incident: Incident) -> str:
    """The recipient the operator named for its route (department, organ or province), if any."""
    named = {"cii": incident.protection_department, "central_state_organ": incident.parent_department,
             "other": incident.operator_province}.get(incident.route, "")
    return f"（{named}）" if named else ""


def _category(incident: Incident, rules: IncidentRules) -> str:
    tax = rules.taxonomy
    cat = tax.category(incident.category)
    parts = [f"{incident.category} {both(cat.text) if cat else ''}".strip()]
    if incident.subcategory:
        found = tax.subcategory(incident.subcategory)
        if found:
            parts.append(f"{incident.subcategory} {both(found[1].text)}")
    parts.append(f"RSIT: {tax.rsit_label(incident.rsit_class, incident.rsit_type)}")
    return " — ".join(parts)


def initial_report(session: Session, incident: Incident, rules: IncidentRules, tz: str,
                   now: datetime) -> dict[str, Any]:
    """The initial report's sections, in the order of Art. 7."""
    org = session.get(Organisation, incident.org_id)
    clocks = clocks_for(incident, rules)
    first = clocks.get("first_report")
    route = clocks.route
    head = [
        ("编号 / Reference", incident.ref),
        ("报告单位 / Reporting unit", f"{org.name_local or ''} {org.name}".strip() if org else "—"),
        ("事件级别 / Level", _level_text(incident, rules)),
        ("是否须报告 / Reportable", "是 / yes" if clocks.reportable else "否（一般事件）/ no (general incident)"),
        ("报送对象 / Report to", "；".join(both(r) for r in route.first_recipients) + _named_recipient(incident)
         + f" — {both(route.citation)}"),
        ("报告时限 / Deadline", _when(first.due_at, tz) if first else "—"),
        ("报告时间 / Reported", _when(incident.first_report_at, tz) if incident.first_report_at else
         f"未报送 / not yet sent ({_STATES.get(clock_state(first, now, rules.reporting), '')})" if first else "—"),
        ("事件分类 / Classification", _category(incident, rules)),
    ]
    ransom = ""
    if incident.ransom_amount or incident.ransom_method or incident.ransom_dates:
        ransom = (f"赎金金额 / Ransom demanded: {incident.ransom_amount or '—'}；支付方式 / method: "
                  f"{incident.ransom_method or '—'}；时间 / date(s): {incident.ransom_dates or '—'}")
    items = [
        ("一、受影响单位名称及受影响设施、系统、平台的基本情况",
         "1. Affected unit and basic facts about the facility, system or platform hit",
         [("单位 / Unit", org.name if org else "—"), ("设施、系统、平台 / Facility, system, platform",
                                                   _or_follow(incident.affected_system))]),
        ("二、事件发现或发生时间、地点、类型，已造成的影响和危害，已采取的措施及效果",
         "2. When and where discovered or occurred; type; effects and harm so far; measures taken and their effect",
         [("发现时间 / Discovered", _when(incident.discovered_at, tz)),
          ("发现方式 / How established", incident.discovery_basis or "—"),
          ("发生时间 / Occurred", _when(incident.occurred_at, tz)),
          ("地点 / Where", incident.location or "—"),
          ("事件类型 / Type", _category(incident, rules)),
          ("影响和危害 / Effects and harm", _or_follow(incident.effects)),
          ("已采取措施及效果 / Measures taken", _or_follow(incident.measures_taken))]
         + ([("勒索信息 / Ransom", ransom)] if ransom else [])),
        ("三、事态发展趋势及可能进一步造成的影响和危害", "3. Likely development and further effects or harm",
         [("", _or_follow(incident.trend))]),
        ("四、初步分析的事件原因", "4. Preliminary analysis of the cause", [("", _or_follow(incident.cause))]),
        ("五、进一步调查分析所需的线索", "5. Leads for further investigation (attacker, attack path, vulnerabilities)",
         [("", _or_follow(incident.leads))]),
        ("六、拟进一步采取的应对措施以及请求支援事项", "6. Further response measures planned and support requested",
         [("", _or_follow(incident.further_measures))]),
        ("七、事件现场保护情况", "7. How the incident scene and evidence are preserved",
         [("", _or_follow(incident.evidence_preservation))]),
        ("八、其他应当报告的情况", "8. Anything else that should be reported", [("", _or_follow(incident.other_info))]),
    ]
    notes = [
        f"{both(rules.reporting.initial_citation)}。第一、二项可先行报送，其余内容及时补报。"
        " Items 1 and 2 may be sent first; the rest follows promptly.",
    ]
    if rules.reporting.initial_status == "provisional":
        notes.append(f"{PROVISIONAL}：条目顺序和措辞据公开片段整理，待与官方文本核对。"
                     " Item order and wording reconstructed from fragments; to be checked against the official text.")
    return {"title": "网络安全事件报告（首次报告） / Cybersecurity incident report (initial report)",
            "subtitle": f"{incident.ref} — {incident.title}", "head": head, "basis": _basis_rows(incident, rules),
            "items": items, "notes": notes}


def summary_report(session: Session, incident: Incident, rules: IncidentRules, tz: str,
                   now: datetime) -> dict[str, Any]:
    """The summary report's sections, in the order of Art. 8."""
    org = session.get(Organisation, incident.org_id)
    clocks = clocks_for(incident, rules)
    summary = clocks.get("summary")
    head = [
        ("编号 / Reference", incident.ref),
        ("报告单位 / Reporting unit", f"{org.name_local or ''} {org.name}".strip() if org else "—"),
        ("事件级别 / Level", _level_text(incident, rules)),
        ("事件分类 / Classification", _category(incident, rules)),
        ("发现时间 / Discovered", _when(incident.discovered_at, tz)),
        ("首次报告 / First report", _when(incident.first_report_at, tz)),
        ("处置结束 / Handling ended", _when(incident.handling_closed_at, tz)),
        ("报送时限 / Due", _when(summary.due_at, tz) if summary else "—"),
        ("报送渠道 / Channel", "原报告渠道 / the channel of the first report"
         + (f" ({incident.first_report_channel})" if incident.first_report_channel else "")),
    ]
    items = [
        ("一、事件原因", "1. Cause of the incident", [("", _or_follow(incident.summary_cause or incident.cause))]),
        ("二、应急处置措施", "2. Emergency handling measures",
         [("", _or_follow(incident.summary_handling or incident.measures_taken))]),
        ("三、造成的危害", "3. Harm caused", [("", _or_follow(incident.summary_harm or incident.effects))]),
        ("四、责任处理", "4. Accountability", [("", _or_follow(incident.summary_accountability))]),
        ("五、整改情况", "5. Rectification and improvements", [("", _or_follow(incident.summary_rectification))]),
        ("六、经验教训", "6. Lessons learned", [("", _or_follow(incident.summary_lessons))]),
    ]
    notes = [f"{both(rules.reporting.summary_citation)}。{rules.reporting.summary_text.zh} "
             f"{rules.reporting.summary_text.en}."]
    return {"title": "网络安全事件总结报告 / Cybersecurity incident summary report",
            "subtitle": f"{incident.ref} — {incident.title}", "head": head, "basis": _basis_rows(incident, rules),
            "items": items, "notes": notes}


def as_pdf(report: dict[str, Any], generated_at: datetime, centre: str) -> bytes:
    """The report as PDF bytes (ReportLab with its built-in Chinese font)."""
    sections = [Section("基本信息 / Basic facts", facts=list(report["head"])),
                Section("定级依据 / Grading basis", table=report["basis"])]
    for zh, en, facts in report["items"]:
        paragraphs = [value for label, value in facts if not label]
        section = Section(f"{zh}\n{en}", paragraphs=paragraphs, facts=[(lb, v) for lb, v in facts if lb])
        sections.append(section)
    sections.append(Section("说明 / Notes", paragraphs=list(report["notes"])))
    return render_pdf(PdfDocument(report["title"], report["subtitle"], sections, footer=centre,
                                  generated_at=generated_at))
