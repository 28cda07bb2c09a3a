"""Pages: search indicators, create/edit/expire one, see its sightings and versions, import STIX or
MISP files, export any selection, and (centre staff) the exchange with partners."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.constituency.models import Organisation
from commonwatch.db import scope
from commonwatch.errors import Invalid
from commonwatch.i18n import N_, _
from commonwatch.intel import correlation, exchange, services
from commonwatch.intel import tlp as tlpmod
from commonwatch.intel.api import _form_of, centre_of, export_response
from commonwatch.intel.labels import KIND_LABELS, STATUS_LABELS
from commonwatch.intel.models import Indicator, IntelCollection, MispPeer, Subscription
from commonwatch.labels import choices as label_choices
from commonwatch.web.deps import SearchText, get_db, require
from commonwatch.web.listing import ListSpec, empty_page, list_page, parse_bulk_ids, parse_list_query
from commonwatch.web.nav import NavItem
from commonwatch.web.pages import redirect, render

router = APIRouter()
NAV = [
    NavItem(label=N_("Intelligence"), path="/intel", permission="intel.read", order=40),
    NavItem(label=N_("Exchange"), path="/intel-exchange", permission="intel.exchange", order=41, staff_only=True),
]


def _choices() -> dict[str, Any]:
    return {"kinds": [(k, _(v)) for k, v in KIND_LABELS.items()], "tlps": [(t, t) for t in tlpmod.LEVELS],
            "tlp_help": {k: _(v) for k, v in tlpmod.LABELS.items()},
            "statuses": [(k, _(v)) for k, v in STATUS_LABELS.items()], "kind_label": lambda k: _(KIND_LABELS.get(k, k)),
            "indicator_types": label_choices("indicator_type", list(services.INDICATOR_TYPES))}


def _f(q: str, kind: str, tlp: str, status: str, source: str) -> services.IndicatorFilter:
    return services.IndicatorFilter(q=q, kind=kind, tlp=tlp, status=status, source=source)


INDICATORS_LIST = ListSpec(path="/intel", id_column=Indicator.id, sorts=services.INDICATOR_SORTS,
                           default_sort="modified", filters=("q", "kind", "tlp", "status", "source"))


@router.get("/intel")
def indicator_list(request: Request, principal: Principal = Depends(require("intel.read")),
                   db: Session = Depends(get_db)) -> HTMLResponse:
    from urllib.parse import urlencode

    now = request.app.state.clock.now()
    errors: dict[str, str] = {}
    try:
        lq = parse_list_query(INDICATORS_LIST, request.query_params)
        f = _f(*(lq.params.get(k, "") for k in ("q", "kind", "tlp", "status", "source")))
        lst = list_page(db, services.indicators_query(principal, f, now), INDICATORS_LIST, lq)
    except Invalid as exc:
        errors = exc.by_field()
        lst = empty_page(INDICATORS_LIST, request.query_params)
    given = {k: lst.query.params.get(k, "") for k in ("q", "kind", "tlp", "status", "source")}
    can_write = principal.has("intel.write")
    bulk = ([("revoke", _("Revoke"))] + [(f"tlp:{t}", _("Mark TLP:{label}").format(label=t)) for t in tlpmod.LEVELS]
            if can_write else [])
    return render(request, "intel/list.html", {
        "title": _("Intelligence"), "rows": list(lst.items), "lst": lst, "errors": errors, "f": given,
        "query": urlencode(given), "now": now, "can_write": can_write, "bulk_actions": bulk, **_choices()},
        status_code=422 if errors else 200)


@router.post("/intel/indicators/bulk")
async def indicators_bulk(request: Request, principal: Principal = Depends(require("intel.write")),
                          db: Session = Depends(get_db)) -> Response:
    """Revoke or re-mark the selected indicators: a confirmation (how many, which not and why), then one act."""
    form = await request.form()
    raw = str(form.get("action", ""))
    act, _sep, label = raw.partition(":")
    ids = parse_bulk_ids(form.getlist("ids"))
    now = request.app.state.clock.now()
    centre_id = centre_of(request)["id"]
    if not form.get("confirm"):
        allowed, refused = services.revise_many(db, principal, ids, act, label, now, centre_id=centre_id,
                                                dry_run=True)
        n = len(allowed)
        text = _("Revoke") if act == "revoke" else _("Mark TLP:{label}").format(label=label)
        return render(request, "web/bulk_confirm.html", {
            "title": _("Confirm: {action}").format(action=text),
            "summary": (_("{action}: {n} indicator will be changed.") if n == 1
                        else _("{action}: {n} indicators will be changed.")).format(action=text, n=n),
            "allowed": allowed, "refused": sorted(refused), "reasons": refused, "url": "/intel/indicators/bulk",
            "action": raw, "back": "/intel", "fields": [], "form": {}, "errors": {}, "hidden": {},
            "button": (_("{action}: {n} indicator") if n == 1 else _("{action}: {n} indicators")).format(
                action=text, n=n),
        })
    done, refused = services.revise_many(db, principal, ids, act, label, now, centre_id=centre_id)
    db.commit()
    message = (_("{n} indicator changed.") if len(done) == 1 else _("{n} indicators changed.")).format(n=len(done))
    if refused:
        message += " " + _("Left alone: {items}").format(
            items="; ".join(f"{i} ({why})" for i, why in sorted(refused.items())))
    return redirect("/intel", message)


@router.get("/intel/export")
def export_page(request: Request, format: str = "stix", q: SearchText = "", kind: str = "", tlp: str = "",
                status: str = "", source: str = "", principal: Principal = Depends(require("intel.read")),
                db: Session = Depends(get_db)) -> Response:
    now = request.app.state.clock.now()
    rows = services.indicator_rows_for_export(db, principal, _f(q, kind, tlp, status, source), now)
    return export_response(db, principal, rows, format, centre_of(request), now,
                           data_dir=request.app.state.settings.data_dir)


def _form_page(request: Request, db: Session, *, ind, form: dict, errors: dict, status_code: int = 200) -> HTMLResponse:
    orgs = [(o.id, o.name) for o in db.scalars(select(Organisation).order_by(Organisation.name))]
    return render(request, "intel/form.html", {
        "title": _("Edit indicator") if ind else _("New indicator"), "ind": ind, "form": form, "errors": errors,
        "orgs": orgs, **_choices()}, status_code=status_code)


@router.get("/intel/indicators/new")
def new_form(request: Request, principal: Principal = Depends(require("intel.write")),
             db: Session = Depends(get_db)) -> HTMLResponse:
    return _form_page(request, db, ind=None, form={"tlp": "AMBER", "indicator_types": ["malicious-activity"]},
                      errors={})


_LISTS = ("indicator_types", "labels", "kill_chain_phases", "malware", "threat_actors", "share_users")
_TEXTS = ("value", "kind", "name", "description", "tlp", "confidence", "valid_from", "valid_until", "source")


async def _read_form(request: Request) -> dict[str, Any]:
    form = await request.form()
    data: dict[str, Any] = {k: str(form.get(k, "")) for k in _TEXTS if k in form}
    data["indicator_types"] = [str(v) for v in form.getlist("indicator_types")]
    for key in ("labels", "kill_chain_phases", "malware", "threat_actors", "share_users"):
        data[key] = [str(form.get(key, ""))]
    data["share_orgs"] = [int(v) for v in form.getlist("share_orgs") if str(v).isdigit()]
    return data


def _display(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for key in _LISTS:
        if key != "indicator_types":
            out[key] = ", ".join(v for v in data.get(key, []) if v)
    return out


@router.post("/intel/indicators")
async def create(request: Request, principal: Principal = Depends(require("intel.write")),
                 db: Session = Depends(get_db)) -> Response:
    data = await _read_form(request)
    try:
        ind = services.save_indicator(db, principal, services.IndicatorForm(**data), request.app.state.clock.now(),
                                      centre_id=centre_of(request)["id"], tz=_tz(request, principal))
    except Invalid as exc:
        db.rollback()
        return _form_page(request, db, ind=None, form=_display(data), errors=exc.by_field(), status_code=422)
    db.commit()
    return redirect(f"/intel/indicators/{ind.id}", _("Indicator saved."))


def _tz(request: Request, principal: Principal) -> str:
    return principal.timezone or request.app.state.settings.timezone


@router.get("/intel/indicators/{indicator_id}")
def detail(indicator_id: int, request: Request, principal: Principal = Depends(require("intel.read")),
           db: Session = Depends(get_db)) -> HTMLResponse:
    ind = services.get_indicator(db, principal, indicator_id)
    now = request.app.state.clock.now()
    versions = services.versions_of(db, principal, ind.stix_id)
    related = services._latest_visible(db, principal, ind.related or [])
    return render(request, "intel/detail.html", {
        "title": ind.name or ind.value or ind.stix_id, "ind": ind, "now": now, "live": ind.is_live(now),
        "sightings": services.sightings_of(db, principal, ind), "versions": versions,
        "related": [json.loads(r.body) for r in related], "can_write": principal.has("intel.write"),
        "unmapped": json.dumps(ind.extra or {}, ensure_ascii=False, indent=2) if ind.extra else "",
        "mention_lines": correlation.lines_for_page(request, db, principal, [ind.value]),
        "decay": _decay_of(request, ind, now), **_choices()})


def _decay_of(request: Request, ind, now) -> Any:
    """The indicator's decay score and computed valid-until (None if the rules file is unusable)."""
    from commonwatch.intel import decay
    from commonwatch.rules import RulesError

    try:
        models = decay.decay_models(request.app.state.settings.data_dir)
    except RulesError:
        return None
    return decay.state_of(models, kind=ind.kind, source=ind.source, valid_from=ind.valid_from,
                          last_seen=ind.last_seen, valid_until=ind.valid_until, now=now)


