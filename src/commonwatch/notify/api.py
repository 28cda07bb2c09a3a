"""REST: notification policies, the delivery log (resend, mark sent, run now), a recipient's
warnings and its feedback, statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.constituency import services as registry
from commonwatch.errors import Forbidden, NotFound
from commonwatch.notify import policies, services
from commonwatch.notify.models import Policy
from commonwatch.web.deps import SearchText, get_db, require, require_principal

router = APIRouter(prefix="/notify", tags=["notify"])


class PolicyIn(BaseModel):
    enabled: bool | None = None
    types: list[str] | None = None
    min_severity: str | None = None
    cadence: str | None = None
    immediate_severity: str | None = None
    cii_immediate: bool | None = None
    channel: str | None = None
    encryption_required: bool | None = None
    language: str | None = None
    attach_intelmq: bool | None = None
    repeat_window_hours: int | None = None
    webhook_url: str | None = None
    rotate_secret: bool = False


class PolicyOut(BaseModel):
    org_id: int | None
    own: bool
    enabled: bool
    types: list[str]
    min_severity: str
    cadence: str
    immediate_severity: str
    cii_immediate: bool
    channel: str
    encryption_required: bool
    language: str
    attach_intelmq: bool
    repeat_window_hours: int
    webhook_url: str
    has_webhook_secret: bool
    #: Only in the answer that created or rotated it; never stored in clear, never shown again.
    webhook_secret: str | None = None


class DeliveryOut(BaseModel):
    id: int
    org_id: int
    channel: str
    address: str
    language: str
    status: str
    attempts: int
    last_error: str
    next_attempt_at: datetime | None
    message_id: str
    event_count: int
    tlp: str
    signed: bool
    encrypted: bool
    created_at: datetime
    sent_at: datetime | None
    history: list[Any] = []


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    total: int
    page: int
    per_page: int


class WarningOut(BaseModel):
    id: int
    org_id: int
    event_id: int
    event_key: str
    time_source: datetime
    classification_type: str
    severity: str
    feed_name: str
    source_ip: str | None
    source_port: int | None
    source_fqdn: str | None
    source_url: str | None
    status: str
    comment: str
    responded_at: datetime | None


class WarningPage(BaseModel):
    items: list[WarningOut]
    total: int
    page: int
    per_page: int


class FeedbackIn(BaseModel):
    action: str
    comment: str = ""
    suppress: bool = False


def _policy_out(p: Policy, org_id: int | None, own: bool, secret: str = "") -> PolicyOut:
    return PolicyOut(org_id=org_id, own=own, enabled=p.enabled, types=list(p.types or []),
                     min_severity=p.min_severity, cadence=p.cadence, immediate_severity=p.immediate_severity,
                     cii_immediate=p.cii_immediate, channel=p.channel, encryption_required=p.encryption_required,
                     language=p.language, attach_intelmq=p.attach_intelmq, repeat_window_hours=p.repeat_window_hours,
                     webhook_url=p.webhook_url, has_webhook_secret=bool(p.webhook_secret),
                     webhook_secret=secret or None)


def keyring_for(request: Request):
    """The centre's keyring, or None where GnuPG is missing (then webhooks cannot be configured)."""
    from commonwatch.notify.pgp import Keyring, PgpError, default_home

    try:
        return Keyring(default_home(request.app.state.settings), request.app.state.clock)
    except PgpError:
        return None


def require_warnings_reader(principal: Principal = Depends(require_principal)) -> Principal:
    """Centre staff read every warning; constituents and partners read their own organisations'."""
    if not (principal.has("notify.read") or principal.has("warnings.respond.own")):
        raise Forbidden()
    return principal


@router.get("/policies", response_model=list[PolicyOut])
def policy_list(principal: Principal = Depends(require("notify.read")), db: Session = Depends(get_db)):
    default = policies.default_policy(db)
    own = db.scalars(select(Policy).where(Policy.org_id.is_not(None)).order_by(Policy.org_id)).all()
    return [_policy_out(default, None, False)] + [_policy_out(p, p.org_id, True) for p in own]


@router.get("/policies/default", response_model=PolicyOut)
def policy_default(principal: Principal = Depends(require("notify.read")), db: Session = Depends(get_db)):
    return _policy_out(policies.default_policy(db), None, False)


@router.put("/policies/default", response_model=PolicyOut)
def policy_default_put(body: PolicyIn, request: Request, principal: Principal = Depends(require("notify.manage")),
                       db: Session = Depends(get_db)):
    data = body.model_dump(exclude_none=True)
    policy, secret = policies.save_policy(db, None, data, allowlist=request.app.state.settings.outbound_allowlist,
                                          keyring=keyring_for(request) if data.get("channel") != "email" else None)
    db.commit()
    return _policy_out(policy, None, False, secret)


@router.get("/policies/{org_id}", response_model=PolicyOut)
def policy_get(org_id: int, principal: Principal = Depends(require("notify.read")), db: Session = Depends(get_db)):
    registry.get_org(db, principal, org_id)
    own = policies.own_policy(db, org_id)
    return _policy_out(own or policies.default_policy(db), org_id, own is not None)


