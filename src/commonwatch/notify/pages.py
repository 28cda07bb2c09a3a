"""Pages: the centre's notification log (filters, resend, mark sent, run now), notification
policies, and "My warnings" where a constituent or partner answers each warning."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.constituency import services as registry
from commonwatch.constituency.models import Organisation
from commonwatch.db import scope
from commonwatch.errors import Conflict, Invalid
from commonwatch.events.schema import SEVERITIES
from commonwatch.i18n import N_, _, pick
from commonwatch.notify import policies, services
from commonwatch.notify.advice import TYPE_LABELS, advice_for, severity_label, type_label
from commonwatch.notify.api import keyring_for, require_warnings_reader
from commonwatch.notify.models import CADENCES, CHANNELS, DELIVERY_STATUSES, WARNING_STATUSES, Feedback, Policy
from commonwatch.web.deps import SearchText, get_db, require
from commonwatch.web.nav import NavItem
from commonwatch.web.pages import redirect, render

router = APIRouter()
NAV = [
    NavItem(label=N_("Notifications"), path="/notify", permission="notify.read", order=30, staff_only=True),
    NavItem(label=N_("My warnings"), path="/warnings", permission="warnings.respond", order=31),
]
PER_PAGE = 50


def _labels() -> dict[str, Any]:
    return {"status_label": services.status_label, "reason_text": services.reason_text, "in_doubt": services.in_doubt,
            "type_label": type_label, "severity_label": severity_label,
            "cadence_label": lambda c: _(policies.CADENCE_LABELS.get(c, c)),
            "channel_label": lambda c: _(policies.CHANNEL_LABELS.get(c, c)), "pick": pick}


def _org_names(db: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {o.id: pick(o.name, o.name_local or o.name)
            for o in db.scalars(select(Organisation).where(Organisation.id.in_(sorted(ids))))}


# --- the centre's log ----------------------------------------------------------------------------------

@router.get("/notify")
def log_page(request: Request, status: str = "", channel: str = "", org_id: str = "", q: SearchText = "", page: int = 1,
             principal: Principal = Depends(require("notify.read")), db: Session = Depends(get_db)) -> HTMLResponse:
    org = int(org_id) if org_id.isdigit() else None
    rows, total = services.list_deliveries(db, principal, services.DeliveryFilter(status, channel, org, q),
                                           page=page, per_page=PER_PAGE)
    return render(request, "notify/log.html", {
        "title": _("Notifications"), "rows": rows, "total": total, "page": max(page, 1),
        "pages": max(1, -(-total // PER_PAGE)), "f": {"status": status, "channel": channel, "org_id": org_id, "q": q},
        "counts": services.status_counts(db, principal), "stats": services.feedback_stats(db, principal),
        "statuses": [(s, services.status_label(s)) for s in DELIVERY_STATUSES],
        "channels": [("email", _("email")), ("webhook", _("webhook")), ("none", _("nobody"))],
        "orgs": _org_names(db, {d.org_id for d in rows}), "can_manage": principal.has("notify.manage"),
        **_labels(),
    })


@router.get("/notify/deliveries/{delivery_id}")
def delivery_page(delivery_id: int, request: Request, principal: Principal = Depends(require("notify.read")),
                  db: Session = Depends(get_db)) -> HTMLResponse:
    d = services.get_delivery(db, principal, delivery_id)
    return render(request, "notify/delivery.html", {
        "title": _("Delivery {id}").format(id=d.id), "d": d, "events": services.delivery_events(db, d.id),
        "org": _org_names(db, {d.org_id}).get(d.org_id, ""), "can_manage": principal.has("notify.manage"),
        **_labels(),
    })


@router.post("/notify/deliveries/{delivery_id}/resend")
def delivery_resend(delivery_id: int, request: Request, principal: Principal = Depends(require("notify.manage")),
                    db: Session = Depends(get_db)) -> Response:
    try:
        services.resend(db, principal, delivery_id, request.app.state.clock.now())
    except Conflict as exc:
        db.rollback()
        return redirect(f"/notify/deliveries/{delivery_id}", str(exc))
    db.commit()
    return redirect(f"/notify/deliveries/{delivery_id}", _("The delivery will be sent again at the next run."))


@router.post("/notify/deliveries/{delivery_id}/mark-sent")
def delivery_mark_sent(delivery_id: int, request: Request, principal: Principal = Depends(require("notify.manage")),
                       db: Session = Depends(get_db)) -> Response:
    try:
        services.mark_sent(db, principal, delivery_id, request.app.state.clock.now())
    except Conflict as exc:
        db.rollback()
        return redirect(f"/notify/deliveries/{delivery_id}", str(exc))
    db.commit()
    return redirect(f"/notify/deliveries/{delivery_id}", _("Marked as sent."))


@router.post("/notify/run")
def run_now(request: Request, principal: Principal = Depends(require("notify.manage")),
            db: Session = Depends(get_db)) -> Response:
    from commonwatch.notify.config import get_notify_settings
    from commonwatch.notify.runner import Notifier

    db.commit()  # release the request's transaction: the run writes in its own (SQLite has one writer)
    state = request.app.state
    report = Notifier(settings=state.settings, sessions=state.sessionmaker, clock=state.clock, env=state.jinja,
                      nset=get_notify_settings()).run()
    return redirect("/notify", _("Run finished: {warned} new warnings, {sent} messages sent, {held} held, "
                                 "{retry} to retry.").format(warned=report.plan.warned, sent=report.sent,
                                                             held=report.held, retry=report.retry))


# --- policies ------------------------------------------------------------------------------------------

def _policy_choices() -> dict[str, Any]:
    return {
        "severities": [(s, severity_label(s)) for s in SEVERITIES],
        "cadences": [(c, _(policies.CADENCE_LABELS[c])) for c in CADENCES],
        "channel_choices": [(c, _(policies.CHANNEL_LABELS[c])) for c in CHANNELS],
        "language_choices": [("", _("each contact's own language")), ("en", "English"), ("zh-CN", "简体中文")],
        "known_types": sorted(TYPE_LABELS),
    }


def _policy_form_values(p: Policy) -> dict[str, Any]:
    return {k: getattr(p, k) for k in policies.POLICY_FIELDS} | {"types": " ".join(p.types or [])}


@router.get("/notify/policies")
def policies_page(request: Request, principal: Principal = Depends(require("notify.manage")),
                  db: Session = Depends(get_db)) -> HTMLResponse:
    own = db.scalars(select(Policy).where(Policy.org_id.is_not(None))).all()
    names = _org_names(db, {p.org_id for p in own if p.org_id})
    orgs = db.scalars(scope(select(Organisation), principal, Organisation).order_by(Organisation.name)).all()
    return render(request, "notify/policies.html", {
        "title": _("Notification policies"), "default": policies.default_policy(db),
        "own": sorted(own, key=lambda p: names.get(p.org_id, "")), "names": names,
        "orgs": [(o.id, pick(o.name, o.name_local or o.name)) for o in orgs], **_labels(),
    })


def _policy_form(request: Request, *, org: Organisation | None, form: dict, errors: dict, has_secret: bool,
                 new_secret: str = "", status_code: int = 200) -> HTMLResponse:
    return render(request, "notify/policy_form.html", {
        "title": _("Notification policy"), "org": org, "form": form, "errors": errors, "has_secret": has_secret,
        "new_secret": new_secret, **_policy_choices(), **_labels(),
    }, status_code=status_code)


async def _read_policy_form(request: Request) -> dict[str, Any]:
    form = await request.form()
    data: dict[str, Any] = {k: str(form.get(k, "")) for k in policies.POLICY_FIELDS if k in form}
    for key in ("enabled", "cii_immediate", "encryption_required", "attach_intelmq"):
        data[key] = bool(form.get(key))
    data["rotate_secret"] = bool(form.get("rotate_secret"))
    return data


@router.get("/notify/policies/default")
def policy_default_form(request: Request, principal: Principal = Depends(require("notify.manage")),
                        db: Session = Depends(get_db)) -> HTMLResponse:
    p = policies.default_policy(db)
    return _policy_form(request, org=None, form=_policy_form_values(p), errors={}, has_secret=bool(p.webhook_secret))


@router.get("/notify/policies/pick")
def policy_pick(org_id: int, principal: Principal = Depends(require("notify.manage"))) -> Response:
    return redirect(f"/notify/policies/{org_id}")


@router.get("/notify/policies/{org_id}")
def policy_form(org_id: int, request: Request, principal: Principal = Depends(require("notify.manage")),
                db: Session = Depends(get_db)) -> HTMLResponse:
    org = registry.get_org(db, principal, org_id)
    p = policies.own_policy(db, org_id) or policies.default_policy(db)
    return _policy_form(request, org=org, form=_policy_form_values(p), errors={},
                        has_secret=bool(p.webhook_secret and p.org_id == org_id))


async def _save(request: Request, db: Session, org: Organisation | None) -> Response:
    data = await _read_policy_form(request)
    try:
        policy, secret = policies.save_policy(db, org.id if org else None, data,
                                              allowlist=request.app.state.settings.outbound_allowlist,
                                              keyring=keyring_for(request) if data.get("channel") != "email" else None)
    except Invalid as exc:
        db.rollback()
        return _policy_form(request, org=org, form=data, errors=exc.by_field(), has_secret=False, status_code=422)
    db.commit()
    if secret:
        return _policy_form(request, org=org, form=_policy_form_values(policy), errors={}, has_secret=True,
                            new_secret=secret)
    return redirect("/notify/policies", _("Saved."))


@router.post("/notify/policies/default")
async def policy_default_save(request: Request, principal: Principal = Depends(require("notify.manage")),
                              db: Session = Depends(get_db)) -> Response:
    return await _save(request, db, None)


@router.post("/notify/policies/{org_id}")
async def policy_save(org_id: int, request: Request, principal: Principal = Depends(require("notify.manage")),
                      db: Session = Depends(get_db)) -> Response:
    return await _save(request, db, registry.get_org(db, principal, org_id))


@router.post("/notify/policies/{org_id}/delete")
def policy_remove(org_id: int, principal: Principal = Depends(require("notify.manage")),
                  db: Session = Depends(get_db)) -> Response:
    registry.get_org(db, principal, org_id)
    policies.delete_policy(db, org_id)
    db.commit()
    return redirect("/notify/policies", _("The organisation now follows the default policy."))


# --- my warnings -------------------------------------------------------------------------------------------

@router.get("/warnings")
def warnings_page(request: Request, status: str = "", type: str = "", page: int = 1,
                  principal: Principal = Depends(require_warnings_reader), db: Session = Depends(get_db)):
    from commonwatch.web.counts import cached_count

    f = services.WarningFilter(status, type)
    state = request.app.state
    total = cached_count(state, "warnings", principal, ("total", status, type),
                         lambda: services.count_warnings(db, principal, f))
    rows, total = services.list_warnings(db, principal, f, page=page, per_page=PER_PAGE, total=total)
    return render(request, "notify/warnings.html", {
        "title": _("My warnings") if not principal.is_staff else _("Warnings"), "rows": rows, "total": total,
        "page": max(page, 1), "pages": max(1, -(-total // PER_PAGE)), "f": {"status": status, "type": type},
        "statuses": [(s, services.status_label(s)) for s in WARNING_STATUSES],
        "stats": cached_count(state, "warnings", principal, "feedback-stats",
                              lambda: services.feedback_stats(db, principal)),
        "orgs": _org_names(db, {w.org_id for w, _e in rows}), **_labels(),
    })


def _warning_page(request: Request, db: Session, principal: Principal, warning_id: int, *, errors: dict | None = None,
                  form: dict | None = None, status_code: int = 200) -> HTMLResponse:
    w = services.get_warning(db, principal, warning_id)
    event = services.warning_event(db, w)
    history = db.scalars(select(Feedback).where(Feedback.warning_id == w.id).order_by(Feedback.id.desc())).all()
    return render(request, "notify/warning.html", {
        "title": type_label(w.classification_type), "w": w, "e": event, "history": history,
        "repeats": services.repeat_count(db, w.id), "suppressed": services.is_suppressed(db, w),
        "advice": advice_for(w.classification_type), "org": _org_names(db, {w.org_id}).get(w.org_id, ""),
        "can_respond": principal.can("warnings.respond", w.org_id), "errors": errors or {}, "form": form or {},
        **_labels(),
    }, status_code=status_code)


@router.get("/warnings/{warning_id}")
def warning_page(warning_id: int, request: Request, principal: Principal = Depends(require_warnings_reader),
                 db: Session = Depends(get_db)) -> HTMLResponse:
    return _warning_page(request, db, principal, warning_id)


@router.post("/warnings/{warning_id}/feedback")
async def warning_feedback(warning_id: int, request: Request,
                           principal: Principal = Depends(require("warnings.respond")),
                           db: Session = Depends(get_db)) -> Response:
    form = await request.form()
    data = {"action": str(form.get("action", "")), "comment": str(form.get("comment", "")),
            "suppress": bool(form.get("suppress"))}
    try:
        services.respond(db, principal, warning_id, data["action"], data["comment"], suppress=data["suppress"],
                         now=request.app.state.clock.now())
    except Invalid as exc:
        db.rollback()
        return _warning_page(request, db, principal, warning_id, errors=exc.by_field(), form=data, status_code=422)
    db.commit()
    return redirect(f"/warnings/{warning_id}", _("Thank you, your answer was recorded."))


@router.post("/warnings/{warning_id}/unsuppress")
def warning_unsuppress(warning_id: int, principal: Principal = Depends(require("warnings.respond")),
                       db: Session = Depends(get_db)) -> Response:
    services.lift_suppression(db, principal, warning_id)
    db.commit()
    return redirect(f"/warnings/{warning_id}", _("You will be warned about this observation again."))
