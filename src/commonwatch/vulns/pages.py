"""Pages: Vulnerabilities — an organisation's findings ranked (KEV, CVSS, EPSS, MLPS level) with why
each matched and its remediation deadline; the coordinator's view across a sector; triage."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.errors import Invalid
from commonwatch.i18n import N_, _
from commonwatch.vulns import services as svc
from commonwatch.vulns.labels import SEVERITY_LABELS, STATUS_LABELS
from commonwatch.vulns.models import FINDING_STATUSES
from commonwatch.web.deps import get_db, require
from commonwatch.web.nav import NavItem
from commonwatch.web.pages import redirect, render

router = APIRouter()
READ = "vulns.read"
NAV = [NavItem(label=N_("Vulnerabilities"), path="/vulns", permission=READ, order=47)]


@router.get("/vulns")
def vulns_page(request: Request, status: str = "open", org_id: int | None = None, sector: str = "",
               principal: Principal = Depends(require(READ)), db: Session = Depends(get_db)) -> HTMLResponse:
    from commonwatch.constituency.models import Organisation

    statuses = [status] if status in FINDING_STATUSES else list(FINDING_STATUSES)
    frame = svc.ranked_findings(db, principal, org_id=org_id, sector=sector or None, statuses=statuses,
                                data_dir=request.app.state.settings.data_dir)
    rows = list(frame.iter_rows(named=True))
    org_ids = {r["org_id"] for r in rows}
    names = {o.id: o.name for o in db.scalars(select(Organisation).where(Organisation.id.in_(org_ids)))}
    sectors = sorted({s for (s,) in db.execute(select(Organisation.sector).distinct()) if s}) \
        if principal.is_staff else []
    return render(request, "vulns/findings.html", {
        "title": _("Vulnerabilities"), "rows": rows, "status": status, "sector": sector, "sectors": sectors,
        "org_names": names, "statuses": [(s, _(STATUS_LABELS[s])) for s in FINDING_STATUSES],
        "status_label": lambda s: _(STATUS_LABELS.get(s, s)),
        "severity_label": lambda s: _(SEVERITY_LABELS.get(s, s)),
    })


@router.post("/vulns/findings/{finding_id}/status")
async def set_status_form(finding_id: int, request: Request, principal: Principal = Depends(require(READ)),
                          db: Session = Depends(get_db)) -> RedirectResponse:
    form = await request.form()
    try:
        svc.set_status(db, principal, finding_id, str(form.get("status", "")), str(form.get("reason", "")),
                       request.app.state.clock.now())
    except Invalid as exc:
        return redirect("/vulns", _("Not saved: {reason}").format(reason=exc))
    return redirect("/vulns", _("Finding updated."))
