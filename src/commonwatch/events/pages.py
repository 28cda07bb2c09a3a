"""Pages: event search (filters, results, keyset paging, export links) and one event in full."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.constituency.models import Organisation
from commonwatch.constituency.services import sector_label, sector_table
from commonwatch.db import get_scoped, scope
from commonwatch.errors import Invalid
from commonwatch.events import counted, export, search, stats
from commonwatch.events.schema import FIELDS, SEVERITIES, TLP_LABELS
from commonwatch.events.store import event_store, records
from commonwatch.i18n import N_, _
from commonwatch.web.deps import get_db, require
from commonwatch.web.listing import ListPage, ListQuery, ListSpec, parse_bulk_ids
from commonwatch.web.nav import NavItem
from commonwatch.web.pages import render

router = APIRouter()
NAV = [NavItem(label=N_("Events"), path="/events", permission="events.read", order=20)]

#: Above this many visible organisations the filter takes an id instead of offering a list.
ORG_CHOICES_MAX = 300
SAME_IP_SHOWN = 20
_SEVERITY_LABELS = {"info": N_("Info"), "low": N_("Low"), "medium": N_("Medium"), "high": N_("High"),
                    "critical": N_("Critical")}


def severity_label(level: str) -> str:
    """A severity level in the current language."""
    return _(_SEVERITY_LABELS[level]) if level in _SEVERITY_LABELS else level


def tlp_class(label: str | None) -> str:
    """The CSS class of a TLP label (none for an event stored without one)."""
    return "tlp-" + label.lower().replace("+", "-") if label else ""


def _org_choices(db: Session, principal: Principal) -> list[tuple[int, str]] | None:
    """Organisations the viewer may filter by, or None when there are too many for a list."""
    visible = scope(select(Organisation.id, Organisation.name), principal, Organisation)
    n = db.scalar(select(func.count()).select_from(visible.limit(ORG_CHOICES_MAX + 1).subquery()))
    if n > ORG_CHOICES_MAX:
        return None
    return [(r.id, r.name) for r in db.execute(visible.order_by(Organisation.name))]


def show_value(value: Any) -> str:
    """A field value as text: objects and lists as JSON, nothing as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return str(value)


def _helpers() -> dict[str, Any]:
    return {"severity_label": severity_label, "tlp_class": tlp_class, "sector_label": sector_label,
            "show_value": show_value,
            "severities": [(s, severity_label(s)) for s in SEVERITIES], "tlps": [(t, t) for t in TLP_LABELS],
            "sectors": [(s["code"], sector_label(s["code"])) for s in sector_table()]}


#: The events list for the shared list macros (sort headers, links that keep filters and order);
#: the store does the sorting and paging (``EventStore.search_page(sort=)``).
LIST_SPEC = ListSpec(path="/events", id_column=None, sorts={k: k for k in search.SORT_KEYS}, default_sort="time",
                     filters=search.FILTER_PARAMS)


def _list_links(page: Any, given: dict[str, str], order: search.EventSort, query: Any) -> ListPage:
    """The list macros' view of a store page: its sort links, pager links and the link to share."""
    lst = ListPage([], next_cursor=page.next_cursor if page else None, prev_cursor=page.prev_cursor if page else None,
                   total=page.total if page else None, total_exact=page.total_exact if page else True)
    moved = (1, 1) if (query.get("cursor") or query.get("before")) else None  # any: only "is it page 1" is asked
    lst.spec, lst.query = LIST_SPEC, ListQuery(sort=order.key, descending=order.descending, after=moved,
                                               params=given)
    return lst


def _link(path: str, params: dict[str, str], **extra: str | None) -> str:
    merged = {**params, **{k: v for k, v in extra.items() if v}}
    return path + ("?" + urlencode(merged) if merged else "")


