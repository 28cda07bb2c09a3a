"""Pages: the ingest runs, newest first, with what became of their records; a run whose process
was killed shows as interrupted."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.i18n import N_, _
from commonwatch.pipeline.labels import STATUS_LABELS
from commonwatch.pipeline.models import IngestRun
from commonwatch.web.deps import get_db, require
from commonwatch.web.nav import NavItem
from commonwatch.web.pages import render

router = APIRouter()
NAV = [NavItem(label=N_("Ingest runs"), path="/ingest/runs", permission="events.ingest", order=45)]
PER_PAGE = 100


@router.get("/ingest/runs")
def runs_page(request: Request, status: str = "", page: int = 1,
              principal: Principal = Depends(require("events.ingest")),
              db: Session = Depends(get_db)) -> HTMLResponse:
    page = min(max(page, 1), 100_000)
    stmt = select(IngestRun)
    if status in STATUS_LABELS:
        stmt = stmt.where(IngestRun.status == status)
    total = db.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    runs = db.scalars(stmt.order_by(IngestRun.id.desc()).offset((page - 1) * PER_PAGE).limit(PER_PAGE)).all()
    return render(request, "pipeline/runs.html", {
        "title": _("Ingest runs"), "runs": runs, "status": status, "page": page,
        "pages": max(1, -(-total // PER_PAGE)), "status_labels": {k: _(v) for k, v in STATUS_LABELS.items()},
    })
