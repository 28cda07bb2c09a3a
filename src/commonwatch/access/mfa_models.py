"""Second factors: TOTP authenticators, WebAuthn security keys and one-time recovery codes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from commonwatch.clock import utcnow
from commonwatch.db import Base, BigId

_SECRET = {"audit": "secret"}


class TotpFactor(Base):
    """A user's authenticator app. The shared secret is stored encrypted with a key kept outside
    the database (``mfa_key_file``), redacted from the audit log, and shown only while unconfirmed."""

    __tablename__ = "mfa_totp"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    secret_enc: Mapped[str] = mapped_column(Text, info=_SECRET)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None]
    #: The last 30-second step a code was accepted for; a code of that step or earlier is a replay.
    last_step: Mapped[int] = mapped_column(BigId, default=0, info={"audit": "skip"})


class RecoveryCode(Base):
    """A one-time recovery code, hashed with argon2 like a password."""

    __tablename__ = "mfa_recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(200), info=_SECRET)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]


class WebAuthnCredential(Base):
    """A registered security key (WebAuthn public-key credential)."""

    __tablename__ = "mfa_webauthn"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)  # base64url
    public_key: Mapped[str] = mapped_column(Text)  # base64url COSE key
    sign_count: Mapped[int] = mapped_column(BigId, default=0, info={"audit": "skip"})
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(info={"audit": "skip"})



