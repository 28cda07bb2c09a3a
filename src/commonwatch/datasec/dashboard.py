"""Overview panel: assets awaiting a confirmed grade, transfers this year, approvals needing action."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.i18n import _


def panels(db: Session, principal: Principal, state: Any) -> list[dict[str, Any]]:
    from commonwatch.datasec import services as ds
    from commonwatch.datasec.labels import approval_alert_label

    if not principal.has("datasec.read"):
        return []
    today = ds.local_today(state.clock.now())
    assets = ds.list_assets(db, principal)
    unconfirmed = sum(1 for a in assets if not a.grade_level)
    transfers = [t for t in ds.list_assessments(db, principal) if t.year == today.year]
    rows = [
        (_("Data assets"), str(len(assets)), "/datasec"),
        (_("Awaiting a confirmed grade"), str(unconfirmed), "/datasec"),
        (_("Transfers abroad assessed this year"), str(len(transfers)), "/crossborder"),
    ]
    for alert in ds.alerts(db, principal, today, state.settings.data_dir):
        what = approval_alert_label(alert["alert"])
        rows.append((alert["approval"].reference, _("needs action: {what}").format(what=what),
                     "/crossborder#approvals"))
    return [{"title": _("Data security"), "rows": rows if assets or transfers else [],
             "empty": _("No data assets catalogued yet.")}]
