"""Data security workflows: the catalogue and its grades, recording scans, cross-border
assessments with their year-to-date counts, approvals and their reminders.

Plain values and a ``Session`` in, rows out. Tenancy through ``db.scope``/``get_scoped``; writes
need ``datasec.write`` (centre staff) or ``datasec.write.own`` (a constituent, own organisations).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from commonwatch.access.audit import record
from commonwatch.access.principal import Principal
from commonwatch.constituency.models import Organisation
from commonwatch.datasec import crossborder as xb
from commonwatch.datasec.detectors import identifier_rules
from commonwatch.datasec.ftz import answer_for, load_ftz_lists
from commonwatch.datasec.grading import LEVELS, grading_rules, suggest
from commonwatch.datasec.models import (
    ApprovalReminder,
    AssessmentApproval,
    DataAsset,
    Scan,
    ScanFinding,
    TransferAssessment,
)
from commonwatch.datasec.scanner import ScanReport
from commonwatch.db import get_scoped, scope
from commonwatch.errors import FieldError, Forbidden, Invalid, NotFound
from commonwatch.i18n import _
from commonwatch.textio import control_char_errors, strip_control_text
from commonwatch.validation import parse_country

CHINA = ZoneInfo("Asia/Shanghai")
NOTIFIED = ("none", "important", "core")
APPROVAL_KINDS = ("security_assessment", "certification")


def local_today(now: datetime) -> date:
    """Today in China: the calendar year of the cumulative counts starts at midnight Beijing time."""
    return now.astimezone(CHINA).date()


# --- organisations the principal may write for ------------------------------------------------------

def writable_org(db: Session, principal: Principal, org_id: Any) -> Organisation:
    """The organisation if the principal may change its data-security records; 404 if not visible."""
    try:
        oid = int(org_id)
    except (TypeError, ValueError):
        raise Invalid("org_id", _("choose an organisation")) from None
    org = get_scoped(db, principal, Organisation, oid)
    if org is None:
        raise NotFound()
    if not principal.can("datasec.write", org.id):
        raise Forbidden()
    return org


def writable_orgs(db: Session, principal: Principal) -> list[Organisation]:
    orgs = db.scalars(scope(select(Organisation), principal, Organisation).order_by(Organisation.name)).all()
    return [o for o in orgs if principal.can("datasec.write", o.id) and o.kind != "partner-cert"]


def visible_orgs(db: Session, principal: Principal) -> list[Organisation]:
    return list(db.scalars(scope(select(Organisation), principal, Organisation).order_by(Organisation.name)))


# --- the catalogue ---------------------------------------------------------------------------------

ASSET_TEXT = ("name", "system", "location", "owner", "purpose", "retention", "notes")
ASSET_FIELDS = (*ASSET_TEXT, "record_count", "persons_count", "pi_categories", "sensitive_categories",
                "leaves_country", "destinations", "notified_as", "impact_object", "impact_degree", "public")


def _int_or_none(value: Any, name: str, errors: list[FieldError]) -> int | None:
    if value in (None, ""):
        return None
    try:
        n = int(str(value).replace(",", "").strip())
    except ValueError:
        errors.append(FieldError(name, _("must be a whole number")))
        return None
    if n < 0:
        errors.append(FieldError(name, _("cannot be negative")))
    return n


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _list(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.replace("，", ",").split(",") if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


def parse_asset(data: dict[str, Any], data_dir: Path | None = None, *, partial: bool = False) -> dict[str, Any]:
    """Checked asset fields; every bad field reported at once."""
    table = identifier_rules(data_dir)
    grading = grading_rules(data_dir)
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    for key in ASSET_TEXT:
        if key in data or not partial:
            out[key] = str(data.get(key) or "").strip()
    if "name" in out and not out["name"]:
        errors.append(FieldError("name", _("is required")))
    for key in ("record_count", "persons_count"):
        if key in data or not partial:
            out[key] = _int_or_none(data.get(key), key, errors)
    for key, known in (("pi_categories", table["pi_categories"]), ("sensitive_categories",
                                                                     table["sensitive_categories"])):
        if key in data or not partial:
            values = _list(data.get(key))
            unknown = [v for v in values if v not in known]
            if unknown:
                errors.append(FieldError(key, _("unknown categories: {values}").format(values=", ".join(unknown))))
            out[key] = sorted(set(values))
    for key in ("leaves_country", "public"):
        if key in data or not partial:
            out[key] = _bool(data.get(key))
    if "destinations" in data or not partial:
        dests = []
        for code in _list(data.get("destinations")):
            try:
                dests.append(parse_country(code, "destinations"))
            except Invalid as exc:
                errors.extend(exc.errors)
        out["destinations"] = sorted(set(dests))
    if "notified_as" in data or not partial:
        out["notified_as"] = str(data.get("notified_as") or "none")
        if out["notified_as"] not in NOTIFIED:
            errors.append(FieldError("notified_as", _("must be none, important or core")))
    for key, known in (("impact_object", grading["impact_objects"]), ("impact_degree", grading["impact_degrees"])):
        if key in data or not partial:
            out[key] = str(data.get(key) or "")
            if out[key] and out[key] not in known:
                errors.append(FieldError(key, _("is not a known value")))
    errors += control_char_errors(data)  # a form or a body: refused naming the field (textio)
    if errors:
        raise Invalid(errors)
    if out.get("destinations") and "leaves_country" in out:
        out["leaves_country"] = True
    return out


def grading_facts(asset: DataAsset) -> dict[str, Any]:
    return {
        "notified_as": asset.notified_as or "none", "impact_object": asset.impact_object or "",
        "impact_degree": asset.impact_degree or "", "contains_pi": bool(asset.pi_categories or
                                                                         asset.sensitive_categories),
        "contains_sensitive_pi": bool(asset.sensitive_categories), "public": bool(asset.public),
        "persons_count": asset.persons_count or 0,
        "contains_minors_pi": "minors_under_14" in (asset.sensitive_categories or []),
    }


def refresh_suggestion(asset: DataAsset, data_dir: Path | None = None) -> None:
    """Re-run the grading rules on the asset's facts; the suggestion names the rule."""
    s = suggest(grading_facts(asset), grading_rules(data_dir))
    asset.suggested_level = s.level
    asset.suggested_subgrade = s.subgrade
    asset.suggested_rule = s.rule
    asset.suggestion = s.as_dict()


