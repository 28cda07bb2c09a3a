"""Global search over events: an address, a network or an AS number -> how many events the
searcher may see, linked to the events page with that filter."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.events.search import COUNT_CAP, EventFilter
from commonwatch.events.store import event_store
from commonwatch.i18n import _
from commonwatch.web.globalsearch import Hit, Query


def find(db: Session, principal: Principal, query: Query) -> list[Hit]:
    if query.kind in ("ip", "network"):
        f, params = EventFilter(network=ipaddress.ip_network(query.value)), {"ip": str(query.value)}
    elif query.kind == "asn":
        f, params = EventFilter(asn=query.value), {"asn": str(query.value)}
    else:
        return []
    n, exact = event_store(db).count_capped(principal, f, cap=COUNT_CAP)
    if not n:
        return []
    label = (_("events: {n}") if exact else _("events: more than {n}")).format(n=f"{n:,}")
    return [Hit(_("Events"), label, "/events?" + urlencode(params), str(query.value))]
