"""The inbox: notifications addressed to one person, the cases a person follows, and what each
person wants to receive and how (in the app, by mail, both or neither, per kind).

Tenancy: a notification is visible only to the person it is addressed to (``visible_to``); a
follow and a preference likewise. Whom a notification may be addressed to is decided when it is
raised (``services.notify``): a constituent only of things in its own organisations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from commonwatch.clock import utcnow
from commonwatch.db import Base, TenantScoped

#: The kinds of notification, in the order the settings page lists them.
KINDS = ("assigned", "task", "comment", "clock")
#: How a person may receive a kind.
CHANNELS = ("both", "app", "mail", "none")


class Notification(TenantScoped, Base):
    """One thing one person should know about. Its sentence is made when shown (``services.text``),
    from ``kind`` and ``params``, so it reads in the reader's language."""

    __tablename__ = "inbox_notifications"
    __table_args__ = (Index("ix_inbox_notifications_user_unread", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    #: the organisation the thing belongs to (a case's or a task's), for the record
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="SET NULL"))
    link: Mapped[str] = mapped_column(String(300), default="/")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: "app", "mail" or "both": what the person's preference was when it was raised
    channel: Mapped[str] = mapped_column(String(8), default="both")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    mailed_at: Mapped[datetime | None]
    mail_status: Mapped[str] = mapped_column(String(200), default="")

    __audit__ = False  # raised by other acts, which are audited themselves; reading one is not an act

    @classmethod
    def visible_to(cls, principal) -> ColumnElement[bool]:
        return cls.user_id == (principal.user_id or -1)


class Follow(TenantScoped, Base):
    """A person follows a case: new comments on it reach them."""

    __tablename__ = "inbox_follows"
    __table_args__ = (UniqueConstraint("user_id", "incident_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    #: "explicit" (the person chose to), "owner" or "commenter" (automatic)
    reason: Mapped[str] = mapped_column(String(16), default="explicit")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @classmethod
    def visible_to(cls, principal) -> ColumnElement[bool]:
        return cls.user_id == (principal.user_id or -1)


class Preference(TenantScoped, Base):
    """How one person wants one kind of notification; no row means the default (``DEFAULTS``)."""

    __tablename__ = "inbox_preferences"
    __table_args__ = (UniqueConstraint("user_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))

    @classmethod
    def visible_to(cls, principal) -> ColumnElement[bool]:
        return cls.user_id == (principal.user_id or -1)


#: A person's channel for a kind until they choose: everything in the app, and by mail what asks
#: for action (a case now theirs, a task for their organisation, a deadline at risk).
DEFAULTS = {"assigned": "both", "task": "both", "comment": "app", "clock": "both"}
