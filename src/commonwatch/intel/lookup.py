"""Global search over indicators: a value finds the indicators of that value (an address also the
network indicators that hold it), within the searcher's tenancy and TLP."""

from __future__ import annotations

import ipaddress

from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.db import scope
from commonwatch.i18n import _
from commonwatch.intel.models import Indicator
from commonwatch.net import network_bounds
from commonwatch.web.globalsearch import HITS_PER_KIND, Hit, Query


def find(db: Session, principal: Principal, query: Query) -> list[Hit]:
    if not principal.has("intel.read"):
        return []
    stmt = scope(select(Indicator), principal, Indicator)
    if query.kind in ("ip", "network"):
        first, last = network_bounds(ipaddress.ip_network(query.value))
        stmt = stmt.where(Indicator.first <= first, Indicator.last >= last)
    elif query.kind in ("domain", "url", "hash", "email"):
        stmt = stmt.where(Indicator.value_key == query.value)
    else:
        return []
    rows = db.scalars(stmt.order_by(Indicator.id.desc()).limit(HITS_PER_KIND))
    return [Hit(_("Indicators"), i.value or i.pattern, f"/intel/indicators/{i.id}", i.kind) for i in rows]