def list_assets(db: Session, principal: Principal, org_id: int | None = None) -> list[DataAsset]:
    stmt = scope(select(DataAsset), principal, DataAsset).order_by(DataAsset.org_id, DataAsset.name)
    if org_id:
        stmt = stmt.where(DataAsset.org_id == org_id)
    return list(db.scalars(stmt))


def get_asset(db: Session, principal: Principal, asset_id: int) -> DataAsset:
    asset = get_scoped(db, principal, DataAsset, asset_id)
    if asset is None:
        raise NotFound()
    return asset


def create_asset(db: Session, principal: Principal, org_id: Any, data: dict[str, Any],
                 data_dir: Path | None = None) -> DataAsset:
    org = writable_org(db, principal, org_id)
    fields = parse_asset(data, data_dir)
    asset = DataAsset(org_id=org.id, **fields)
    refresh_suggestion(asset, data_dir)
    db.add(asset)
    db.flush()
    return asset


def update_asset(db: Session, principal: Principal, asset: DataAsset, data: dict[str, Any],
                 data_dir: Path | None = None) -> DataAsset:
    writable_org(db, principal, asset.org_id)
    fields = parse_asset(data, data_dir, partial=True)
    for key, value in fields.items():
        setattr(asset, key, value)
    refresh_suggestion(asset, data_dir)
    db.flush()
    return asset


def confirm_grade(db: Session, principal: Principal, asset: DataAsset, level: str, subgrade: Any, note: str,
                  now: datetime, data_dir: Path | None = None) -> DataAsset:
    """A person confirms (or changes) the grade; who, when and against which suggestion is audited."""
    writable_org(db, principal, asset.org_id)
    errors = []
    if level not in LEVELS:
        errors.append(FieldError("level", _("must be core, important or general")))
    sub: int | None = None
    if level == "general":
        try:
            sub = int(subgrade)
        except (TypeError, ValueError):
            errors.append(FieldError("subgrade", _("choose the general-data sub-grade")))
        else:
            known = {int(k) for k in grading_rules(data_dir)["general_subgrades"]}
            if sub not in known:
                errors.append(FieldError("subgrade", _("is not a known sub-grade")))
    differs = (level, sub) != (asset.suggested_level, asset.suggested_subgrade)
    if differs and not (note or "").strip():
        errors.append(FieldError("note", _("say why the grade differs from the suggestion")))
    errors += control_char_errors({"note": note or ""})
    if errors:
        raise Invalid(errors)
    asset.grade_level, asset.grade_subgrade = level, sub
    asset.grade_note = (note or "").strip()
    asset.confirmed_by = principal.actor
    asset.confirmed_at = now
    db.flush()
    record(db, "datasec.grade_confirmed", "datasec_assets", asset.id, after={
        "org_id": asset.org_id, "level": level, "subgrade": sub, "suggested_rule": asset.suggested_rule,
        "suggested": [asset.suggested_level, asset.suggested_subgrade], "differs": differs})
    return asset