@router.put("/policies/{org_id}", response_model=PolicyOut)
def policy_put(org_id: int, body: PolicyIn, request: Request,
               principal: Principal = Depends(require("notify.manage")), db: Session = Depends(get_db)):
    registry.get_org(db, principal, org_id)
    data = body.model_dump(exclude_none=True)
    policy, secret = policies.save_policy(db, org_id, data, allowlist=request.app.state.settings.outbound_allowlist,
                                          keyring=keyring_for(request))
    db.commit()
    return _policy_out(policy, org_id, True, secret)


@router.delete("/policies/{org_id}", status_code=204)
def policy_delete(org_id: int, principal: Principal = Depends(require("notify.manage")),
                  db: Session = Depends(get_db)) -> None:
    registry.get_org(db, principal, org_id)
    if not policies.delete_policy(db, org_id):
        raise NotFound("policy")
    db.commit()


def _delivery_out(d, with_history: bool = False) -> DeliveryOut:
    fields = {k: getattr(d, k) for k in DeliveryOut.model_fields if k != "history"}
    return DeliveryOut(**fields, history=list(d.history or []) if with_history else [])


@router.get("/deliveries", response_model=DeliveryPage)
def delivery_list(status: str = "", channel: str = "", org_id: int | None = None, q: SearchText = "", page: int = 1,
                  per_page: int = 50, principal: Principal = Depends(require("notify.read")),
                  db: Session = Depends(get_db)):
    per_page = max(1, min(per_page, 500))
    rows, total = services.list_deliveries(db, principal, services.DeliveryFilter(status, channel, org_id, q),
                                           page=page, per_page=per_page)
    return DeliveryPage(items=[_delivery_out(d) for d in rows], total=total, page=max(page, 1), per_page=per_page)


@router.get("/deliveries/{delivery_id}", response_model=DeliveryOut)
def delivery_get(delivery_id: int, principal: Principal = Depends(require("notify.read")),
                 db: Session = Depends(get_db)):
    return _delivery_out(services.get_delivery(db, principal, delivery_id), with_history=True)


@router.post("/deliveries/{delivery_id}/resend")
def delivery_resend(delivery_id: int, request: Request, principal: Principal = Depends(require("notify.manage")),
                    db: Session = Depends(get_db)) -> dict:
    result = services.resend(db, principal, delivery_id, request.app.state.clock.now())
    db.commit()
    return {"detail": result}


@router.post("/deliveries/{delivery_id}/mark-sent")
def delivery_mark_sent(delivery_id: int, request: Request, principal: Principal = Depends(require("notify.manage")),
                       db: Session = Depends(get_db)) -> dict:
    services.mark_sent(db, principal, delivery_id, request.app.state.clock.now())
    db.commit()
    return {"detail": "marked sent"}


@router.post("/run")
def run_now(request: Request, principal: Principal = Depends(require("notify.manage")),
            db: Session = Depends(get_db)) -> dict:
    from commonwatch.notify.config import get_notify_settings
    from commonwatch.notify.runner import Notifier

    db.commit()  # release the request's transaction: the run writes in its own (SQLite has one writer)
    state = request.app.state
    notifier = Notifier(settings=state.settings, sessions=state.sessionmaker, clock=state.clock, env=state.jinja,
                        nset=get_notify_settings())
    return notifier.run().as_dict()


def _warning_out(w, e) -> WarningOut:
    return WarningOut(id=w.id, org_id=w.org_id, event_id=w.event_id, event_key=e.event_key, time_source=w.time_source,
                      classification_type=w.classification_type, severity=w.severity, feed_name=w.feed_name,
                      source_ip=e.source_ip, source_port=e.source_port, source_fqdn=e.source_fqdn,
                      source_url=e.source_url, status=w.status, comment=w.comment, responded_at=w.responded_at)


@router.get("/warnings", response_model=WarningPage)
def warning_list(status: str = "", type: str = "", org_id: int | None = None, page: int = 1, per_page: int = 50,
                 principal: Principal = Depends(require_warnings_reader), db: Session = Depends(get_db)):
    per_page = max(1, min(per_page, 500))
    rows, total = services.list_warnings(db, principal, services.WarningFilter(status, type, org_id),
                                         page=page, per_page=per_page)
    return WarningPage(items=[_warning_out(w, e) for w, e in rows], total=total, page=max(page, 1),
                       per_page=per_page)


@router.get("/warnings/{warning_id}", response_model=WarningOut)
def warning_get(warning_id: int, principal: Principal = Depends(require_warnings_reader),
                db: Session = Depends(get_db)):
    w = services.get_warning(db, principal, warning_id)
    return _warning_out(w, services.warning_event(db, w))


@router.post("/warnings/{warning_id}/feedback", response_model=WarningOut)
def warning_feedback(warning_id: int, body: FeedbackIn, request: Request,
                     principal: Principal = Depends(require("warnings.respond")), db: Session = Depends(get_db)):
    services.respond(db, principal, warning_id, body.action, body.comment, suppress=body.suppress,
                     now=request.app.state.clock.now())
    db.commit()
    w = services.get_warning(db, principal, warning_id)
    return _warning_out(w, services.warning_event(db, w))


@router.get("/stats")
def stats(principal: Principal = Depends(require_warnings_reader), db: Session = Depends(get_db)) -> dict:
    return services.feedback_stats(db, principal)
