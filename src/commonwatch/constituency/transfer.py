"""Import and export of the registry as CSV or JSON.

Import is all-or-nothing: a file with any bad row changes nothing and reports every bad row by
line and reason. With ``partial`` the good rows are kept and the bad ones still reported.
Organisations are matched by name: an existing one is updated, its resources added to.

CSV columns: name, name_local, kind, sector, country, region, parent, networks, asns, domains,
contacts, notes. List cells are separated by spaces or semicolons; a contact is
``email|role|language|notice,notice`` and contacts are separated by semicolons.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from commonwatch.access import audit
from commonwatch.access.principal import Principal
from commonwatch.constituency import services as registry
from commonwatch.constituency.models import Contact, Network, Organisation, OrgAsn
from commonwatch.db import scope
from commonwatch.errors import FieldError, Invalid
from commonwatch.exports import csv_text
from commonwatch.i18n import _
from commonwatch.textio import control_char, control_char_reason, decode_bytes
from commonwatch.validation import normalise_domain, normalise_email, parse_asn, parse_cidr, parse_registry_network

CSV_COLUMNS = ("name", "name_local", "kind", "sector", "country", "region", "parent", "networks", "asns",
               "domains", "contacts", "notes")


@dataclass
class RowError:
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return _("line {line}: {field}: {reason}").format(line=self.line, field=self.field, reason=self.reason)


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)
    applied: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class Record:
    line: int
    data: dict[str, Any]


# --- reading ------------------------------------------------------------------------------------

def _split(cell: Any) -> list[str]:
    if cell is None:
        return []
    if isinstance(cell, list):
        return [str(c) for c in cell]
    return [p for p in str(cell).replace(";", " ").replace(",", " ").split() if p]


def _parse_contacts_cell(cell: str) -> list[dict[str, Any]]:
    contacts = []
    for item in (c.strip() for c in str(cell or "").split(";")):
        if not item:
            continue
        parts = [p.strip() for p in item.split("|")]
        contact: dict[str, Any] = {"email": parts[0]}
        if len(parts) > 1 and parts[1]:
            contact["role"] = parts[1]
        if len(parts) > 2 and parts[2]:
            contact["language"] = parts[2]
        if len(parts) > 3 and parts[3]:
            contact["notices"] = parts[3]
        contacts.append(contact)
    return contacts


def read_csv(text: str) -> tuple[list[Record], list[RowError]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    if "name" not in header:
        return [], [RowError(1, "header", _("the CSV must have a header row with at least a “name” column"))]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        return [], [RowError(1, "header", _("unknown column(s) {cols}; known: {known}").format(
            cols=", ".join(unknown), known=", ".join(CSV_COLUMNS)))]
    reader.fieldnames = header
    records, errors = [], []
    for row in reader:
        line = reader.line_num
        if None in row:
            errors.append(RowError(line, "row", _("has more cells than the header")))
            continue
        if all(not (v or "").strip() for v in row.values()):
            continue
        data: dict[str, Any] = {k: (v or "").strip() for k, v in row.items() if k in CSV_COLUMNS}
        data["networks"] = _split(data.get("networks"))
        data["asns"] = _split(data.get("asns"))
        data["domains"] = _split(data.get("domains"))
        data["contacts"] = _parse_contacts_cell(data.get("contacts", ""))
        records.append(Record(line, data))
    return records, errors


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def read_json(text: str) -> tuple[list[Record], list[RowError]]:
    """A list of organisations, or ``{"organisations": [...]}``; each record keeps its line number."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [RowError(exc.lineno, "json", _("is not valid JSON: {reason}").format(reason=exc.msg))]
    items = doc.get("organisations") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        return [], [RowError(1, "json", _("must be a list of organisations or an object with an “organisations” list"))]
    # Find where each element starts, to report line numbers as the CSV reader does.
    start = text.find("[", text.find('"organisations"') if isinstance(doc, dict) else 0)
    decoder = json.JSONDecoder()
    offsets, pos = [], start + 1
    for _item in items:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        offsets.append(pos)
        _obj, pos = decoder.raw_decode(text, pos)
    records, errors = [], []
    for item, offset in zip(items, offsets, strict=True):
        line = _line_of(text, offset)
        if not isinstance(item, dict):
            errors.append(RowError(line, "organisation", _("must be an object")))
            continue
        records.append(Record(line, item))
    return records, errors