# --- scans --------------------------------------------------------------------------------------------

def record_scan(db: Session, principal: Principal, org_id: Any, report: ScanReport, now: datetime, *,
                asset_id: int | None = None, data_dir: Path | None = None) -> Scan:
    """Store a finished scan (counts and masked samples) in one go, and update its asset."""
    org = writable_org(db, principal, org_id)
    asset = None
    if asset_id:
        asset = get_asset(db, principal, int(asset_id))
        if asset.org_id != org.id:
            raise Invalid("asset_id", _("belongs to another organisation"))
    # The names a scanned file gives its parts and columns are kept without control characters (the
    # file is the owner's data, scanned as it is; PostgreSQL cannot store NUL); the audit entry
    # says how many were removed (commonwatch.textio).
    removed = 0

    def name(text: str) -> str:
        nonlocal removed
        clean, n = strip_control_text(text)
        removed += n
        return clean

    scan = Scan(org_id=org.id, asset_id=asset.id if asset else None, source=name(report.source)[:500],
                kind=report.kind, rows=report.rows, parts={name(k): v for k, v in report.parts.items()},
                sampled=report.sampled, pi_categories=report.pi_categories,
                sensitive_categories=report.sensitive_categories, created_by=principal.actor, created_at=now)
    for f in report.findings:
        scan.findings.append(ScanFinding(
            org_id=org.id, part=name(f.part)[:500], field=name(f.field)[:300], detector=f.detector, count=f.count,
            rows=f.rows,
            rows_total=f.rows_total, share=f.share, confidence=f.confidence, pi_category=f.pi_category or "",
            sensitive_category=f.sensitive_category or "", minors=f.minors, samples=f.samples))
    db.add(scan)
    db.flush()
    if asset is not None:
        apply_scan(asset, scan, data_dir)
    record(db, "datasec.scan", "datasec_scans", scan.id, after={
        "org_id": org.id, "source": scan.source, "rows": scan.rows, "findings": len(report.findings),
        "sensitive_categories": scan.sensitive_categories,
        **({"control_characters_removed": removed} if removed else {})})
    return scan


def apply_scan(asset: DataAsset, scan: Scan, data_dir: Path | None = None) -> None:
    """The categories a scan found join the asset's; its rows become the record count if unknown."""
    asset.pi_categories = sorted(set(asset.pi_categories or []) | set(scan.pi_categories))
    asset.sensitive_categories = sorted(set(asset.sensitive_categories or []) | set(scan.sensitive_categories))
    if asset.record_count is None and not scan.sampled:
        asset.record_count = scan.rows
    refresh_suggestion(asset, data_dir)


def list_scans(db: Session, principal: Principal, org_id: int | None = None, limit: int = 100) -> list[Scan]:
    stmt = scope(select(Scan), principal, Scan).order_by(Scan.id.desc()).limit(limit)
    if org_id:
        stmt = stmt.where(Scan.org_id == org_id)
    return list(db.scalars(stmt))


def get_scan(db: Session, principal: Principal, scan_id: int) -> Scan:
    scan = get_scoped(db, principal, Scan, scan_id)
    if scan is None:
        raise NotFound()
    return scan


# --- cross-border assessments ---------------------------------------------------------------------

def recorded_ytd(db: Session, org_id: int, year: int, data_dir: Path | None = None) -> tuple[int, int]:
    """Persons (non-sensitive, sensitive) of the transfers recorded for ``org_id`` in ``year``;
    transfers exempt under Arts. 3-6 count only if the rules say so (``counting.exempt_transfers``)."""
    stmt = (select(func.coalesce(func.sum(TransferAssessment.persons_non_sensitive), 0),
                   func.coalesce(func.sum(TransferAssessment.persons_sensitive), 0))
            .where(TransferAssessment.org_id == org_id, TransferAssessment.year == year,
                   TransferAssessment.recorded.is_(True)))
    excluded = xb.not_counted_rules(xb.crossborder_rules(data_dir))
    if excluded:
        stmt = stmt.where(TransferAssessment.rule_id.not_in(excluded))
    row = db.execute(stmt).one()
    return int(row[0]), int(row[1])


