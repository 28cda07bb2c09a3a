"""REST: findings (ranked, per organisation or across a sector) and their triage."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.vulns import services as svc
from commonwatch.web.deps import get_db, require

router = APIRouter(tags=["vulns"])


class StatusIn(BaseModel):
    status: str
    reason: str = ""


def _row(r: dict[str, Any]) -> dict[str, Any]:
    out = dict(r)
    for k in ("first_seen", "due"):
        if out.get(k) is not None:
            out[k] = out[k].isoformat()
    return out


@router.get("/vulns/findings")
def list_findings(request: Request, org_id: int | None = None, sector: str | None = Query(None, max_length=100),
                  status: list[str] = Query(["open"]), db: Session = Depends(get_db),
                  principal: Principal = Depends(require("vulns.read"))) -> list[dict[str, Any]]:
    """Findings the caller may read, most urgent first, each with why it matched."""
    frame = svc.ranked_findings(db, principal, org_id=org_id, sector=sector, statuses=status,
                                data_dir=request.app.state.settings.data_dir)
    return [_row(r) for r in frame.iter_rows(named=True)]


@router.post("/vulns/findings/{finding_id}/status")
def set_finding_status(finding_id: int, body: StatusIn, request: Request, db: Session = Depends(get_db),
                       principal: Principal = Depends(require("vulns.read"))) -> dict[str, Any]:
    """Mark a finding open, mitigated, accepted risk or false positive (the last two with a reason)."""
    f = svc.set_status(db, principal, finding_id, body.status, body.reason, request.app.state.clock.now())
    return {"id": f.id, "status": f.status, "status_reason": f.status_reason}
