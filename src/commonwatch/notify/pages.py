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
from commonwatch.notify.models import (
    CADENCES,
    CHANNELS,
    DELIVERY_STATUSES,
    WARNING_STATUSES,
    Delivery,
    EventWarning,
    Feedback,
    Policy,
)
from commonwatch.web.counts import cached_count
from commonwatch.web.deps import get_db, require
from commonwatch.web.listing import ListSpec, count_rows, empty_page, list_page, parse_bulk_ids, parse_list_query
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

DELIVERIES_LIST = ListSpec(path="/notify", id_column=Delivery.id, sorts=services.DELIVERY_SORTS,
                           default_sort="created", filters=("q", "status", "channel", "org_id"))


@router.get("/notify")
def log_page(request: Request, principal: Principal = Depends(require("notify.read")),
             db: Session = Depends(get_db)) -> HTMLResponse:
    params = request.query_params
    errors: dict[str, str] = {}
    try:
        lq = parse_list_query(DELIVERIES_LIST, params)
        org_text = lq.params.get("org_id", "")
        if org_text and not org_text.isdigit():
            raise Invalid("org_id", _("“{value}” is not an id").format(value=org_text))
        f = services.DeliveryFilter(lq.params.get("status", ""), lq.params.get("channel", ""),
                                    int(org_text) if org_text else None, lq.params.get("q", ""))
        lst = list_page(db, services.deliveries_query(principal, f), DELIVERIES_LIST, lq)
    except Invalid as exc:
        errors = exc.by_field()
        lst = empty_page(DELIVERIES_LIST, params)
    rows = list(lst.items)
    can_manage = principal.has("notify.manage")
    return render(request, "notify/log.html", {
        "title": _("Notifications"), "rows": rows, "lst": lst, "errors": errors,
        "f": {k: lst.query.params.get(k, "") for k in ("status", "channel", "org_id", "q")},
        "counts": services.status_counts(db, principal), "stats": services.feedback_stats(db, principal),
        "statuses": [(s, services.status_label(s)) for s in DELIVERY_STATUSES],
        "channels": [("email", _("email")), ("webhook", _("webhook")), ("none", _("nobody"))],
        "orgs": _org_names(db, {d.org_id for d in rows}), "can_manage": can_manage,
        "bulk_actions": [("resend", _("Send again"))] if can_manage else [],
        **_labels(),
    }, status_code=422 if errors else 200)


@router.post("/notify/deliveries/bulk")
async def deliveries_bulk(request: Request, principal: Principal = Depends(require("notify.manage")),
                          db: Session = Depends(get_db)) -> Response:
    """Retry the selected deliveries: a confirmation (how many, which not and why), then one act."""
    form = await request.form()
    if str(form.get("action", "")) != "resend":
        raise Invalid("action", _("“{value}” is not one of: {choices}").format(value=form.get("action", ""),
                                                                             choices="resend"))
    ids = parse_bulk_ids(form.getlist("ids"))
    now = request.app.state.clock.now()
    if not form.get("confirm"):
        allowed, refused = services.resend_many(db, principal, ids, now, dry_run=True)
        db.rollback()
        n = len(allowed)
        label = _("Send again")
        return render(request, "web/bulk_confirm.html", {
            "title": _("Confirm: {action}").format(action=label),
            "summary": (_("{action}: {n} delivery will be sent again.") if n == 1
                        else _("{action}: {n} deliveries will be sent again.")).format(action=label, n=n),
            "allowed": allowed, "refused": sorted(refused), "reasons": refused, "url": "/notify/deliveries/bulk",
            "action": "resend", "back": "/notify", "fields": [], "form": {}, "errors": {}, "hidden": {},
            "button": (_("{action}: {n} delivery") if n == 1 else _("{action}: {n} deliveries")).format(
                action=label, n=n),
        })
    done, refused = services.resend_many(db, principal, ids, now)
    db.commit()
    message = (_("{n} delivery will be sent again at the next run.") if len(done) == 1
               else _("{n} deliveries will be sent again at the next run.")).format(n=len(done))
    if refused:
        message += " " + _("Left alone: {items}").format(
            items="; ".join(f"{i} ({why})" for i, why in sorted(refused.items())))
    return redirect("/notify", message)


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

WARNINGS_LIST = ListSpec(path="/warnings", id_column=EventWarning.id, sorts=services.WARNING_SORTS,
                         default_sort="time", filters=("q", "status", "type"))
_BULK_LABELS = {"acknowledged": N_("Acknowledge"), "resolved": N_("Mark resolved"),
                "false-positive": N_("Mark as false positive")}


