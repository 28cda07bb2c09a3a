"""Pages of the second factor: the code (or security key) after the password, enrolment of an
authenticator app, recovery codes, the account's factors, and an administrator's reset."""

from __future__ import annotations

import hmac
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from commonwatch.access import mfa, securitykeys
from commonwatch.access import services as access
from commonwatch.access.authsettings import auth_settings
from commonwatch.access.models import WebSession
from commonwatch.access.principal import Principal
from commonwatch.errors import Invalid
from commonwatch.i18n import _
from commonwatch.web.deps import SESSION_COOKIE, CsrfFailed, LoginRequired, get_db, require, submitted_csrf
from commonwatch.web.pages import redirect, render, safe_next

router = APIRouter()


def mfa_session(request: Request, db: Session = Depends(get_db),
                csrf: str | None = Depends(submitted_csrf)) -> WebSession:
    """The browser session, half or fully signed in, for the second-factor routes."""
    state = request.app.state
    cookie = request.cookies.get(SESSION_COOKIE)
    ws = mfa.session_for(db, state.settings, auth_settings(state), cookie or "", state.clock.now())
    if ws is None:
        raise LoginRequired()
    if request.method not in ("GET", "HEAD", "OPTIONS") and not (
        csrf and hmac.compare_digest(csrf.encode(), ws.csrf_token.encode())
    ):
        raise CsrfFailed()
    request.state.csrf_token = ws.csrf_token
    db.info["actor"] = f"user:{ws.user_id} {ws.user.email}"
    if not ws.mfa_stage:
        request.state.principal = access.principal_for(db, ws.user, via="session")
    return ws


def _issuer(request: Request) -> str:
    return request.app.state.settings.centre_name


def _verify_page(request: Request, db: Session, ws: WebSession, next_url: str, *, error: str = "",
                 status_code: int = 200) -> HTMLResponse:
    return render(request, "access/mfa_verify.html", {
        "title": _("Second factor"), "factors": mfa.factors(db, ws.user_id), "next": next_url, "error": error,
    }, status_code=status_code)


def _enrol_page(request: Request, db: Session, ws: WebSession, next_url: str, *, error: str = "",
                status_code: int = 200) -> HTMLResponse:
    state = request.app.state
    auth = auth_settings(state)
    secret = mfa.pending_totp_secret(db, auth, state.settings, ws.user)
    uri = mfa.provisioning_uri(secret, ws.user, _issuer(request)) if secret else ""
    return render(request, "access/mfa_enrol.html", {
        "title": _("Set up a second factor"), "secret": secret, "qr": mfa.qr_svg(uri) if uri else "",
        "next": next_url, "error": error, "pending": ws.mfa_stage == mfa.ENROL,
        "factors": mfa.factors(db, ws.user_id),
    }, status_code=status_code)


def _done(ws_next: str, message: str) -> Response:
    return redirect(safe_next(ws_next), message)


def _ended(request: Request) -> Response:
    response = redirect("/login", _("Too many wrong codes. Please sign in again."))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/mfa")
def verify_form(request: Request, next: str | None = None, ws: WebSession = Depends(mfa_session),
                db: Session = Depends(get_db)) -> Response:
    if ws.mfa_stage == mfa.ENROL:
        return redirect(f"/mfa/enrol?next={quote(safe_next(next))}")
    if not ws.mfa_stage:
        return redirect("/account/mfa")
    return _verify_page(request, db, ws, safe_next(next))


@router.post("/mfa/totp")
def verify_totp(request: Request, code: str = Form(""), next: str = Form("/"),
                ws: WebSession = Depends(mfa_session), db: Session = Depends(get_db)) -> Response:
    state = request.app.state
    auth = auth_settings(state)
    if ws.mfa_stage != mfa.VERIFY:
        return redirect("/account/mfa")
    if mfa.check_totp(db, auth, state.settings, ws.user, code, state.clock.now()):
        mfa.complete(db, ws, "totp")
        db.commit()
        return _done(next, "")
    ended = mfa.failed(db, auth, ws, "totp")
    db.commit()
    if ended:
        return _ended(request)
    return _verify_page(request, db, ws, safe_next(next), error=_("That code is not right, or was used already."),
                        status_code=401)


