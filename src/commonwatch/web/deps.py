"""Request dependencies: the database session, the acting principal (cookie or bearer token),
CSRF checks, and permission guards. Every router gets its principal from here."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from commonwatch.access import services as access
from commonwatch.access.principal import Principal
from commonwatch.db import read_only_engine, run_writes_after
from commonwatch.errors import Forbidden

SESSION_COOKIE = "cw_session"
LANG_COOKIE = "cw_lang"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WRITES = "__commonwatch_writes__"
WRITES_APART = "__commonwatch_writes_apart__"
QUIET = "__commonwatch_quiet__"
log = logging.getLogger("commonwatch.http")

#: Longest search text a list takes. SQLite refuses a LIKE pattern over 50,000 bytes
#: (SQLITE_MAX_LIKE_PATTERN_LENGTH; "LIKE or GLOB pattern too complex"); a search box needs far less,
#: and 1,000 characters stay under that limit in any encoding and with every character escaped.
MAX_SEARCH_CHARS = 1000
SearchText = Annotated[str, Query(max_length=MAX_SEARCH_CHARS, description="Search text (at most 1,000 characters).")]


class LoginRequired(Exception):
    """No valid credentials: 401 for the API, a redirect to the sign-in page for pages."""

    def __init__(self, reason: str = "sign-in required", bearer: bool = False):
        self.reason = reason
        self.bearer = bearer
        super().__init__(reason)


class CsrfFailed(Exception):
    pass


def get_db(request: Request) -> Iterator[Session]:
    """The request's database session. A GET, HEAD or OPTIONS request only reads (on SQLite it
    never waits for a writer, such as an ingest, and a write in it is an error); advisory writes
    queued with ``db.write_after`` run once the request's own transaction is over."""
    state = request.app.state
    endpoint = request.scope.get("endpoint")
    safe = ((request.method in SAFE_METHODS and not getattr(endpoint, WRITES, False))
            or getattr(endpoint, WRITES_APART, False))
    session = state.sessionmaker(bind=read_only_engine(state.engine)) if safe else state.sessionmaker()
    session.info["clock"] = state.clock
    session.info["actor"] = f"anonymous {client_ip(request)}"
    try:
        yield session
        if session.new or session.dirty or session.deleted:
            session.commit()  # in a read-only session this fails, loudly, rather than losing them
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
        try:
            run_writes_after(state.engine, session)
        except SQLAlchemyError as exc:  # advisory: never the reason a request fails
            log.warning("advisory write failed", extra={"error": str(exc)})


def writes_apart(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a POST endpoint that writes only in a session of its own, opened once the request is
    read and checked: its request session only reads, so the write lock (on SQLite) is not held
    while the body arrives and is validated."""
    setattr(endpoint, WRITES_APART, True)
    return endpoint


def quiet(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a GET endpoint a page polls in the background (the bell's unread count): it does not
    slide the browser session's idle timer, so an open tab does not keep a session alive."""
    setattr(endpoint, QUIET, True)
    return endpoint


def writes(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a GET endpoint that writes (an export records who took what in the audit log): its
    session takes the write lock as a POST's does, instead of failing as a read."""
    setattr(endpoint, WRITES, True)
    return endpoint


def client_ip(request: Request) -> str:
    """The client's address; from forwarding headers only when the peer is a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    trusted = request.app.state.settings.trusted_proxies
    if not trusted:
        return peer
    from commonwatch.access.signin_limits import client_address

    return client_address(peer, request.headers, trusted)


async def submitted_csrf(request: Request) -> str | None:
    """The CSRF token a state-changing request carries, in a header or a form field. A request with
    an Authorization header needs none (a bearer token is not sent by a browser on its own), and its
    body is left unread for the route (reading a form here consumed a raw upload's stream)."""
    if request.method in SAFE_METHODS or request.headers.get("authorization"):
        return None
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("csrf_token")
        return value if isinstance(value, str) else None
    return None


#: Authorization schemes that carry an API token.
TOKEN_SCHEMES = frozenset({"bearer", "token"})


def current_principal(request: Request, db: Session = Depends(get_db),
                      csrf: str | None = Depends(submitted_csrf)) -> Principal | None:
    """Who is acting, or None. A bearer token wins over a cookie and needs no CSRF token.

    ``Authorization: Token <token>`` is the same as ``Bearer``: it is what taxii2-client's
    ``TokenAuth`` sends."""
    state = request.app.state
    now = state.clock.now()
    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _sp, secret = auth.partition(" ")
        if scheme.lower() not in TOKEN_SCHEMES or not secret.strip():
            raise LoginRequired("unsupported authorization scheme", bearer=True)
        token = access.resolve_token(db, secret.strip(), now)
        if token is None:
            raise LoginRequired("invalid, expired or revoked token", bearer=True)
        principal = access.principal_for(db, token.user, via="token", token_id=token.id)
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        ws = access.resolve_session(db, state.settings, cookie, now,
                                    slide=not getattr(request.scope.get("endpoint"), QUIET, False))
        if ws is None:
            return None
        if request.method not in SAFE_METHODS and not (
            csrf and hmac.compare_digest(csrf.encode(), ws.csrf_token.encode())
        ):
            raise CsrfFailed()
        request.state.csrf_token = ws.csrf_token
        principal = access.principal_for(db, ws.user, via="session")
    db.info["actor"] = principal.actor
    request.state.principal = principal
    return principal


def require_principal(principal: Principal | None = Depends(current_principal)) -> Principal:
    if principal is None:
        raise LoginRequired()
    return principal


def require(permission: str) -> Callable[..., Principal]:
    """A dependency: the principal, if their role holds ``permission`` (or its ``.own`` form)."""

    def guard(principal: Principal = Depends(require_principal)) -> Principal:
        if not (principal.has(permission) or principal.has(f"{permission}.own")):
            raise Forbidden()
        return principal

    guard.__name__ = f"require_{permission.replace('.', '_')}"
    return guard


def authorize(principal: Principal, permission: str, org_id: int | None = None) -> None:
    """Raise Forbidden unless ``principal`` may do ``permission`` (for ``org_id`` when given)."""
    if not principal.can(permission, org_id):
        raise Forbidden()


def state(request: Request) -> Any:
    return request.app.state
