"""The constituency registry: organisations and their resources, with the rules that keep the
registry correct (valid identifiers, known sectors, no parent cycles, contacts' keys usable)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from commonwatch.access.principal import Principal
from commonwatch.constituency.models import (
    CONTACT_ROLES,
    NOTICE_KINDS,
    Contact,
    Domain,
    Network,
    Organisation,
    OrgAsn,
    OrgKind,
)
from commonwatch.db import get_scoped, scope
from commonwatch.errors import FieldError, Invalid, NotFound
from commonwatch.i18n import _
from commonwatch.labels import label
from commonwatch.net import ip_key, network_bounds
from commonwatch.rules import load_rules
from commonwatch.textio import control_char, control_char_reason
from commonwatch.validation import (
    normalise_domain,
    normalise_email,
    parse_asn,
    parse_country,
    parse_language,
    parse_registry_network,
)

ORG_FIELDS = ("name", "name_local", "kind", "sector", "country", "region", "parent_id", "notes")


@lru_cache(maxsize=1)
def sector_table() -> tuple[dict[str, Any], ...]:
    return tuple(load_rules("cii_sectors.yaml")["sectors"])


def sector_codes() -> list[str]:
    return [s["code"] for s in sector_table()]


def sector_label(code: str) -> str:
    return label(code, "sector")


def kind_label(kind: str) -> str:
    return label(kind, "org_kind")


def notice_label(kind: str) -> str:
    return label(kind, "notice_kind")


def contact_role_label(role: str) -> str:
    return label(role, "contact_role")


# --- organisations ------------------------------------------------------------------------------

def validate_org_fields(session: Session, data: dict[str, Any], org: Organisation | None = None) -> dict[str, Any]:
    """Check and normalise organisation fields; raises :class:`Invalid` listing every bad field."""
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    if "name" in data or org is None:
        name = str(data.get("name") or "").strip()
        if not name:
            errors.append(FieldError("name", _("is required")))
        elif len(name) > 300:
            errors.append(FieldError("name", _("is longer than {n} characters").format(n=300)))
        out["name"] = name
    for key, limit in (("name_local", 300), ("region", 100), ("notes", 10000)):
        if key in data:
            value = str(data.get(key) or "").strip()
            if len(value) > limit:
                errors.append(FieldError(key, _("is longer than {n} characters").format(n=limit)))
            out[key] = value
    if "kind" in data or org is None:
        kind = str(data.get("kind") or "").strip()
        if kind not in {k.value for k in OrgKind}:
            errors.append(FieldError("kind", _("must be one of {values}").format(
                values=", ".join(k.value for k in OrgKind))))
        out["kind"] = kind
    if "sector" in data:
        sector = str(data.get("sector") or "none").strip() or "none"
        if sector not in sector_codes():
            errors.append(FieldError("sector", _("“{value}” is not in the CII sector list").format(value=sector)))
        out["sector"] = sector
    if "country" in data:
        try:
            out["country"] = parse_country(str(data.get("country") or ""))
        except Invalid as exc:
            errors.extend(exc.errors)
    if "parent_id" in data:
        parent_id = data.get("parent_id")
        if parent_id in ("", None):
            out["parent_id"] = None
        else:
            try:
                parent_id = int(parent_id)
            except (TypeError, ValueError):
                errors.append(FieldError("parent_id", _("must be an organisation id")))
            else:
                if session.get(Organisation, parent_id) is None:
                    errors.append(FieldError("parent_id", _("no organisation with id {id}").format(id=parent_id)))
                elif org is not None and _would_cycle(session, org.id, parent_id):
                    errors.append(FieldError("parent_id", _("would make the organisation its own ancestor")))
                out["parent_id"] = parent_id
    # a form post or an API body: a control character is refused naming the field (textio)
    errors += [FieldError(k, control_char_reason(code)) for k, v in out.items()
               if isinstance(v, str) and (code := control_char(v))]
    if errors:
        raise Invalid(errors)
    kind = out.get("kind", org.kind if org else None)
    if kind == OrgKind.CII_OPERATOR and out.get("sector", org.sector if org else "none") == "none":
        raise Invalid("sector", _("a CII operator needs its CII sector"))
    return out


def _would_cycle(session: Session, org_id: int, parent_id: int) -> bool:
    current: int | None = parent_id
    seen: set[int] = set()
    while current is not None and current not in seen:
        if current == org_id:
            return True
        seen.add(current)
        current = session.scalar(select(Organisation.parent_id).where(Organisation.id == current))
    return False


def create_org(session: Session, data: dict[str, Any]) -> Organisation:
    fields = validate_org_fields(session, data)
    org = Organisation(**{"sector": "none", "country": "CN", **fields})
    session.add(org)
    session.flush()
    return org


def update_org(session: Session, org: Organisation, data: dict[str, Any]) -> Organisation:
    fields = validate_org_fields(session, {k: v for k, v in data.items() if k in ORG_FIELDS}, org)
    for key, value in fields.items():
        setattr(org, key, value)
    session.flush()
    return org


def get_org(session: Session, principal: Principal, org_id: int) -> Organisation:
    org = get_scoped(session, principal, Organisation, org_id)
    if org is None:
        raise NotFound("organisation")
    return org


@dataclass
class OrgFilter:
    q: str = ""
    kind: str = ""
    sector: str = ""
    country: str = ""
    cii: bool | None = None


def search_orgs(session: Session, principal: Principal, f: OrgFilter, *, page: int = 1,
                per_page: int = 50) -> tuple[list[Organisation], int]:
    """Organisations the principal may see, filtered; matches name, local name, networks, ASN or domain."""
    stmt = orgs_query(principal, f)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Organisation.name).offset((max(page, 1) - 1) * per_page).limit(per_page))
    return list(rows), total


#: The columns the organisation list may be sorted by (each never NULL).
ORG_SORTS = {"name": Organisation.name, "kind": Organisation.kind,
             "sector": func.coalesce(Organisation.sector, ""), "country": func.coalesce(Organisation.country, ""),
             "region": func.coalesce(Organisation.region, "")}


def orgs_query(principal: Principal, f: OrgFilter) -> Any:
    """The organisations the principal may see that ``f`` selects, as a scoped select."""
    stmt = scope(select(Organisation), principal, Organisation)
    if f.q:
        q = f.q.strip()
        conds = [Organisation.name.ilike(f"%{q}%"), Organisation.name_local.ilike(f"%{q}%")]
        try:
            key = ip_key(q)
        except ValueError:
            key = None
        if key is not None:
            conds.append(Organisation.id.in_(select(Network.org_id).where(Network.first <= key, Network.last >= key)))
        try:
            asn = parse_asn(q)
        except Invalid:
            asn = None
        if asn is not None:
            conds.append(Organisation.id.in_(select(OrgAsn.org_id).where(OrgAsn.asn == asn)))
        if "." in q:
            conds.append(Organisation.id.in_(select(Domain.org_id).where(Domain.name == q.lower().rstrip("."))))
        stmt = stmt.where(or_(*conds))
    if f.kind:
        stmt = stmt.where(Organisation.kind == f.kind)
    if f.sector:
        stmt = stmt.where(Organisation.sector == f.sector)
    if f.country:
        stmt = stmt.where(Organisation.country == f.country.upper())
    if f.cii is not None:
        stmt = stmt.where((Organisation.kind == OrgKind.CII_OPERATOR) == f.cii)
    return stmt


# --- resources -----------------------------------------------------------------------------------

def add_network(session: Session, org: Organisation, cidr: str, description: str = "") -> Network:
    net = parse_registry_network(cidr)
    text = str(net)
    if session.scalar(select(Network.id).where(Network.org_id == org.id, Network.cidr == text)):
        raise Invalid("cidr", _("{cidr} is already registered for this organisation").format(cidr=text))
    first, last = network_bounds(net)
    row = Network(org_id=org.id, cidr=text, family=net.version, prefixlen=net.prefixlen, first=first, last=last,
                  description=description.strip()[:300])
    session.add(row)
    session.flush()
    return row


def add_asn(session: Session, org: Organisation, asn: str | int, description: str = "") -> OrgAsn:
    number = parse_asn(asn)
    if session.scalar(select(OrgAsn.id).where(OrgAsn.org_id == org.id, OrgAsn.asn == number)):
        raise Invalid("asn", _("AS{asn} is already registered for this organisation").format(asn=number))
    row = OrgAsn(org_id=org.id, asn=number, description=description.strip()[:300])
    session.add(row)
    session.flush()
    return row


def add_domain(session: Session, org: Organisation, name: str) -> Domain:
    domain = normalise_domain(name)
    if session.scalar(select(Domain.id).where(Domain.org_id == org.id, Domain.name == domain)):
        raise Invalid("domain", _("{domain} is already registered for this organisation").format(domain=domain))
    row = Domain(org_id=org.id, name=domain)
    session.add(row)
    session.flush()
    return row


def validate_contact_fields(data: dict[str, Any], now) -> dict[str, Any]:
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    if "email" in data:
        try:
            out["email"] = normalise_email(str(data.get("email") or ""))
        except Invalid as exc:
            errors.extend(exc.errors)
    if "name" in data:
        out["name"] = str(data.get("name") or "").strip()[:200]
    if "phone" in data:
        out["phone"] = str(data.get("phone") or "").strip()[:64]
    if "role" in data:
        role = str(data.get("role") or "abuse").strip()
        if role not in CONTACT_ROLES:
            errors.append(FieldError("role", _("must be one of {values}").format(values=", ".join(CONTACT_ROLES))))
        out["role"] = role
    if "language" in data:
        try:
            out["language"] = parse_language(str(data.get("language") or ""))
        except Invalid as exc:
            errors.extend(exc.errors)
    if "notices" in data:
        notices = data.get("notices")
        if isinstance(notices, str):
            notices = [n for n in notices.replace(",", " ").split() if n]
        notices = list(notices or [])
        unknown = [n for n in notices if n not in NOTICE_KINDS]
        if unknown:
            errors.append(FieldError("notices", _("unknown notice kind(s) {values}; known: {known}").format(
                values=", ".join(unknown), known=", ".join(NOTICE_KINDS))))
        out["notices"] = [n for n in NOTICE_KINDS if n in notices]
    if "active" in data:
        out["active"] = bool(data.get("active"))
    if "pgp_key" in data:
        key_text = str(data.get("pgp_key") or "").strip()
        if not key_text:
            out.update(pgp_key="", pgp_fingerprint="", pgp_expires_at=None)
        else:
            from commonwatch.notify.pgp import inspect_public_key

            try:
                info = inspect_public_key(key_text, now=now)
            except Invalid as exc:
                errors.extend(exc.errors)
            else:
                if info.revoked:
                    errors.append(FieldError("pgp_key", _("the key {fp} is revoked").format(fp=info.fingerprint)))
                elif info.expires_at is not None and info.expires_at <= now:
                    errors.append(FieldError("pgp_key", _("the key {fp} expired on {date}").format(
                        fp=info.fingerprint, date=info.expires_at.date().isoformat())))
                elif not info.can_encrypt:
                    errors.append(FieldError("pgp_key", _("the key {fp} cannot encrypt").format(fp=info.fingerprint)))
                out.update(pgp_key=key_text, pgp_fingerprint=info.fingerprint, pgp_expires_at=info.expires_at)
    errors += [FieldError(k, control_char_reason(code)) for k, v in out.items()
               if k != "pgp_key" and isinstance(v, str) and (code := control_char(v))]
    if errors:
        raise Invalid(errors)
    return out


def add_contact(session: Session, org: Organisation, data: dict[str, Any], now) -> Contact:
    fields = validate_contact_fields({"role": "abuse", "language": "zh-CN", **data,
                                      "email": data.get("email", "")}, now)
    if session.scalar(select(Contact.id).where(Contact.org_id == org.id, Contact.email == fields["email"])):
        raise Invalid("email", _("{email} is already a contact of this organisation").format(email=fields["email"]))
    contact = Contact(org_id=org.id, **fields)
    session.add(contact)
    session.flush()
    return contact


def update_contact(session: Session, contact: Contact, data: dict[str, Any], now) -> Contact:
    fields = validate_contact_fields(data, now)
    if "email" in fields and fields["email"] != contact.email and session.scalar(
        select(Contact.id).where(Contact.org_id == contact.org_id, Contact.email == fields["email"])
    ):
        raise Invalid("email", _("{email} is already a contact of this organisation").format(email=fields["email"]))
    for key, value in fields.items():
        setattr(contact, key, value)
    session.flush()
    return contact


def get_child(session: Session, principal: Principal, model: type, ident: int):
    row = get_scoped(session, principal, model, ident)
    if row is None:
        raise NotFound(model.__tablename__)
    return row


def load_org_full(session: Session, principal: Principal, org_id: int) -> Organisation:
    org = session.scalars(
        scope(select(Organisation), principal, Organisation)
        .where(Organisation.id == org_id)
        .options(selectinload(Organisation.networks), selectinload(Organisation.asns),
                 selectinload(Organisation.domains), selectinload(Organisation.contacts))
    ).first()
    if org is None:
        raise NotFound("organisation")
    return org


# --- lookups and overlaps --------------------------------------------------------------------------

@dataclass
class Match:
    org: Organisation
    by: str  # "network 10.0.0.0/8", "AS64500", "domain example.org"


def lookup(session: Session, principal: Principal, *, ip: str | None = None, asn: str | None = None,
           domain: str | None = None) -> list[Match]:
    """Who owns a resource: the most specific network, then the AS, then the longest domain suffix."""
    matches: list[Match] = []
    if ip:
        try:
            key = ip_key(ip.strip())
        except ValueError:
            raise Invalid("ip", _("“{value}” is not an IP address").format(value=ip)) from None
        rows = session.execute(
            scope(select(Network, Organisation).join(Organisation, Network.org_id == Organisation.id),
                  principal, Organisation)
            .where(Network.first <= key, Network.last >= key)
            .order_by(Network.prefixlen.desc())
        ).all()
        if rows:
            best = rows[0][0].prefixlen
            matches += [Match(org, f"network {net.cidr}") for net, org in rows if net.prefixlen == best]
    if asn:
        number = parse_asn(asn)
        rows = session.execute(scope(select(OrgAsn, Organisation).join(Organisation), principal, Organisation)
                               .where(OrgAsn.asn == number)).all()
        matches += [Match(org, f"AS{number}") for _row, org in rows]
    if domain:
        name = normalise_domain(domain)
        labels = name.split(".")
        suffixes = [".".join(labels[i:]) for i in range(len(labels) - 1)]
        rows = session.execute(scope(select(Domain, Organisation).join(Organisation), principal, Organisation)
                               .where(Domain.name.in_(suffixes))).all()
        if rows:
            longest = max(len(d.name) for d, _o in rows)
            matches += [Match(org, f"domain {d.name}") for d, org in rows if len(d.name) == longest]
    return matches


@dataclass
class Overlap:
    outer: Network
    inner: Network

    @property
    def same_prefix(self) -> bool:
        return self.outer.cidr == self.inner.cidr


def find_overlaps(session: Session, principal: Principal, limit: int = 1000) -> list[Overlap]:
    """Networks of different organisations that overlap (nested or equal), most specific inner.

    CIDR blocks are either nested or disjoint, so one pass over the networks sorted by start
    (widest first) with a stack of open blocks finds every containing pair.
    """
    rows = session.scalars(
        scope(select(Network), principal, Network).order_by(Network.first, Network.prefixlen)
    ).all()
    stack: list[Network] = []
    found: list[Overlap] = []
    for net in rows:
        while stack and stack[-1].last < net.first:
            stack.pop()
        for outer in stack:
            if outer.org_id != net.org_id and outer.last >= net.last:
                found.append(Overlap(outer, net))
                if len(found) >= limit:
                    return found
        stack.append(net)
    return found
