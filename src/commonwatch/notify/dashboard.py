"""Overview panels: for the centre, deliveries that need a look; for a recipient, open warnings."""

from __future__ import annotations

from commonwatch.i18n import _
from commonwatch.notify import services


def panels(db, principal, state) -> list[dict]:
    if principal.has("notify.read"):
        counts = services.status_counts(db, principal)
        rows = [(services.status_label(s), counts.get(s, 0), f"/notify?status={s}")
                for s in ("held", "dead", "retry", "pending", "sent")]
        return [{"title": _("Early warning deliveries"), "rows": rows}]
    if principal.has("warnings.respond.own"):
        stats = services.feedback_stats(db, principal)
        rows = [(services.status_label(s), n, f"/warnings?status={s}") for s, n in stats["by_status"].items()]
        return [{"title": _("My warnings"), "rows": rows if stats["warnings"] else [],
                 "empty": _("No warnings so far.")}]
    return []