@router.get("/events")
def event_search(request: Request, principal: Principal = Depends(require("events.read")),
                 db: Session = Depends(get_db)) -> HTMLResponse:
    query = request.query_params
    form = {k: query.get(k, "") for k in search.FILTER_PARAMS}
    given = {k: v for k, v in form.items() if v.strip()}
    tz = principal.timezone or request.app.state.settings.timezone
    errors: dict[str, str] = {}
    page = None
    f = None
    order = search.NEWEST_FIRST
    try:
        order = search.parse_sort(query.get("sort"), query.get("dir"))
    except Invalid as exc:
        errors = exc.by_field()
    try:
        f = search.parse_filter(form, naive_zone=tz)
        if errors:
            raise Invalid([])
        page = counted.search_page(request.app.state, db, principal, f, limit=search.DEFAULT_PAGE_SIZE,
                                   after=query.get("cursor") or None, before=query.get("before") or None, sort=order)
    except Invalid as exc:
        errors = {**errors, **exc.by_field()}
    org_names = stats.org_names(db, principal, [e.org_id for e in page.items]) if page else {}
    canonical = f.as_params() if f else {}
    context = {
        "title": _("Events"), "form": form, "errors": errors, "page": page, "org_names": org_names,
        "org_choices": _org_choices(db, principal),
        "lst": (lst := _list_links(page, given, order, query)),
        "newer_link": lst.prev_link, "older_link": lst.next_link, "first_link": lst.first_link if page else None,
        "order": order.as_params(),
        "order_errors": {k: v for k, v in errors.items() if k in ("sort", "dir", "cursor", "before")},
        "export_links": [(label, _link("/api/v1/events/export", canonical, format=fmt))
                         for fmt, label in (("csv", "CSV"), ("json", "JSON"), ("jsonl", "JSON lines"),
                                            ("intelmq", "IntelMQ"))] if f else [],
        "export_max": request.app.state.settings.events_export_max_rows,
        "bulk_actions": bulk_choices(principal), **_helpers(),
    }
    return render(request, "events/search.html", context, status_code=422 if errors else 200)


# --- bulk acts on the selected events ---------------------------------------------------------------------

_BULK_LABELS = {"export-csv": N_("Export as CSV"), "incident-new": N_("Create an incident from them"),
                "incident-link": N_("Link them to an incident"), "false-positive": N_("Mark as false positive")}


def _may_answer_warnings(principal: Principal) -> bool:
    return principal.has("warnings.respond") or principal.has("warnings.respond.own")


def bulk_choices(principal: Principal) -> list[tuple[str, str]]:
    """The acts the viewer may run on selected events (incidents need the right to manage them;
    a false positive is the answer of the organisation the events' warnings went to)."""
    acts = ["export-csv"] + (["incident-new", "incident-link"] if principal.has("incidents.manage") else [])
    acts += ["false-positive"] if _may_answer_warnings(principal) else []
    return [(a, _(_BULK_LABELS[a])) for a in acts]


def _answerable_warnings(db: Session, principal: Principal, event_ids: list[int]) -> tuple[
        dict[int, list[int]], dict[int, str]]:
    """A false positive on events is the warnings' false positive (``notify.services.respond_many``):
    per selected event, the ids of its warnings the principal may answer and has not already
    marked false positive; and for each event with none, why it is left alone."""
    from commonwatch.notify.models import EventWarning

    rows = db.execute(scope(select(EventWarning.id, EventWarning.event_id, EventWarning.org_id,
                                   EventWarning.status), principal, EventWarning)
                      .where(EventWarning.event_id.in_(event_ids), EventWarning.disposition == "warn")).all()
    found: dict[int, list[int]] = {}
    already: set[int] = set()
    for r in rows:
        if not principal.can("warnings.respond", r.org_id):
            continue
        if r.status == "false-positive":
            already.add(r.event_id)
        else:
            found.setdefault(r.event_id, []).append(r.id)
    reasons = {i: (_("already marked false positive") if i in already else _("no warning of yours to answer"))
               for i in event_ids if i not in found}
    return found, reasons


def _visible_events(db: Session, principal: Principal, ids: list[int]) -> tuple[list[int], list[int]]:
    """Of the selected ids, those the store lets the principal read, and the rest (refused)."""
    seen = set(event_store(db).fetch(principal, ids, ())["id"].to_list())
    return [i for i in ids if i in seen], [i for i in ids if i not in seen]


