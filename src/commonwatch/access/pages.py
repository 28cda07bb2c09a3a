"""Pages: sign-in and sign-out, the account page (password, language, tokens), user
administration, and the audit log."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from commonwatch.access import anchor, audit, mfa, signin_locks
from commonwatch.access import services as access
from commonwatch.access.authsettings import auth_settings
from commonwatch.access.models import ApiToken, AuditEntry, User
from commonwatch.access.principal import Principal, Role, role_label
from commonwatch.access.sso_pages import sign_on_choices
from commonwatch.constituency.models import Organisation
from commonwatch.errors import Invalid, NotFound
from commonwatch.i18n import N_, _
from commonwatch.web.deps import LANG_COOKIE, SESSION_COOKIE, client_ip, get_db, require, require_principal
from commonwatch.web.listing import ListSpec, empty_page, list_page, parse_list_query
from commonwatch.web.nav import NavItem
from commonwatch.web.pages import redirect, render, safe_next

router = APIRouter()
router.routes.extend(signin_locks.page_router.routes)
NAV = [
    NavItem(label=N_("Sign-in locks"), path="/admin/signin-locks", permission="users.write", order=91),
    NavItem(label=N_("Users"), path="/admin/users", permission="users.read", order=90),
    NavItem(label=N_("Audit log"), path="/audit", permission="audit.read", order=95),
]
LOGIN_CSRF_COOKIE = "cw_login_csrf"


def _login_page(request: Request, *, error: str = "", email: str = "", next_url: str = "/",
                status_code: int = 200) -> HTMLResponse:
    # Double-submit token for the sign-in form: reuse the browser's, so two open tabs both work.
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(request, "access/login.html", {
        "title": _("Sign in"), "error": error, "email": email, "next": next_url, "login_csrf": token,
        "sign_on": sign_on_choices(request.app.state),
    }, status_code=status_code)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login",
                        secure=request.app.state.settings.secure_cookies, max_age=3600)
    return response


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return _login_page(request, next_url=safe_next(next))


@router.post("/login")
def login(request: Request, email: str = Form(""), password: str = Form(""), next: str = Form("/"),
          csrf_token: str = Form(""), db: Session = Depends(get_db)) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf_token):
        return _login_page(request, error=_("The form has expired. Please sign in again."), email=email,
                           next_url=safe_next(next), status_code=403)
    state = request.app.state
    try:
        result = access.sign_in(db, state.settings, email, password, client_ip(request), state.clock.now())
    except access.RateLimited as exc:
        db.commit()
        locked = _login_page(request, error=_("Too many failed attempts. Try again in {minutes} minutes.").format(
            minutes=max(1, -(-exc.retry_after // 60))), email=email, next_url=safe_next(next), status_code=429)
        locked.headers["Retry-After"] = str(exc.retry_after)
        return locked
    stage = mfa.hold_session(db, auth_settings(state), *result) if result is not None else None
    db.commit()
    if result is None:
        return _login_page(request, error=_("Wrong email or password."), email=email,
                           next_url=safe_next(next), status_code=401)
    user, cookie = result
    response = redirect(f"/mfa?next={quote(safe_next(next))}" if stage else safe_next(next))
    settings = state.settings
    response.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="lax", secure=settings.secure_cookies,
                        max_age=int(settings.session_hours * 3600), path="/")
    if LANG_COOKIE not in request.cookies:
        response.set_cookie(LANG_COOKIE, user.language, max_age=365 * 86400, samesite="lax", path="/",
                            secure=settings.secure_cookies)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, principal: Principal = Depends(require_principal),
           db: Session = Depends(get_db)) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        access.sign_out(db, cookie)
        audit.record(db, "signout", "users", principal.user_id)
        db.commit()
    response = redirect("/login", _("You have signed out."))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- the account page --------------------------------------------------------------------------

def _account_page(request: Request, db: Session, principal: Principal, *, errors: dict | None = None,
                  new_token: str = "", status_code: int = 200) -> HTMLResponse:
    user = access.get_user(db, principal.user_id)
    tokens = db.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc()))
    orgs = db.scalars(select(Organisation).where(Organisation.id.in_(user.org_ids))).all()
    return render(request, "access/account.html", {
        "title": _("Your account"), "user": user, "tokens": list(tokens), "orgs": orgs,
        "errors": errors or {}, "new_token": new_token, "now": request.app.state.clock.now(),
        "role_name": role_label(user.role), "account_sections": _account_sections(db, principal),
    }, status_code=status_code)


def _account_sections(db: Session, principal: Principal) -> list[dict]:
    """Each capability's part of the account page (``<capability>/account.py: section``)."""
    from commonwatch import capabilities

    parts = (module.section(db, principal) for _cap, module in capabilities.parts("account"))
    return [p for p in parts if p]


@router.get("/account")
def account(request: Request, principal: Principal = Depends(require_principal),
            db: Session = Depends(get_db)) -> HTMLResponse:
    return _account_page(request, db, principal)