def _bulk_choices() -> list[tuple[str, str]]:
    return [(a, _(_BULK_LABELS[a])) for a in services.BULK_ACTIONS]


@router.get("/warnings")
def warnings_page(request: Request, principal: Principal = Depends(require_warnings_reader),
                  db: Session = Depends(get_db)):
    params = request.query_params
    errors: dict[str, str] = {}
    try:
        lq = parse_list_query(WARNINGS_LIST, params)
        f = services.WarningFilter(lq.params.get("status", ""), lq.params.get("type", ""))
        stmt = services.warnings_query(principal, f, lq.params.get("q", ""))
        lst = list_page(db, stmt, WARNINGS_LIST, lq, count=False)
        lst.total = cached_count(request.app.state, "warnings", principal, ("list-total", *sorted(lq.params.items())),
                                 lambda: count_rows(db, stmt))
    except Invalid as exc:
        errors = exc.by_field()
        lst = empty_page(WARNINGS_LIST, params)
    warnings = list(lst.items)
    # The page's events by id, kept while the store has not changed (a stored event never does): the
    # same fifty warnings' events would otherwise be read from the store at every visit.
    events = cached_count(request.app.state, "events", principal, ("warning-events", *(w.event_id for w in warnings)),
                          lambda: services.warning_events(db, warnings))
    return render(request, "notify/warnings.html", {
        "title": _("My warnings") if not principal.is_staff else _("Warnings"), "lst": lst, "errors": errors,
        "rows": [(w, events.get(w.event_id)) for w in warnings],
        "f": {"status": lst.query.params.get("status", ""), "type": lst.query.params.get("type", "")},
        "statuses": [(s, services.status_label(s)) for s in WARNING_STATUSES],
        "stats": cached_count(request.app.state, "warnings", principal, "feedback-stats",
                              lambda: services.feedback_stats(db, principal)), "bulk_actions": _bulk_choices(),
        "can_respond": principal.has("warnings.respond.own") or principal.has("warnings.respond"),
        "orgs": _org_names(db, {w.org_id for w in warnings}), **_labels(),
    }, status_code=422 if errors else 200)


def _bulk_confirm(request: Request, *, action: str, allowed: list[int], refused: list[int], form: dict,
                  errors: dict, status_code: int = 200) -> HTMLResponse:
    label = _(_BULK_LABELS.get(action, action)) if action in _BULK_LABELS else action
    n = len(allowed)
    summary = (_("{action}: {n} warning will be changed.") if n == 1
               else _("{action}: {n} warnings will be changed.")).format(action=label, n=n)
    reason_help = _("One reason for all the selected warnings.")
    return render(request, "web/bulk_confirm.html", {
        "title": _("Confirm: {action}").format(action=label), "summary": summary, "allowed": allowed,
        "refused": refused, "url": "/warnings/bulk", "action": action, "back": "/warnings",
        "button": (_("{action} {n} warning") if n == 1 else _("{action} {n} warnings")).format(action=label, n=n),
        "fields": [{"name": "comment", "label": _("Reason") if action == "false-positive" else _("Comment"),
                    "type": "textarea", "required": action == "false-positive", "help": reason_help,
                    "options": None, "blank": None}],
        "form": form, "errors": errors,
    }, status_code=status_code)


@router.post("/warnings/bulk")
async def warnings_bulk(request: Request, principal: Principal = Depends(require("warnings.respond")),
                        db: Session = Depends(get_db)) -> Response:
    """A bulk answer: first the confirmation (how many rows, which are refused), then the act."""
    form = await request.form()
    action = str(form.get("action", ""))
    if action not in services.BULK_ACTIONS:
        raise Invalid("action", _("must be one of {values}").format(values=", ".join(services.BULK_ACTIONS)))
    ids = parse_bulk_ids(form.getlist("ids"))
    comment = str(form.get("comment", ""))
    if not form.get("confirm"):
        allowed, refused = services.respondable_warnings(db, principal, ids)
        return _bulk_confirm(request, action=action, allowed=allowed, refused=refused, form={"comment": comment},
                             errors={})
    try:
        done, refused = services.respond_many(db, principal, ids, action, comment, now=request.app.state.clock.now())
    except Invalid as exc:
        db.rollback()
        allowed, refused = services.respondable_warnings(db, principal, ids)
        return _bulk_confirm(request, action=action, allowed=allowed, refused=refused, form={"comment": comment},
                             errors=exc.by_field(), status_code=422)
    db.commit()
    message = (_("{n} warning answered.") if len(done) == 1 else _("{n} warnings answered.")).format(n=len(done))
    if refused:
        message += " " + _("{n} refused (not yours to answer).").format(n=len(refused))
    return redirect("/warnings", message)


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
