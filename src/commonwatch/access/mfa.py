"""Multi-factor sign-in: the per-role policy, TOTP authenticators, WebAuthn security keys,
one-time recovery codes, and an administrator's reset of a lost factor.

After the password, :func:`hold_session` marks the new browser session half signed in
(``mfa_stage`` "verify", or "enrol" when the user's role requires a factor and the user has none);
``access.services.resolve_session`` treats such a session as no sign-in at all, so every page and
API route answers as to an anonymous caller, and only the second-factor routes (access.mfa_pages)
accept it. API tokens are not affected: a token is issued only to a fully signed-in session or by
the operator's CLI, so the second factor was already passed when it was made.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pyotp
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from commonwatch.access import audit
from commonwatch.access import services as access
from commonwatch.access.authsettings import AuthSettings
from commonwatch.access.mfa_models import RecoveryCode, TotpFactor, WebAuthnCredential
from commonwatch.access.models import User, WebSession
from commonwatch.config import Settings
from commonwatch.errors import Invalid
from commonwatch.i18n import _

VERIFY = "verify"
ENROL = "enrol"
RECOVERY_CODES = 10
TOTP_STEP = 30


# --- policy and the half-signed-in session -------------------------------------------------------

def required(auth: AuthSettings, user: User) -> bool:
    return user.role in auth.mfa_required_roles


@dataclass(frozen=True)
class Factors:
    totp: bool
    keys: int
    recovery_left: int

    @property
    def any(self) -> bool:
        return self.totp or self.keys > 0


def factors(session: Session, user_id: int) -> Factors:
    totp = session.scalar(select(TotpFactor.id).where(TotpFactor.user_id == user_id,
                                                       TotpFactor.confirmed_at.is_not(None))) is not None
    keys = session.scalar(select(func.count()).where(WebAuthnCredential.user_id == user_id)) or 0
    left = session.scalar(select(func.count()).where(RecoveryCode.user_id == user_id,
                                                     RecoveryCode.used_at.is_(None))) or 0
    return Factors(totp, keys, left)


def hold_session(session: Session, auth: AuthSettings, user: User, cookie: str) -> str | None:
    """After a good password: mark the new session half signed in when a second factor is due.
    Returns the stage ("verify" or "enrol"), or None when the password alone signs in."""
    if factors(session, user.id).any:
        stage = VERIFY
    elif required(auth, user):
        stage = ENROL
    else:
        return None
    ws = session.scalar(select(WebSession).where(WebSession.session_hash == access.sha256_hex(cookie)))
    ws.mfa_stage = stage
    session.flush()
    return stage


def session_for(session: Session, settings: Settings, auth: AuthSettings, cookie: str,
                now: datetime) -> WebSession | None:
    """The browser session behind a cookie for the second-factor routes: a half-signed-in one
    (within ``mfa_pending_minutes``) or a full one (as ``access.services.resolve_session`` takes
    it); None otherwise."""
    if not cookie:
        return None
    ws = session.scalar(select(WebSession).where(WebSession.session_hash == access.sha256_hex(cookie)))
    if ws is None or ws.mfa_stage is None:
        return access.resolve_session(session, settings, cookie, now) if ws is not None else None
    if ws.expires_at <= now or not ws.user.active:
        return None
    if now - ws.created_at > timedelta(minutes=auth.mfa_pending_minutes):
        return None
    return ws


def complete(session: Session, ws: WebSession, method: str) -> None:
    """The second factor is good: the session becomes a full sign-in."""
    ws.mfa_stage = None
    ws.mfa_challenge = None
    ws.mfa_failures = 0
    audit.record(session, "signin.mfa", "users", ws.user_id, after={"method": method},
                 actor=f"user:{ws.user_id} {ws.user.email}")


def failed(session: Session, auth: AuthSettings, ws: WebSession, method: str) -> bool:
    """Count a wrong second factor; True when the session has had too many and is now ended."""
    ws.mfa_failures = (ws.mfa_failures or 0) + 1
    audit.record(session, "signin.mfa_failed", "users", ws.user_id, after={"method": method},
                 actor=f"user:{ws.user_id} {ws.user.email}")
    if ws.mfa_stage and ws.mfa_failures >= auth.mfa_max_failures:
        session.delete(ws)
        return True
    return False


# --- the encryption key for TOTP secrets ---------------------------------------------------------

def _fernet(auth: AuthSettings, settings: Settings) -> Fernet:
    path: Path = auth.key_file(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(Fernet.generate_key())
    return Fernet(path.read_bytes().strip())


# --- TOTP -----------------------------------------------------------------------------------------

def start_totp(session: Session, auth: AuthSettings, settings: Settings, user: User) -> str:
    """A new, unconfirmed authenticator secret for ``user`` (replacing an unconfirmed one)."""
    existing = session.scalar(select(TotpFactor).where(TotpFactor.user_id == user.id))
    if existing is not None and existing.confirmed_at is not None:
        raise Invalid("totp", _("an authenticator app is already set up; an administrator can reset it"))
    secret = pyotp.random_base32()
    token = _fernet(auth, settings).encrypt(secret.encode()).decode()
    if existing is None:
        session.add(TotpFactor(user_id=user.id, secret_enc=token))
    else:
        existing.secret_enc = token
    session.flush()
    return secret


def pending_totp_secret(session: Session, auth: AuthSettings, settings: Settings, user: User) -> str | None:
    """The secret of an authenticator not yet confirmed (shown for enrolment); never a confirmed one."""
    factor = session.scalar(select(TotpFactor).where(TotpFactor.user_id == user.id))
    if factor is None or factor.confirmed_at is not None:
        return None
    return _decrypt(auth, settings, factor)


def _decrypt(auth: AuthSettings, settings: Settings, factor: TotpFactor) -> str:
    try:
        return _fernet(auth, settings).decrypt(factor.secret_enc.encode()).decode()
    except InvalidToken:
        raise Invalid("totp", _("the authenticator secret cannot be decrypted with this server's key")) from None


def provisioning_uri(secret: str, user: User, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG QR code, made here (no outside service sees the secret)."""
    import io

    import segno

    buf = io.BytesIO()
    segno.make(uri, error="m").save(buf, kind="svg", scale=4, border=2, xmldecl=False, svgns=True,
                                    title="otpauth")
    return buf.getvalue().decode("utf-8")


