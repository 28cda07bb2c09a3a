"""Who is acting, and what their role lets them do.

A role grants permissions; tenancy (which rows) is decided separately by ``db.scope``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    COORDINATOR = "coordinator"
    ANALYST = "analyst"
    CONSTITUENT = "constituent"
    PARTNER = "partner"
    AUDITOR = "auditor"


#: Centre staff: they read every tenant's data (what they may change is in PERMISSIONS).
STAFF_ROLES = frozenset({Role.ADMIN, Role.COORDINATOR, Role.ANALYST, Role.AUDITOR})

_ALL = frozenset(Role)
_CENTRE_WRITE = frozenset({Role.ADMIN, Role.COORDINATOR})
_TRIAGE = frozenset({Role.ADMIN, Role.COORDINATOR, Role.ANALYST})

#: permission -> roles that hold it. Permissions ending in ``.own`` apply only to the principal's
#: own organisations (checked with ``authorize(..., org_id=...)``).
PERMISSIONS: dict[str, frozenset[Role]] = {
    "registry.read": _ALL,
    "registry.write": _CENTRE_WRITE,
    "contacts.write": _CENTRE_WRITE,
    "contacts.write.own": frozenset({Role.CONSTITUENT}),
    "users.read": frozenset({Role.ADMIN, Role.COORDINATOR, Role.AUDITOR}),
    "users.write": frozenset({Role.ADMIN}),
    "tokens.self": _ALL,
    "audit.read": frozenset({Role.ADMIN, Role.COORDINATOR, Role.AUDITOR}),
    "events.read": _ALL,
    "events.ingest": _TRIAGE,
    "events.triage": _TRIAGE,
    "feeds.manage": _CENTRE_WRITE,
    "enrichment.manage": _CENTRE_WRITE,
    "notify.read": frozenset({Role.ADMIN, Role.COORDINATOR, Role.ANALYST, Role.AUDITOR}),
    "notify.manage": _CENTRE_WRITE,
    "warnings.respond.own": frozenset({Role.CONSTITUENT, Role.PARTNER}),
    "incidents.read": _ALL,
    "incidents.report.own": frozenset({Role.CONSTITUENT}),
    "incidents.manage": _TRIAGE,
    "incidents.grade_override": _CENTRE_WRITE,
    "incidents.share": _CENTRE_WRITE,
    "tasks.respond.own": frozenset({Role.CONSTITUENT, Role.PARTNER}),
    "intel.read": _ALL,
    "intel.write": _TRIAGE,
    "intel.exchange": _CENTRE_WRITE,
    "vulns.read": _ALL,
    "vulns.write": _TRIAGE,
    "assets.write.own": frozenset({Role.CONSTITUENT}),
    "datasec.read": _ALL,
    "datasec.write": _CENTRE_WRITE,
    "datasec.write.own": frozenset({Role.CONSTITUENT}),
    "cooperation.read": frozenset({Role.ADMIN, Role.COORDINATOR, Role.ANALYST, Role.AUDITOR, Role.PARTNER}),
    "cooperation.write": _CENTRE_WRITE,
    # Assistance requests are need-to-know: coordinators see those assigned to them, admins all.
    "cooperation.requests": _CENTRE_WRITE,
    "cooperation.requests.all": frozenset({Role.ADMIN}),
    "reports.read": frozenset({Role.ADMIN, Role.COORDINATOR, Role.ANALYST, Role.AUDITOR}),
}


@dataclass(frozen=True)
class Principal:
    """The acting user, resolved once per request from a session cookie or a bearer token."""

    user_id: int
    email: str
    role: Role
    #: Organisations the principal belongs to, with their descendants (a parent sees its units).
    org_ids: frozenset[int] = field(default_factory=frozenset)
    name: str = ""
    language: str = "en"
    timezone: str | None = None
    via: str = "session"  # session | token | system
    token_id: int | None = None

    @property
    def sees_all_tenants(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def actor(self) -> str:
        """How this principal is named in the audit log."""
        suffix = f" token:{self.token_id}" if self.token_id else ""
        return f"user:{self.user_id} {self.email}{suffix}"

    def has(self, permission: str) -> bool:
        return self.role in PERMISSIONS.get(permission, frozenset())

    def can(self, permission: str, org_id: int | None = None) -> bool:
        """True if the role holds ``permission``, or its ``.own`` form for ``org_id``."""
        if self.has(permission):
            return True
        own = f"{permission}.own"
        return org_id is not None and self.has(own) and org_id in self.org_ids


SYSTEM = Principal(user_id=0, email="system", role=Role.ADMIN, via="system")


def role_label(role: str) -> str:
    """The role's name in the current language (from the enumeration registry)."""
    from commonwatch.labels import label

    return label(role, "role")
