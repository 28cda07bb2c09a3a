"""International cooperation workflows: the partner directory (profiles, agreements, import and
export) and cybercrime-assistance requests (contents checked against the rules file, status
workflow, need-to-know, PI flags, counts).

Plain values and a ``Session`` in, rows out. The partner itself is the registry's organisation of
kind ``partner-cert``; its contacts and PGP keys stay in the registry (``constituency.services``).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from commonwatch.access.audit import record
from commonwatch.access.models import User
from commonwatch.access.principal import Principal, Role
from commonwatch.constituency import services as registry
from commonwatch.constituency.models import Organisation, OrgKind
from commonwatch.cooperation.models import (
    CHANNELS,
    PARTNER_KINDS,
    TI_LEVELS,
    AgreementReminder,
    AssistanceRequest,
    PartnerAgreement,
    PartnerProfile,
    RequestAssignment,
    RequestAttachment,
    RequestHistory,
)
from commonwatch.datasec.services import local_today
from commonwatch.db import get_scoped, scope
from commonwatch.errors import FieldError, Forbidden, Invalid, NotFound
from commonwatch.i18n import _, pick
from commonwatch.labels import label as enum_label
from commonwatch.rules import RulesError, load_rules
from commonwatch.textio import control_char_errors, decode_bytes
from commonwatch.validation import parse_country

RULES = "assistance_requests.yaml"
DIRECTIONS = ("incoming", "outgoing")
STATUSES = ("received", "acknowledged", "under_review", "forwarded", "answered", "declined")
FINAL = ("answered", "declined")
#: status -> the statuses it may move to
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "received": ("acknowledged", "under_review", "declined"),
    "acknowledged": ("under_review", "declined"),
    "under_review": ("forwarded", "answered", "declined"),
    "forwarded": ("answered", "declined"),
    "answered": (),
    "declined": (),
}
CONCERN_TYPES = ("incident", "event", "indicator", "network")
MAX_ATTACHMENT = 10 * 1024 * 1024


def status_label(status: str) -> str:
    return enum_label(status, "request_status")


def direction_label(direction: str) -> str:
    return enum_label(direction, "request_direction")


def partner_kind_label(kind: str) -> str:
    return enum_label(kind, "partner_kind")


_RULES_CACHE: dict[tuple[str, int, int], dict[str, Any]] = {}


def request_rules(data_dir: Path | None = None) -> dict[str, Any]:
    """The rules file, checked: every legal basis has its contents, every kind its label. Parsed once
    per version of the file (its path, size and modification time): the inbound path asks for it per
    chunk of mails, and YAML parsing is slow. Callers get a copy they may change."""
    import copy

    from commonwatch.rules import rules_path

    path = rules_path(RULES, data_dir)
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _RULES_CACHE:
        _RULES_CACHE.clear()
        _RULES_CACHE[key] = _checked_rules(data_dir)
    return copy.deepcopy(_RULES_CACHE[key])


def _checked_rules(data_dir: Path | None) -> dict[str, Any]:
    rules = load_rules(RULES, data_dir)
    for key in ("kinds", "legal_bases", "contents", "clocks", "refusal_grounds", "agreement_renewal"):
        if not isinstance(rules.get(key), dict):
            raise RulesError(RULES, f"lacks '{key}'")
    for basis in rules["legal_bases"]:
        items = (rules["contents"].get(basis) or {}).get("items")
        if not isinstance(items, dict) or not items:
            raise RulesError(RULES, f"contents.{basis} lacks 'items'")
    for key in ("acknowledge_days", "preservation_days"):
        if not isinstance(rules["clocks"].get(key), int) or rules["clocks"][key] < 0:
            raise RulesError(RULES, f"clocks.{key} must be a whole number of days")
    return rules


# --- partner directory ---------------------------------------------------------------------------------

def partner_org(db: Session, principal: Principal, org_id: Any) -> Organisation:
    """The partner CERT (an organisation of kind partner-cert) if visible, else 404."""
    try:
        oid = int(org_id)
    except (TypeError, ValueError):
        raise NotFound() from None
    org = get_scoped(db, principal, Organisation, oid)
    if org is None or org.kind != OrgKind.PARTNER_CERT:
        raise NotFound()
    return org


def profile_of(db: Session, org: Organisation) -> PartnerProfile | None:
    return db.scalar(select(PartnerProfile).where(PartnerProfile.org_id == org.id))


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y")
    return bool(value)


def _date(value: Any, field: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise Invalid(field, _("“{value}” is not a date (YYYY-MM-DD)").format(value=value)) from None


def validate_profile(data: dict[str, Any]) -> dict[str, Any]:
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    if "kind" in data:
        kind = str(data.get("kind") or "national").strip()
        if kind not in PARTNER_KINDS:
            errors.append(FieldError("kind", _("must be one of {values}").format(values=", ".join(PARTNER_KINDS))))
        out["kind"] = kind
    if "ti_level" in data:
        level = str(data.get("ti_level") or "").strip().lower()
        if level not in TI_LEVELS:
            errors.append(FieldError("ti_level", _("must be one of {values}").format(
                values=", ".join(x for x in TI_LEVELS if x))))
        out["ti_level"] = level
    for key in ("first_member", "apcert_member"):
        if key in data:
            out[key] = _bool(data[key])
    for key, limit in (("short_name", 64), ("hours", 200), ("timezone", 64), ("emergency_contact", 300),
                       ("rfc2350_url", 500), ("constituency", 5000)):
        if key in data:
            value = str(data.get(key) or "").strip()
            if len(value) > limit:
                errors.append(FieldError(key, _("is longer than {n} characters").format(n=limit)))
            out[key] = value
    if "language" in data:
        from commonwatch.i18n import LANGUAGES

        language = str(data.get("language") or "").strip()
        if language and language not in LANGUAGES:
            errors.append(FieldError("language", _("must be one of {values}").format(values=", ".join(LANGUAGES))))
        out["language"] = language
    if out.get("rfc2350_url") and not out["rfc2350_url"].startswith(("https://", "http://")):
        errors.append(FieldError("rfc2350_url", _("must be an http(s) address")))
    if "channels" in data:
        channels = data.get("channels") or []
        if isinstance(channels, str):
            channels = [c for c in channels.replace(",", " ").split() if c]
        unknown = [c for c in channels if c not in CHANNELS]
        if unknown:
            errors.append(FieldError("channels", _("unknown channel(s) {values}; known: {known}").format(
                values=", ".join(map(str, unknown)), known=", ".join(CHANNELS))))
        out["channels"] = [c for c in CHANNELS if c in channels]
    errors += control_char_errors(data)  # a form, a body or an import: refused naming the field (textio)
    if errors:
        raise Invalid(errors)
    return out


def save_profile(db: Session, principal: Principal, org_id: Any, data: dict[str, Any]) -> PartnerProfile:
    if not principal.has("cooperation.write"):
        raise Forbidden()
    org = partner_org(db, principal, org_id)
    fields = validate_profile(data)
    profile = profile_of(db, org)
    if profile is None:
        profile = PartnerProfile(org_id=org.id)
        db.add(profile)
    for key, value in fields.items():
        setattr(profile, key, value)
    db.flush()
    return profile


def create_partner(db: Session, principal: Principal, data: dict[str, Any]) -> Organisation:
    """A new partner CERT: the registry organisation and its directory profile, together."""
    if not principal.has("cooperation.write") or not principal.has("registry.write"):
        raise Forbidden()
    org_fields = {k: data[k] for k in ("name", "name_local", "country", "region", "notes") if k in data}
    profile_fields = validate_profile({k: v for k, v in data.items() if k not in org_fields})
    org = registry.create_org(db, {**org_fields, "kind": OrgKind.PARTNER_CERT})
    db.add(PartnerProfile(org_id=org.id, **profile_fields))
    db.flush()
    return org


def list_partners(db: Session, principal: Principal, *, country: str | None = None,
                  region: str | None = None) -> list[tuple[Organisation, PartnerProfile | None]]:
    stmt = scope(select(Organisation).where(Organisation.kind == OrgKind.PARTNER_CERT), principal, Organisation)
    if country:
        stmt = stmt.where(Organisation.country == country.upper())
    if region:
        stmt = stmt.where(Organisation.region == region)
    orgs = list(db.scalars(stmt.options(selectinload(Organisation.contacts)).order_by(Organisation.country,
                                                                                       Organisation.name)))
    profiles = {p.org_id: p for p in db.scalars(select(PartnerProfile).where(
        PartnerProfile.org_id.in_([o.id for o in orgs])))} if orgs else {}
    return [(o, profiles.get(o.id)) for o in orgs]


def directory_counts(db: Session, principal: Principal) -> dict[str, Any]:
    """Partners by country and by region (region as written on the organisation, '' if none)."""
    stmt = scope(select(Organisation.country, Organisation.region, func.count()).where(
        Organisation.kind == OrgKind.PARTNER_CERT), principal, Organisation).group_by(
        Organisation.country, Organisation.region)
    by_country: Counter[str] = Counter()
    by_region: Counter[str] = Counter()
    for country, region, n in db.execute(stmt):
        by_country[country] += n
        by_region[region or ""] += n
    return {"total": sum(by_country.values()), "countries": len(by_country),
            "by_country": dict(sorted(by_country.items(), key=lambda kv: (-kv[1], kv[0]))),
            "by_region": dict(sorted(by_region.items(), key=lambda kv: (-kv[1], kv[0])))}


def partner_keys(org: Organisation) -> list[dict[str, Any]]:
    """The PGP keys of the partner's contacts (held and checked by the registry)."""
    return [{"email": c.email, "fingerprint": c.pgp_fingerprint,
             "expires_at": c.pgp_expires_at.isoformat() if c.pgp_expires_at else None}
            for c in org.contacts if c.pgp_fingerprint]