@router.get("/intel/indicators/{indicator_id}/edit")
def edit_form(indicator_id: int, request: Request, principal: Principal = Depends(require("intel.write")),
              db: Session = Depends(get_db)) -> HTMLResponse:
    ind = services.get_indicator(db, principal, indicator_id)
    form = _form_of(db, ind)
    tz = _tz(request, principal)
    from commonwatch.web.templating import format_datetime

    form["valid_from"] = format_datetime(ind.valid_from, tz, with_zone=False)
    form["valid_until"] = format_datetime(ind.valid_until, tz, with_zone=False) if ind.valid_until else ""
    return _form_page(request, db, ind=ind, form=_display(form), errors={})


@router.post("/intel/indicators/{indicator_id}/edit")
async def update(indicator_id: int, request: Request, principal: Principal = Depends(require("intel.write")),
                 db: Session = Depends(get_db)) -> Response:
    ind = services.get_indicator(db, principal, indicator_id)
    data = await _read_form(request)
    try:
        services.save_indicator(db, principal, services.IndicatorForm(**data), request.app.state.clock.now(),
                                centre_id=centre_of(request)["id"], current=ind, tz=_tz(request, principal))
    except Invalid as exc:
        db.rollback()
        return _form_page(request, db, ind=services.get_indicator(db, principal, indicator_id), form=_display(data),
                          errors=exc.by_field(), status_code=422)
    db.commit()
    return redirect(f"/intel/indicators/{indicator_id}", _("Indicator saved."))


