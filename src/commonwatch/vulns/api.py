"""REST: findings (ranked, per organisation or across a sector) and their triage."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
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


class PublishIn(BaseModel):
    collection: str
    tlp: str = "AMBER"


def _vuln_id(vuln_id: str) -> str:
    from commonwatch.errors import Invalid

    if not (0 < len(vuln_id) <= 250) or any(ord(ch) < 33 for ch in vuln_id):
        raise Invalid("vuln_id", "not a vulnerability id")
    return vuln_id


def _tlp(value: str) -> str:
    from commonwatch.errors import Invalid
    from commonwatch.intel import tlp as tlpmod

    try:
        return tlpmod.normalise(value)
    except ValueError:
        raise Invalid("tlp", "not a TLP label (CLEAR, GREEN, AMBER, AMBER+STRICT, RED)") from None


@router.get("/vulns/{vuln_id}/stix")
def vulnerability_stix(vuln_id: str, request: Request, tlp: str = Query("AMBER", max_length=20),
                       db: Session = Depends(get_db), principal: Principal = Depends(require("intel.read"))
                       ) -> Response:
    """The vulnerability and its affected products (and intel's indicators naming it) as a STIX 2.1
    bundle at ``tlp``, if the caller may read that label."""
    import json

    from commonwatch.intel import tlp as tlpmod
    from commonwatch.vulns.sharing import vulnerability_bundle

    label = _tlp(tlp)
    st = request.app.state
    bundle = vulnerability_bundle(db, _vuln_id(vuln_id), label, tlpmod.reader_for(db, principal), now=st.clock.now(),
                                  centre_name=st.settings.centre_name, base_url=st.settings.base_url)
    return Response(json.dumps(bundle, ensure_ascii=False), media_type="application/stix+json;version=2.1")


@router.post("/vulns/{vuln_id}/publish")
def publish_vulnerability(vuln_id: str, body: PublishIn, request: Request, db: Session = Depends(get_db),
                          principal: Principal = Depends(require("intel.exchange"))) -> dict[str, Any]:
    """Publish the vulnerability to partners: into a TAXII collection at a TLP label, which its
    readers must be admitted to and which may not be stricter than the collection allows."""
    from commonwatch.vulns.sharing import publish

    st = request.app.state
    out = publish(db, _vuln_id(vuln_id), body.collection, _tlp(body.tlp), now=st.clock.now(),
                  centre_name=st.settings.centre_name, base_url=st.settings.base_url,
                  author_user_id=principal.user_id or None)
    db.commit()
    return out
