"""Overview panel: the open incidents whose next deadline is nearest, and the viewer's alerts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal, Role
from commonwatch.db import scope
from commonwatch.i18n import _
from commonwatch.incidents import alerts
from commonwatch.incidents.models import OPEN_STATUSES, Incident
from commonwatch.incidents.rules import load_incident_rules
from commonwatch.incidents.views import clock_rows, level_label
from commonwatch.web.templating import format_datetime


def panels(db: Session, principal: Principal, state: Any) -> list[dict[str, Any]]:
    if principal.role == Role.PARTNER:
        return []
    rules = load_incident_rules(state.settings.data_dir)
    now = state.clock.now()
    tz = principal.timezone or state.settings.timezone
    rows = []
    open_cases = db.scalars(scope(select(Incident), principal, Incident).where(
        Incident.status.in_(OPEN_STATUSES)).order_by(Incident.first_report_due).limit(200))
    for incident in open_cases:
        live = [c for c in clock_rows(incident, rules, now) if c["live"]]
        if live:
            c = min(live, key=lambda r: r["due_at"])
            rows.append((c["due_at"], (f"{incident.ref} · {level_label(incident.level, rules)}",
                                       f"{c['title']}: {format_datetime(c['due_at'], tz)} ({c['state_label']})",
                                       f"/incidents/{incident.id}")))
    rows.sort(key=lambda r: r[0])
    mine = alerts.unread_for(db, principal)
    out = [{"title": _("Incident clocks"), "rows": [r[1] for r in rows[:10]], "empty": _("No clock is running.")}]
    if mine:
        out.append({"title": _("Deadline alerts"), "rows": [(alerts.message(db, a, rules, tz), "", "/incidents/alerts")
                                                          for a in mine[:10]]})
    return out