@router.post("/mfa/recovery")
def verify_recovery(request: Request, code: str = Form(""), next: str = Form("/"),
                    ws: WebSession = Depends(mfa_session), db: Session = Depends(get_db)) -> Response:
    state = request.app.state
    auth = auth_settings(state)
    if ws.mfa_stage != mfa.VERIFY:
        return redirect("/account/mfa")
    if mfa.use_recovery_code(db, ws.user, code, state.clock.now()):
        mfa.complete(db, ws, "recovery")
        left = mfa.factors(db, ws.user_id).recovery_left
        db.commit()
        return _done(next, _("Signed in with a recovery code; {n} left.").format(n=left))
    ended = mfa.failed(db, auth, ws, "recovery")
    db.commit()
    if ended:
        return _ended(request)
    return _verify_page(request, db, ws, safe_next(next),
                        error=_("That recovery code is not right, or was used already."), status_code=401)


@router.post("/mfa/cancel")
def cancel(request: Request, ws: WebSession = Depends(mfa_session), db: Session = Depends(get_db)) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        access.sign_out(db, cookie)
        db.commit()
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- enrolment ------------------------------------------------------------------------------------

@router.get("/mfa/enrol")
def enrol_form(request: Request, next: str | None = None, ws: WebSession = Depends(mfa_session),
               db: Session = Depends(get_db)) -> Response:
    if ws.mfa_stage == mfa.VERIFY:
        return redirect(f"/mfa?next={quote(safe_next(next))}")
    return _enrol_page(request, db, ws, safe_next(next))


@router.post("/mfa/enrol/totp")
def enrol_totp_start(request: Request, next: str = Form("/"), ws: WebSession = Depends(mfa_session),
                     db: Session = Depends(get_db)) -> Response:
    state = request.app.state
    if ws.mfa_stage == mfa.VERIFY:
        return redirect("/mfa")
    try:
        mfa.start_totp(db, auth_settings(state), state.settings, ws.user)
    except Invalid as exc:
        db.rollback()
        return _enrol_page(request, db, ws, safe_next(next), error=exc.errors[0].reason, status_code=409)
    db.commit()
    return redirect(f"/mfa/enrol?next={quote(safe_next(next))}")


@router.post("/mfa/enrol/totp/confirm")
def enrol_totp_confirm(request: Request, code: str = Form(""), next: str = Form("/"),
                       ws: WebSession = Depends(mfa_session), db: Session = Depends(get_db)) -> Response:
    state = request.app.state
    auth = auth_settings(state)
    if ws.mfa_stage == mfa.VERIFY:
        return redirect("/mfa")
    now = state.clock.now()
    if not mfa.check_totp(db, auth, state.settings, ws.user, code, now, confirming=True):
        ended = mfa.failed(db, auth, ws, "totp.enrol")
        db.commit()
        if ended:
            return _ended(request)
        return _enrol_page(request, db, ws, safe_next(next), error=_("That code is not right. Check the time on "
                                                                     "your device and try the next code."),
                           status_code=422)
    return _finish_enrolment(request, db, ws, next, "totp", now)


def _finish_enrolment(request: Request, db: Session, ws: WebSession, next_url: str, method: str, now) -> Response:
    codes = []
    if mfa.factors(db, ws.user_id).recovery_left == 0:
        codes = mfa.new_recovery_codes(db, ws.user, now)
    if ws.mfa_stage:
        mfa.complete(db, ws, f"{method}.enrol")
    db.commit()
    if not codes:
        return redirect(safe_next(next_url), _("Second factor added."))
    return render(request, "access/mfa_codes.html", {
        "title": _("Recovery codes"), "codes": codes, "next": safe_next(next_url),
    })


# --- the account's factors ---------------------------------------------------------------------------

@router.get("/account/mfa")
def account_mfa(request: Request, ws: WebSession = Depends(mfa_session), db: Session = Depends(get_db)) -> Response:
    if ws.mfa_stage:
        return redirect("/mfa")
    from sqlalchemy import select

    from commonwatch.access.mfa_models import WebAuthnCredential

    keys = db.scalars(select(WebAuthnCredential).where(WebAuthnCredential.user_id == ws.user_id)
                      .order_by(WebAuthnCredential.id)).all()
    return render(request, "access/mfa_account.html", {
        "title": _("Sign-in factors"), "factors": mfa.factors(db, ws.user_id), "keys": keys,
        "required": mfa.required(auth_settings(request.app.state), ws.user),
    })