@router.post("/intel/indicators/{indicator_id}/expire")
def expire(indicator_id: int, request: Request, principal: Principal = Depends(require("intel.write")),
           db: Session = Depends(get_db)) -> Response:
    ind = services.get_indicator(db, principal, indicator_id)
    services.expire_indicator(db, principal, ind, request.app.state.clock.now(), centre_id=centre_of(request)["id"])
    db.commit()
    return redirect(f"/intel/indicators/{indicator_id}", _("The indicator has expired."))


@router.get("/intel/import")
def import_form(request: Request, principal: Principal = Depends(require("intel.write"))) -> HTMLResponse:
    return render(request, "intel/import.html", {"title": _("Import intelligence"), "report": None, "errors": {}})


@router.post("/intel/import")
async def import_upload(request: Request, file: UploadFile = File(...), format: str = Form("stix"),
                        principal: Principal = Depends(require("intel.write")),
                        db: Session = Depends(get_db)) -> HTMLResponse:
    settings = request.app.state.settings
    raw = await file.read(settings.max_import_bytes + 1)
    ctx: dict[str, Any] = {"title": _("Import intelligence"), "report": None, "errors": {}, "unmapped": []}
    if len(raw) > settings.max_import_bytes:
        ctx["errors"] = {"file": _("is larger than the import limit ({n} bytes)").format(n=settings.max_import_bytes)}
        return render(request, "intel/import.html", ctx, status_code=413)
    origin = services.Origin(f"upload:{(file.filename or '')[:150]}", None, principal.user_id, may_update_any=True)
    now = request.app.state.clock.now()
    try:
        if format == "misp":
            report, ctx["unmapped"] = exchange.import_misp_json(db, raw, origin, now)
        else:
            report = services.import_bundle(db, raw, origin, now, settings.data_dir)
    except Invalid as exc:
        db.rollback()
        ctx["errors"] = {"file": str(exc)}
        return render(request, "intel/import.html", ctx, status_code=422)
    db.commit()
    ctx["report"] = report
    return render(request, "intel/import.html", ctx)