def _control_errors(record: Record) -> list[RowError]:
    """A control character in any text of a record, refused naming the line and field (textio)."""
    out, stack = [], [(str(k), v) for k, v in record.data.items()]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str) and (code := control_char(value)):
            out.append(RowError(record.line, path, control_char_reason(code)))
        elif isinstance(value, dict):
            stack += [(f"{path}.{k}", v) for k, v in value.items()]
        elif isinstance(value, list):
            stack += [(f"{path}.{i}", v) for i, v in enumerate(value)]
    return sorted(out, key=lambda e: e.field)


def read_file(raw: bytes, fmt: str | None = None, filename: str = "") -> tuple[list[Record], list[RowError]]:
    text = decode_bytes(raw)
    fmt = fmt or ("json" if filename.lower().endswith(".json") or text.lstrip()[:1] in ("[", "{") else "csv")
    records, errors = read_json(text) if fmt == "json" else read_csv(text)
    bad = [_control_errors(r) for r in records]
    errors += [e for found in bad for e in found]
    return [r for r, found in zip(records, bad, strict=True) if not found], errors


# --- applying ------------------------------------------------------------------------------------

def _resource_errors(data: dict[str, Any]) -> list[FieldError]:
    """Every bad network, AS number, domain and contact address of a record, found before any write."""
    errors: list[FieldError] = []
    checks = [(parse_registry_network, "networks", [i.get("cidr", "") if isinstance(i, dict) else i
                                        for i in data.get("networks") or []]),
              (parse_asn, "asns", data.get("asns") or []),
              (normalise_domain, "domains", data.get("domains") or []),
              (normalise_email, "email", [c.get("email", "") for c in data.get("contacts") or []
                                          if isinstance(c, dict)])]
    for check, name, values in checks:
        for value in values:
            try:
                check(str(value), name)
            except Invalid as exc:
                errors.extend(exc.errors)
    return errors


def _apply(session: Session, record: Record, now: datetime, by_name: dict[str, Organisation]) -> bool:
    data = record.data
    problems = _resource_errors(data)
    name = str(data.get("name") or "").strip()
    fields = {k: data[k] for k in ("name", "name_local", "kind", "sector", "country", "region", "notes")
              if k in data and (data[k] not in ("", None) or k == "name")}
    org = by_name.get(name) or session.scalar(select(Organisation).where(Organisation.name == name))
    created = org is None
    try:
        if created:
            org = registry.create_org(session, fields)
        else:
            registry.update_org(session, org, fields)
    except Invalid as exc:
        raise Invalid(exc.errors + problems) from None
    if problems:
        raise Invalid(problems)
    by_name[name] = org
    have_nets = {n.cidr for n in session.scalars(select(Network).where(Network.org_id == org.id))}
    for item in data.get("networks") or []:
        cidr, desc = (item.get("cidr", ""), item.get("description", "")) if isinstance(item, dict) else (item, "")
        if str(parse_cidr(cidr, "networks")) not in have_nets:
            registry.add_network(session, org, cidr, desc)
    have_asns = set(session.scalars(select(OrgAsn.asn).where(OrgAsn.org_id == org.id)))
    for asn in data.get("asns") or []:
        if parse_asn(asn, "asns") not in have_asns:
            registry.add_asn(session, org, asn)
    have_domains = {d.name for d in org.domains}
    for domain in data.get("domains") or []:
        if normalise_domain(domain, "domains") not in have_domains:
            registry.add_domain(session, org, domain)
    for contact in data.get("contacts") or []:
        if not isinstance(contact, dict):
            raise Invalid("contacts", _("each contact must be an object with at least an email"))
        email = normalise_email(str(contact.get("email", "")))
        existing = session.scalar(select(Contact).where(Contact.org_id == org.id, Contact.email == email))
        if existing:
            registry.update_contact(session, existing, contact, now)
        else:
            registry.add_contact(session, org, contact, now)
    return created


