"""OpenID Connect sign-in: the authorization code flow with PKCE, Authlib building the requests.

``start`` makes the state, nonce and PKCE verifier, keeps them in a short-lived cookie encrypted
with the server's key, and sends the browser to the provider. ``finish`` checks the state, trades
the code (with the verifier) for tokens at the token endpoint, and validates the ID token: its
signature against the provider's JWKS, the issuer, the audience, the expiry and the nonce. Every
request to the provider (discovery, token, keys) goes through ``commonwatch.outbound``."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import datetime

from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.fernet import InvalidToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from commonwatch import outbound
from commonwatch.access.authsettings import AuthSettings
from commonwatch.config import Settings
from commonwatch.errors import Invalid

STATE_COOKIE = "cw_oidc"
STATE_SECONDS = 600
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


class Failed(Exception):
    """The provider's answer cannot be trusted; the reason is for the log and the page."""


@dataclass(frozen=True)
class Identity:
    subject: str
    email: str
    email_verified: bool
    name: str
    claims: dict


def _policy(settings: Settings) -> outbound.Policy:
    return outbound.Policy.of(settings)


def _get_json(settings: Settings, url: str, field: str) -> dict:
    try:
        reply = outbound.send(_policy(settings), "GET", url, field=field, headers={"Accept": "application/json"})
    except Invalid as exc:
        raise Failed(f"{field}: {exc.errors[0].reason}") from None
    if reply.status != 200:
        raise Failed(f"{field}: {url} answered {reply.status}")
    try:
        return json.loads(reply.body)
    except ValueError:
        raise Failed(f"{field}: {url} did not answer JSON") from None


def discovery(auth: AuthSettings, settings: Settings) -> dict:
    issuer = auth.oidc_issuer.rstrip("/")
    doc = _get_json(settings, f"{issuer}/.well-known/openid-configuration", "oidc_issuer")
    if doc.get("issuer") != auth.oidc_issuer and doc.get("issuer") != issuer:
        raise Failed(f"oidc_issuer: the discovery document names issuer {doc.get('issuer')!r}, not {issuer!r}")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(doc.get(key), str):
            raise Failed(f"oidc_issuer: the discovery document has no {key}")
    return doc


def _fernet(auth: AuthSettings, settings: Settings):
    from commonwatch.access.mfa import _fernet as key

    return key(auth, settings)


def start(auth: AuthSettings, settings: Settings, redirect_uri: str, next_url: str, now: datetime) -> tuple[str, str]:
    """The provider's authorization URL, and the encrypted cookie that remembers this attempt."""
    doc = discovery(auth, settings)
    state = secrets.token_urlsafe(24)
    nonce = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    url = prepare_grant_uri(doc["authorization_endpoint"], auth.oidc_client_id, "code", redirect_uri=redirect_uri,
                            scope=auth.oidc_scopes, state=state, nonce=nonce,
                            code_challenge=create_s256_code_challenge(verifier), code_challenge_method="S256")
    payload = json.dumps({"state": state, "nonce": nonce, "verifier": verifier, "next": next_url}).encode()
    cookie = _fernet(auth, settings).encrypt_at_time(payload, int(now.timestamp())).decode()
    return url, cookie


def finish(auth: AuthSettings, settings: Settings, cookie: str, params: dict[str, str], redirect_uri: str,
           now: datetime) -> tuple[Identity, str]:
    """The identity the provider vouches for, and the page to go to after sign-in."""
    if params.get("error"):
        raise Failed(f"the identity provider refused: {params.get('error')} {params.get('error_description', '')}")
    try:
        saved = json.loads(_fernet(auth, settings).decrypt_at_time(cookie.encode(), STATE_SECONDS,
                                                                   int(now.timestamp())))
    except (InvalidToken, ValueError, AttributeError):
        raise Failed("the sign-in attempt is unknown or older than 10 minutes") from None
    if not secrets.compare_digest(str(params.get("state", "")), saved["state"]):
        raise Failed("state does not match this browser's sign-in attempt")
    code = params.get("code")
    if not code:
        raise Failed("the identity provider sent no code")
    doc = discovery(auth, settings)
    body = prepare_token_request("authorization_code", code=code, redirect_uri=redirect_uri,
                                 code_verifier=saved["verifier"])
    basic = base64.b64encode(f"{auth.oidc_client_id}:{auth.oidc_client_secret}".encode()).decode()
    try:
        reply = outbound.send(_policy(settings), "POST", doc["token_endpoint"], field="oidc token endpoint",
                              headers={"Content-Type": "application/x-www-form-urlencoded",
                                       "Accept": "application/json", "Authorization": f"Basic {basic}"},
                              content=body.encode())
    except Invalid as exc:
        raise Failed(f"token endpoint: {exc.errors[0].reason}") from None
    try:
        tokens = json.loads(reply.body)
    except ValueError:
        raise Failed(f"token endpoint answered {reply.status} without JSON") from None
    if reply.status != 200 or not isinstance(tokens, dict) or not isinstance(tokens.get("id_token"), str):
        raise Failed(f"token endpoint answered {reply.status}: {str(tokens)[:200]}")
    claims = validate_id_token(auth, settings, doc, tokens["id_token"], saved["nonce"], now)
    identity = Identity(subject=str(claims["sub"]), email=str(claims.get("email") or "").strip().lower(),
                        email_verified=claims.get("email_verified") is True, name=str(claims.get("name") or ""),
                        claims=claims)
    return identity, saved.get("next") or "/"


def validate_id_token(auth: AuthSettings, settings: Settings, doc: dict, id_token: str, nonce: str,
                      now: datetime) -> dict:
    keys = _get_json(settings, doc["jwks_uri"], "oidc jwks_uri")
    try:
        key_set = KeySet.import_key_set(keys)
        token = jwt.decode(id_token, key_set, algorithms=ALGORITHMS)
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        raise Failed(f"the ID token's signature does not verify with the provider's keys ({exc})") from None
    registry = jwt.JWTClaimsRegistry(
        now=int(now.timestamp()), leeway=60,
        iss={"essential": True, "value": doc["issuer"]},
        aud={"essential": True, "value": auth.oidc_client_id},
        sub={"essential": True}, exp={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(token.claims)
    except JoseError as exc:
        raise Failed(f"the ID token is not for this sign-in: {exc.error} {exc.description or ''}".strip()) from None
    azp = token.claims.get("azp")
    if isinstance(token.claims.get("aud"), list) and len(token.claims["aud"]) > 1 and azp != auth.oidc_client_id:
        raise Failed("the ID token names several audiences and another authorised party")
    return dict(token.claims)
