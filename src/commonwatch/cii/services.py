"""CII services: operators' systems and their asset inventory.

``asset_frame`` is the one way other capabilities (the vulnerability matcher) read assets: one
query, returned as a Polars frame with stable column names and types."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import func, insert, or_, select
from sqlalchemy.orm import Session

from commonwatch import db
from commonwatch.access.principal import Principal
from commonwatch.cii.models import Asset, AssetImport, CiiSystem, QuarantinedRow, SupervisionReminder
from commonwatch.cii.supervision import SupervisionRules, due_items, load_supervision_rules
from commonwatch.clock import utcnow
from commonwatch.constituency.models import Organisation
from commonwatch.db import get_scoped, scope
from commonwatch.errors import FieldError, Forbidden, Invalid, NotFound
from commonwatch.i18n import N_, _
from commonwatch.textio import control_char_errors, strip_control_text

CHINA = ZoneInfo("Asia/Shanghai")

#: The columns of ``asset_frame``, in order, with their types. Kept stable: readers rely on them.
ASSET_FRAME_SCHEMA: dict[str, pl.DataType] = {
    "asset_id": pl.Int64(),
    "org_id": pl.Int64(),
    "system_id": pl.Int64(),
    "mlps_level": pl.Int8(),
    "cpe": pl.Utf8(),
    "purl": pl.Utf8(),
    "version": pl.Utf8(),
}


def asset_frame(session: Session, principal: Principal, org_ids: Iterable[int] | None = None) -> pl.DataFrame:
    """Every asset ``principal`` may read (optionally only those of ``org_ids``), one row each:
    asset_id, org_id, system_id (null when the asset belongs to no system), mlps_level (the
    system's, null without one), cpe, purl, version (each null when unknown)."""
    stmt = select(
        Asset.id, Asset.org_id, Asset.system_id, CiiSystem.mlps_level, Asset.cpe, Asset.purl, Asset.version
    ).outerjoin(CiiSystem, CiiSystem.id == Asset.system_id)
    stmt = db.scope(stmt, principal, Asset)
    if org_ids is not None:
        stmt = stmt.where(Asset.org_id.in_(list(org_ids)))
    # At the driver level: the ORM's per-value result processing costs several times the read.
    conn = session.connection()
    compiled = stmt.order_by(Asset.id).compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = tuple(compiled.params[k] for k in compiled.positiontup) if compiled.positional else compiled.params
    cursor = conn.connection.cursor()
    try:
        cursor.execute(str(compiled), params)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return pl.DataFrame(rows, schema=ASSET_FRAME_SCHEMA, orient="row")


# --- who may write ----------------------------------------------------------------------------------

WRITE_PERMISSION = "vulns.write"  # centre staff who triage
OWN_PERMISSION = "assets"  # constituents: ``assets.write.own`` for their own organisations


def may_write(principal: Principal, org_id: int) -> bool:
    return principal.has(WRITE_PERMISSION) or principal.can(f"{OWN_PERMISSION}.write", org_id)


def writable_org(db: Session, principal: Principal, org_id: Any) -> Organisation:
    """The organisation if the principal may change its CII records; 404 if it is not visible."""
    try:
        oid = int(org_id)
    except (TypeError, ValueError):
        raise Invalid("org_id", _("choose an organisation")) from None
    org = get_scoped(db, principal, Organisation, oid)
    if org is None:
        raise NotFound()
    if not may_write(principal, org.id):
        raise Forbidden()
    return org


def visible_orgs(db: Session, principal: Principal) -> list[Organisation]:
    stmt = scope(select(Organisation), principal, Organisation).where(Organisation.kind != "partner-cert")
    return list(db.scalars(stmt.order_by(Organisation.name)))


def writable_orgs(db: Session, principal: Principal) -> list[Organisation]:
    return [o for o in visible_orgs(db, principal) if may_write(principal, o.id)]


# --- systems ----------------------------------------------------------------------------------------

SYSTEM_TEXT = {"name": 300, "description": 4000, "filing_number": 100, "protection_department": 300}
SYSTEM_DATES = ("filing_date", "last_mlps_assessment", "last_inspection")
SYSTEM_CONTACT = ("protection_department_email", "protection_department_language")
SYSTEM_FIELDS = (*SYSTEM_TEXT, "mlps_level", *SYSTEM_DATES, *SYSTEM_CONTACT)


def _date_or_none(value: Any, name: str, errors: list[FieldError], today: date | None) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        d = value
    else:
        try:
            d = date.fromisoformat(str(value).strip())
        except ValueError:
            errors.append(FieldError(name, _("must be a date (YYYY-MM-DD)")))
            return None
    if today is not None and d > today:
        errors.append(FieldError(name, _("cannot be in the future")))
        return None
    return d


def parse_system(data: dict[str, Any], today: date | None = None, partial: bool = False) -> dict[str, Any]:
    """Check a system's fields; every problem at once, each naming its field."""
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    for key, limit in SYSTEM_TEXT.items():
        if key not in data:
            continue
        value = str(data[key] if data[key] is not None else "").strip()
        if len(value) > limit:
            errors.append(FieldError(key, _("is longer than {n} characters").format(n=limit)))
        out[key] = value
    errors += control_char_errors(out)  # a form or a body: refused naming the field (textio)
    if (not partial or "name" in data) and not out.get("name"):
        errors.append(FieldError("name", _("is required")))
    if not partial or "mlps_level" in data:
        try:
            level = int(str(data.get("mlps_level", "")).strip())
        except ValueError:
            level = 0
        if level not in (1, 2, 3, 4, 5):
            errors.append(FieldError("mlps_level", _("must be an MLPS level from 1 to 5")))
        out["mlps_level"] = level
    for key in SYSTEM_DATES:
        if key in data:
            out[key] = _date_or_none(data[key], key, errors, today)
    # Where the protection department takes early warnings (empty: it is not mailed).
    from commonwatch.validation import normalise_email, parse_language

    for key, parse in (("protection_department_email", normalise_email),
                       ("protection_department_language", parse_language)):
        if key not in data:
            continue
        value = str(data[key] or "").strip()
        if key == "protection_department_email" and not value:
            out[key] = ""
            continue
        if key == "protection_department_language" and not value:
            value = "zh-CN"
        try:
            out[key] = parse(value, key)
        except Invalid as exc:
            errors += exc.errors
    if errors:
        raise Invalid(errors)
    return out


def list_systems(db: Session, principal: Principal, org_id: int | None = None) -> list[CiiSystem]:
    stmt = scope(select(CiiSystem), principal, CiiSystem).order_by(CiiSystem.org_id, CiiSystem.name, CiiSystem.id)
    if org_id:
        stmt = stmt.where(CiiSystem.org_id == org_id)
    return list(db.scalars(stmt))


def get_system(db: Session, principal: Principal, system_id: int) -> CiiSystem:
    system = get_scoped(db, principal, CiiSystem, system_id)
    if system is None:
        raise NotFound()
    return system


def create_system(db: Session, principal: Principal, org_id: Any, data: dict[str, Any], today: date) -> CiiSystem:
    org = writable_org(db, principal, org_id)
    system = CiiSystem(org_id=org.id, **parse_system(data, today))
    db.add(system)
    db.flush()
    return system


def update_system(db: Session, principal: Principal, system: CiiSystem, data: dict[str, Any],
                  today: date) -> CiiSystem:
    writable_org(db, principal, system.org_id)
    for key, value in parse_system(data, today, partial=True).items():
        setattr(system, key, value)
    db.flush()
    return system


def delete_system(db: Session, principal: Principal, system: CiiSystem) -> None:
    writable_org(db, principal, system.org_id)
    db.delete(system)
    db.flush()


# --- due dates --------------------------------------------------------------------------------------

def local_today(now: datetime) -> date:
    """Today in China: supervision dates are calendar days in Beijing time."""
    return now.astimezone(CHINA).date()


def due_overview(db: Session, principal: Principal, today: date, rules: SupervisionRules | None = None,
                 data_dir: Path | None = None, only_action: bool = False) -> list[dict[str, Any]]:
    """Every visible system with its two due items; ``only_action`` keeps the items needing action."""
    rules = rules or load_supervision_rules(data_dir)
    out = []
    for system in list_systems(db, principal):
        for due in due_items(system, today, rules).values():
            if only_action and not due.needs_action:
                continue
            out.append({"system": system, "due": due})
    order = {"overdue": 0, "unknown": 1, "due_soon": 2, "ok": 3, "none": 4}
    out.sort(key=lambda r: (order[r["due"].state], r["due"].due_on or date.max, r["system"].id))
    return out


def run_reminders(db: Session, today: date, data_dir: Path | None = None) -> list[SupervisionReminder]:
    """Make each due reminder once (due soon, overdue, no date); returns the reminders made."""
    rules = load_supervision_rules(data_dir)
    made = []
    for system in db.scalars(select(CiiSystem).order_by(CiiSystem.id)):
        for due in due_items(system, today, rules).values():
            if not due.needs_action:
                continue
            same_day = (SupervisionReminder.due_on.is_(None) if due.due_on is None
                        else SupervisionReminder.due_on == due.due_on)
            exists = db.scalar(select(SupervisionReminder.id).where(
                SupervisionReminder.system_id == system.id, SupervisionReminder.kind == due.kind,
                SupervisionReminder.state == due.state, same_day))
            if exists:
                continue
            reminder = SupervisionReminder(org_id=system.org_id, system_id=system.id, kind=due.kind, state=due.state,
                                           due_on=due.due_on)
            db.add(reminder)
            made.append(reminder)
    db.flush()
    return made


def pending_reminders(db: Session) -> list[SupervisionReminder]:
    stmt = select(SupervisionReminder).where(SupervisionReminder.delivered_at.is_(None))
    return list(db.scalars(stmt.order_by(SupervisionReminder.id)))


def reminders(db: Session, principal: Principal, limit: int = 50) -> list[SupervisionReminder]:
    stmt = scope(select(SupervisionReminder), principal, SupervisionReminder)
    return list(db.scalars(stmt.order_by(SupervisionReminder.id.desc()).limit(limit)))


KIND_LABELS = {"mlps": N_("MLPS assessment"), "inspection": N_("Annual CII inspection / risk assessment")}
STATE_LABELS = {"ok": N_("on time"), "due_soon": N_("due soon"), "overdue": N_("overdue"),
                "unknown": N_("no date recorded"), "none": N_("no periodic duty")}


def kind_label(kind: str) -> str:
    return _(KIND_LABELS.get(kind, kind))


def state_label(state: str) -> str:
    return _(STATE_LABELS.get(state, state))


def reminder_text(system: CiiSystem, org: Organisation, reminder: SupervisionReminder) -> tuple[str, str]:
    """Subject and body of a reminder, in the current language."""
    what = kind_label(reminder.kind)
    if reminder.state == "overdue":
        subject = _("Overdue: {what} of {system}").format(what=what, system=system.name)
        body = _("The {what} of the system {system} ({org}, MLPS level {level}) was due on {due}.")
    elif reminder.state == "due_soon":
        subject = _("Due soon: {what} of {system}").format(what=what, system=system.name)
        body = _("The {what} of the system {system} ({org}, MLPS level {level}) is due on {due}.")
    else:
        subject = _("No date recorded: {what} of {system}").format(what=what, system=system.name)
        body = _("No date is recorded for the {what} of the system {system} ({org}, MLPS level {level}); "
                 "please record the last one.")
    text = body.format(what=what, system=system.name, org=org.name, level=system.mlps_level,
                       due=reminder.due_on.isoformat() if reminder.due_on else "-")
    if system.protection_department:
        text += "\n" + _("Protection department: {dept}").format(dept=system.protection_department)
    return subject[:200], text


# --- assets ------------------------------------------------------------------------------------------

ASSET_EXPORT_COLUMNS = ("id", "org_id", "system_id", "kind", "name", "vendor", "product", "version", "cpe", "purl",
                        "host", "network", "owner", "source")


@dataclass
class AssetFilter:
    org_id: int | None = None
    system_id: int | None = None
    kind: str = ""
    source: str = ""
    q: str = ""


def _asset_stmt(principal: Principal, f: AssetFilter):
    stmt = scope(select(Asset), principal, Asset)
    if f.org_id:
        stmt = stmt.where(Asset.org_id == f.org_id)
    if f.system_id:
        stmt = stmt.where(Asset.system_id == f.system_id)
    if f.kind:
        stmt = stmt.where(Asset.kind == f.kind)
    if f.source:
        stmt = stmt.where(Asset.source == f.source)
    if f.q:
        like = f"%{f.q.strip().lower()}%"
        stmt = stmt.where(or_(func.lower(Asset.name).like(like), func.lower(Asset.cpe).like(like),
                              func.lower(Asset.purl).like(like), func.lower(Asset.host).like(like),
                              func.lower(Asset.product).like(like)))
    return stmt


def list_assets(db: Session, principal: Principal, f: AssetFilter | None = None, *, page: int = 1,
                per_page: int = 100) -> tuple[list[Asset], int]:
    f = f or AssetFilter()
    stmt = _asset_stmt(principal, f)
    total = db.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    page, per_page = max(1, page), min(max(1, per_page), 1000)
    rows = db.scalars(stmt.order_by(Asset.org_id, Asset.name, Asset.id).offset((page - 1) * per_page).limit(per_page))
    return list(rows), total


def export_rows(db: Session, principal: Principal, f: AssetFilter | None = None):
    """Every matching asset as a row of ASSET_EXPORT_COLUMNS (streamed)."""
    stmt = _asset_stmt(principal, f or AssetFilter()).order_by(Asset.org_id, Asset.name, Asset.id)
    for a in db.scalars(stmt.execution_options(yield_per=1000)):
        yield [getattr(a, c) for c in ASSET_EXPORT_COLUMNS]


def get_asset(db: Session, principal: Principal, asset_id: int) -> Asset:
    asset = get_scoped(db, principal, Asset, asset_id)
    if asset is None:
        raise NotFound()
    return asset


def _system_for(db: Session, principal: Principal, org_id: int, system_id: Any) -> int | None:
    if system_id in (None, ""):
        return None
    try:
        sid = int(system_id)
    except (TypeError, ValueError):
        raise Invalid("system_id", _("choose a system")) from None
    system = get_scoped(db, principal, CiiSystem, sid)
    if system is None or system.org_id != org_id:
        raise Invalid("system_id", _("is not a system of this organisation"))
    return system.id


def _parse_asset(data: dict[str, Any], source: str) -> dict[str, Any]:
    from commonwatch.cii.importers import Parsed, clean_row

    out = Parsed(source)
    clean_row(data, "", "", source, out)
    if out.bad:
        raise Invalid([FieldError(b.field or "asset", b.reason) for b in out.bad])
    return out.rows[0]


def create_asset(db: Session, principal: Principal, org_id: Any, data: dict[str, Any], source: str = "api") -> Asset:
    org = writable_org(db, principal, org_id)
    system_id = _system_for(db, principal, org.id, data.get("system_id"))
    asset = Asset(org_id=org.id, system_id=system_id, **_parse_asset(data, source))
    db.add(asset)
    db.flush()
    return asset


def update_asset(db: Session, principal: Principal, asset: Asset, data: dict[str, Any]) -> Asset:
    writable_org(db, principal, asset.org_id)
    current = {k: getattr(asset, k) for k in ("kind", "name", "vendor", "product", "version", "cpe", "purl", "host",
                                             "network", "owner")}
    current.update({k: v for k, v in data.items() if k in current})
    fields = _parse_asset(current, asset.source)
    fields.pop("source")
    if "system_id" in data:
        asset.system_id = _system_for(db, principal, asset.org_id, data.get("system_id"))
    for key, value in fields.items():
        setattr(asset, key, value)
    db.flush()
    return asset


def delete_asset(db: Session, principal: Principal, asset: Asset) -> None:
    writable_org(db, principal, asset.org_id)
    db.delete(asset)
    db.flush()


_KEY = ("system_id", "kind", "name", "version", "cpe", "purl", "host")


def import_assets(db: Session, principal: Principal, org_id: Any, fmt: str, raw: bytes, *, system_id: Any = None,
                  filename: str = "", now: datetime | None = None) -> AssetImport:
    """Import an inventory file for one organisation (optionally one of its systems).

    The file as a whole is refused (``Invalid`` on ``file``, nothing written) when it cannot be
    read; otherwise its good rows are added in one transaction (rows already in the inventory are
    counted as unchanged, so re-importing a file is a no-op) and its bad rows are quarantined with
    where they are, the field and the reason."""
    from commonwatch.access.audit import record
    from commonwatch.cii.importers import ImportRefused, read, sniff

    org = writable_org(db, principal, org_id)
    sid = _system_for(db, principal, org.id, system_id)
    fmt = (fmt or "").strip().lower() or (sniff(raw) or "")
    try:
        parsed = read(fmt, raw)
    except ImportRefused as exc:
        raise Invalid("file", str(exc)) from None
    existing = {tuple(r) for r in db.execute(
        select(*(getattr(Asset, k) for k in _KEY)).where(Asset.org_id == org.id))}
    fresh, unchanged, seen = [], 0, set()
    stamp = now or utcnow()
    for row in parsed.rows:
        key = (sid, *(row[k] for k in _KEY[1:]))
        if key in existing or key in seen:
            unchanged += 1
            continue
        seen.add(key)
        fresh.append({**row, "org_id": org.id, "system_id": sid, "created_at": stamp, "updated_at": stamp})
    batch = AssetImport(org_id=org.id, system_id=sid, format=parsed.format, spec_version=parsed.spec_version,
                        filename=strip_control_text(filename or "")[0][:300], sha256=hashlib.sha256(raw).hexdigest(),
                        added=len(fresh),
                        unchanged=unchanged, quarantined=len(parsed.bad), created_by=principal.actor)
    db.add(batch)
    db.flush()
    if fresh:
        db.execute(insert(Asset), fresh)
    if parsed.bad:
        db.execute(insert(QuarantinedRow), [
            {"org_id": org.id, "import_id": batch.id, "location": b.where[:300], "field": b.field[:64],
             "reason": b.reason, "raw": b.raw} for b in parsed.bad])
    record(db, "import", "cii_assets", batch.id, after={
        "org_id": org.id, "system_id": sid, "format": parsed.format, "sha256": batch.sha256, "added": len(fresh),
        "unchanged": unchanged, "quarantined": len(parsed.bad)})
    db.flush()
    return batch


def list_imports(db: Session, principal: Principal, org_id: int | None = None, limit: int = 50) -> list[AssetImport]:
    stmt = scope(select(AssetImport), principal, AssetImport)
    if org_id:
        stmt = stmt.where(AssetImport.org_id == org_id)
    return list(db.scalars(stmt.order_by(AssetImport.id.desc()).limit(limit)))


def get_import(db: Session, principal: Principal, import_id: int) -> AssetImport:
    batch = get_scoped(db, principal, AssetImport, import_id)
    if batch is None:
        raise NotFound()
    return batch
