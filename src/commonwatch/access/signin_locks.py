"""Sign-in locks for admins: the page ``/admin/signin-locks`` and ``/api/v1/signin-locks``, to see
which accounts and addresses are locked and to clear a lock (recorded in the audit log)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from commonwatch.access import signin_limits
from commonwatch.access.principal import Principal
from commonwatch.errors import Invalid
from commonwatch.i18n import _
from commonwatch.web.deps import get_db, require
from commonwatch.web.pages import redirect, render

page_router = APIRouter()
api_router = APIRouter(tags=["access"])


class LockOut(BaseModel):
    kind: str = Field(description="account_from_address, address or account")
    email: str
    ip: str
    failures: int
    until: datetime


class UnlockIn(BaseModel):
    email: str = Field("", max_length=320, description="The account whose failures to forget.")
    ip: str = Field("", max_length=64, description="The client address whose failures to forget.")


class UnlockOut(BaseModel):
    cleared: int


def _locks(request: Request, db: Session) -> list[signin_limits.Lock]:
    state = request.app.state
    return signin_limits.locks(db, state.settings, state.clock.now())


@api_router.get("/signin-locks", response_model=list[LockOut])
def list_locks(request: Request, principal: Principal = Depends(require("users.write")),
               db: Session = Depends(get_db)):
    return [LockOut(kind=lk.kind, email=lk.email, ip=lk.ip, failures=lk.failures, until=lk.until)
            for lk in _locks(request, db)]


@api_router.post("/signin-locks/clear", response_model=UnlockOut)
def clear_lock(body: UnlockIn, request: Request, principal: Principal = Depends(require("users.write")),
               db: Session = Depends(get_db)):
    state = request.app.state
    cleared = signin_limits.clear(db, state.settings, state.clock.now(), email=body.email, ip=body.ip)
    db.commit()
    return UnlockOut(cleared=cleared)


@page_router.get("/admin/signin-locks")
def locks_page(request: Request, principal: Principal = Depends(require("users.write")),
               db: Session = Depends(get_db)) -> HTMLResponse:
    return render(request, "access/signin_locks.html", {"title": _("Sign-in locks"), "locks": _locks(request, db),
                                                         "errors": {}})


@page_router.post("/admin/signin-locks/clear")
def locks_clear(request: Request, email: str = Form(""), ip: str = Form(""),
                principal: Principal = Depends(require("users.write")), db: Session = Depends(get_db)) -> Response:
    state = request.app.state
    try:
        cleared = signin_limits.clear(db, state.settings, state.clock.now(), email=email[:320], ip=ip[:64])
    except Invalid as exc:
        db.rollback()
        return render(request, "access/signin_locks.html", {
            "title": _("Sign-in locks"), "locks": _locks(request, db), "errors": exc.by_field()}, status_code=422)
    db.commit()
    return redirect("/admin/signin-locks", _("Lock cleared ({n} failed sign-ins forgotten).").format(n=cleared))
