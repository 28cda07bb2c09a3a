"""Incidents: the case, its links, comments, attachments, coordination tasks, partner shares,
timeline and deadline alerts.

Tenancy: a constituent sees the incidents of its own organisations and the coordination tasks
addressed to them, nothing else; a partner CERT sees only what was shared with it; centre staff see
everything. Each table says so in ``visible_to``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    false,
    select,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from commonwatch.access.principal import Role
from commonwatch.clock import utcnow
from commonwatch.db import Base, TenantScoped

STATUSES = ("new", "triaged", "in_progress", "contained", "resolved", "closed", "reopened")
OPEN_STATUSES = ("new", "triaged", "in_progress", "contained", "reopened")
#: status -> statuses it may move to.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("triaged", "in_progress", "closed"),
    "triaged": ("in_progress", "contained", "resolved", "closed"),
    "in_progress": ("contained", "resolved"),
    "contained": ("in_progress", "resolved"),
    "resolved": ("closed", "reopened"),
    "closed": ("reopened",),
    "reopened": ("triaged", "in_progress", "contained", "resolved"),
}
TASK_STATUSES = ("open", "acknowledged", "in_progress", "done", "declined")
COMMENT_VISIBILITY = ("internal", "shared", "partner")


def _own_incident_ids(principal) -> Any:
    return select(Incident.id).where(Incident.org_id.in_(sorted(principal.org_ids)))


class Incident(TenantScoped, Base):
    __tablename__ = "incidents"
    # the statistics of a period (by level, category, status; clocks) read a range of discovered_at
    __table_args__ = (Index("ix_incidents_status_first_due", "status", "first_report_due"),
                      Index("ix_incidents_discovered", "discovered_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(32), unique=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="RESTRICT"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default="new", index=True)
    opened_via: Mapped[str] = mapped_column(String(20), default="portal")  # portal | api | centre | events
    reported_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reporter_name: Mapped[str] = mapped_column(String(200), default="")
    reporter_contact: Mapped[str] = mapped_column(String(320), default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    tlp: Mapped[str] = mapped_column(String(20), default="TLP:AMBER")

    # Route of the first report (facts 1.2) and how it was chosen.
    route: Mapped[str] = mapped_column(String(32))
    route_basis: Mapped[str] = mapped_column(String(200), default="")
    involves_cii: Mapped[bool] = mapped_column(Boolean, default=False)
    protection_department: Mapped[str] = mapped_column(String(200), default="")
    operator_province: Mapped[str] = mapped_column(String(100), default="")
    parent_department: Mapped[str] = mapped_column(String(200), default="")

    # Initial report, Art. 7 item 1: the affected unit and the facility, system or platform hit.
    affected_system: Mapped[str] = mapped_column(Text, default="")
    # Item 2: when and where, type, effects so far, measures taken (and ransom details).
    discovered_at: Mapped[datetime]
    discovery_basis: Mapped[str] = mapped_column(String(300), default="")
    occurred_at: Mapped[datetime | None]
    location: Mapped[str] = mapped_column(String(300), default="")
    category: Mapped[str] = mapped_column(String(16))
    subcategory: Mapped[str | None] = mapped_column(String(16))
    rsit_class: Mapped[str] = mapped_column(String(64))
    rsit_type: Mapped[str] = mapped_column(String(64))
    effects: Mapped[str] = mapped_column(Text, default="")
    measures_taken: Mapped[str] = mapped_column(Text, default="")
    ransom_amount: Mapped[str] = mapped_column(String(200), default="")
    ransom_method: Mapped[str] = mapped_column(String(200), default="")
    ransom_dates: Mapped[str] = mapped_column(String(200), default="")
    # Items 3-8, which may follow as updates.
    trend: Mapped[str] = mapped_column(Text, default="")
    cause: Mapped[str] = mapped_column(Text, default="")
    leads: Mapped[str] = mapped_column(Text, default="")
    further_measures: Mapped[str] = mapped_column(Text, default="")
    evidence_preservation: Mapped[str] = mapped_column(Text, default="")
    other_info: Mapped[str] = mapped_column(Text, default="")
    suspected_crime: Mapped[bool] = mapped_column(Boolean, default=False)

    # Grading: the facts, what the rules computed, and the level in force (override with a reason).
    impact: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    computed_level: Mapped[str] = mapped_column(String(16))
    grading: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    level: Mapped[str] = mapped_column(String(16), index=True)
    level_override_reason: Mapped[str] = mapped_column(Text, default="")
    rules_version: Mapped[str] = mapped_column(String(120), default="")

    # Clocks: stored so the deadline job and lists can query them; recomputed on every change.
    reportable: Mapped[bool] = mapped_column(Boolean, default=False)
    first_report_due: Mapped[datetime | None]
    first_report_at: Mapped[datetime | None]
    first_report_channel: Mapped[str] = mapped_column(String(200), default="")
    escalation_due: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    handling_closed_at: Mapped[datetime | None]
    summary_due: Mapped[datetime | None]
    summary_report_at: Mapped[datetime | None]
    duties_done: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    # Summary report, Art. 8.
    summary_cause: Mapped[str] = mapped_column(Text, default="")
    summary_handling: Mapped[str] = mapped_column(Text, default="")
    summary_harm: Mapped[str] = mapped_column(Text, default="")
    summary_accountability: Mapped[str] = mapped_column(Text, default="")
    summary_rectification: Mapped[str] = mapped_column(Text, default="")
    summary_lessons: Mapped[str] = mapped_column(Text, default="")

    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @classmethod
    def visible_to(cls, principal) -> ColumnElement[bool]:
        # A partner CERT reads shares (redacted copies), never the case itself.
        if principal.sees_all_tenants:
            return true()
        if not principal.org_ids or principal.role == Role.PARTNER:
            return false()
        return cls.org_id.in_(sorted(principal.org_ids))


class IncidentEvent(Base):
    """A stored event linked to an incident."""

    __tablename__ = "incident_events"
    __table_args__ = (UniqueConstraint("incident_id", "event_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    #: The event's id in the event store, which need not live in this database (no foreign key);
    #: a linked event is under a legal hold, so retention never drops it.
    event_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), index=True)
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)
    linked_by: Mapped[str] = mapped_column(String(400), default="")

    __audit__ = False  # links come in bulk; each linking act is audited as one record


class IncidentLink(Base):
    """A link between two incidents (related, or a duplicate merged into the other)."""

    __tablename__ = "incident_links"
    __table_args__ = (UniqueConstraint("incident_id", "other_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    other_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="related")  # related | duplicate
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IncidentComment(TenantScoped, Base):
    __tablename__ = "incident_comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    author_name: Mapped[str] = mapped_column(String(200), default="")
    #: internal (centre only) | shared (with the reporting organisation) | partner (from a partner CERT)
    visibility: Mapped[str] = mapped_column(String(16), default="internal")
    share_id: Mapped[int | None] = mapped_column(ForeignKey("incident_shares.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @classmethod
    def visible_to(cls, principal) -> ColumnElement[bool]:
        if principal.sees_all_tenants:
            return true()
        if not principal.org_ids:
            return false()
        if principal.role == Role.PARTNER:
            return and_(cls.visibility == "partner",
                        cls.share_id.in_(select(IncidentShare.id).where(
                            IncidentShare.partner_org_id.in_(sorted(principal.org_ids)))))
        return and_(cls.visibility == "shared", cls.incident_id.in_(_own_incident_ids(principal)))


class IncidentAttachment(TenantScoped, Base):
    """A file stored under its SHA-256 in the data dir; the row says whose and what it is."""

    __tablename__ = "incident_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    visibility: Mapped[str] = mapped_column(String(16), default="shared")  # internal | shared
    uploaded_by: Mapped[str] = mapped_column(String(400), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @classmethod
    def visible_to(cls, principal) -> ColumnElement[bool]:
        if principal.sees_all_tenants:
            return true()
        if not principal.org_ids or principal.role == Role.PARTNER:
            return false()
        return and_(cls.visibility == "shared", cls.incident_id.in_(_own_incident_ids(principal)))


class IncidentTask(TenantScoped, Base):
    """A coordination task addressed to an organisation (its own due time and status)."""

    __tablename__ = "incident_tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="open")
    response: Mapped[str] = mapped_column(Text, default="")
    responded_at: Mapped[datetime | None]
    responded_by: Mapped[str] = mapped_column(String(400), default="")
    created_by: Mapped[str] = mapped_column(String(400), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # The default visible_to (org_id among the principal's organisations) is the rule: a task is
    # visible to the organisation it is addressed to, and to centre staff.


class IncidentShare(TenantScoped, Base):
    """An incident shared with a partner CERT at a TLP label: a redacted copy the partner reads."""

    __tablename__ = "incident_shares"
    __table_args__ = (Index("ix_incident_shares_partner", "partner_org_id", "shared_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    partner_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    tlp: Mapped[str] = mapped_column(String(20))
    fields: Mapped[list[Any]] = mapped_column(JSON, default=list)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    shared_by: Mapped[str] = mapped_column(String(400), default="")
    shared_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    @classmethod
    def visible_to(cls, principal) -> ColumnElement[bool]:
        if principal.sees_all_tenants:
            return true()
        if principal.role != Role.PARTNER or not principal.org_ids:
            return false()
        return and_(cls.partner_org_id.in_(sorted(principal.org_ids)), cls.revoked_at.is_(None))


class TimelineEntry(TenantScoped, Base):
    """One thing that happened to a case. ``kind`` and ``data`` are rendered in the reader's language."""

    __tablename__ = "incident_timeline"
    __table_args__ = (Index("ix_incident_timeline_incident_at", "incident_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(400), default="")
    kind: Mapped[str] = mapped_column(String(32))
    #: internal (centre staff) | reporter (also the reporting organisation)
    visibility: Mapped[str] = mapped_column(String(16), default="internal")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __audit__ = False  # the timeline repeats what the audit log already holds, in readable form

    @classmethod
    def visible_to(cls, principal) -> ColumnElement[bool]:
        if principal.sees_all_tenants:
            return true()
        if not principal.org_ids or principal.role == Role.PARTNER:
            return false()
        return and_(cls.visibility == "reporter", cls.incident_id.in_(_own_incident_ids(principal)))


class IncidentAlert(TenantScoped, Base):
    """A deadline at risk or missed, addressed to one person: the hook notifications deliver from.

    Pages show undelivered and unread alerts; the notification capability, when present, picks up
    rows with ``delivered_at`` empty (``alerts.pending``) and marks them (``alerts.mark_delivered``).
    """

    __tablename__ = "incident_alerts"
    __table_args__ = (UniqueConstraint("incident_id", "clock", "state", "due_at", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    clock: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # at_risk | missed
    due_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    delivered_via: Mapped[str] = mapped_column(String(64), default="")
    read_at: Mapped[datetime | None]

    __audit__ = False  # raised by the clock job; each raise is logged and put on the timeline

    @classmethod
    def visible_to(cls, principal) -> ColumnElement[bool]:
        return cls.user_id == principal.user_id