def _exchange_page(request: Request, db: Session, principal: Principal, *, errors: dict | None = None,
                   form: dict | None = None, adding: str = "", status_code: int = 200) -> HTMLResponse:
    from commonwatch.constituency.models import OrgKind
    from commonwatch.intel import exchange_admin

    collections = db.scalars(scope(select(IntelCollection), principal, IntelCollection)
                             .order_by(IntelCollection.title)).all()
    partners = db.execute(select(Organisation.id, Organisation.name).where(Organisation.kind == OrgKind.PARTNER_CERT)
                          .order_by(Organisation.name)).all()
    return render(request, "intel/exchange.html", {
        "title": _("Exchange with partners"), "collections": collections,
        "counts": exchange_admin.collection_counts(db, [c.id for c in collections]),
        "subscriptions": db.scalars(select(Subscription).order_by(Subscription.name)).all(),
        "peers": db.scalars(select(MispPeer).order_by(MispPeer.name)).all(),
        "orgs": {o.id: o.name for o in db.scalars(select(Organisation))},
        "partner_choices": [(str(i), n) for i, n in partners],
        "tlp_choices": [(t, f"TLP:{t}") for t in tlpmod.LEVELS if t != "RED"],
        "errors": errors or {}, "form": form or {}, "adding": adding}, status_code=status_code)


@router.get("/intel-exchange")
def exchange_page(request: Request, principal: Principal = Depends(require("intel.exchange")),
                  db: Session = Depends(get_db)) -> HTMLResponse:
    return _exchange_page(request, db, principal)


_EXCHANGE_KINDS = {"subscriptions": Subscription, "misp": MispPeer}


def _exchange_row(db: Session, kind: str, row_id: int) -> Subscription | MispPeer:
    from commonwatch.errors import NotFound

    model = _EXCHANGE_KINDS.get(kind)
    row = db.get(model, row_id) if model is not None else None
    if row is None:
        raise NotFound(kind)
    return row


async def _exchange_add(kind: str, request: Request, principal: Principal, db: Session) -> Response:
    from commonwatch.intel import exchange_admin

    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}
    settings = request.app.state.settings
    try:
        if kind == "subscriptions":
            row = exchange_admin.add_subscription(db, settings, form)
        else:
            row = exchange_admin.add_misp_peer(db, settings, form)
    except Invalid as exc:
        db.rollback()
        shown = {k: v for k, v in form.items() if k not in ("secret", "api_key")}
        return _exchange_page(request, db, principal, errors=exc.by_field(), form=shown, adding=kind,
                              status_code=422)
    db.commit()
    return redirect(f"/intel-exchange#{kind}", _("Added “{name}”.").format(name=row.name))


def _exchange_test(kind: str, row_id: int, request: Request, db: Session) -> Response:
    from commonwatch.intel import exchange_admin

    row = _exchange_row(db, kind, row_id)
    settings = request.app.state.settings
    tested = (exchange_admin.test_subscription(db, settings, row) if kind == "subscriptions"
              else exchange_admin.test_misp_peer(db, settings, row))
    db.commit()
    if tested.ok:
        return redirect(f"/intel-exchange#{kind}", _("Connection to “{name}” works: {detail}").format(
            name=row.name, detail=tested.detail))
    return redirect(f"/intel-exchange#{kind}", _("Connection to “{name}” failed: {detail}").format(
        name=row.name, detail=tested.detail))


async def _exchange_active(kind: str, row_id: int, request: Request, db: Session) -> Response:
    from commonwatch.intel import exchange_admin

    row = _exchange_row(db, kind, row_id)
    active = (await request.form()).get("active") == "1"
    exchange_admin.set_active(db, row, active)
    db.commit()
    message = _("“{name}” resumed.") if active else _("“{name}” paused: it is not polled until resumed.")
    return redirect(f"/intel-exchange#{kind}", message.format(name=row.name))


def _exchange_remove(kind: str, row_id: int, db: Session) -> Response:
    from commonwatch.intel import exchange_admin

    row = _exchange_row(db, kind, row_id)
    name = row.name
    exchange_admin.remove(db, row)
    db.commit()
    return redirect(f"/intel-exchange#{kind}", _("“{name}” removed; what it brought in is kept.").format(name=name))


@router.post("/intel-exchange/subscriptions")
async def subscription_add(request: Request, principal: Principal = Depends(require("intel.exchange")),
                           db: Session = Depends(get_db)) -> Response:
    return await _exchange_add("subscriptions", request, principal, db)


