"""Overview panels: events of the last 24 hours by type and by severity, for the viewer's scope."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.events import stats
from commonwatch.events.pages import severity_label
from commonwatch.events.store import event_store
from commonwatch.i18n import _
from commonwatch.labels import label
from commonwatch.web.counts import cached_count

PERIOD = timedelta(hours=24)
TYPES_SHOWN = 10


def panels(db: Session, principal: Principal, state: Any) -> list[dict[str, Any]]:
    """Two panels linking each count to the matching search."""
    if not principal.has("events.read"):
        return []
    now = state.clock.now()
    since = now - PERIOD
    window = {"from": since.isoformat(timespec="seconds")}
    store = event_store(db)

    def last_day() -> tuple[list, list]:
        return (store.counts(principal, ["type"], since=since),
                stats.severity_order(store.counts(principal, ["severity"], since=since)))

    # The 24 hours end at most the cache's TTL ago (web/counts.py): the same figures for everyone.
    by_type, by_severity = cached_count(state, "events", principal, "last-24h", last_day)
    total = stats.totals(by_type)

    def link(**params: str) -> str:
        return "/events?" + urlencode({**window, **params})

    type_rows = [(label(r.key[0], "event_type"), f"{r.count:,}", link(type=r.key[0])) for r in by_type[:TYPES_SHOWN]]
    if len(by_type) > TYPES_SHOWN:
        rest = stats.totals(by_type[TYPES_SHOWN:])
        type_rows.append((_("other types"), f"{rest:,}", link()))
    return [
        {"title": _("Events in the last 24 hours by type ({n} in all)").format(n=f"{total:,}"),
         "rows": type_rows, "empty": _("No events in the last 24 hours.")},
        {"title": _("Events in the last 24 hours by severity"),
         "rows": [(severity_label(r.key[0]), f"{r.count:,}", link(severity=r.key[0])) for r in by_severity],
         "empty": _("No events in the last 24 hours.")},
    ]
