"""Overview panel: CII systems whose MLPS assessment or annual inspection is overdue or due soon."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.i18n import _


def panels(db: Session, principal: Principal, state: Any) -> list[dict[str, Any]]:
    from commonwatch.cii import services as cii

    if not principal.has("vulns.read"):
        return []
    today = cii.local_today(state.clock.now())
    systems = cii.list_systems(db, principal)
    if not systems:
        return [{"title": _("CII supervision"), "rows": [], "empty": _("No CII systems recorded yet.")}]
    items = cii.due_overview(db, principal, today, data_dir=state.settings.data_dir, only_action=True)
    overdue = sum(1 for r in items if r["due"].state in ("overdue", "unknown"))
    soon = sum(1 for r in items if r["due"].state == "due_soon")
    rows = [
        (_("CII systems"), str(len(systems)), "/cii/systems"),
        (_("Overdue or undated"), str(overdue), "/cii/systems?due=action"),
        (_("Due soon"), str(soon), "/cii/systems?due=action"),
    ]
    for r in items[:10]:
        due = r["due"]
        when = due.due_on.isoformat() if due.due_on else "-"
        rows.append((f"{r['system'].name}: {cii.kind_label(due.kind)}",
                     f"{cii.state_label(due.state)} ({when})", f"/cii/systems/{r['system'].id}"))
    return [{"title": _("CII supervision"), "rows": rows, "empty": _("No CII systems recorded yet.")}]
