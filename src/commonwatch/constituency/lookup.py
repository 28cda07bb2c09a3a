"""Global search over the constituency: organisations by name, by an address or network they hold,
or by an AS number of theirs, within the searcher's tenancy."""

from __future__ import annotations

import ipaddress

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.constituency.models import Network, Organisation, OrgAsn
from commonwatch.db import scope
from commonwatch.i18n import _
from commonwatch.net import network_bounds
from commonwatch.web.globalsearch import HITS_PER_KIND, Hit, Query


def find(db: Session, principal: Principal, query: Query) -> list[Hit]:
    if not principal.has("registry.read"):
        return []
    stmt = scope(select(Organisation), principal, Organisation)
    if query.kind == "text":
        like = f"%{query.text}%"
        stmt = stmt.where(or_(Organisation.name.ilike(like), Organisation.name_local.ilike(like)))
    elif query.kind in ("ip", "network"):
        first, last = network_bounds(ipaddress.ip_network(query.value))
        stmt = stmt.where(Organisation.id.in_(select(Network.org_id).where(Network.first <= first,
                                                                          Network.last >= last)))
    elif query.kind == "asn":
        stmt = stmt.where(Organisation.id.in_(select(OrgAsn.org_id).where(OrgAsn.asn == query.value)))
    else:
        return []
    rows = db.scalars(stmt.order_by(Organisation.name).limit(HITS_PER_KIND))
    return [Hit(_("Organisations"), o.name_local or o.name, f"/organisations/{o.id}", o.name if o.name_local else "")
            for o in rows]