def add_agreement(db: Session, principal: Principal, org_id: Any, data: dict[str, Any],
                  today: date) -> PartnerAgreement:
    if not principal.has("cooperation.write"):
        raise Forbidden()
    org = partner_org(db, principal, org_id)
    errors: list[FieldError] = []
    title = str(data.get("title") or "").strip()
    if not title:
        errors.append(FieldError("title", _("is required")))
    elif len(title) > 300:
        errors.append(FieldError("title", _("is longer than {n} characters").format(n=300)))
    signed = renews = None
    try:
        signed = _date(data.get("signed_on"), "signed_on")
        if signed is None:
            errors.append(FieldError("signed_on", _("is required")))
        elif signed > today:
            errors.append(FieldError("signed_on", _("is in the future")))
    except Invalid as exc:
        errors.extend(exc.errors)
    try:
        renews = _date(data.get("renews_on"), "renews_on")
        if renews is not None and signed is not None and renews <= signed:
            errors.append(FieldError("renews_on", _("must be after the signing date")))
    except Invalid as exc:
        errors.extend(exc.errors)
    errors += control_char_errors(data)
    if errors:
        raise Invalid(errors)
    row = PartnerAgreement(org_id=org.id, title=title, signed_on=signed, renews_on=renews,
                           scope=str(data.get("scope") or "").strip())
    db.add(row)
    db.flush()
    return row


