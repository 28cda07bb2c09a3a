"""Event statistics over a period: helpers around the store's counts
(``event_store(session).counts``: grouped by type, severity, organisation, partner, feed, country,
sector, taxonomy, hour or day, for what the viewer may see).

Used by the overview panel; written for reuse by reports (monthly and annual figures): plain
values in, plain rows out, never a loop over events.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.constituency.models import Organisation
from commonwatch.db import scope
from commonwatch.events.schema import SEVERITIES
from commonwatch.events.store import CountRow


def totals(rows: Sequence[CountRow]) -> int:
    return sum(r.count for r in rows)


def severity_order(rows: Sequence[CountRow]) -> list[CountRow]:
    """Rows keyed by severity alone, most severe first (the order people read them in)."""
    rank = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    return sorted(rows, key=lambda r: rank.get(r.key[0], len(rank)))


def org_names(session: Session, principal: Principal, ids: Sequence[int | None]) -> dict[int, str]:
    """Names of the organisations among ``ids`` that ``principal`` may see (others stay unnamed)."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    stmt = scope(select(Organisation.id, Organisation.name), principal, Organisation).where(
        Organisation.id.in_(wanted))
    return {row.id: row.name for row in session.execute(stmt)}