def _events_confirm(request: Request, *, action: str, allowed: list[int], refused: list[int], form: dict,
                    errors: dict, status_code: int = 200, reasons: dict[int, str] | None = None,
                    warnings: int = 0) -> HTMLResponse:
    label = _(_BULK_LABELS[action])
    n = len(allowed)
    fields = []
    summary = (_("{action}: {n} event is selected.") if n == 1
               else _("{action}: {n} events are selected.")).format(action=label, n=n)
    if action == "false-positive":
        fields = [{"name": "comment", "label": _("Reason"), "type": "textarea", "required": True, "options": None,
                   "blank": None, "help": _("One reason for all the selected events.")}]
        summary += " " + (_("Their {n} warning will be marked false positive; the feedback counts against the "
                            "feed and type.") if warnings == 1 else
                          _("Their {n} warnings will be marked false positive; the feedback counts against the "
                            "feed and type.")).format(n=warnings)
    elif action == "incident-new":
        fields = [{"name": "title", "label": _("Title"), "type": "text", "required": False, "options": None,
                   "blank": None, "help": _("Left empty, the title names the events' type and count.")}]
    elif action == "incident-link":
        fields = [{"name": "incident", "label": _("Incident (reference or number)"), "type": "text",
                   "required": True, "options": None, "blank": None, "help": None}]
    return render(request, "web/bulk_confirm.html", {
        "title": _("Confirm: {action}").format(action=label), "summary": summary, "reasons": reasons or {},
        "allowed": allowed, "refused": refused, "url": "/events/bulk", "action": action, "back": "/events",
        "button": (_("{action}: {n} event") if n == 1 else _("{action}: {n} events")).format(action=label, n=n),
        "fields": fields, "form": form, "errors": errors, "hidden": {},
    }, status_code=status_code)


def _incident_by_reference(db: Session, principal: Principal, text: str) -> Any:
    from commonwatch.incidents import services as incidents
    from commonwatch.incidents.models import Incident

    text = text.strip()
    found = db.scalar(scope(select(Incident), principal, Incident).where(Incident.ref == text)) if text else None
    if found is None and text.isdigit():
        found = get_scoped(db, principal, Incident, int(text))
    if found is None:
        raise Invalid("incident", _("“{value}” is not an incident you can see").format(value=text))
    return incidents.get_incident(db, principal, found.id)


@router.post("/events/bulk")
async def events_bulk(request: Request, principal: Principal = Depends(require("events.read")),
                      db: Session = Depends(get_db)) -> Response:
    """Export the selected events, or open or link an incident with them: a confirmation first."""
    from commonwatch.access import audit
    from commonwatch.incidents import services as incidents
    from commonwatch.incidents.rules import load_incident_rules
    from commonwatch.web.pages import redirect

    form = await request.form()
    action = str(form.get("action", ""))
    allowed_acts = [a for a, _label in bulk_choices(principal)]
    if action not in allowed_acts:
        raise Invalid("action", _("“{value}” is not one of: {choices}").format(
            value=action, choices=", ".join(allowed_acts)))
    ids = parse_bulk_ids(form.getlist("ids"))
    data = {k: str(form.get(k, "")) for k in ("title", "incident", "comment")}
    allowed, refused = _visible_events(db, principal, ids)
    if action == "false-positive":
        data["_confirm"] = "1" if form.get("confirm") else ""
        return _false_positive(request, db, principal, allowed, refused, data)
    if not form.get("confirm") or not allowed:
        return _events_confirm(request, action=action, allowed=allowed, refused=refused, form=data, errors={})
    state = request.app.state
    now = state.clock.now()
    try:
        if action == "export-csv":
            audit.record(db, "events.export_selection", "events", f"bulk:{len(allowed)}",
                         after={"format": "csv", "ids": allowed, "refused": refused}, actor=principal.actor)
            frame = event_store(db).fetch(principal, allowed, [f.column for f in FIELDS], newest_first=True)
            body = "".join(export.render("csv", records(frame)))
            db.commit()
            name = f"events-selection-{now:%Y%m%dT%H%M%SZ}.csv"
            return Response(body, media_type=export.MEDIA_TYPES["csv"],
                            headers={"Content-Disposition": f'attachment; filename="{name}"',
                                     "X-Event-Count": str(len(allowed))})
        rules = load_incident_rules(state.settings.data_dir)
        if action == "incident-new":
            extra = {"title": data["title"].strip()} if data["title"].strip() else {}
            incident = incidents.create_from_events(db, principal, allowed, extra, now=now, rules=rules)
            message = _("Incident {ref} filed.").format(ref=incident.ref)
        else:
            incident = _incident_by_reference(db, principal, data["incident"])
            added = incidents.link_events(db, principal, incident, allowed, now=now)
            message = _("{n} events linked to {ref}.").format(n=added, ref=incident.ref)
    except Invalid as exc:
        db.rollback()
        return _events_confirm(request, action=action, allowed=allowed, refused=refused, form=data,
                               errors=exc.by_field(), status_code=422)
    db.commit()
    if refused:
        message += " " + _("{n} selected events you cannot see were left out.").format(n=len(refused))
    return redirect(f"/incidents/{incident.id}", message)