def agreements(db: Session, principal: Principal, org_id: int | None = None) -> list[PartnerAgreement]:
    stmt = scope(select(PartnerAgreement), principal, PartnerAgreement).order_by(PartnerAgreement.renews_on)
    if org_id is not None:
        stmt = stmt.where(PartnerAgreement.org_id == org_id)
    return list(db.scalars(stmt))


def renewal_state(agreement: PartnerAgreement, today: date, rules: dict[str, Any]) -> str | None:
    """'due' on or after the renewal date, 'soon' within the reminder window, else None."""
    if agreement.renews_on is None:
        return None
    if today >= agreement.renews_on:
        return "due"
    if today >= agreement.renews_on - timedelta(days=int(rules["agreement_renewal"]["remind_days_before"])):
        return "soon"
    return None


def run_renewal_reminders(db: Session, today: date, data_dir: Path | None = None) -> int:
    """Make each due renewal reminder once (the job); returns how many were made."""
    rules = request_rules(data_dir)
    made = 0
    for agreement in db.scalars(select(PartnerAgreement).where(PartnerAgreement.renews_on.is_not(None))):
        state = renewal_state(agreement, today, rules)
        if state is None:
            continue
        if db.scalar(select(AgreementReminder.id).where(AgreementReminder.agreement_id == agreement.id,
                                                        AgreementReminder.kind == state,
                                                        AgreementReminder.due_on == agreement.renews_on)):
            continue
        db.add(AgreementReminder(org_id=agreement.org_id, agreement_id=agreement.id, kind=state,
                                 due_on=agreement.renews_on))
        made += 1
    db.flush()
    return made


def renewal_reminders(db: Session, principal: Principal, limit: int = 50) -> list[AgreementReminder]:
    stmt = scope(select(AgreementReminder), principal, AgreementReminder).order_by(
        AgreementReminder.id.desc()).limit(limit)
    return list(db.scalars(stmt.options(selectinload(AgreementReminder.agreement))))


# --- import and export -------------------------------------------------------------------------------

EXPORT_FIELDS = ("name", "name_local", "country", "region", "kind", "short_name", "first_member",
                 "apcert_member", "ti_level", "constituency", "hours", "timezone", "emergency_contact",
                 "rfc2350_url", "channels", "language", "pgp_fingerprints")


