"""International cooperation tables.

A partner CERT is an organisation of kind ``partner-cert`` in the constituency registry; its
contacts (with their PGP keys) are the registry's contacts. This capability adds what the registry
does not hold, keyed to that organisation: the directory profile (memberships, RFC 2350 fields,
channels), agreements with their renewal reminders, and cybercrime-assistance requests.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from commonwatch.clock import utcnow
from commonwatch.db import Base, TenantScoped

PARTNER_KINDS = ("national", "sector", "vendor", "academic")
CHANNELS = ("pgp-email", "taxii", "misp", "iodef", "xarf")
TI_LEVELS = ("", "listed", "accredited", "certified")


class PartnerProfile(TenantScoped, Base):
    """The directory entry of one partner CERT (one row per partner organisation)."""

    __tablename__ = "coop_partner_profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="national")
    short_name: Mapped[str] = mapped_column(String(64), default="")
    first_member: Mapped[bool] = mapped_column(default=False)
    apcert_member: Mapped[bool] = mapped_column(default=False)
    ti_level: Mapped[str] = mapped_column(String(16), default="")
    # RFC 2350 description fields
    constituency: Mapped[str] = mapped_column(Text, default="")
    hours: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="")
    emergency_contact: Mapped[str] = mapped_column(String(300), default="")
    rfc2350_url: Mapped[str] = mapped_column(String(500), default="")
    channels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: The language the partner is written to (en | zh-CN); empty: by the rule on its country.
    language: Mapped[str] = mapped_column(String(10), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PartnerAgreement(TenantScoped, Base):
    """A memorandum or other agreement with a partner: signed, scope, renewal date."""

    __tablename__ = "coop_agreements"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    signed_on: Mapped[date] = mapped_column(Date)
    scope: Mapped[str] = mapped_column(Text, default="")
    renews_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    reminders: Mapped[list[AgreementReminder]] = relationship(back_populates="agreement", cascade="all, delete-orphan")


class AgreementReminder(TenantScoped, Base):
    """A renewal reminder (soon, due), made once per agreement and kind by the job."""

    __tablename__ = "coop_agreement_reminders"
    __table_args__ = (UniqueConstraint("agreement_id", "kind", "due_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("coop_agreements.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    due_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    agreement: Mapped[PartnerAgreement] = relationship(back_populates="reminders")


class AssistanceRequest(TenantScoped, Base):
    """A cybercrime-assistance request, incoming or outgoing. Need-to-know: admins and the
    coordinators assigned to it read it; nobody else (constituents and partners never)."""

    __tablename__ = "coop_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(32), unique=True)
    direction: Mapped[str] = mapped_column(String(8))  # incoming | outgoing
    country: Mapped[str] = mapped_column(String(2), index=True)
    authority: Mapped[str] = mapped_column(String(300))
    partner_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="SET NULL"),
                                                       index=True)
    legal_basis: Mapped[str] = mapped_column(String(32))
    legal_basis_detail: Mapped[str] = mapped_column(String(300), default="")
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="", info={"audit": "secret"})
    contents: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, info={"audit": "secret"})
    concerns: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"type": "incident", "ref": ...}]
    received_on: Mapped[date] = mapped_column(Date)
    deadline: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(32), default="received", index=True)
    decline_reason: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime | None] = mapped_column()
    pi_findings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(400), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    assignments: Mapped[list[RequestAssignment]] = relationship(back_populates="request",
                                                                cascade="all, delete-orphan")
    history: Mapped[list[RequestHistory]] = relationship(back_populates="request", cascade="all, delete-orphan",
                                                         order_by="RequestHistory.id")
    attachments: Mapped[list[RequestAttachment]] = relationship(back_populates="request",
                                                                cascade="all, delete-orphan",
                                                                order_by="RequestAttachment.id")

    @classmethod
    def visible_to(cls, principal) -> ColumnElement[bool]:
        from commonwatch.access.principal import Role

        if principal.has("cooperation.requests.all"):
            return true()
        if principal.role != Role.COORDINATOR or not principal.user_id:
            return false()
        from sqlalchemy import select

        assigned = select(RequestAssignment.request_id).where(RequestAssignment.user_id == principal.user_id)
        return cls.id.in_(assigned)


class RequestAssignment(Base):
    __tablename__ = "coop_request_assignments"
    __table_args__ = (UniqueConstraint("request_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("coop_requests.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    request: Mapped[AssistanceRequest] = relationship(back_populates="assignments")


class RequestHistory(Base):
    __tablename__ = "coop_request_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("coop_requests.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(400), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)

    request: Mapped[AssistanceRequest] = relationship(back_populates="history")


class RequestAttachment(Base):
    __tablename__ = "coop_request_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("coop_requests.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(300))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary, info={"audit": "secret"})
    pi_findings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    request: Mapped[AssistanceRequest] = relationship(back_populates="attachments")


class InboundReport(Base):
    """A partner's report as it arrived (mail, folder or API): ingested into events, or held with the
    reason for the coordinator. ``digest`` makes a second arrival of the same bytes a no-op."""

    __tablename__ = "coop_inbound_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    origin: Mapped[str] = mapped_column(String(16))  # imap | folder | api
    origin_ref: Mapped[str] = mapped_column(String(500), default="")
    message_id: Mapped[str] = mapped_column(String(500), default="")
    sender: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(String(500), default="")
    partner_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="SET NULL"),
                                                       index=True)
    format: Mapped[str] = mapped_column(String(16), default="")
    signature: Mapped[str] = mapped_column(String(16), default="unsigned")  # good | unsigned
    signer: Mapped[str] = mapped_column(String(64), default="")
    #: The mail was encrypted to the centre (PGP/MIME or armoured) and decrypted with its key.
    encrypted: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), index=True)  # ingested | held | discarded
    reason: Mapped[str] = mapped_column(Text, default="")
    #: What a coordinator did with a held report (released after a fix, discarded with a reason).
    resolution: Mapped[str] = mapped_column(Text, default="")
    resolved_by: Mapped[str] = mapped_column(String(400), default="")
    resolved_at: Mapped[datetime | None] = mapped_column()
    size: Mapped[int] = mapped_column(Integer, default=0)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary, info={"audit": "secret"})
    rows: Mapped[int] = mapped_column(Integer, default=0)
    run_id: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    respond_by: Mapped[datetime | None] = mapped_column()

    @classmethod
    def visible_to(cls, principal) -> ColumnElement[bool]:
        """The centre's coordinators and admins read partners' reports; nobody else (constituents never)."""
        return true() if principal.has("cooperation.write") else false()


class ImapCursor(Base):
    """How far a mailbox has been read: its UIDVALIDITY and the last UID taken."""

    __tablename__ = "coop_imap_cursors"
    __table_args__ = (UniqueConstraint("mailbox"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(500))
    uidvalidity: Mapped[int] = mapped_column(Integer)
    last_uid: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PartnerMail(Base):
    """A mail the centre sends a partner CERT, with its delivery state: the acknowledgement of one
    inbound report (``ack``) or an outbound IODEF/X-ARF document of an incident (``document``).
    ``dedup_key`` (``ack:<report id>``, ``document:<timeline entry id>``) makes each one exist once,
    so re-processing a report or re-running a delivery pass never sends it twice."""

    __tablename__ = "coop_partner_mails"

    id: Mapped[int] = mapped_column(primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # ack | document
    partner_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="SET NULL"),
                                                       index=True)
    inbound_report_id: Mapped[int | None] = mapped_column(
        ForeignKey("coop_inbound_reports.id", ondelete="CASCADE"), index=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"), index=True)
    recipient: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(String(500), default="")
    our_ref: Mapped[str] = mapped_column(String(64), default="")
    their_ref: Mapped[str] = mapped_column(String(500), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    format: Mapped[str] = mapped_column(String(16), default="")
    attachment_name: Mapped[str] = mapped_column(String(200), default="")
    attachment: Mapped[bytes | None] = mapped_column(LargeBinary)
    signed: Mapped[bool] = mapped_column(default=False)
    encrypted: Mapped[bool] = mapped_column(default=False)
    # pending | sending (handed to the server, reply not seen) | sent | retry | dead | held
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    message_id: Mapped[str] = mapped_column(String(500), default="")
    sent_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @classmethod
    def visible_to(cls, principal) -> ColumnElement[bool]:
        """As the reports they answer: the centre's coordinators and admins only."""
        return true() if principal.has("cooperation.write") else false()
