"""Global search over incidents: a reference goes to its case; other text finds cases by title."""

from __future__ import annotations

from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.i18n import _
from commonwatch.incidents.services import IncidentFilter, search_incidents
from commonwatch.web.globalsearch import HITS_PER_KIND, Hit, Query


def find(db: Session, principal: Principal, query: Query) -> list[Hit]:
    if query.kind not in ("ref", "text") or not principal.has("incidents.read"):
        return []
    rows, _total = search_incidents(db, principal, IncidentFilter(q=query.text), per_page=HITS_PER_KIND)
    return [Hit(_("Incidents"), f"{i.ref} {i.title}", f"/incidents/{i.id}", i.status,
                exact=query.kind == "ref" and i.ref.upper() == query.value) for i in rows]