@router.post("/account/profile")
def account_profile(request: Request, name: str = Form(""), language: str = Form("en"),
                    timezone: str = Form(""), principal: Principal = Depends(require_principal),
                    db: Session = Depends(get_db)) -> Response:
    user = access.get_user(db, principal.user_id)
    try:
        access.update_user(db, user, name=name, language=language, timezone=timezone)
    except Invalid as exc:
        db.rollback()
        return _account_page(request, db, principal, errors=exc.by_field(), status_code=422)
    db.commit()
    response = redirect("/account", _("Saved."))
    response.set_cookie(LANG_COOKIE, user.language, max_age=365 * 86400, samesite="lax", path="/",
                        secure=request.app.state.settings.secure_cookies)
    return response


@router.post("/account/password")
def account_password(request: Request, current: str = Form(""), new: str = Form(""),
                     principal: Principal = Depends(require_principal), db: Session = Depends(get_db)) -> Response:
    user = access.get_user(db, principal.user_id)
    if not access.check_password(user, current):
        return _account_page(request, db, principal, errors={"current": _("is not your current password")},
                             status_code=422)
    try:
        access.set_password(db, user, new)
    except Invalid as exc:
        db.rollback()
        errors = {("new" if k == "password" else k): v for k, v in exc.by_field().items()}
        return _account_page(request, db, principal, errors=errors, status_code=422)
    db.commit()
    response = redirect("/login", _("Password changed. Please sign in again."))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/account/tokens")
def account_token_create(request: Request, name: str = Form(""), expires_days: str = Form("90"),
                         principal: Principal = Depends(require("tokens.self")),
                         db: Session = Depends(get_db)) -> Response:
    user = access.get_user(db, principal.user_id)
    try:
        days = float(expires_days) if expires_days.strip() else None
    except ValueError:
        return _account_page(request, db, principal, errors={"expires_days": _("must be a number of days")},
                             status_code=422)
    try:
        issued = access.create_token(db, user, name=name, expires_days=days, now=request.app.state.clock.now())
    except Invalid as exc:
        db.rollback()
        return _account_page(request, db, principal, errors={"expires_days": exc.errors[0].reason},
                             status_code=422)
    db.commit()
    return _account_page(request, db, principal, new_token=issued.secret)


@router.post("/account/tokens/{token_id}/revoke")
def account_token_revoke(token_id: int, request: Request, principal: Principal = Depends(require("tokens.self")),
                         db: Session = Depends(get_db)) -> Response:
    token = db.get(ApiToken, token_id)
    if token is None or token.user_id != principal.user_id:
        raise NotFound()
    access.revoke_token(db, token, request.app.state.clock.now())
    db.commit()
    return redirect("/account", _("Token revoked."))


# --- user administration -----------------------------------------------------------------------

def _org_choices(db: Session) -> list[tuple[int, str]]:
    return [(o.id, o.name) for o in db.scalars(select(Organisation).order_by(Organisation.name))]


def _parse_org_ids(values: list[str]) -> list[int]:
    out = []
    for v in values:
        for piece in v.replace(",", " ").split():
            if not piece.isdigit():
                raise Invalid("org", _("“{value}” is not an organisation id").format(value=piece))
            out.append(int(piece))
    return out


_NEVER = datetime(1970, 1, 1, tzinfo=UTC)
#: The ranks of roles in the list (the centre's roles first), so a role sorts by rank, not spelling.
_ROLE_RANK = case({r.value: i + 1 for i, r in enumerate(Role)}, value=User.role, else_=0)
USERS_LIST = ListSpec(path="/admin/users", id_column=User.id, default_sort="email", default_desc=False,
                      sorts={"email": User.email, "name": User.name, "role": _ROLE_RANK,
                             "active": case((User.active.is_(True), 1), else_=0),
                             "last_login": func.coalesce(User.last_login_at, _NEVER, type_=User.last_login_at.type)},
                      filters=("q", "role", "active"))


def _users_list(db: Session, params) -> tuple[Any, dict[str, str]]:
    """The users list (the centre's own register: users.read is a staff right, not a tenant's)."""
    try:
        lq = parse_list_query(USERS_LIST, params)
        stmt = select(User)
        q, role, active = (lq.params.get(k, "") for k in ("q", "role", "active"))
        if q:
            stmt = stmt.where(User.email.contains(q.lower()) | User.name.contains(q))
        if role:
            if role not in {r.value for r in Role}:
                raise Invalid("role", _("“{value}” is not one of: {choices}").format(
                    value=role, choices=", ".join(r.value for r in Role)))
            stmt = stmt.where(User.role == role)
        if active:
            if active not in ("yes", "no"):
                raise Invalid("active", _("“{value}” is not one of: {choices}").format(value=active, choices="yes, no"))
            stmt = stmt.where(User.active.is_(active == "yes"))
        return list_page(db, stmt, USERS_LIST, lq), {}
    except Invalid as exc:
        return empty_page(USERS_LIST, params), exc.by_field()


