"""Global search over assistance requests: a reference goes to the request, for those who may
see it (need-to-know: the assigned coordinators and admins)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.cooperation.models import AssistanceRequest
from commonwatch.db import scope
from commonwatch.i18n import _
from commonwatch.web.globalsearch import Hit, Query


def find(db: Session, principal: Principal, query: Query) -> list[Hit]:
    if query.kind != "ref" or not principal.has("cooperation.requests"):
        return []
    stmt = scope(select(AssistanceRequest), principal, AssistanceRequest).where(
        func.upper(AssistanceRequest.ref) == query.value)
    # Only the reference is shown: opening the request is what the audit log records as a view.
    return [Hit(_("Assistance requests"), r.ref, f"/cooperation/requests/{r.id}", exact=True)
            for r in db.scalars(stmt)]