def _match_step(secret: str, code: str, now: datetime, window: int) -> int | None:
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    step = int(now.timestamp()) // TOTP_STEP
    found = None
    for offset in range(-window, window + 1):
        if secrets.compare_digest(totp.generate_otp(step + offset), code):
            found = step + offset
    return found


def check_totp(session: Session, auth: AuthSettings, settings: Settings, user: User, code: str,
               now: datetime, *, confirming: bool = False) -> bool:
    """True if ``code`` is the authenticator's code for now (within the window) and its step is
    later than the last accepted one (a code is good once)."""
    factor = session.scalar(select(TotpFactor).where(TotpFactor.user_id == user.id))
    if factor is None or (factor.confirmed_at is None) != confirming:
        return False
    step = _match_step(_decrypt(auth, settings, factor), code, now, auth.mfa_totp_window)
    if step is None or step <= factor.last_step:
        return False
    factor.last_step = step
    if confirming:
        factor.confirmed_at = now
    session.flush()
    return True


# --- recovery codes -------------------------------------------------------------------------------

def new_recovery_codes(session: Session, user: User, now: datetime) -> list[str]:
    """Ten fresh one-time codes (the old ones stop working); shown once, stored hashed."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _i in range(RECOVERY_CODES):
        raw = secrets.token_hex(5)
        code = f"{raw[:5]}-{raw[5:]}"
        codes.append(code)
        session.add(RecoveryCode(user_id=user.id, code_hash=access.hash_password(code), created_at=now))
    session.flush()
    return codes


def use_recovery_code(session: Session, user: User, code: str, now: datetime) -> bool:
    code = "".join(code.split()).lower()
    if len(code) == 10 and "-" not in code:
        code = f"{code[:5]}-{code[5:]}"
    for row in session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id,
                                                          RecoveryCode.used_at.is_(None))):
        try:
            if access._hasher.verify(row.code_hash, code):
                row.used_at = now
                session.flush()
                return True
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            continue
    return False


# --- an administrator's reset ----------------------------------------------------------------------

def reset(session: Session, user: User, *, actor: str | None = None) -> Factors:
    """Remove every second factor and recovery code of ``user`` and end their sessions; recorded
    in the audit log. At the next sign-in the user enrols again (if their role requires it)."""
    before = factors(session, user.id)
    for model in (TotpFactor, WebAuthnCredential, RecoveryCode):
        for row in session.scalars(select(model).where(model.user_id == user.id)):
            session.delete(row)
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    audit.record(session, "mfa.reset", "users", user.id,
                 before={"totp": before.totp, "keys": before.keys, "recovery_left": before.recovery_left},
                 actor=actor)
    session.flush()
    return before