def _set_parents(session: Session, records: list[Record], by_name: dict[str, Organisation], errors: list[RowError]):
    for record in records:
        parent_name = str(record.data.get("parent") or "").strip()
        org = by_name.get(str(record.data.get("name") or "").strip())
        if not parent_name or org is None:
            continue
        parent = by_name.get(parent_name) or session.scalar(
            select(Organisation).where(Organisation.name == parent_name))
        if parent is None:
            errors.append(RowError(record.line, "parent", _("no organisation named “{name}”").format(name=parent_name)))
            continue
        try:
            with session.begin_nested():
                registry.update_org(session, org, {"parent_id": parent.id})
        except Invalid as exc:
            errors.extend(RowError(record.line, e.field, e.reason) for e in exc.errors)


def import_records(session: Session, records: list[Record], read_errors: list[RowError], *, now: datetime,
                   partial: bool = False, source: str = "") -> ImportReport:
    """Apply records; all-or-nothing unless ``partial``. The caller commits if ``report.applied``."""
    report = ImportReport(errors=list(read_errors))
    by_name: dict[str, Organisation] = {}
    good: list[Record] = []
    seen: dict[str, int] = {}
    for record in records:
        name = str(record.data.get("name") or "").strip()
        if name and name in seen:
            report.errors.append(RowError(record.line, "name", _("repeats line {line}").format(line=seen[name])))
            continue
        seen[name] = record.line
        try:
            with session.begin_nested():
                created = _apply(session, record, now, by_name)
        except Invalid as exc:
            report.errors.extend(RowError(record.line, e.field, e.reason) for e in exc.errors)
            continue
        report.created += created
        report.updated += not created
        good.append(record)
    _set_parents(session, good, by_name, report.errors)
    report.errors.sort(key=lambda e: e.line)
    if report.errors and not partial:
        session.rollback()
        report.created = report.updated = 0
        return report
    audit.record(session, "import", "organisations", "", after={
        "source": source, "created": report.created, "updated": report.updated, "rejected": len(report.errors)})
    report.applied = True
    return report


# --- export ---------------------------------------------------------------------------------------

def _orgs_for_export(session: Session, principal: Principal) -> list[Organisation]:
    return list(session.scalars(
        scope(select(Organisation), principal, Organisation).order_by(Organisation.name)
        .options(selectinload(Organisation.networks), selectinload(Organisation.asns),
                 selectinload(Organisation.domains), selectinload(Organisation.contacts),
                 selectinload(Organisation.parent))
    ))


def org_to_dict(org: Organisation) -> dict[str, Any]:
    return {
        "id": org.id, "name": org.name, "name_local": org.name_local, "kind": org.kind, "sector": org.sector,
        "country": org.country, "region": org.region, "parent": org.parent.name if org.parent else "",
        "notes": org.notes,
        "networks": [{"cidr": n.cidr, "description": n.description} for n in org.networks],
        "asns": [a.asn for a in org.asns],
        "domains": [d.name for d in org.domains],
        "contacts": [{"email": c.email, "name": c.name, "role": c.role, "language": c.language, "phone": c.phone,
                      "notices": list(c.notices or []), "pgp_key": c.pgp_key, "active": c.active}
                     for c in org.contacts],
    }


def export_json(session: Session, principal: Principal) -> str:
    return json.dumps({"organisations": [org_to_dict(o) for o in _orgs_for_export(session, principal)]},
                      ensure_ascii=False, indent=2)


def export_csv(session: Session, principal: Principal) -> str:
    rows = []
    for org in _orgs_for_export(session, principal):
        rows.append([
            org.name, org.name_local, org.kind, org.sector, org.country, org.region,
            org.parent.name if org.parent else "", " ".join(n.cidr for n in org.networks),
            " ".join(str(a.asn) for a in org.asns), " ".join(d.name for d in org.domains),
            "; ".join(f"{c.email}|{c.role}|{c.language}|{','.join(c.notices or [])}" for c in org.contacts),
            org.notes,
        ])
    return csv_text(CSV_COLUMNS, rows)