@router.post("/account/mfa/recovery")
def account_recovery_codes(request: Request, ws: WebSession = Depends(mfa_session),
                           db: Session = Depends(get_db)) -> Response:
    if ws.mfa_stage:
        return redirect("/mfa")
    codes = mfa.new_recovery_codes(db, ws.user, request.app.state.clock.now())
    db.commit()
    return render(request, "access/mfa_codes.html", {"title": _("Recovery codes"), "codes": codes,
                                                     "next": "/account/mfa"})


# --- an administrator's reset -------------------------------------------------------------------------

@router.post("/admin/users/{user_id}/mfa/reset")
def admin_reset(user_id: int, request: Request, principal: Principal = Depends(require("users.write")),
                db: Session = Depends(get_db)) -> Response:
    user = access.get_user(db, user_id)
    mfa.reset(db, user)
    db.commit()
    return redirect(f"/admin/users/{user.id}",
                    _("Second factors reset; the user sets up a new one at the next sign-in."))


# --- security keys (WebAuthn); the page script is access/static/webauthn.js -----------------------

class KeyRegistration(BaseModel):
    credential: dict
    name: str = ""
    next: str = "/"


class KeyAssertion(BaseModel):
    credential: dict
    next: str = "/"


def _json_error(exc: Invalid, status_code: int = 400) -> JSONResponse:
    return JSONResponse({"error": exc.errors[0].reason}, status_code=status_code)


@router.post("/mfa/webauthn/register/options")
def key_register_options(request: Request, ws: WebSession = Depends(mfa_session),
                         db: Session = Depends(get_db)) -> Response:
    if ws.mfa_stage == mfa.VERIFY:
        return JSONResponse({"error": _("Sign in with your second factor first.")}, status_code=409)
    state = request.app.state
    options = securitykeys.registration_options(db, auth_settings(state), state.settings, ws)
    db.commit()
    return JSONResponse(options)


@router.post("/mfa/webauthn/register")
def key_register(body: KeyRegistration, request: Request, ws: WebSession = Depends(mfa_session),
                 db: Session = Depends(get_db)) -> Response:
    if ws.mfa_stage == mfa.VERIFY:
        return JSONResponse({"error": _("Sign in with your second factor first.")}, status_code=409)
    state = request.app.state
    now = state.clock.now()
    try:
        securitykeys.register(db, auth_settings(state), state.settings, ws, body.credential, body.name, now)
    except Invalid as exc:
        db.commit()  # the challenge is spent either way
        return _json_error(exc)
    codes = []
    if mfa.factors(db, ws.user_id).recovery_left == 0:
        codes = mfa.new_recovery_codes(db, ws.user, now)
    if ws.mfa_stage:
        mfa.complete(db, ws, "webauthn.enrol")
    db.commit()
    return JSONResponse({"codes": codes, "next": safe_next(body.next), "message": _("Security key added.")})


@router.post("/mfa/webauthn/options")
def key_sign_in_options(request: Request, ws: WebSession = Depends(mfa_session),
                        db: Session = Depends(get_db)) -> Response:
    if ws.mfa_stage != mfa.VERIFY:
        return JSONResponse({"error": _("Sign in with your password first.")}, status_code=409)
    state = request.app.state
    options = securitykeys.authentication_options(db, auth_settings(state), state.settings, ws)
    db.commit()
    return JSONResponse(options)


@router.post("/mfa/webauthn")
def key_sign_in(body: KeyAssertion, request: Request, ws: WebSession = Depends(mfa_session),
                db: Session = Depends(get_db)) -> Response:
    if ws.mfa_stage != mfa.VERIFY:
        return JSONResponse({"error": _("Sign in with your password first.")}, status_code=409)
    state = request.app.state
    auth = auth_settings(state)
    try:
        securitykeys.authenticate(db, auth, state.settings, ws, body.credential, state.clock.now())
    except Invalid as exc:
        ended = mfa.failed(db, auth, ws, "webauthn")
        db.commit()
        return JSONResponse({"error": exc.errors[0].reason, "ended": ended}, status_code=401)
    mfa.complete(db, ws, "webauthn")
    db.commit()
    return JSONResponse({"next": safe_next(body.next)})
