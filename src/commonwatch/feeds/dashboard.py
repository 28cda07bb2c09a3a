"""Overview panel: the feeds with an open fault, linking to the Feeds page."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.i18n import _


def panels(db: Session, principal: Principal, state: Any) -> list[dict[str, Any]]:
    from commonwatch.feeds import health
    from commonwatch.feeds.models import FeedFault

    if not principal.has("events.ingest"):
        return []
    faults = db.scalars(select(FeedFault).where(FeedFault.closed_at.is_(None))
                        .order_by(FeedFault.opened_at.desc()).limit(10)).all()
    rows = [(_("Open feed faults"), str(health.open_fault_count(db)), "/feeds/health")]
    rows += [(f"{f.feed_name}: {health.kind_label(f.kind)}", health.reason(f.kind, f.detail)[:120],
              "/feeds/health") for f in faults]
    return [{"title": _("Feed health"), "rows": rows, "empty": _("No feed has run yet.")}]
