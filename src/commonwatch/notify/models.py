"""Early-warning tables: policies, warnings (one per recipient organisation and event), the
delivery ledger (one row per recipient and event: the exactly-once key), deliveries (one per
message), feedback from recipients and suppressed observations."""

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
    false,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from commonwatch.clock import utcnow
from commonwatch.db import Base, BigId, TenantScoped

SECRET = {"audit": "secret"}

CADENCES = ("immediate", "hourly", "daily")
CHANNELS = ("email", "webhook", "both")
WARNING_STATUSES = ("open", "acknowledged", "resolved", "false-positive")
FEEDBACK_ACTIONS = ("acknowledged", "resolved", "false-positive")
DELIVERY_STATUSES = ("pending", "sending", "retry", "sent", "held", "dead", "cancelled")


class Policy(TenantScoped, Base):
    """How an organisation wants to be warned; the row without ``org_id`` is the centre-wide default."""

    __tablename__ = "notify_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Classification types warned about; empty means every type.
    types: Mapped[list[Any]] = mapped_column(JSON, default=list)
    min_severity: Mapped[str] = mapped_column(String(16), default="low")
    cadence: Mapped[str] = mapped_column(String(16), default="daily")
    #: Events at or above this severity go out at once whatever the cadence.
    immediate_severity: Mapped[str] = mapped_column(String(16), default="high")
    #: Events about a CII operator's network go out at once.
    cii_immediate: Mapped[bool] = mapped_column(Boolean, default=True)
    channel: Mapped[str] = mapped_column(String(16), default="email")
    encryption_required: Mapped[bool] = mapped_column(Boolean, default=False)
    #: "" means each contact's own language.
    language: Mapped[str] = mapped_column(String(10), default="")
    attach_intelmq: Mapped[bool] = mapped_column(Boolean, default=False)
    #: A new event of an observation warned about less than this long ago is counted, not re-sent.
    repeat_window_hours: Mapped[int] = mapped_column(Integer, default=168)
    webhook_url: Mapped[str] = mapped_column(Text, default="")
    #: The HMAC key, OpenPGP-encrypted to the centre's own key (see notify/webhook.py).
    webhook_secret: Mapped[str] = mapped_column(Text, default="", info=SECRET)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @classmethod
    def visible_to(cls, principal) -> ColumnElement[bool]:
        if principal.sees_all_tenants:
            return true()
        if not principal.org_ids:
            return false()
        return cls.org_id.in_(sorted(principal.org_ids))


class EventWarning(TenantScoped, Base):
    """One event routed to one recipient organisation (its owner, or a partner CERT abroad).

    ``disposition`` says what planning decided: ``warn`` (goes out in a digest), ``repeat`` (a
    re-observation of something warned about recently: counted on ``repeat_of_id``) or
    ``suppressed`` (the recipient marked the observation a false positive) or ``listed`` (a value of
    the event is on a warning list whose policy keeps it out of warnings).
    """

    __tablename__ = "notify_warnings"
    __table_args__ = (
        # event first: the same index answers "which warnings exist for these events" by id range.
        UniqueConstraint("event_id", "org_id"),
        Index("ix_notify_warnings_org_obs_time", "org_id", "obs_key", "time_source"),
        # the statistics of a period (acknowledgements by status, time to acknowledge, also for one
        # organisation) read a range of this index and nothing else
        Index("ix_notify_warnings_created", "created_at", "status", "responded_at", "org_id"),
    )
    __audit__ = False  # bulk rows written by planning; feedback is audited through Feedback rows

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    #: The event's id in the event store, which need not live in this database (no foreign key);
    #: retention removes the warnings of the events it drops.
    event_id: Mapped[int] = mapped_column(BigInteger)
    #: 64-bit hash of what was observed where (type, identifier, host, port, URL, malware).
    obs_key: Mapped[int] = mapped_column(BigInteger)
    time_source: Mapped[datetime]
    classification_type: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    feed_name: Mapped[str] = mapped_column(String(100), default="")
    disposition: Mapped[str] = mapped_column(String(16), default="warn")
    repeat_of_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    comment: Mapped[str] = mapped_column(Text, default="")
    responded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    responded_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerEntry(TenantScoped, Base):
    """Recipient x event: each event is in at most one message per recipient, ever.

    A row is queued (``delivery_id`` empty) until its recipient's digest is due; assembling the
    digest binds it to one delivery in the same transaction that creates the delivery.
    """

    __tablename__ = "notify_ledger"
    __table_args__ = (
        UniqueConstraint("recipient_key", "event_id"),
        Index("ix_notify_ledger_queue", "delivery_id", "due_at"),
    )
    __audit__ = False

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: ``contact:<id>``, ``webhook:<org id>`` or ``nobody:<org id>`` (no one to tell).
    recipient_key: Mapped[str] = mapped_column(String(100))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16))
    warning_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("notify_warnings.id", ondelete="CASCADE"),
                                            index=True)
    event_id: Mapped[int] = mapped_column(BigInteger)
    delivery_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("notify_deliveries.id",
                                                                           ondelete="SET NULL"))
    due_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Delivery(TenantScoped, Base):
    """One message to one recipient: a digest by email or a webhook call."""

    __tablename__ = "notify_deliveries"
    __table_args__ = (
        Index("ix_notify_deliveries_due", "status", "next_attempt_at"),
        Index("ix_notify_deliveries_org_created", "org_id", "created_at"),
        # the statistics of a period (deliveries by status) read a range of this index only
        Index("ix_notify_deliveries_created", "created_at", "status", "org_id"),
    )
    __audit__ = False  # state changes are operational; acts (resend, mark sent) are audited

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    recipient_key: Mapped[str] = mapped_column(String(100), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(10), default="en")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    #: The same reason as a code and values (``notify.reasons``), shown in the viewer's language.
    reason: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Each attempt: when, outcome, reason.
    history: Mapped[list[Any]] = mapped_column(JSON, default=list)
    next_attempt_at: Mapped[datetime | None]
    #: Fixed when the delivery is created, so every retransmission carries the same Message-ID.
    message_id: Mapped[str] = mapped_column(String(255), default="")
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    tlp: Mapped[str] = mapped_column(String(16), default="")
    signed: Mapped[bool] = mapped_column(Boolean, default=False)
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Set (and committed) just before the point of no return (the SMTP end-of-data, the HTTP
    #: request); a run that stops after it leaves the delivery in doubt, never silently resent.
    handoff_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    resent_from_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class Feedback(TenantScoped, Base):
    """A recipient's answer to a warning: acknowledged, resolved or false positive, with a comment."""

    __tablename__ = "notify_feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    warning_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("notify_warnings.id", ondelete="CASCADE"),
                                            index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    suppress: Mapped[bool] = mapped_column(Boolean, default=False)
    classification_type: Mapped[str] = mapped_column(String(64), default="")
    feed_name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Suppression(TenantScoped, Base):
    """An observation an organisation declared a false positive: not warned about again."""

    __tablename__ = "notify_suppressions"
    __table_args__ = (UniqueConstraint("org_id", "obs_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    obs_key: Mapped[int] = mapped_column(BigInteger)
    warning_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("notify_warnings.id",
                                                                          ondelete="SET NULL"))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PlannerState(Base):
    """Where planning got to: events created up to ``planned_until`` have been routed."""

    __tablename__ = "notify_state"
    __audit__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    planned_until: Mapped[datetime | None]
