"""WebAuthn security keys (py_webauthn): the registration and authentication ceremonies.

The challenge of a ceremony is kept on the browser session (``WebSession.mfa_challenge``) and
used once; the key's signature counter is stored and must grow with every use (a counter that
does not is refused: the key may have been cloned)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from commonwatch.access.authsettings import AuthSettings
from commonwatch.access.mfa_models import WebAuthnCredential
from commonwatch.access.models import User, WebSession
from commonwatch.config import Settings
from commonwatch.errors import Invalid
from commonwatch.i18n import _


def _descriptors(session: Session, user: User) -> list[PublicKeyCredentialDescriptor]:
    ids = session.scalars(select(WebAuthnCredential.credential_id).where(WebAuthnCredential.user_id == user.id))
    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in ids]


def _take_challenge(ws: WebSession) -> bytes:
    challenge = ws.mfa_challenge
    ws.mfa_challenge = None
    if not challenge:
        raise Invalid("credential", _("no security key ceremony was started in this session"))
    return base64url_to_bytes(challenge)


def registration_options(session: Session, auth: AuthSettings, settings: Settings, ws: WebSession) -> dict[str, Any]:
    user = ws.user
    options = generate_registration_options(
        rp_id=auth.rp_id(settings), rp_name=auth.webauthn_rp_name, user_id=str(user.id).encode(),
        user_name=user.email, user_display_name=user.name or user.email,
        exclude_credentials=_descriptors(session, user),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED, user_verification=UserVerificationRequirement.PREFERRED),
    )
    ws.mfa_challenge = bytes_to_base64url(options.challenge)
    session.flush()
    return json.loads(options_to_json(options))


def register(session: Session, auth: AuthSettings, settings: Settings, ws: WebSession, credential: dict,
             name: str, now) -> WebAuthnCredential:
    challenge = _take_challenge(ws)
    try:
        verified = verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=auth.rp_id(settings),
            expected_origin=auth.origin(settings))
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise Invalid("credential", _("The security key was not accepted: {reason}").format(reason=exc)) from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if session.scalar(select(WebAuthnCredential.id).where(WebAuthnCredential.credential_id == credential_id)):
        raise Invalid("credential", _("this security key is registered already"))
    row = WebAuthnCredential(user_id=ws.user_id, name=name.strip()[:200], credential_id=credential_id,
                             public_key=bytes_to_base64url(verified.credential_public_key),
                             sign_count=verified.sign_count, created_at=now)
    session.add(row)
    session.flush()
    return row


def authentication_options(session: Session, auth: AuthSettings, settings: Settings, ws: WebSession) -> dict[str, Any]:
    options = generate_authentication_options(
        rp_id=auth.rp_id(settings), allow_credentials=_descriptors(session, ws.user),
        user_verification=UserVerificationRequirement.PREFERRED)
    ws.mfa_challenge = bytes_to_base64url(options.challenge)
    session.flush()
    return json.loads(options_to_json(options))


def authenticate(session: Session, auth: AuthSettings, settings: Settings, ws: WebSession, credential: dict,
                 now) -> WebAuthnCredential:
    challenge = _take_challenge(ws)
    raw_id = credential.get("rawId") or credential.get("id") if isinstance(credential, dict) else None
    row = session.scalar(select(WebAuthnCredential).where(
        WebAuthnCredential.user_id == ws.user_id, WebAuthnCredential.credential_id == str(raw_id or "")))
    if row is None:
        raise Invalid("credential", _("this security key is not registered"))
    try:
        verified = verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=auth.rp_id(settings),
            expected_origin=auth.origin(settings), credential_public_key=base64url_to_bytes(row.public_key),
            credential_current_sign_count=row.sign_count)
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        if "sign count" in str(exc):
            reason = _("the key's signature counter went backwards; the key may be cloned")
        else:
            reason = str(exc)
        raise Invalid("credential", _("The security key was not accepted: {reason}").format(reason=reason)) from None
    row.sign_count = verified.new_sign_count
    row.last_used_at = now
    session.flush()
    return row
