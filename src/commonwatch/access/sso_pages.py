"""Pages of single sign-on: "Sign in with …" through OpenID Connect, and the directory (LDAP)
sign-in form. Both end like a password sign-in: a browser session, held for the second factor
when the policy says so."""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from commonwatch.access import audit, mfa, oidc, sso
from commonwatch.access.authsettings import AuthSettings, auth_settings
from commonwatch.errors import Invalid, NotFound
from commonwatch.i18n import _
from commonwatch.web.deps import LANG_COOKIE, SESSION_COOKIE, client_ip, get_db, writes
from commonwatch.web.pages import redirect, safe_next

router = APIRouter()
log = logging.getLogger("commonwatch.sso")


def sign_on_choices(state) -> dict[str, str]:
    """The sign-in page's other ways in: {"oidc": label, "ldap": label} for those configured."""
    auth = auth_settings(state)
    choices = {}
    if auth.oidc_issuer:
        choices["oidc"] = auth.oidc_label or _("single sign-on")
    if auth.ldap_url:
        choices["ldap"] = auth.ldap_label or _("directory account")
    return choices


def _redirect_uri(auth: AuthSettings, settings) -> str:
    return auth.oidc_redirect_uri or settings.base_url.rstrip("/") + "/login/oidc/callback"


def _login_error(request: Request, message: str, status_code: int, next_url: str = "/") -> Response:
    from commonwatch.access.pages import _login_page

    return _login_page(request, error=message, next_url=next_url, status_code=status_code)


def signed_in(request: Request, db: Session, auth: AuthSettings, user, cookie: str, next_url: str,
              local_mfa: bool) -> Response:
    """Commit the new session and answer as the password sign-in does."""
    state = request.app.state
    stage = mfa.hold_session(db, auth, user, cookie) if local_mfa else None
    db.commit()
    target = safe_next(next_url)
    response = redirect(f"/mfa?next={quote(target)}" if stage else target)
    settings = state.settings
    response.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="lax", secure=settings.secure_cookies,
                        max_age=int(settings.session_hours * 3600), path="/")
    if LANG_COOKIE not in request.cookies:
        response.set_cookie(LANG_COOKIE, user.language, max_age=365 * 86400, samesite="lax", path="/")
    return response


def provision_and_open(request: Request, db: Session, auth: AuthSettings, *, provider: str, subject: str,
                       email: str, name: str, groups: set[str] | None, email_verified: bool, method: str,
                       claims: dict | None = None):
    """The user and a new session cookie, or raise sso.Refused (recorded in the audit log)."""
    state = request.app.state
    now = state.clock.now()
    ip = client_ip(request)
    try:
        mapping = sso.load_mapping(auth.sso_mapping_file, state.settings.data_dir)
        if claims is not None:
            groups = sso.groups_of(claims.get(mapping.groups_claim))
        user = sso.provision(db, mapping, provider=provider, subject=subject, email=email, name=name,
                             groups=groups, email_verified=email_verified, now=now)
    except (sso.Refused, Invalid) as exc:
        db.rollback()
        reason = str(exc) if isinstance(exc, sso.Refused) else "; ".join(e.reason for e in exc.errors)
        audit.record(db, "signin.refused", "users", "", after={"method": method, "subject": subject,
                                                               "email": email, "reason": reason},
                     actor=f"anonymous {ip}")
        db.commit()
        raise sso.Refused(reason) from None
    cookie = sso.open_session(db, state.settings, user, ip, now, method)
    return user, cookie


# --- OpenID Connect -------------------------------------------------------------------------------

@router.get("/login/oidc")
def oidc_start(request: Request, next: str | None = None) -> Response:
    state = request.app.state
    auth = auth_settings(state)
    if not auth.oidc_issuer:
        raise NotFound()
    try:
        url, cookie = oidc.start(auth, state.settings, _redirect_uri(auth, state.settings), safe_next(next),
                                 state.clock.now())
    except oidc.Failed as exc:
        log.warning("oidc sign-in could not start", extra={"reason": str(exc)})
        return _login_error(request, _("Single sign-on is not available: {reason}").format(reason=exc), 502)
    response = redirect(url)
    response.set_cookie(oidc.STATE_COOKIE, cookie, httponly=True, samesite="lax", path="/login/oidc",
                        secure=state.settings.secure_cookies, max_age=oidc.STATE_SECONDS)
    return response


