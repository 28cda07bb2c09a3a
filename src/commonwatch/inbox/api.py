"""REST: the caller's own notifications (newest first), the unread count, marking read, and the
notification settings. Every route answers only about the caller."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.inbox import services
from commonwatch.inbox.models import Notification
from commonwatch.web.deps import get_db, require_principal

router = APIRouter(tags=["inbox"])
Channel = Literal["both", "app", "mail", "none"]


class NotificationOut(BaseModel):
    id: int
    kind: str
    text: str
    link: str
    created_at: datetime
    read_at: datetime | None


class ReadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[int] | None = Field(default=None, max_length=500, description="omit to mark all read")


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assigned: Channel | None = None
    task: Channel | None = None
    comment: Channel | None = None
    clock: Channel | None = None


@router.get("/inbox", response_model=list[NotificationOut])
def list_notifications(request: Request, unread: bool = False, limit: int = Query(50, ge=1, le=500),
                       principal: Principal = Depends(require_principal),
                       db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    stmt = services.in_app(principal)
    if unread:
        stmt = stmt.where(Notification.read_at.is_(None))
    tz = principal.timezone or request.app.state.settings.timezone
    rows = db.scalars(stmt.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit))
    return [{"id": n.id, "kind": n.kind, "text": services.text(n, tz), "link": n.link, "created_at": n.created_at,
             "read_at": n.read_at} for n in rows]


@router.get("/inbox/unread")
def unread_count(principal: Principal = Depends(require_principal), db: Session = Depends(get_db)) -> dict[str, int]:
    return {"unread": services.unread_count(db, principal)}


@router.post("/inbox/read")
def mark_read(body: ReadIn, request: Request, principal: Principal = Depends(require_principal),
              db: Session = Depends(get_db)) -> dict[str, int]:
    ids = [i for i in body.ids if 0 < i < 2**63] if body.ids is not None else None
    n = services.mark_read(db, principal, ids, request.app.state.clock.now())
    db.commit()
    return {"marked": n}


@router.get("/inbox/preferences")
def get_preferences(principal: Principal = Depends(require_principal), db: Session = Depends(get_db)) -> dict:
    return services.preferences(db, principal)


@router.put("/inbox/preferences")
def put_preferences(body: PreferencesIn, principal: Principal = Depends(require_principal),
                    db: Session = Depends(get_db)) -> dict:
    chosen = services.set_preferences(db, principal, body.model_dump(exclude_none=True))
    db.commit()
    return chosen
