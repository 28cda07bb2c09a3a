"""Accounts: users, passwords, API tokens, browser sessions, sign-in rate limiting, principals."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from commonwatch.access import audit, signin_limits
from commonwatch.access.models import ApiToken, LoginAttempt, Membership, User, WebSession
from commonwatch.access.principal import Principal, Role
from commonwatch.config import Settings
from commonwatch.db import write_after
from commonwatch.errors import FieldError, Invalid, NotFound
from commonwatch.i18n import _
from commonwatch.validation import normalise_email

_hasher = PasswordHasher()
TOKEN_PREFIX = "cw_"  # noqa: S105 - a visible prefix, not a secret
MIN_PASSWORD = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Invalid("password", _("must be at least {n} characters").format(n=MIN_PASSWORD))


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise Invalid("role", _("unknown role “{role}”; one of {roles}").format(
            role=value, roles=", ".join(r.value for r in Role))) from None


def create_user(session: Session, email: str, role: str, password: str | None, *,
                name: str = "", org_ids: list[int] | None = None, language: str = "en") -> User:
    """A new user; constituents and partners must belong to at least one organisation."""
    from commonwatch.constituency.models import Organisation

    errors: list[FieldError] = []
    try:
        email = normalise_email(email)
    except Invalid as exc:
        errors.extend(exc.errors)
    try:
        role_ = parse_role(role)
    except Invalid as exc:
        errors.extend(exc.errors)
        role_ = None
    if password is not None:
        try:
            validate_password(password)
        except Invalid as exc:
            errors.extend(exc.errors)
    org_ids = sorted(set(org_ids or []))
    if role_ in (Role.CONSTITUENT, Role.PARTNER) and not org_ids:
        errors.append(FieldError("org", _("a constituent or partner must belong to an organisation")))
    for org_id in org_ids:
        if session.get(Organisation, org_id) is None:
            errors.append(FieldError("org", _("no organisation with id {id}").format(id=org_id)))
    if language not in ("en", "zh-CN"):
        errors.append(FieldError("language", _("must be en or zh-CN")))
    if not errors and session.scalar(select(User.id).where(User.email == email)) is not None:
        errors.append(FieldError("email", _("a user with this email exists")))
    if errors:
        raise Invalid(errors)
    user = User(email=email, role=str(role_), name=name, language=language,
                password_hash=hash_password(password) if password else None)
    user.memberships = [Membership(org_id=o) for o in org_ids]
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, user: User, password: str) -> None:
    validate_password(password)
    user.password_hash = hash_password(password)
    # A new password ends every open browser session of that user.
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def org_ids_with_descendants(session: Session, org_ids: list[int]) -> frozenset[int]:
    """The organisations and every unit under them (a parent body sees its subsidiaries)."""
    from commonwatch.constituency.models import Organisation

    seen = set(org_ids)
    frontier = set(org_ids)
    while frontier:
        children = set(session.scalars(select(Organisation.id).where(Organisation.parent_id.in_(frontier))))
        frontier = children - seen
        seen |= frontier
    return frozenset(seen)


def principal_for(session: Session, user: User, *, via: str = "session", token_id: int | None = None) -> Principal:
    return Principal(
        user_id=user.id, email=user.email, role=Role(user.role),
        org_ids=org_ids_with_descendants(session, user.org_ids), name=user.name,
        language=user.language, timezone=user.timezone, via=via, token_id=token_id,
    )


# --- API tokens -------------------------------------------------------------------------------

@dataclass
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def create_token(session: Session, user: User, *, name: str = "", expires_days: float | None = 90,
                 now: datetime) -> IssuedToken:
    if expires_days is not None and expires_days <= 0:
        raise Invalid("expires", _("must be a positive number of days"))
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id, name=name, prefix=secret[:10], token_hash=sha256_hex(secret), created_at=now,
        expires_at=now + timedelta(days=expires_days) if expires_days is not None else None,
    )
    session.add(token)
    session.flush()
    return IssuedToken(token, secret)


def revoke_token(session: Session, token: ApiToken, now: datetime) -> None:
    if token.revoked_at is None:
        token.revoked_at = now


def resolve_token(session: Session, secret: str, now: datetime) -> ApiToken | None:
    """The live token for a bearer secret, or None (unknown, expired, revoked, inactive user)."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == sha256_hex(secret)))
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        write_after(session, update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
    return token


# --- browser sessions and sign-in -------------------------------------------------------------

RateLimited = signin_limits.RateLimited


def check_rate_limit(session: Session, settings: Settings, email: str, ip: str, now: datetime) -> None:
    signin_limits.check(session, settings, email, ip, now)


def sign_in(session: Session, settings: Settings, email: str, password: str, ip: str,
            now: datetime) -> tuple[User, str] | None:
    """Check the password (rate-limited); on success open a session and return its cookie value."""
    email = email.strip().lower()
    check_rate_limit(session, settings, email, ip, now)
    user = user_by_email(session, email)
    ok = user is not None and user.active and check_password(user, password)
    if not ok:
        # Spend the same time on unknown users so sign-in does not reveal which emails exist.
        if user is None:
            _burn()
        session.add(LoginAttempt(email=email, ip=ip, at=now, success=False))
        audit.record(session, "signin.failed", "users", user.id if user else "", after={"email": email, "ip": ip},
                     actor=f"anonymous {ip}")
        return None
    session.add(LoginAttempt(email=email, ip=ip, at=now, success=True))
    user.last_login_at = now
    cookie = secrets.token_urlsafe(32)
    session.add(WebSession(
        session_hash=sha256_hex(cookie), csrf_token=secrets.token_urlsafe(32), user_id=user.id,
        created_at=now, last_seen_at=now, expires_at=now + timedelta(hours=settings.session_hours), ip=ip,
    ))
    audit.record(session, "signin", "users", user.id, after={"ip": ip}, actor=f"user:{user.id} {user.email}")
    return user, cookie


_DUMMY_HASH = _hasher.hash("commonwatch-timing-equaliser")


def _burn() -> None:
    with contextlib.suppress(VerifyMismatchError):
        _hasher.verify(_DUMMY_HASH, "not-the-password")


def resolve_session(session: Session, settings: Settings, cookie: str, now: datetime, *,
                    slide: bool = True) -> WebSession | None:
    """The live browser session for a cookie, sliding its idle timer (unless ``slide`` is False: a
    page's background poll is not the person's activity); None if expired or idle.

    The timer and the removal of a dead session are queued with ``write_after``: they are
    advisory, and a request that only reads should not wait for the write lock for them."""
    ws = session.scalar(select(WebSession).where(WebSession.session_hash == sha256_hex(cookie)))
    if ws is None:
        return None
    idle = timedelta(minutes=settings.session_idle_minutes)
    if ws.expires_at <= now or now - ws.last_seen_at > idle or not ws.user.active:
        write_after(session, delete(WebSession).where(WebSession.id == ws.id))
        return None
    if ws.mfa_stage:  # password checked, second factor not yet: only access.mfa_pages take it
        return None
    if slide and now - ws.last_seen_at > timedelta(minutes=1):
        write_after(session, update(WebSession).where(WebSession.id == ws.id).values(last_seen_at=now))
    return ws


def sign_out(session: Session, cookie: str) -> None:
    session.execute(delete(WebSession).where(WebSession.session_hash == sha256_hex(cookie)))


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user")
    return user


def update_user(session: Session, user: User, *, name: str | None = None, role: str | None = None,
                org_ids: list[int] | None = None, active: bool | None = None, language: str | None = None,
                timezone: str | None = None) -> User:
    """Change a user's profile, role or organisations; the same rules as :func:`create_user`."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from commonwatch.constituency.models import Organisation

    errors: list[FieldError] = []
    new_role = user.role
    if role is not None:
        try:
            new_role = str(parse_role(role))
        except Invalid as exc:
            errors.extend(exc.errors)
    new_orgs = sorted(set(org_ids)) if org_ids is not None else user.org_ids
    for org_id in new_orgs:
        if session.get(Organisation, org_id) is None:
            errors.append(FieldError("org", _("no organisation with id {id}").format(id=org_id)))
    if new_role in (Role.CONSTITUENT, Role.PARTNER) and not new_orgs:
        errors.append(FieldError("org", _("a constituent or partner must belong to an organisation")))
    if language is not None and language not in ("en", "zh-CN"):
        errors.append(FieldError("language", _("must be en or zh-CN")))
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            errors.append(FieldError("timezone", _("unknown time zone “{tz}”").format(tz=timezone)))
    if errors:
        raise Invalid(errors)
    if name is not None:
        user.name = name
    user.role = new_role
    if org_ids is not None and new_orgs != user.org_ids:
        user.memberships = [m for m in user.memberships if m.org_id in new_orgs] + [
            Membership(org_id=o) for o in new_orgs if o not in user.org_ids
        ]
    if active is not None:
        user.active = active
        if not active:
            session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    if language is not None:
        user.language = language
    if timezone is not None:
        user.timezone = timezone or None
    session.flush()
    return user