def _false_positive(request: Request, db: Session, principal: Principal, visible: list[int], hidden: list[int],
                    data: dict[str, str]) -> Response:
    """Mark the selected events false positive: each one's warnings to the principal's
    organisations get the warnings' false positive (feedback with the one reason, the new
    status) through ``respond_many``, in one audit record naming the events and the warnings.
    Events the principal cannot read, or with no warning of its to answer, are left alone."""
    from commonwatch.notify import services as warnings
    from commonwatch.web.pages import redirect

    found, reasons = _answerable_warnings(db, principal, visible) if visible else ({}, {})
    allowed = [i for i in visible if i in found]
    refused = [i for i in visible if i not in found] + hidden
    reasons |= {i: _("not an event you can see") for i in hidden}
    warning_ids = [w for i in allowed for w in found[i]]

    def confirm(errors: dict, status_code: int = 200) -> HTMLResponse:
        return _events_confirm(request, action="false-positive", allowed=allowed, refused=refused,
                               form={"comment": data["comment"]}, errors=errors, status_code=status_code,
                               reasons=reasons, warnings=len(warning_ids))

    if not data.get("_confirm") or not allowed:
        return confirm({})
    try:
        done, _refused = warnings.respond_many(
            db, principal, warning_ids, "false-positive", data["comment"], now=request.app.state.clock.now(),
            audit_extra={"events": allowed, "events_refused": refused})
    except Invalid as exc:
        db.rollback()
        return confirm(exc.by_field(), 422)
    db.commit()
    message = (_("{n} event marked false positive.") if len(allowed) == 1
               else _("{n} events marked false positive.")).format(n=len(allowed))
    if refused:
        message += " " + _("{n} selected events were left alone.").format(n=len(refused))
    return redirect("/events", message)


@router.get("/events/{event_id}")
def event_detail(event_id: int, request: Request, principal: Principal = Depends(require("events.read")),
                 db: Session = Depends(get_db)) -> HTMLResponse:
    event = event_store(db).get(principal, event_id)
    org = get_scoped(db, principal, Organisation, event.org_id) if event.org_id else None
    partner = get_scoped(db, principal, Organisation, event.partner_org_id) if event.partner_org_id else None
    same_ip: list[Any] = []
    same_ip_link = None
    try:
        same_ip_filter = search.parse_filter({"ip": event.source_ip}) if event.source_ip else None
    except Invalid:
        same_ip_filter = None  # an address the store could not parse has no neighbours to show
    if same_ip_filter is not None:
        nearby = event_store(db).ordered(principal, same_ip_filter, limit=SAME_IP_SHOWN + 1)
        same_ip = [r for r in nearby if r.id != event.id][:SAME_IP_SHOWN]
        same_ip_link = _link("/events", same_ip_filter.as_params())
    record = export.event_record(event)
    fields = [(f.name, record[f.name]) for f in FIELDS if f.name != "extra"]
    from commonwatch.intel.correlation import event_values, lines_for_page  # intel builds on events

    mention_lines = lines_for_page(request, db, principal, event_values(event))
    return render(request, "events/detail.html", {
        "title": _("Event {id}").format(id=event.id), "event": event, "fields": fields,
        "extra": sorted((event.extra or {}).items()), "org": org, "partner": partner, "same_ip": same_ip,
        "same_ip_link": same_ip_link, "same_ip_shown": SAME_IP_SHOWN, "mention_lines": mention_lines, **_helpers(),
    })