@dataclass
class YearSummary:
    year: int
    non_sensitive: int
    sensitive: int
    headroom: list[dict[str, Any]]


def year_summary(db: Session, org_id: int, year: int, data_dir: Path | None = None) -> YearSummary:
    """The year-to-date counts and, for each threshold not yet reached, how many persons remain."""
    rules = xb.crossborder_rules(data_dir)
    ns, s = recorded_ytd(db, org_id, year, data_dir)
    share = float(rules.get("approach_warning_share", 0.9))
    headroom = []
    for name, t in rules["thresholds"].items():
        count = ns if t["fact"] == "ytd_non_sensitive" else s
        headroom.append({"id": name, "fact": t["fact"], "value": t["value"], "count": count,
                         "left": max(t["value"] - count, 0), "reached": count >= t["value"],
                         "near": t["value"] > 1 and share * t["value"] <= count < t["value"],
                         "en": t["en"], "zh": t["zh"]})
    return YearSummary(year=year, non_sensitive=ns, sensitive=s, headroom=headroom)


def parse_transfer(data: dict[str, Any], today: date, data_dir: Path | None = None) -> xb.TransferInputs:
    """Inputs from a form or JSON body; every bad field named."""
    errors: list[FieldError] = []
    raw_date = data.get("transfer_date") or today.isoformat()
    try:
        transfer_date = raw_date if isinstance(raw_date, date) else date.fromisoformat(str(raw_date))
    except ValueError:
        errors.append(FieldError("transfer_date", _("must be a date (YYYY-MM-DD)")))
        transfer_date = today
    nums = {}
    for key in ("persons_non_sensitive", "persons_sensitive", "prior_non_sensitive_outside",
                "prior_sensitive_outside", "persons_processed"):
        nums[key] = _int_or_none(data.get(key), key, errors)
    ftz_id = str(data.get("ftz") or "")
    on_list = str(data.get("on_ftz_negative_list") or "")
    if ftz_id and data.get("ftz_categories") is not None and not on_list:
        lists = load_ftz_lists(data_dir)
        if ftz_id in lists:
            on_list = answer_for(lists[ftz_id], _list(data.get("ftz_categories")), _bool(data.get("ftz_unsure")))
    errors += control_char_errors(data)
    if errors:
        raise Invalid(errors)
    contains_pi = _bool(data.get("contains_pi", True))
    return xb.TransferInputs(
        transfer_date=transfer_date, is_ciio=_bool(data.get("is_ciio")),
        important_data=str(data.get("important_data") or "none"), contains_pi=contains_pi,
        contains_sensitive_pi=_bool(data.get("contains_sensitive_pi")), scenario=str(data.get("scenario") or "other"),
        foreign_origin_no_domestic_mix=_bool(data.get("foreign_origin_no_domestic_mix")), ftz=ftz_id,
        on_ftz_negative_list=on_list,
        persons_non_sensitive=nums["persons_non_sensitive"] or 0, persons_sensitive=nums["persons_sensitive"] or 0,
        prior_non_sensitive_outside=nums["prior_non_sensitive_outside"] or 0,
        prior_sensitive_outside=nums["prior_sensitive_outside"] or 0, persons_processed=nums["persons_processed"],
        treaty_applies=_bool(data.get("treaty_applies")))


def covering_approval(db: Session, org_id: int, on: date) -> AssessmentApproval | None:
    return db.scalars(select(AssessmentApproval).where(
        AssessmentApproval.org_id == org_id, AssessmentApproval.kind == "security_assessment",
        AssessmentApproval.superseded.is_(False), AssessmentApproval.issued_on <= on,
        AssessmentApproval.valid_until >= on).order_by(AssessmentApproval.valid_until.desc())).first()


