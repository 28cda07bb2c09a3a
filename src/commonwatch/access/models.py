"""Users, organisation membership, API tokens, browser sessions, sign-in attempts, audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from commonwatch.access import (  # noqa: F401 - second-factor and sign-on tables
    mfa_models,
    saved_filters,
    sso_models,
)
from commonwatch.clock import utcnow
from commonwatch.db import Base, BigId

SECRET = {"audit": "secret"}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(200), info=SECRET)
    language: Mapped[str] = mapped_column(String(10), default="en")
    timezone: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def org_ids(self) -> list[int]:
        return [m.org_id for m in self.memberships]


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "org_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)

    user: Mapped[User] = relationship(back_populates="memberships")


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    #: The first characters of the token, shown in lists so a person can tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, info=SECRET)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None] = mapped_column(info={"audit": "skip"})

    user: Mapped[User] = relationship(lazy="joined")


class WebSession(Base):
    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: SHA-256 of the cookie value; the cookie itself is never stored.
    session_hash: Mapped[str] = mapped_column(String(64), unique=True, info=SECRET)
    csrf_token: Mapped[str] = mapped_column(String(64), info=SECRET)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ip: Mapped[str] = mapped_column(String(64), default="")
    #: Set while the password is checked but a second factor is not: "verify" or "enrol" (see
    #: access.mfa). Such a session is no sign-in for any page but the second-factor ones.
    mfa_stage: Mapped[str | None] = mapped_column(String(16))
    mfa_challenge: Mapped[str | None] = mapped_column(String(200), info=SECRET)
    mfa_failures: Mapped[int] = mapped_column(Integer, default=0)

    user: Mapped[User] = relationship(lazy="joined")

    __audit__ = False  # sign-ins are audited as events of their own, not as row changes


class LoginAttempt(Base):
    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_email_at", "email", "at"), Index("ix_login_attempts_ip_at", "ip", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    success: Mapped[bool] = mapped_column(Boolean)

    __audit__ = False


class AuditEntry(Base):
    """One link of the hash chain: who changed what, when, with the state before and after."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(400))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64), index=True)
    entity_id: Mapped[str] = mapped_column(String(64), default="")
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __audit__ = False


class AuditHead(Base):
    """The chain's last link; a single row that writers lock, so links are appended in order."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))
    #: The first link hashed with the audit key (HMAC); earlier links are plain SHA-256. Empty
    #: while the chain is unkeyed.
    keyed_from: Mapped[int | None] = mapped_column(Integer)

    __audit__ = False