@router.post("/intel-exchange/subscriptions/{subscription_id}/test")
def subscription_test(subscription_id: int, request: Request, principal: Principal = Depends(require("intel.exchange")),
                      db: Session = Depends(get_db)) -> Response:
    return _exchange_test("subscriptions", subscription_id, request, db)


@router.post("/intel-exchange/subscriptions/{subscription_id}/active")
async def subscription_active(subscription_id: int, request: Request,
                              principal: Principal = Depends(require("intel.exchange")),
                              db: Session = Depends(get_db)) -> Response:
    return await _exchange_active("subscriptions", subscription_id, request, db)


@router.post("/intel-exchange/subscriptions/{subscription_id}/remove")
def subscription_remove(subscription_id: int, principal: Principal = Depends(require("intel.exchange")),
                        db: Session = Depends(get_db)) -> Response:
    return _exchange_remove("subscriptions", subscription_id, db)


@router.post("/intel-exchange/misp")
async def misp_add(request: Request, principal: Principal = Depends(require("intel.exchange")),
                   db: Session = Depends(get_db)) -> Response:
    return await _exchange_add("misp", request, principal, db)


@router.post("/intel-exchange/misp/{peer_id}/test")
def misp_test(peer_id: int, request: Request, principal: Principal = Depends(require("intel.exchange")),
              db: Session = Depends(get_db)) -> Response:
    return _exchange_test("misp", peer_id, request, db)


@router.post("/intel-exchange/misp/{peer_id}/active")
async def misp_active(peer_id: int, request: Request, principal: Principal = Depends(require("intel.exchange")),
                      db: Session = Depends(get_db)) -> Response:
    return await _exchange_active("misp", peer_id, request, db)


@router.post("/intel-exchange/misp/{peer_id}/remove")
def misp_remove(peer_id: int, principal: Principal = Depends(require("intel.exchange")),
                db: Session = Depends(get_db)) -> Response:
    return _exchange_remove("misp", peer_id, db)


@router.post("/intel-exchange/subscriptions/{subscription_id}/poll")
def poll_now(subscription_id: int, request: Request, principal: Principal = Depends(require("intel.exchange")),
             db: Session = Depends(get_db)) -> Response:
    if db.get(Subscription, subscription_id) is None:
        from commonwatch.errors import NotFound

        raise NotFound("subscription")
    db.rollback()  # end this request's transaction: the poll commits page by page in its own (SQLite: one writer)
    state = request.app.state
    try:
        result = exchange.poll_subscription(state.sessionmaker, state.settings, state.clock, subscription_id)
    except Exception as exc:  # shown to the person; the subscription keeps the error too
        return redirect("/intel-exchange", _("The poll failed: {reason}").format(reason=str(exc)[:300]))
    return redirect("/intel-exchange", _("{added} new objects, {unchanged} already held, {failed} refused.").format(
        **{k: result[k] for k in ("added", "unchanged", "failed")}))






# --- correlation ----------------------------------------------------------------------------------------

@router.get("/correlate")
def correlate_page(request: Request, value: SearchText = "", principal: Principal = Depends(require("events.read")),
                   db: Session = Depends(get_db)) -> HTMLResponse:
    """Everything the reader may see that mentions one address, network, domain, URL or hash."""
    from commonwatch.events.store import event_store

    errors: dict[str, str] = {}
    result = None
    events: list[Any] = []
    if value.strip():
        try:
            subject = correlation.subject_of(value)
        except Invalid as exc:
            errors = {e.field: e.reason for e in exc.errors}
        else:
            cap = correlation.correlation_settings(request.app.state.settings.data_dir).common_events
            result = correlation.correlate(db, principal, subject, common_events=cap,
                                           data_dir=request.app.state.settings.data_dir)
            if result.event_ids:
                from commonwatch.events.store import records

                events = records(event_store(db).fetch(
                    principal, result.event_ids, ["time_source", "feed_name", "classification_type", "source_ip",
                                                  "source_fqdn", "source_url", "destination_ip", "tlp"],
                    newest_first=True, limit=correlation.EVENTS_SHOWN))
    return render(request, "intel/correlate.html", {
        "title": _("Correlation"), "value": value, "errors": errors, "result": result, "events": events,
        "events_shown": correlation.EVENTS_SHOWN, "can_intel": principal.has("intel.read"),
        "can_incidents": principal.has("incidents.read"), **_choices()},
        status_code=422 if errors else 200)