def preview_assessment(db: Session, principal: Principal, org_id: Any, data: dict[str, Any], now: datetime,
                       data_dir: Path | None = None) -> tuple[Organisation, xb.TransferInputs, xb.Decision]:
    """The decision for a transfer without storing anything."""
    org = get_scoped(db, principal, Organisation, _org_int(org_id))
    if org is None:
        raise NotFound()
    rules = xb.crossborder_rules(data_dir)
    inputs = parse_transfer(data, local_today(now), data_dir)
    if "is_ciio" not in data:
        inputs = xb.TransferInputs(**{**inputs.__dict__, "is_ciio": org.is_cii})
    xb.check_inputs(inputs, rules, set(load_ftz_lists(data_dir)))
    approval = covering_approval(db, org.id, inputs.transfer_date)
    cover = {"reference": approval.reference, "valid_until": approval.valid_until.isoformat()} if approval else None
    decision = xb.decide(inputs, recorded_ytd(db, org.id, inputs.transfer_date.year, data_dir), rules,
                         covering_approval=cover)
    return org, inputs, decision


def _org_int(org_id: Any) -> int:
    try:
        return int(org_id)
    except (TypeError, ValueError):
        raise Invalid("org_id", _("choose an organisation")) from None


def create_assessment(db: Session, principal: Principal, org_id: Any, data: dict[str, Any], now: datetime,
                      data_dir: Path | None = None) -> TransferAssessment:
    """Assess a transfer and store it; a recorded transfer adds to the organisation's year counts."""
    org = writable_org(db, principal, org_id)
    title = str(data.get("title") or "").strip()
    errors = [FieldError("title", _("is required"))] if not title else []
    country = str(data.get("recipient_country") or "").strip()
    if country:
        try:
            country = parse_country(country, "recipient_country")
        except Invalid as exc:
            errors.extend(exc.errors)
    asset_id = data.get("asset_id") or None
    if asset_id:
        asset = get_scoped(db, principal, DataAsset, _org_int(asset_id))
        if asset is None or asset.org_id != org.id:
            errors.append(FieldError("asset_id", _("is not a data asset of this organisation")))
    try:
        _org, inputs, decision = preview_assessment(db, principal, org.id, data, now, data_dir)
    except Invalid as exc:
        raise Invalid(errors + exc.errors) from None
    if errors:
        raise Invalid(errors)
    row = TransferAssessment(
        org_id=org.id, asset_id=int(asset_id) if asset_id else None, title=title[:300],
        recipient=str(data.get("recipient") or "")[:300], recipient_country=country,
        transfer_date=inputs.transfer_date, year=inputs.transfer_date.year,
        recorded=_bool(data.get("recorded", True)),
        persons_non_sensitive=inputs.persons_non_sensitive if inputs.contains_pi else 0,
        persons_sensitive=inputs.persons_sensitive if inputs.contains_sensitive_pi else 0,
        inputs=inputs.as_dict(), mechanism=decision.mechanism, rule_id=decision.rule["id"],
        result=decision.as_dict(), created_by=principal.actor, created_at=now)
    db.add(row)
    db.flush()
    return row


def list_assessments(db: Session, principal: Principal, org_id: int | None = None) -> list[TransferAssessment]:
    stmt = scope(select(TransferAssessment), principal, TransferAssessment).order_by(
        TransferAssessment.transfer_date.desc(), TransferAssessment.id.desc())
    if org_id:
        stmt = stmt.where(TransferAssessment.org_id == org_id)
    return list(db.scalars(stmt))


def get_assessment(db: Session, principal: Principal, assessment_id: int) -> TransferAssessment:
    row = get_scoped(db, principal, TransferAssessment, assessment_id)
    if row is None:
        raise NotFound()
    return row


# --- approvals and reminders ------------------------------------------------------------------------

