"""Pages: event search (filters, results, keyset paging, export links) and one event in full."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.constituency.models import Organisation
from commonwatch.constituency.services import sector_label, sector_table
from commonwatch.db import get_scoped, scope
from commonwatch.errors import Invalid
from commonwatch.events import counted, export, search, stats
from commonwatch.events.schema import FIELDS, SEVERITIES, TLP_LABELS
from commonwatch.events.store import event_store
from commonwatch.i18n import N_, _
from commonwatch.web.deps import get_db, require
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


def tlp_class(label: str) -> str:
    return "tlp-" + label.lower().replace("+", "-")


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
    try:
        f = search.parse_filter(form, naive_zone=tz)
        page = counted.search_page(request.app.state, db, principal, f, limit=search.DEFAULT_PAGE_SIZE,
                                   after=query.get("cursor") or None, before=query.get("before") or None)
    except Invalid as exc:
        errors = exc.by_field()
    org_names = stats.org_names(db, principal, [e.org_id for e in page.items]) if page else {}
    canonical = f.as_params() if f else {}
    context = {
        "title": _("Events"), "form": form, "errors": errors, "page": page, "org_names": org_names,
        "org_choices": _org_choices(db, principal),
        "newer_link": _link("/events", given, before=page.prev_cursor) if page and page.prev_cursor else None,
        "older_link": _link("/events", given, cursor=page.next_cursor) if page and page.next_cursor else None,
        "first_link": _link("/events", given) if page and (query.get("cursor") or query.get("before")) else None,
        "export_links": [(label, _link("/api/v1/events/export", canonical, format=fmt))
                         for fmt, label in (("csv", "CSV"), ("json", "JSON"), ("jsonl", "JSON lines"),
                                            ("intelmq", "IntelMQ"))] if f else [],
        "export_max": request.app.state.settings.events_export_max_rows,
        **_helpers(),
    }
    return render(request, "events/search.html", context, status_code=422 if errors else 200)


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
    return render(request, "events/detail.html", {
        "title": _("Event {id}").format(id=event.id), "event": event, "fields": fields,
        "extra": sorted((event.extra or {}).items()), "org": org, "partner": partner, "same_ip": same_ip,
        "same_ip_link": same_ip_link, "same_ip_shown": SAME_IP_SHOWN, **_helpers(),
    })
