"""Pages: the Feeds page — each feed's health (cadence, last run, volume, quarantine rate, share
matched to the constituency, columns against the mapping), its open faults with the reason, and a
chart of its runs; and the history of fault episodes. For centre staff who ingest."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.errors import NotFound
from commonwatch.feeds import health
from commonwatch.i18n import N_, _
from commonwatch.web.deps import get_db, require
from commonwatch.web.nav import NavItem
from commonwatch.web.pages import render

router = APIRouter()
NAV = [NavItem(label=N_("Feeds"), path="/feeds/health", permission="events.ingest", order=44)]


def _view(feed: health.FeedHealth, with_chart: bool) -> dict:
    return {
        "name": feed.name, "cadence": feed.cadence, "cadence_source": feed.cadence_source,
        "last_run": feed.last_run, "rows": feed.rows, "events": feed.events,
        "quarantine_rate": feed.quarantine_rate, "matched_share": feed.matched_share,
        "new_columns": feed.new_columns, "missing_columns": feed.missing_columns,
        "faults": [{"kind": health.kind_label(f.kind), "reason": health.reason(f.kind, f.detail),
                    "opened_at": f.opened_at, "alerted_at": f.alerted_at} for f in feed.faults],
        "svg": health.chart_svg(feed) if with_chart else "",
    }


def _episodes(rows) -> list[dict]:
    return [{"feed": f.feed_name, "kind": health.kind_label(f.kind), "reason": health.reason(f.kind, f.detail),
             "opened_at": f.opened_at, "closed_at": f.closed_at, "delivery": f.delivery} for f in rows]


@router.get("/feeds/health")
def feeds_page(request: Request, principal: Principal = Depends(require("events.ingest")),
               db: Session = Depends(get_db)) -> HTMLResponse:
    state = request.app.state
    rules = health.load_health_rules(state.settings.data_dir)
    feeds = health.overview(db, state.clock.now(), rules)
    return render(request, "feeds/health.html", {
        "title": _("Feeds"), "feeds": [_view(f, with_chart=True) for f in feeds],
        "episodes": _episodes(health.fault_history(db, limit=50)), "one": None})


@router.get("/feeds/health/feed")
def feed_page(request: Request, name: str, principal: Principal = Depends(require("events.ingest")),
              db: Session = Depends(get_db)) -> HTMLResponse:
    state = request.app.state
    rules = health.load_health_rules(state.settings.data_dir)
    feeds = health.overview(db, state.clock.now(), rules, feed=name)
    if not feeds:
        raise NotFound(_("no feed named {name} has run").format(name=name))
    return render(request, "feeds/health.html", {
        "title": _("Feed {name}").format(name=name), "feeds": [_view(feeds[0], with_chart=True)],
        "episodes": _episodes(health.fault_history(db, feed=name)), "one": name})