def create_approval(db: Session, principal: Principal, org_id: Any, data: dict[str, Any],
                    data_dir: Path | None = None) -> AssessmentApproval:
    """Record a passed security assessment (or certificate); validity and window from the rules."""
    org = writable_org(db, principal, org_id)
    rules = xb.crossborder_rules(data_dir)
    errors: list[FieldError] = []
    kind = str(data.get("kind") or "security_assessment")
    if kind not in APPROVAL_KINDS:
        errors.append(FieldError("kind", _("must be security_assessment or certification")))
    reference = str(data.get("reference") or "").strip()
    if not reference:
        errors.append(FieldError("reference", _("is required")))
    try:
        issued = date.fromisoformat(str(data.get("issued_on") or ""))
    except ValueError:
        errors.append(FieldError("issued_on", _("must be a date (YYYY-MM-DD)")))
        issued = None
    previous = None
    if data.get("extended_from"):
        previous = get_scoped(db, principal, AssessmentApproval, _org_int(data["extended_from"]))
        if previous is None or previous.org_id != org.id:
            errors.append(FieldError("extended_from", _("is not an approval of this organisation")))
    errors += control_char_errors(data)
    if errors or issued is None:
        raise Invalid(errors)
    span = xb.validity(kind, issued, rules)
    if previous is not None:
        # An extension adds the extension period to the previous validity.
        years = int(rules["validity"][kind].get("extension_years", rules["validity"][kind]["years"]))
        until = xb.add_years(previous.valid_until, years)
        span = {**span, "valid_until": until}
        if rules["validity"][kind].get("extension_window_working_days"):
            cal = xb.WorkingCalendar.from_rules(rules)
            span["window_opens"] = cal.minus_working_days(until, int(rules["validity"][kind][
                "extension_window_working_days"]))
        previous.superseded = True
    row = AssessmentApproval(org_id=org.id, kind=kind, reference=reference[:200], scope=str(data.get("scope") or ""),
                             issued_on=issued, valid_until=span["valid_until"], window_opens=span["window_opens"],
                             extended_from=previous.id if previous else None)
    db.add(row)
    db.flush()
    return row


def list_approvals(db: Session, principal: Principal, org_id: int | None = None) -> list[AssessmentApproval]:
    stmt = scope(select(AssessmentApproval), principal, AssessmentApproval).order_by(AssessmentApproval.valid_until)
    if org_id:
        stmt = stmt.where(AssessmentApproval.org_id == org_id)
    return list(db.scalars(stmt))


def get_approval(db: Session, principal: Principal, approval_id: int) -> AssessmentApproval:
    row = get_scoped(db, principal, AssessmentApproval, approval_id)
    if row is None:
        raise NotFound()
    return row


def approval_state(approval: AssessmentApproval, today: date, data_dir: Path | None = None) -> dict[str, Any]:
    """Where an approval stands today: kind of alert (if any) and the days left."""
    rules = xb.crossborder_rules(data_dir)
    before = sorted(int(d) for d in rules["validity"].get("remind_days_before_window", []))
    days_to_expiry = (approval.valid_until - today).days
    state: dict[str, Any] = {"days_to_expiry": days_to_expiry, "alert": "", "due_on": None}
    if approval.superseded:
        state["alert"] = "superseded"
    elif days_to_expiry < 0:
        state.update(alert="expired", due_on=approval.valid_until)
    elif approval.window_opens and today >= approval.window_opens:
        state.update(alert="window_open", due_on=approval.window_opens)
    elif approval.window_opens:
        days = (approval.window_opens - today).days
        for limit in before:
            if days <= limit:
                state.update(alert=f"window_in_{limit}", due_on=approval.window_opens - timedelta(days=limit))
                break
    elif days_to_expiry <= (max(before) if before else 30):
        state.update(alert="expiring", due_on=approval.valid_until)
    return state


def alerts(db: Session, principal: Principal, today: date, data_dir: Path | None = None) -> list[dict[str, Any]]:
    """Approvals that need action, for the pages (whatever the job has already reminded)."""
    out = []
    for approval in list_approvals(db, principal):
        state = approval_state(approval, today, data_dir)
        if state["alert"] and state["alert"] != "superseded":
            out.append({"approval": approval, **state})
    return out


def run_reminders(db: Session, today: date, data_dir: Path | None = None) -> int:
    """Make each due reminder once (the job); returns how many were made."""
    made = 0
    approvals = db.scalars(select(AssessmentApproval).where(AssessmentApproval.superseded.is_(False))).all()
    for approval in approvals:
        state = approval_state(approval, today, data_dir)
        if not state["alert"]:
            continue
        exists = db.scalar(select(ApprovalReminder.id).where(ApprovalReminder.approval_id == approval.id,
                                                             ApprovalReminder.kind == state["alert"]))
        if exists:
            continue
        db.add(ApprovalReminder(org_id=approval.org_id, approval_id=approval.id, kind=state["alert"],
                                due_on=state["due_on"] or today))
        made += 1
    db.flush()
    return made


def reminders(db: Session, principal: Principal, limit: int = 50) -> list[ApprovalReminder]:
    stmt = scope(select(ApprovalReminder), principal, ApprovalReminder).order_by(
        ApprovalReminder.id.desc()).limit(limit)
    return list(db.scalars(stmt))