def export_records(db: Session, principal: Principal) -> list[dict[str, Any]]:
    out = []
    for org, p in list_partners(db, principal):
        out.append({
            "name": org.name, "name_local": org.name_local, "country": org.country, "region": org.region,
            "kind": p.kind if p else "", "short_name": p.short_name if p else "",
            "first_member": bool(p and p.first_member), "apcert_member": bool(p and p.apcert_member),
            "ti_level": p.ti_level if p else "", "constituency": p.constituency if p else "",
            "hours": p.hours if p else "", "timezone": p.timezone if p else "",
            "emergency_contact": p.emergency_contact if p else "", "rfc2350_url": p.rfc2350_url if p else "",
            "channels": list(p.channels) if p else [], "language": p.language if p else "",
            "pgp_fingerprints": [k["fingerprint"] for k in partner_keys(org)],
            "agreements": [{"title": a.title, "signed_on": a.signed_on.isoformat(), "scope": a.scope,
                            "renews_on": a.renews_on.isoformat() if a.renews_on else None}
                           for a in agreements(db, principal, org.id)],
        })
    return out


def export_csv_rows(records: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for r in records:
        rows.append([" ".join(r[f]) if isinstance(r[f], list) else ("yes" if r[f] is True else "no"
                     if r[f] is False else r[f]) for f in EXPORT_FIELDS])
    return rows


#: The key :func:`parse_import` keeps a CSV record's line number under (not a column name).
LINE_KEY: Any = ("line",)  # a tuple: no CSV column or JSON key can collide with it


def parse_import(text: str, fmt: str) -> list[dict[str, Any]]:
    """Records from CSV (header row, the export's columns) or JSON (a list of objects)."""
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise Invalid("file", _("is not JSON: line {line}: {reason}").format(line=exc.lineno, reason=exc.msg)) \
                from None
        if isinstance(data, dict) and isinstance(data.get("items"), list):
            data = data["items"]
        if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
            raise Invalid("file", _("must be a JSON list of partner objects"))
        return data
    if fmt == "csv":
        import csv
        import io

        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "name" not in reader.fieldnames or "country" not in reader.fieldnames:
            raise Invalid("file", _("the CSV header must name at least the columns name and country"))
        rows = []
        for row in reader:
            rows.append({k: (v[1:] if isinstance(v, str) and v.startswith("'") and v[1:2] in "=+-@" else v)
                         for k, v in row.items() if k})
            rows[-1][LINE_KEY] = reader.line_num  # the line the record ends on, for error messages
        return rows
    raise Invalid("format", _("must be csv or json"))


def import_records(db: Session, principal: Principal, records: list[dict[str, Any]], today: date) -> dict[str, int]:
    """Create or update partners by (name, country); all or nothing, errors name the record and field."""
    if not principal.has("cooperation.write") or not principal.has("registry.write"):
        raise Forbidden()
    created = updated = 0
    errors: list[FieldError] = []
    with db.begin_nested():
        for i, rec in enumerate(records, start=1):
            where = f"line {rec.pop(LINE_KEY)}" if LINE_KEY in rec else f"record {i}"
            controls = control_char_errors(rec, skip=("agreements",)) + [
                FieldError(f"agreements[{j}].{e.field}", e.reason) for j, a in enumerate(rec.get("agreements") or [])
                if isinstance(a, dict) for e in control_char_errors(a)]
            if controls:  # nothing of this record is written: refused naming the line and field
                errors.extend(FieldError(f"{where}: {e.field}", e.reason) for e in controls)
                continue
            try:
                name = str(rec.get("name") or "").strip()
                country = parse_country(str(rec.get("country") or ""))
                if not name:
                    raise Invalid("name", _("is required"))
                org = db.scalar(select(Organisation).where(Organisation.kind == OrgKind.PARTNER_CERT,
                                                           Organisation.name == name,
                                                           Organisation.country == country))
                profile_data = {k: rec[k] for k in ("kind", "short_name", "first_member", "apcert_member",
                                                    "ti_level", "constituency", "hours", "timezone",
                                                    "emergency_contact", "rfc2350_url", "channels",
                                                    "language")
                                if k in rec and rec[k] is not None}
                if org is None:
                    org = create_partner(db, principal, {"name": name, "country": country,
                                                         "name_local": rec.get("name_local") or "",
                                                         "region": rec.get("region") or "", **profile_data})
                    created += 1
                else:
                    registry.update_org(db, org, {"region": rec.get("region") or org.region})
                    save_profile(db, principal, org.id, profile_data)
                    updated += 1
                for agreement in rec.get("agreements") or []:
                    if not isinstance(agreement, dict):
                        raise Invalid("agreements", _("must be a list of objects"))
                    exists = db.scalar(select(PartnerAgreement.id).where(
                        PartnerAgreement.org_id == org.id, PartnerAgreement.title == agreement.get("title")))
                    if not exists:
                        add_agreement(db, principal, org.id, agreement, today)
            except Invalid as exc:
                errors.extend(FieldError(f"record {i}: {e.field}", e.reason) for e in exc.errors)
        if errors:
            raise Invalid(errors)
    db.flush()
    return {"created": created, "updated": updated}


# --- assistance requests -------------------------------------------------------------------------------

def _staff_user(db: Session, user_id: Any) -> User:
    try:
        uid = int(user_id)
    except (TypeError, ValueError):
        raise Invalid("user_id", _("choose a coordinator")) from None
    user = db.get(User, uid)
    if user is None or not user.active or user.role not in (Role.COORDINATOR, Role.ADMIN):
        raise Invalid("user_id", _("is not an active coordinator or administrator"))
    return user


def missing_contents(req: AssistanceRequest, rules: dict[str, Any]) -> list[str]:
    """Items the rules file requires for the request's legal basis that are still empty."""
    items = rules["contents"][req.legal_basis]["items"]
    return [key for key in items if not str((req.contents or {}).get(key) or "").strip()]


def scan_text(text: str, today: date, data_dir: Path | None, source: str) -> list[dict[str, Any]]:
    """The PI scanner's findings over one text (masked samples only)."""
    from commonwatch.datasec.scanner import scan_batches

    if not text.strip():
        return []
    frame = pl.DataFrame({"text": text.splitlines() or [text]})
    report = scan_batches([(source, frame)], source=source, kind="text", today=today, data_dir=data_dir)
    return [{"detector": f.detector, "count": f.count, "pi_category": f.pi_category,
             "sensitive_category": f.sensitive_category, "samples": f.samples} for f in report.confirmed]


def _next_ref(db: Session, year: int) -> str:
    prefix = f"AR-{year}-"
    n = db.scalar(select(func.count()).select_from(AssistanceRequest).where(AssistanceRequest.ref.like(prefix + "%")))
    return f"{prefix}{(n or 0) + 1:04d}"


def validate_request(data: dict[str, Any], rules: dict[str, Any], today: date) -> dict[str, Any]:
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    direction = str(data.get("direction") or "").strip()
    if direction not in DIRECTIONS:
        errors.append(FieldError("direction", _("must be one of {values}").format(values=", ".join(DIRECTIONS))))
    out["direction"] = direction
    try:
        out["country"] = parse_country(str(data.get("country") or ""))
    except Invalid as exc:
        errors.extend(exc.errors)
    for key, limit in (("authority", 300), ("subject", 300), ("legal_basis_detail", 300)):
        value = str(data.get(key) or "").strip()
        if key != "legal_basis_detail" and not value:
            errors.append(FieldError(key, _("is required")))
        elif len(value) > limit:
            errors.append(FieldError(key, _("is longer than {n} characters").format(n=limit)))
        out[key] = value
    basis = str(data.get("legal_basis") or "").strip()
    if basis not in rules["legal_bases"]:
        errors.append(FieldError("legal_basis", _("must be one of {values}").format(
            values=", ".join(rules["legal_bases"]))))
    out["legal_basis"] = basis
    kind = str(data.get("kind") or "").strip()
    if kind not in rules["kinds"]:
        errors.append(FieldError("kind", _("must be one of {values}").format(values=", ".join(rules["kinds"]))))
    out["kind"] = kind
    out["body"] = str(data.get("body") or "")
    if len(out["body"]) > 200_000:
        errors.append(FieldError("body", _("is longer than {n} characters").format(n=200_000)))
    try:
        received = _date(data.get("received_on"), "received_on") or today
        if received > today:
            errors.append(FieldError("received_on", _("is in the future")))
        out["received_on"] = received
    except Invalid as exc:
        errors.extend(exc.errors)
    try:
        deadline = _date(data.get("deadline"), "deadline")
        if deadline is not None and deadline < today:
            errors.append(FieldError("deadline", _("{date} is in the past").format(date=deadline.isoformat())))
        out["deadline"] = deadline
    except Invalid as exc:
        errors.extend(exc.errors)
    contents = data.get("contents") or {}
    if not isinstance(contents, dict):
        errors.append(FieldError("contents", _("must be an object of the items the rules file names")))
        contents = {}
    if basis in rules["contents"]:
        known = rules["contents"][basis]["items"]
        unknown = [k for k in contents if k not in known]
        if unknown:
            errors.append(FieldError("contents", _("unknown item(s) {values}; known: {known}").format(
                values=", ".join(unknown), known=", ".join(known))))
    out["contents"] = {str(k): str(v)[:5000] for k, v in contents.items()}
    concerns = data.get("concerns") or []
    if not isinstance(concerns, list):
        errors.append(FieldError("concerns", _("must be a list")))
        concerns = []
    clean = []
    for i, c in enumerate(concerns):
        if not isinstance(c, dict) or c.get("type") not in CONCERN_TYPES or not str(c.get("ref") or "").strip():
            errors.append(FieldError(f"concerns[{i}]", _("needs a type ({types}) and a ref").format(
                types=", ".join(CONCERN_TYPES))))
            continue
        clean.append({"type": c["type"], "ref": str(c["ref"]).strip()[:300]})
    out["concerns"] = clean
    errors += control_char_errors(data, skip=("contents", "concerns"))
    errors += [FieldError(f"contents.{e.field}", e.reason) for e in control_char_errors(contents)]
    errors += [FieldError(f"concerns[{i}]", e.reason) for i, c in enumerate(concerns) if isinstance(c, dict)
               for e in control_char_errors(c)[:1]]
    if errors:
        raise Invalid(errors)
    return out


def create_request(db: Session, principal: Principal, data: dict[str, Any], now: datetime,
                   data_dir: Path | None = None) -> AssistanceRequest:
    if not principal.has("cooperation.requests"):
        raise Forbidden()
    rules = request_rules(data_dir)
    today = local_today(now)
    fields = validate_request(data, rules, today)
    partner_id = data.get("partner_org_id")
    if partner_id not in (None, ""):
        fields["partner_org_id"] = partner_org(db, principal, partner_id).id
    assignees = [_staff_user(db, uid) for uid in (data.get("assignees") or [])]
    req = AssistanceRequest(ref=_next_ref(db, today.year), created_by=principal.actor, **fields)
    req.pi_findings = scan_text(req.body + "\n" + "\n".join(req.contents.values()), today, data_dir, "request")
    db.add(req)
    db.flush()
    db.add(RequestHistory(request_id=req.id, status=req.status, actor=principal.actor, at=now))
    if principal.role == Role.COORDINATOR and principal.user_id:
        assignees.append(db.get(User, principal.user_id))
    for user in {u.id: u for u in assignees if u is not None}.values():
        db.add(RequestAssignment(request_id=req.id, user_id=user.id))
    db.flush()
    return req


def list_requests(db: Session, principal: Principal, *, status: str | None = None,
                  direction: str | None = None) -> list[AssistanceRequest]:
    if not principal.has("cooperation.requests"):
        return []
    stmt = scope(select(AssistanceRequest), principal, AssistanceRequest).order_by(AssistanceRequest.id.desc())
    if status:
        stmt = stmt.where(AssistanceRequest.status == status)
    if direction:
        stmt = stmt.where(AssistanceRequest.direction == direction)
    rows = list(db.scalars(stmt))
    record(db, "cooperation.requests.list", "coop_requests", "",
           after={"ids": [r.id for r in rows]}, actor=principal.actor)
    return rows


def get_request(db: Session, principal: Principal, request_id: Any, *, audit: bool = True) -> AssistanceRequest:
    """One request if the principal is assigned to it or an admin; 404 otherwise. Every view is audited."""
    if not principal.has("cooperation.requests"):
        raise NotFound()
    try:
        rid = int(request_id)
    except (TypeError, ValueError):
        raise NotFound() from None
    req = get_scoped(db, principal, AssistanceRequest, rid)
    if req is None:
        raise NotFound()
    if audit:
        record(db, "cooperation.request.view", "coop_requests", req.id, actor=principal.actor)
    return req


def assign(db: Session, principal: Principal, req: AssistanceRequest, user_id: Any) -> RequestAssignment:
    if not principal.has("cooperation.requests"):
        raise Forbidden()
    user = _staff_user(db, user_id)
    existing = db.scalar(select(RequestAssignment).where(RequestAssignment.request_id == req.id,
                                                         RequestAssignment.user_id == user.id))
    if existing:
        return existing
    row = RequestAssignment(request_id=req.id, user_id=user.id)
    db.add(row)
    db.flush()
    return row


def assignees(db: Session, req: AssistanceRequest) -> list[User]:
    return list(db.scalars(select(User).join(RequestAssignment, RequestAssignment.user_id == User.id).where(
        RequestAssignment.request_id == req.id).order_by(User.email)))


def transition(db: Session, principal: Principal, req: AssistanceRequest, status: str, now: datetime, *,
               note: str = "", reason: str = "", ground: str = "", data_dir: Path | None = None) -> AssistanceRequest:
    if not principal.has("cooperation.requests"):
        raise Forbidden()
    if status not in STATUSES:
        raise Invalid("status", _("must be one of {values}").format(values=", ".join(STATUSES)))
    if status not in TRANSITIONS[req.status]:
        raise Invalid("status", _("a request that is {current} cannot become {new}").format(
            current=status_label(req.status), new=status_label(status)))
    if status == "declined":
        grounds = request_rules(data_dir)["refusal_grounds"]["grounds"]
        if ground and ground not in grounds:
            raise Invalid("ground", _("must be one of {values}").format(values=", ".join(grounds)))
        if not reason.strip():
            raise Invalid("reason", _("a declined request needs the reason"))
        req.decline_reason = (f"[{ground}] " if ground else "") + reason.strip()[:5000]
    if status in FINAL:
        req.answered_at = now
    req.status = status
    db.add(RequestHistory(request_id=req.id, status=status, note=(note or reason).strip()[:5000],
                          actor=principal.actor, at=now))
    db.flush()
    return req


def add_attachment(db: Session, principal: Principal, req: AssistanceRequest, filename: str, content: bytes,
                   now: datetime, data_dir: Path | None = None) -> RequestAttachment:
    if not principal.has("cooperation.requests"):
        raise Forbidden()
    name = Path(str(filename or "")).name.strip()[:300]
    if not name:
        raise Invalid("file", _("choose a file"))
    if len(content) > MAX_ATTACHMENT:
        raise Invalid("file", _("is larger than {n} MB").format(n=MAX_ATTACHMENT // (1024 * 1024)))
    findings = scan_text(decode_bytes(content), local_today(now), data_dir, name) if content else []
    row = RequestAttachment(request_id=req.id, filename=name, size=len(content), content=content,
                            pi_findings=findings)
    db.add(row)
    db.flush()
    return row


def deadlines(req: AssistanceRequest, rules: dict[str, Any]) -> dict[str, date | None]:
    clocks = rules["clocks"]
    out: dict[str, date | None] = {"acknowledge_by": req.received_on + timedelta(days=clocks["acknowledge_days"]),
                                   "deadline": req.deadline, "preserve_until": None}
    if req.kind == "preservation":
        out["preserve_until"] = req.received_on + timedelta(days=clocks["preservation_days"])
    return out


def request_record(req: AssistanceRequest, users: list[User], rules: dict[str, Any], now: datetime) -> bytes:
    """The bilingual PDF record of one request."""
    from commonwatch.pdf import PdfDocument, Section, render_pdf

    def both(en: str, zh: str) -> str:
        return f"{en} / {zh}"

    basis = rules["contents"][req.legal_basis]
    cite = basis["citation"]
    src = rules["sources"].get(cite.get("source"), {})
    status_note = both("verified", "已核实") if basis.get("status") == "verified" else both(
        "provisional: check the official text", "暂定：请核对官方文本")
    clocks = deadlines(req, rules)
    facts = [
        (both("Reference", "编号"), req.ref),
        (both("Direction", "方向"), both(req.direction, {"incoming": "收到", "outgoing": "发出"}[req.direction])),
        (both("Country", "国家"), req.country),
        (both("Authority", "机关"), req.authority),
        (both("Legal basis", "法律依据"), both(rules["legal_bases"][req.legal_basis]["en"],
                                          rules["legal_bases"][req.legal_basis]["zh"])
         + (f" — {req.legal_basis_detail}" if req.legal_basis_detail else "")),
        (both("Kind", "类型"), both(rules["kinds"][req.kind]["en"], rules["kinds"][req.kind]["zh"])),
        (both("Subject", "事由"), req.subject),
        (both("Received", "收到日期"), req.received_on.isoformat()),
        (both("Acknowledge by", "确认期限"), clocks["acknowledge_by"].isoformat() if clocks["acknowledge_by"] else ""),
        (both("Deadline", "期限"), req.deadline.isoformat() if req.deadline else "—"),
        (both("Status", "状态"), req.status),
    ]
    if clocks["preserve_until"]:
        facts.append((both("Preserve at least until", "保全至少至"), clocks["preserve_until"].isoformat()))
    if req.decline_reason:
        facts.append((both("Reason for declining", "拒绝理由"), req.decline_reason))
    items = basis["items"]
    contents = [[both("Item", "事项"), both("Content", "内容")]] + [
        [both(v["en"], v["zh"]), (req.contents or {}).get(k) or both("MISSING", "缺失")] for k, v in items.items()]
    history = [[both("When", "时间"), both("Status", "状态"), both("By", "操作人"), both("Note", "说明")]] + [
        [h.at.isoformat(timespec="minutes"), h.status, h.actor, h.note] for h in req.history]
    sections = [
        Section(both("Request", "请求"), facts=facts),
        Section(both("Required contents", "应载明事项"),
                paragraphs=[f"{src.get('en', '')} {cite.get('article', '')} — {src.get('zh', '')} · {status_note}"],
                table=contents),
        Section(both("Concerns", "涉及对象"), paragraphs=[", ".join(f"{c['type']}: {c['ref']}" for c in req.concerns)
                                                      or "—"]),
        Section(both("Personal information flagged", "发现的个人信息"), paragraphs=[
            ", ".join(f"{f['detector']} ×{f['count']}" for f in (req.pi_findings or [])) or both("none", "无")]),
        Section(both("Assigned", "承办人"), paragraphs=[", ".join(u.email for u in users) or "—"]),
        Section(both("History", "处理记录"), table=history),
    ]
    doc = PdfDocument(title=both("Cybercrime-assistance request", "网络犯罪协助请求") + f" {req.ref}",
                      subtitle=both("Need-to-know record", "知悉范围受限记录"), sections=sections,
                      footer="commonwatch", generated_at=now)
    return render_pdf(doc)


# --- counts for reporting --------------------------------------------------------------------------------

def counts(db: Session, principal: Principal, *, year: int | None = None, period: str = "month") -> dict[str, Any]:
    """Cross-border exchanges (incident shares with partners) and assistance requests, by country, kind,
    outcome and time to answer, per month or year. Requests are counted only if the principal may read them
    (admins: all); the figures carry no request contents."""
    from commonwatch.incidents.models import IncidentShare

    if period not in ("month", "year"):
        raise Invalid("period", _("must be month or year"))

    def bucket(d: date | datetime) -> str:
        return f"{d.year:04d}-{d.month:02d}" if period == "month" else f"{d.year:04d}"

    shares = db.execute(scope(select(IncidentShare.shared_at, Organisation.country).join(
        Organisation, Organisation.id == IncidentShare.partner_org_id), principal, IncidentShare)).all()
    exchanges: dict[str, Counter[str]] = defaultdict(Counter)
    for at, country in shares:
        if year is None or at.year == year:
            exchanges[bucket(at)][country] += 1
    reqs = [] if not principal.has("cooperation.requests") else list(db.scalars(
        scope(select(AssistanceRequest), principal, AssistanceRequest)))
    by_period: dict[str, dict[str, Any]] = {}
    for r in reqs:
        if year is not None and r.received_on.year != year:
            continue
        b = by_period.setdefault(bucket(r.received_on), {"total": 0, "by_direction": Counter(),
                                                         "by_country": Counter(), "by_kind": Counter(),
                                                         "by_outcome": Counter(), "days_to_answer": []})
        b["total"] += 1
        b["by_direction"][r.direction] += 1
        b["by_country"][r.country] += 1
        b["by_kind"][r.kind] += 1
        b["by_outcome"][r.status if r.status in FINAL else "open"] += 1
        if r.answered_at is not None:
            b["days_to_answer"].append((r.answered_at.date() - r.received_on).days)
    requests_out = {}
    for key, b in sorted(by_period.items()):
        days = b.pop("days_to_answer")
        requests_out[key] = {**{k: dict(v) if isinstance(v, Counter) else v for k, v in b.items()},
                             "answered": len(days),
                             "mean_days_to_answer": round(sum(days) / len(days), 1) if days else None,
                             "max_days_to_answer": max(days) if days else None}
    return {"period": period, "year": year,
            "exchanges": {k: {"total": sum(v.values()), "by_country": dict(v)} for k, v in sorted(exchanges.items())},
            "requests": requests_out}


def label(mapping: dict[str, Any], key: str) -> str:
    entry = mapping.get(key)
    return pick(entry["en"], entry["zh"]) if isinstance(entry, dict) else key