@router.get("/admin/users")
def users_page(request: Request, principal: Principal = Depends(require("users.read")),
               db: Session = Depends(get_db)) -> HTMLResponse:
    lst, list_errors = _users_list(db, request.query_params)
    return render(request, "access/users.html", {
        "title": _("Users"), "users": list(lst.items), "lst": lst, "list_errors": list_errors,
        "f": {k: lst.query.params.get(k, "") for k in ("role", "active")},
        "roles": [(r.value, role_label(r)) for r in Role], "orgs": _org_choices(db), "errors": {}, "form": {},
    }, status_code=422 if list_errors else 200)


@router.post("/admin/users")
def users_create(request: Request, email: str = Form(""), name: str = Form(""), role: str = Form(""),
                 org: list[str] = Form([]), password: str = Form(""), language: str = Form("zh-CN"),
                 principal: Principal = Depends(require("users.write")), db: Session = Depends(get_db)) -> Response:
    form = {"email": email, "name": name, "role": role, "org": org, "language": language}
    try:
        user = access.create_user(db, email, role, password, name=name, org_ids=_parse_org_ids(org),
                                  language=language)
    except Invalid as exc:
        db.rollback()
        lst, _list_errors = _users_list(db, {})
        return render(request, "access/users.html", {
            "title": _("Users"), "users": list(lst.items), "lst": lst, "list_errors": {},
            "f": {"role": "", "active": ""},
            "roles": [(r.value, role_label(r)) for r in Role], "orgs": _org_choices(db),
            "errors": exc.by_field(), "form": form,
        }, status_code=422)
    db.commit()
    return redirect(f"/admin/users/{user.id}", _("User created."))


@router.get("/admin/users/{user_id}")
def user_page(user_id: int, request: Request, principal: Principal = Depends(require("users.read")),
              db: Session = Depends(get_db)) -> HTMLResponse:
    user = access.get_user(db, user_id)
    return render(request, "access/user.html", {
        "title": user.email, "user": user, "roles": [(r.value, role_label(r)) for r in Role],
        "orgs": _org_choices(db), "errors": {}, "factors": mfa.factors(db, user.id),
    })


@router.post("/admin/users/{user_id}")
def user_update(user_id: int, request: Request, name: str = Form(""), role: str = Form(""),
                org: list[str] = Form([]), active: str = Form(""), password: str = Form(""),
                principal: Principal = Depends(require("users.write")), db: Session = Depends(get_db)) -> Response:
    user = access.get_user(db, user_id)
    try:
        access.update_user(db, user, name=name, role=role, org_ids=_parse_org_ids(org), active=bool(active))
        if password:
            access.set_password(db, user, password)
    except Invalid as exc:
        db.rollback()
        user = access.get_user(db, user_id)
        return render(request, "access/user.html", {
            "title": user.email, "user": user, "roles": [(r.value, role_label(r)) for r in Role],
            "orgs": _org_choices(db), "errors": exc.by_field(),
        }, status_code=422)
    db.commit()
    return redirect(f"/admin/users/{user.id}", _("Saved."))


# --- the audit log -------------------------------------------------------------------------------

AUDIT_LIST = ListSpec(path="/audit", id_column=AuditEntry.seq, default_sort="seq", per_page=100,
                      sorts={"seq": AuditEntry.seq, "actor": AuditEntry.actor, "action": AuditEntry.action,
                             "entity": AuditEntry.entity},
                      filters=("q", "entity", "actor"))


@router.get("/audit")
def audit_page(request: Request, verify: bool = False, principal: Principal = Depends(require("audit.read")),
               db: Session = Depends(get_db)) -> HTMLResponse:
    errors: dict[str, str] = {}
    try:
        lq = parse_list_query(AUDIT_LIST, request.query_params)
        # The audit log is the centre's own: audit.read is a staff right, not a tenant's.
        stmt = audit.entries_query(entity=lq.params.get("entity", ""), actor=lq.params.get("actor", ""))
        if lq.params.get("q"):
            text = lq.params["q"]
            stmt = stmt.where(AuditEntry.action.contains(text) | AuditEntry.entity_id.contains(text))
        lst = list_page(db, stmt, AUDIT_LIST, lq)
    except Invalid as exc:
        errors = exc.by_field()
        lst = empty_page(AUDIT_LIST, request.query_params)
    result = anchor.verify(db, request.app.state.settings) if verify else None
    return render(request, "access/audit.html", {
        "title": _("Audit log"), "entries": list(lst.items), "lst": lst, "errors": errors,
        "entity": lst.query.params.get("entity", ""), "actor": lst.query.params.get("actor", ""),
        "result": result, "window": timedelta(0),
    }, status_code=422 if errors else 200)


from commonwatch.access.mfa_pages import router as _mfa_router  # noqa: E402 - the second-factor pages
from commonwatch.access.sso_pages import router as _sso_router  # noqa: E402 - single sign-on

router.routes.extend(_mfa_router.routes)
router.routes.extend(_sso_router.routes)
from commonwatch.access.saved_filters_pages import router as _filters_router  # noqa: E402 - saved filters

router.routes.extend(_filters_router.routes)
