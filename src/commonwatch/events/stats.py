"""Event statistics over a period: counts grouped by type, severity, organisation, feed, country,
taxonomy or day, for what the viewer may see.

Used by the overview panel; written for reuse by reports (monthly and annual figures): plain
values in, plain rows out, one GROUP BY query in the database, never a loop over events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Date, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from commonwatch.access.principal import Principal
from commonwatch.constituency.models import Organisation
from commonwatch.db import scope
from commonwatch.errors import Invalid
from commonwatch.events import search
from commonwatch.events.models import Event
from commonwatch.events.schema import SEVERITIES
from commonwatch.i18n import _

#: Dimensions a count can be grouped by, and the column each reads.
DIMENSIONS: dict[str, Any] = {
    "type": Event.classification_type,
    "taxonomy": Event.classification_taxonomy,
    "severity": Event.severity,
    "org": Event.org_id,
    "feed": Event.feed_name,
    "country": Event.source_cc,
    "sector": Event.constituent_sector,
    "tlp": Event.tlp,
}


@dataclass(frozen=True)
class CountRow:
    key: tuple[Any, ...]  # one value per dimension asked for, in that order
    count: int


def _day(session: Session) -> ColumnElement:
    """The UTC calendar day of ``time_source`` on either engine (stored UTC on both)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", Event.time_source), Date)
    return func.date(Event.time_source)


def counts(session: Session, principal: Principal, by: Sequence[str], *, since: datetime | None = None,
           until: datetime | None = None, f: search.EventFilter | None = None) -> list[CountRow]:
    """Events in ``[since, until)`` matching ``f`` counted per combination of ``by``, largest first.

    ``by`` names entries of :data:`DIMENSIONS` or ``day`` (UTC ``YYYY-MM-DD``).
    """
    if not by:
        raise Invalid("by", _("name at least one of: {choices}").format(choices=", ".join([*DIMENSIONS, "day"])))
    columns = []
    for name in by:
        if name == "day":
            columns.append(_day(session).label("day"))
        elif name in DIMENSIONS:
            columns.append(DIMENSIONS[name].label(name))
        else:
            raise Invalid("by", _("“{value}” is not one of: {choices}").format(
                value=name, choices=", ".join([*DIMENSIONS, "day"])))
    n = func.count().label("n")
    stmt = search.selection(principal, f or search.EventFilter(), *columns, n)
    if since is not None:
        stmt = stmt.where(Event.time_source >= since)
    if until is not None:
        stmt = stmt.where(Event.time_source < until)
    stmt = stmt.group_by(*columns).order_by(n.desc(), *columns)
    rows = session.execute(stmt).all()
    return [CountRow(tuple(str(v) if name == "day" and v is not None else v for name, v in zip(by, r[:-1],
                                                                                                strict=True)),
                     int(r[-1])) for r in rows]


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
