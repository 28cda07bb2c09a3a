"""Single sign-on, the part OpenID Connect and LDAP share: the rules file that maps groups to a
role and organisations (rules/sso_mapping.yaml, or the ``sso_mapping_file`` setting), and the
account an outside identity signs in to (found by its subject, else by a verified email, else
created), updated from the mapping at every sign-in. Local accounts with a password keep
working beside it: they are the break-glass way in when the identity provider is down."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.access import audit
from commonwatch.access import services as access
from commonwatch.access.models import User, WebSession
from commonwatch.access.principal import Role
from commonwatch.access.sso_models import ExternalIdentity
from commonwatch.config import Settings
from commonwatch.errors import FieldError, Invalid
from commonwatch.i18n import _


class Refused(Exception):
    """The identity is genuine but may not sign in (no group maps to a role, an unknown organisation)."""


@dataclass(frozen=True)
class Mapping:
    groups_claim: str
    roles: tuple[tuple[str, Role], ...]
    organisations: tuple[tuple[str, str], ...]
    source: str

    def role_for(self, groups: set[str]) -> Role | None:
        for group, role in self.roles:
            if group in groups:
                return role
        return None

    def organisations_for(self, groups: set[str]) -> list[str]:
        return sorted({org for group, org in self.organisations if group in groups})


def load_mapping(path: Path | None = None, data_dir: Path | None = None) -> Mapping:
    """The mapping file, checked: every row has a group and a known role (or an organisation name).
    Without ``path``: the operator's copy in ``<data dir>/rules/`` if there is one, else the shipped file."""
    from commonwatch.rules import rules_path

    path = Path(path) if path else rules_path("sso_mapping.yaml", data_dir)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise Invalid("sso_mapping_file", f"{source}: cannot be read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise Invalid("sso_mapping_file", f"{source}: not YAML ({exc})") from None
    errors: list[FieldError] = []
    known = {r.value for r in Role}
    roles: list[tuple[str, Role]] = []
    for n, row in enumerate(data.get("roles") or [], 1):
        if not isinstance(row, dict) or not row.get("group") or row.get("role") not in known:
            errors.append(FieldError("sso_mapping_file", f"{source}: roles row {n} needs a group and a role, one "
                                                         f"of {', '.join(sorted(known))}"))
            continue
        roles.append((str(row["group"]), Role(row["role"])))
    orgs: list[tuple[str, str]] = []
    for n, row in enumerate(data.get("organisations") or [], 1):
        if not isinstance(row, dict) or not row.get("group") or not row.get("organisation"):
            errors.append(FieldError("sso_mapping_file", f"{source}: organisations row {n} needs a group and an "
                                                         f"organisation"))
            continue
        orgs.append((str(row["group"]), str(row["organisation"])))
    if errors:
        raise Invalid(errors)
    return Mapping(str(data.get("groups_claim") or "groups"), tuple(roles), tuple(orgs), source)


def groups_of(value) -> set[str]:
    """Group names from a claim: a list, or one string separated by spaces or commas."""
    if value is None:
        return set()
    if isinstance(value, str):
        return {g for g in value.replace(",", " ").split() if g}
    if isinstance(value, list | tuple):
        return {str(g) for g in value if g is not None and str(g)}
    return set()


def provision(session: Session, mapping: Mapping, *, provider: str, subject: str, email: str, name: str,
              groups: set[str], email_verified: bool, now: datetime) -> User:
    """The user an outside identity signs in as, its role and organisations set from ``groups``."""
    from commonwatch.constituency.models import Organisation

    role = mapping.role_for(groups)
    if role is None:
        raise Refused(_("none of your groups gives a role in commonwatch"))
    org_ids = []
    for org_name in mapping.organisations_for(groups):
        org_id = session.scalar(select(Organisation.id).where(Organisation.name == org_name))
        if org_id is None:
            raise Refused(_("the sign-on mapping names an organisation that is not registered: “{name}”").format(
                name=org_name))
        org_ids.append(org_id)
    link = session.scalar(select(ExternalIdentity).where(ExternalIdentity.provider == provider,
                                                          ExternalIdentity.subject == subject))
    if link is not None:
        user = session.get(User, link.user_id)
    else:
        user = access.user_by_email(session, email) if email else None
        if user is not None and not email_verified:
            raise Refused(_("an account with this email exists, and the identity provider has not verified the "
                            "email"))
        if user is None:
            if not email:
                raise Refused(_("the identity provider gave no email address"))
            user = access.create_user(session, email, str(role), None, name=name, org_ids=org_ids)
        link = ExternalIdentity(user_id=user.id, provider=provider, subject=subject, created_at=now)
        session.add(link)
    if not user.active:
        raise Refused(_("this account is deactivated"))
    link.last_login_at = now
    if user.role != role or sorted(user.org_ids) != sorted(org_ids):
        access.update_user(session, user, role=str(role), org_ids=org_ids)
    if name and not user.name:
        user.name = name
    session.flush()
    return user


def open_session(session: Session, settings: Settings, user: User, ip: str, now: datetime, method: str) -> str:
    """A browser session for a user the identity provider vouched for; returns the cookie value."""
    user.last_login_at = now
    cookie = secrets.token_urlsafe(32)
    session.add(WebSession(
        session_hash=access.sha256_hex(cookie), csrf_token=secrets.token_urlsafe(32), user_id=user.id,
        created_at=now, last_seen_at=now, expires_at=now + timedelta(hours=settings.session_hours), ip=ip,
    ))
    audit.record(session, "signin", "users", user.id, after={"ip": ip, "method": method},
                 actor=f"user:{user.id} {user.email}")
    session.flush()
    return cookie
