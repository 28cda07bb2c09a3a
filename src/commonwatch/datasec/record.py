"""The bilingual PDF record for an auditor: the graded data catalogue, the scans behind it, and
the cross-border assessments with their rules and articles. Chinese and English side by side."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.constituency.models import Organisation
from commonwatch.datasec import crossborder as xb
from commonwatch.datasec import services as ds
from commonwatch.datasec.detectors import identifier_rules
from commonwatch.datasec.grading import grading_rules
from commonwatch.db import get_scoped
from commonwatch.errors import NotFound
from commonwatch.pdf import PdfDocument, Section, render_pdf


def _both(en: str, zh: str) -> str:
    return f"{zh} / {en}" if zh and zh != en else en


def _grade(level: str | None, sub: int | None, rules: dict[str, Any]) -> str:
    if not level:
        return "—"
    if level == "general" and sub:
        sg = rules["general_subgrades"].get(sub) or rules["general_subgrades"].get(str(sub))
        if sg:
            return _both(sg["en"], sg["zh"])
    lv = rules["levels"][level]
    return _both(lv["en"], lv["zh"])


def _cats(codes: list[str], table: dict[str, Any]) -> str:
    out = []
    for code in codes or []:
        spec = table["sensitive_categories"].get(code) or table["pi_categories"].get(code)
        out.append(f"{spec['zh']} / {spec['en']}" if spec else code)
    return "; ".join(out) or "—"


def build_record(db: Session, principal: Principal, org_id: int | None, now: datetime,
                 data_dir: Path | None = None) -> bytes:
    """The PDF bytes of the record of one organisation (or of every organisation the principal sees)."""
    if org_id is not None and get_scoped(db, principal, Organisation, org_id) is None:
        raise NotFound()
    orgs = [o for o in ds.visible_orgs(db, principal) if org_id in (None, o.id)]
    grading = grading_rules(data_dir)
    table = identifier_rules(data_dir)
    rules = xb.crossborder_rules(data_dir)
    sections: list[Section] = []
    for org in orgs:
        assets = ds.list_assets(db, principal, org.id)
        assessments = ds.list_assessments(db, principal, org.id)
        if not assets and not assessments:
            continue
        name = _both(org.name, org.name_local)
        sections.append(Section(f"{name} — 数据目录 / Data catalogue", facts=[
            ("组织 / Organisation", name),
            ("关键信息基础设施运营者 / CII operator", "是 / yes" if org.is_cii else "否 / no")]))
        for a in assets:
            s = a.suggestion or {}
            cite = s.get("citation", {})
            sections.append(Section(f"{a.name}", facts=[
                ("系统 / System", a.system or "—"), ("位置 / Location", a.location or "—"),
                ("负责人 / Owner", a.owner or "—"),
                ("记录数 / Records", f"{a.record_count:,}" if a.record_count is not None else "—"),
                ("涉及人数 / Persons", f"{a.persons_count:,}" if a.persons_count is not None else "—"),
                ("个人信息类别 / PI categories", _cats(a.pi_categories, table)),
                ("敏感个人信息 / Sensitive PI (PIPL Art. 28)", _cats(a.sensitive_categories, table)),
                ("处理目的 / Purpose", a.purpose or "—"), ("保存期限 / Retention", a.retention or "—"),
                ("出境 / Leaves the country", ("是 / yes: " + ", ".join(a.destinations or [])) if a.leaves_country
                 else "否 / no"),
                ("建议级别 / Suggested grade", _grade(a.suggested_level, a.suggested_subgrade, grading)),
                ("依据规则 / Rule", f"{a.suggested_rule} — {s.get('zh', '')} / {s.get('en', '')}"),
                ("引用 / Citation", f"{cite.get('zh', '')} / {cite.get('en', '')} [{s.get('status', '')}]"),
                ("确认级别 / Confirmed grade", _grade(a.grade_level, a.grade_subgrade, grading)),
                ("确认人 / Confirmed by", f"{a.confirmed_by} {a.confirmed_at.isoformat(timespec='minutes')}"
                 if a.confirmed_at else "未确认 / not confirmed"),
                ("说明 / Note", a.grade_note or "—"),
            ]))
        if assessments:
            header = ["日期 / Date", "事项 / Transfer", "机制 / Mechanism", "依据 / Decided by",
                      "本年累计 / Year to date"]
            rows: list[list[str]] = [header]
            for t in assessments:
                r = t.result
                mech = rules["mechanisms"].get(t.mechanism, {"en": t.mechanism, "zh": t.mechanism})
                c = r.get("counts", {})
                rows.append([
                    t.transfer_date.isoformat(), f"{t.title} → {t.recipient} {t.recipient_country}".strip(),
                    _both(mech["en"], mech["zh"]),
                    f"{r['rule']['citation']['zh']} / {r['rule']['citation']['en']} [{r['rule']['status']}]",
                    f"{c.get('non_sensitive_after', 0):,} / {c.get('sensitive_after', 0):,}"
                    + ("" if t.recorded else " (未计入 / not recorded)")
                    + ("" if r.get("counting", {}).get("this_transfer_counted", True)
                       else " (豁免，本次未计入 / exempt, not counted)")])
            sections.append(Section(f"{name} — 数据出境评估 / Cross-border assessments", paragraphs=[
                "本年累计为一般个人信息 / 敏感个人信息人数（含本次）。Year to date: persons with non-sensitive / "
                "sensitive personal information, this transfer included."], table=rows))
            for t in assessments:
                r = t.result
                obligations = [f"{o['zh']} / {o['en']} ({o['citation']['en']})" for o in r.get("obligations", [])]
                warnings = [f"{w['zh']} / {w['en']}" for w in r.get("warnings", [])]
                counting = r.get("counting")
                counted = (f"{counting['zh']} / {counting['en']} ({counting['citation']['en']}) [{counting['status']}]"
                           if counting else "—")
                sections.append(Section(f"{t.title} ({t.transfer_date.isoformat()})",
                                        paragraphs=[f"{r['rule']['zh']} / {r['rule']['en']}"],
                                        facts=[("豁免出境是否计入 / Exempt transfers counted", counted),
                                               ("义务 / Obligations", "\n".join(obligations) or "—"),
                                               ("提示 / Warnings", "\n".join(warnings) or "—"),
                                               ("规则版本 / Rules", r.get("rules_version", ""))]))
    if not sections:
        sections.append(Section("数据目录 / Data catalogue", paragraphs=["无记录 / No records."]))
    doc = PdfDocument(
        title="数据安全记录 / Data security record",
        subtitle=(f"数据分级：{grading['name']} v{grading['version']}；出境规则：{rules['name']} v{rules['version']}。"
                  f"Grading rules {grading['name']} v{grading['version']}; cross-border rules {rules['name']} "
                  f"v{rules['version']}. 已核实 verified = 依据法律原文 read in the law; 暂定 provisional = 二手来源 "
                  "secondary source."),
        sections=sections, footer="commonwatch", generated_at=now)
    return render_pdf(doc)