@router.get("/login/oidc/callback")
@writes
def oidc_callback(request: Request, db: Session = Depends(get_db)) -> Response:
    state = request.app.state
    auth = auth_settings(state)
    if not auth.oidc_issuer:
        raise NotFound()
    try:
        identity, next_url = oidc.finish(auth, state.settings, request.cookies.get(oidc.STATE_COOKIE, ""),
                                         dict(request.query_params), _redirect_uri(auth, state.settings),
                                         state.clock.now())
    except oidc.Failed as exc:
        audit.record(db, "signin.failed", "users", "", after={"method": "oidc", "reason": str(exc)},
                     actor=f"anonymous {client_ip(request)}")
        db.commit()
        log.warning("oidc sign-in failed", extra={"reason": str(exc)})
        return _login_error(request, _("Single sign-on failed: {reason}").format(reason=exc), 401)
    try:
        user, cookie = provision_and_open(
            request, db, auth, provider=f"oidc:{auth.oidc_issuer.rstrip('/')}", subject=identity.subject,
            email=identity.email, name=identity.name, groups=None, claims=identity.claims,
            email_verified=identity.email_verified, method="oidc")
    except sso.Refused as exc:
        return _login_error(request, _("Single sign-on refused: {reason}").format(reason=exc), 403)
    response = signed_in(request, db, auth, user, cookie, next_url, auth.oidc_local_mfa)
    response.delete_cookie(oidc.STATE_COOKIE, path="/login/oidc")
    return response


# --- LDAP -------------------------------------------------------------------------------------------

def _ldap_page(request: Request, *, error: str = "", username: str = "", next_url: str = "/",
               status_code: int = 200) -> Response:
    import secrets

    from commonwatch.access.pages import LOGIN_CSRF_COOKIE
    from commonwatch.web.pages import render

    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(request, "access/login_ldap.html", {
        "title": _("Directory sign-in"), "error": error, "username": username, "next": next_url,
        "login_csrf": token, "label": sign_on_choices(request.app.state).get("ldap", ""),
    }, status_code=status_code)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login",
                        secure=request.app.state.settings.secure_cookies, max_age=3600)
    return response


@router.get("/login/ldap")
def ldap_form(request: Request, next: str | None = None) -> Response:
    if not auth_settings(request.app.state).ldap_url:
        raise NotFound()
    return _ldap_page(request, next_url=safe_next(next))


@router.post("/login/ldap")
def ldap_sign_in(request: Request, username: str = Form(""), password: str = Form(""), next: str = Form("/"),
                 csrf_token: str = Form(""), db: Session = Depends(get_db)) -> Response:
    import secrets

    from commonwatch.access import directory
    from commonwatch.access import services as access
    from commonwatch.access.models import LoginAttempt
    from commonwatch.access.pages import LOGIN_CSRF_COOKIE

    state = request.app.state
    auth = auth_settings(state)
    if not auth.ldap_url:
        raise NotFound()
    next_url = safe_next(next)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf_token):
        return _ldap_page(request, error=_("The form has expired. Please sign in again."), username=username,
                          next_url=next_url, status_code=403)
    now = state.clock.now()
    ip = client_ip(request)
    key = f"ldap:{username.strip().lower()}"[:320]
    try:
        access.check_rate_limit(db, state.settings, key, ip, now)
    except access.RateLimited as exc:
        return _ldap_page(request, error=_("Too many failed attempts. Try again in {minutes} minutes.").format(
            minutes=max(1, exc.retry_after // 60)), username=username, next_url=next_url, status_code=429)
    try:
        found = directory.authenticate(auth, username, password)
    except directory.Unavailable as exc:
        log.warning("ldap sign-in: directory unavailable", extra={"reason": str(exc)})
        return _ldap_page(request, error=_("The directory cannot be reached. Local accounts can still sign in."),
                          username=username, next_url=next_url, status_code=503)
    if found is None:
        db.add(LoginAttempt(email=key, ip=ip, at=now, success=False))
        audit.record(db, "signin.failed", "users", "", after={"method": "ldap", "username": username, "ip": ip},
                     actor=f"anonymous {ip}")
        db.commit()
        return _ldap_page(request, error=_("Wrong username or password."), username=username, next_url=next_url,
                          status_code=401)
    try:
        user, cookie = provision_and_open(
            request, db, auth, provider=f"ldap:{auth.ldap_url}", subject=found.dn, email=found.email,
            name=found.name, groups=set(found.groups), email_verified=True, method="ldap")
    except sso.Refused as exc:
        return _ldap_page(request, error=_("Single sign-on refused: {reason}").format(reason=exc),
                          username=username, next_url=next_url, status_code=403)
    db.add(LoginAttempt(email=key, ip=ip, at=now, success=True))
    response = signed_in(request, db, auth, user, cookie, next_url, auth.ldap_local_mfa)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response
