"""Pages: the person's notifications (mark read, mark all read; new ones appear without a reload),
the unread count the header's bell polls, following a case, and the notification settings (shown
on the account page through ``account.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.errors import Invalid
from commonwatch.i18n import _
from commonwatch.inbox import services
from commonwatch.inbox.models import Notification
from commonwatch.web.counts import cached_count
from commonwatch.web.deps import get_db, quiet, require_principal
from commonwatch.web.listing import ListSpec, empty_page, list_page, parse_bulk_ids, parse_list_query
from commonwatch.web.pages import redirect, render

router = APIRouter()
NAV: list = []  # reached from the bell in the header, on every page

INBOX_LIST = ListSpec(path="/inbox", id_column=Notification.id, sorts={"created": Notification.created_at},
                      default_sort="created", filters=("state",), per_page=50)
STATES = ("", "unread")


def unread(request: Request, db: Session, principal: Principal) -> int:
    """The person's unread count, through the app's count cache (one entry per person, dropped when
    any notification is written or read)."""
    return cached_count(request.app.state, "inbox", principal, ("unread", principal.user_id),
                        lambda: services.unread_count(db, principal))


def _list(request: Request, db: Session, principal: Principal) -> dict[str, Any]:
    errors: dict[str, str] = {}
    try:
        lq = parse_list_query(INBOX_LIST, request.query_params)
        if lq.params.get("state", "") not in STATES:
            raise Invalid("state", _("“{value}” is not one of: {choices}").format(value=lq.params["state"],
                                                                                  choices="unread"))
    except Invalid as exc:
        errors = exc.by_field()
        lst = empty_page(INBOX_LIST, {})
    else:
        stmt = services.in_app(principal)
        if lq.params.get("state") == "unread":
            stmt = stmt.where(Notification.read_at.is_(None))
        lst = list_page(db, stmt, INBOX_LIST, lq)
    tz = principal.timezone or request.app.state.settings.timezone
    return {"lst": lst, "errors": errors, "texts": {n.id: services.text(n, tz) for n in lst.items},
            "unread": services.unread_count(db, principal), "state": lst.query.params.get("state", "")}


@router.get("/inbox")
def inbox(request: Request, principal: Principal = Depends(require_principal),
          db: Session = Depends(get_db)) -> HTMLResponse:
    ctx = _list(request, db, principal)
    return render(request, "inbox/inbox.html", {"title": _("Notifications"), **ctx},
                  status_code=422 if ctx["errors"] else 200)


@router.get("/inbox/items")
@quiet
def inbox_items(request: Request, principal: Principal = Depends(require_principal),
                db: Session = Depends(get_db)) -> HTMLResponse:
    """The list alone, for the page to swap in when the unread count changes (commonwatch.js)."""
    ctx = _list(request, db, principal)
    return render(request, "inbox/_items.html", ctx, status_code=422 if ctx["errors"] else 200)


@router.get("/inbox/unread")
@quiet
def inbox_unread(request: Request, principal: Principal = Depends(require_principal),
                 db: Session = Depends(get_db)) -> JSONResponse:
    """``{"unread": n}`` for the bell. It does not keep the browser session alive (``quiet``)."""
    return JSONResponse({"unread": unread(request, db, principal)}, headers={"Cache-Control": "no-store"})


@router.post("/inbox/read")
async def inbox_read(request: Request, principal: Principal = Depends(require_principal),
                     db: Session = Depends(get_db)) -> Response:
    form = await request.form()
    now = request.app.state.clock.now()
    if form.get("all"):
        n = services.mark_read(db, principal, None, now)
    else:
        try:
            ids = parse_bulk_ids(form.getlist("ids"))
        except Invalid as exc:
            return redirect("/inbox", "; ".join(e.reason for e in exc.errors))
        n = services.mark_read(db, principal, ids, now)
    db.commit()
    back = "/inbox?state=unread" if form.get("state") == "unread" else "/inbox"
    return redirect(back, _("{n} marked read.").format(n=n))


@router.post("/inbox/open/{notification_id}")
def inbox_open(notification_id: int, request: Request, principal: Principal = Depends(require_principal),
               db: Session = Depends(get_db)) -> Response:
    """Mark one notification read and go to what it is about."""
    from commonwatch.db import get_scoped
    from commonwatch.errors import NotFound

    row = get_scoped(db, principal, Notification, notification_id)
    if row is None:
        raise NotFound("notification")
    services.mark_read(db, principal, [row.id], request.app.state.clock.now())
    link = row.link if row.link.startswith("/") and not row.link.startswith("//") else "/inbox"
    db.commit()
    return redirect(link)


@router.post("/account/notifications")
async def preferences_post(request: Request, principal: Principal = Depends(require_principal),
                           db: Session = Depends(get_db)) -> Response:
    form = await request.form()
    try:
        services.set_preferences(db, principal, {k: str(v) for k, v in form.items()})
    except Invalid as exc:
        db.rollback()
        return redirect("/account#notifications", "; ".join(f"{e.field}: {e.reason}" for e in exc.errors))
    db.commit()
    return redirect("/account#notifications", _("Notification settings saved."))


@router.post("/incidents/{incident_id}/follow")
async def follow_post(incident_id: int, request: Request, principal: Principal = Depends(require_principal),
                      db: Session = Depends(get_db)) -> Response:
    from commonwatch.incidents.services import get_incident

    incident = get_incident(db, principal, incident_id)  # 404 for a case the person may not read
    form = await request.form()
    now = request.app.state.clock.now()
    if form.get("follow") == "0":
        services.unfollow(db, principal, incident.id)
        message = _("You no longer follow this case.")
    else:
        services.follow(db, principal.user_id, incident.id, reason="explicit", now=now)
        message = _("You follow this case: new comments will reach you.")
    db.commit()
    return redirect(f"/incidents/{incident.id}", message)
