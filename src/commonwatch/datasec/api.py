"""REST: the data catalogue, PI scans (upload a file), cross-border assessments, approvals."""

from __future__ import annotations

import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from commonwatch.access.principal import Principal
from commonwatch.constituency.models import Organisation
from commonwatch.datasec import services as ds
from commonwatch.datasec.ftz import describe, load_ftz_lists
from commonwatch.datasec.models import AssessmentApproval, DataAsset, Scan, TransferAssessment
from commonwatch.datasec.scanner import is_possible, possible_reason, scan_path
from commonwatch.db import get_scoped
from commonwatch.errors import Invalid, NotFound
from commonwatch.i18n import _
from commonwatch.web.deps import get_db, require

router = APIRouter(tags=["datasec"])


def _data_dir(request: Request) -> Path:
    return request.app.state.settings.data_dir


def _now(request: Request) -> datetime:
    return request.app.state.clock.now()


# --- catalogue ---------------------------------------------------------------------------------------

class AssetIn(BaseModel):
    org_id: int
    name: str
    system: str = ""
    location: str = ""
    owner: str = ""
    record_count: int | None = None
    persons_count: int | None = None
    pi_categories: list[str] = Field(default_factory=list)
    sensitive_categories: list[str] = Field(default_factory=list)
    purpose: str = ""
    retention: str = ""
    leaves_country: bool = False
    destinations: list[str] = Field(default_factory=list)
    notified_as: str = "none"
    impact_object: str = ""
    impact_degree: str = ""
    public: bool = False
    notes: str = ""


class AssetPatch(BaseModel):
    name: str | None = None
    system: str | None = None
    location: str | None = None
    owner: str | None = None
    record_count: int | None = None
    persons_count: int | None = None
    pi_categories: list[str] | None = None
    sensitive_categories: list[str] | None = None
    purpose: str | None = None
    retention: str | None = None
    leaves_country: bool | None = None
    destinations: list[str] | None = None
    notified_as: str | None = None
    impact_object: str | None = None
    impact_degree: str | None = None
    public: bool | None = None
    notes: str | None = None


class GradeIn(BaseModel):
    level: str
    subgrade: int | None = None
    note: str = ""


def asset_out(a: DataAsset) -> dict[str, Any]:
    return {
        "id": a.id, "org_id": a.org_id, "name": a.name, "system": a.system, "location": a.location, "owner": a.owner,
        "record_count": a.record_count, "persons_count": a.persons_count, "pi_categories": a.pi_categories,
        "sensitive_categories": a.sensitive_categories, "purpose": a.purpose, "retention": a.retention,
        "leaves_country": a.leaves_country, "destinations": a.destinations, "notified_as": a.notified_as,
        "impact_object": a.impact_object, "impact_degree": a.impact_degree, "public": a.public, "notes": a.notes,
        "suggestion": a.suggestion,
        "grade": {"level": a.grade_level or None, "subgrade": a.grade_subgrade, "note": a.grade_note,
                  "confirmed_by": a.confirmed_by or None,
                  "confirmed_at": a.confirmed_at.isoformat() if a.confirmed_at else None},
        "created_at": a.created_at.isoformat(), "updated_at": a.updated_at.isoformat(),
    }


@router.get("/datasec/assets")
def assets_list(org_id: int | None = None, principal: Principal = Depends(require("datasec.read")),
                db: Session = Depends(get_db)) -> dict[str, Any]:
    return {"items": [asset_out(a) for a in ds.list_assets(db, principal, org_id)]}


@router.post("/datasec/assets", status_code=201)
def asset_create(body: AssetIn, request: Request, principal: Principal = Depends(require("datasec.write")),
                 db: Session = Depends(get_db)) -> dict[str, Any]:
    data = body.model_dump()
    asset = ds.create_asset(db, principal, data.pop("org_id"), data, _data_dir(request))
    db.commit()
    return asset_out(asset)


@router.get("/datasec/assets/{asset_id}")
def asset_get(asset_id: int, principal: Principal = Depends(require("datasec.read")),
              db: Session = Depends(get_db)) -> dict[str, Any]:
    return asset_out(ds.get_asset(db, principal, asset_id))


@router.patch("/datasec/assets/{asset_id}")
def asset_patch(asset_id: int, body: AssetPatch, request: Request,
                principal: Principal = Depends(require("datasec.write")), db: Session = Depends(get_db)) -> dict:
    asset = ds.get_asset(db, principal, asset_id)
    ds.update_asset(db, principal, asset, body.model_dump(exclude_unset=True), _data_dir(request))
    db.commit()
    return asset_out(asset)


@router.post("/datasec/assets/{asset_id}/grade")
def asset_grade(asset_id: int, body: GradeIn, request: Request,
                principal: Principal = Depends(require("datasec.write")), db: Session = Depends(get_db)) -> dict:
    asset = ds.get_asset(db, principal, asset_id)
    ds.confirm_grade(db, principal, asset, body.level, body.subgrade, body.note, _now(request), _data_dir(request))
    db.commit()
    return asset_out(asset)


# --- scans ------------------------------------------------------------------------------------------

def scan_out(s: Scan, with_findings: bool = True, data_dir: Path | None = None) -> dict[str, Any]:
    """A scan; findings that failed their check digit are listed apart under ``possible_findings``
    with the reason in both languages, and gave the scan none of its categories."""
    out: dict[str, Any] = {
        "id": s.id, "org_id": s.org_id, "asset_id": s.asset_id, "source": s.source, "kind": s.kind, "rows": s.rows,
        "parts": s.parts, "sampled": s.sampled, "pi_categories": s.pi_categories,
        "sensitive_categories": s.sensitive_categories, "created_at": s.created_at.isoformat(),
    }
    if with_findings:
        rows = [({
            "part": f.part, "field": f.field, "detector": f.detector, "count": f.count, "rows": f.rows,
            "rows_total": f.rows_total, "share": f.share, "confidence": f.confidence,
            "pi_category": f.pi_category or None,
            "sensitive_category": f.sensitive_category or None, "minors": f.minors, "samples": f.samples,
        }, is_possible(f.detector, data_dir)) for f in s.findings]
        out["findings"] = [r for r, possible in rows if not possible]
        out["possible_findings"] = [{**r, "possible": True, "reason": possible_reason(r["detector"], data_dir)}
                                    for r, possible in rows if possible]
    return out


@router.get("/datasec/scans")
def scans_list(org_id: int | None = None, principal: Principal = Depends(require("datasec.read")),
               db: Session = Depends(get_db)) -> dict[str, Any]:
    return {"items": [scan_out(s, with_findings=False) for s in ds.list_scans(db, principal, org_id)]}


@router.get("/datasec/scans/{scan_id}")
def scan_get(scan_id: int, request: Request, principal: Principal = Depends(require("datasec.read")),
             db: Session = Depends(get_db)) -> dict[str, Any]:
    return scan_out(ds.get_scan(db, principal, scan_id), data_dir=_data_dir(request))


@router.post("/datasec/scans", status_code=201)
async def scan_upload(request: Request, org_id: int = Form(...), asset_id: int | None = Form(None),
                      file: UploadFile = File(...), principal: Principal = Depends(require("datasec.write")),
                      db: Session = Depends(get_db)) -> dict[str, Any]:
    """Scan an uploaded file; the file is deleted afterwards, only counts and masked samples are kept."""
    ds.writable_org(db, principal, org_id)
    report = await scan_upload_file(request, file)
    scan = ds.record_scan(db, principal, org_id, report, _now(request), asset_id=asset_id,
                          data_dir=_data_dir(request))
    db.commit()
    return scan_out(scan, data_dir=_data_dir(request))


async def scan_upload_file(request: Request, upload: UploadFile):
    """Spool an upload to a private temporary file (size-limited), scan it, delete it."""
    settings = request.app.state.settings
    limit = settings.max_upload_bytes
    name = Path(upload.filename or "upload").name or "upload"
    with tempfile.TemporaryDirectory(prefix="cw-scan-") as tmp:
        path = Path(tmp) / name
        size = 0
        with path.open("wb") as fh:
            while chunk := await upload.read(1024 * 1024):
                size += len(chunk)
                if size > limit:
                    raise Invalid("file", _("is larger than the upload limit of {limit} bytes").format(limit=limit))
                fh.write(chunk)
        if size == 0:
            raise Invalid("file", _("is empty"))
        today = ds.local_today(_now(request))
        # The scan is CPU work: run it off the event loop so other requests are served meanwhile.
        return await run_in_threadpool(scan_path, path, today=today, data_dir=settings.data_dir, display_name=name)


# --- cross-border ------------------------------------------------------------------------------------

class TransferIn(BaseModel):
    org_id: int
    title: str
    recipient: str = ""
    recipient_country: str = ""
    asset_id: int | None = None
    transfer_date: date | None = None
    is_ciio: bool | None = None
    important_data: str = "none"
    contains_pi: bool = True
    contains_sensitive_pi: bool = False
    scenario: str = "other"
    foreign_origin_no_domestic_mix: bool = False
    ftz: str = ""
    on_ftz_negative_list: str = ""
    ftz_categories: list[str] | None = None
    ftz_unsure: bool = False
    persons_non_sensitive: int = 0
    persons_sensitive: int = 0
    prior_non_sensitive_outside: int = 0
    prior_sensitive_outside: int = 0
    persons_processed: int | None = None
    treaty_applies: bool = False
    recorded: bool = True
    preview: bool = Field(False, description="Decide without storing (nothing is added to the year's counts).")


def assessment_out(a: TransferAssessment) -> dict[str, Any]:
    return {"id": a.id, "org_id": a.org_id, "asset_id": a.asset_id, "title": a.title, "recipient": a.recipient,
            "recipient_country": a.recipient_country, "transfer_date": a.transfer_date.isoformat(), "year": a.year,
            "recorded": a.recorded, "persons_non_sensitive": a.persons_non_sensitive,
            "persons_sensitive": a.persons_sensitive, "inputs": a.inputs, **a.result,
            "created_at": a.created_at.isoformat()}


@router.get("/crossborder/assessments")
def assessments_list(org_id: int | None = None, principal: Principal = Depends(require("datasec.read")),
                     db: Session = Depends(get_db)) -> dict[str, Any]:
    return {"items": [assessment_out(a) for a in ds.list_assessments(db, principal, org_id)]}


@router.post("/crossborder/assessments", status_code=201)
def assessment_create(body: TransferIn, request: Request, principal: Principal = Depends(require("datasec.write")),
                      db: Session = Depends(get_db)) -> dict[str, Any]:
    """Assess a transfer: the mechanism, the rule and threshold that decided it, obligations, warnings
    and articles. Unless ``preview``, the transfer is stored and (if ``recorded``) counts for the year."""
    data = body.model_dump(exclude_none=True)
    if body.preview:
        _org, inputs, decision = ds.preview_assessment(db, principal, body.org_id, data, _now(request),
                                                       _data_dir(request))
        return {"preview": True, "inputs": inputs.as_dict(), **decision.as_dict()}
    row = ds.create_assessment(db, principal, body.org_id, data, _now(request), _data_dir(request))
    db.commit()
    return assessment_out(row)


@router.get("/crossborder/assessments/{assessment_id}")
def assessment_get(assessment_id: int, principal: Principal = Depends(require("datasec.read")),
                   db: Session = Depends(get_db)) -> dict[str, Any]:
    return assessment_out(ds.get_assessment(db, principal, assessment_id))


@router.get("/crossborder/totals")
def totals(request: Request, org_id: int, year: int | None = Query(None),
           principal: Principal = Depends(require("datasec.read")), db: Session = Depends(get_db)) -> dict:
    """Year-to-date persons exported (non-sensitive and sensitive apart) and the room left before each line."""
    org = get_scoped(db, principal, Organisation, org_id)
    if org is None:
        raise NotFound()
    y = year or ds.local_today(_now(request)).year
    s = ds.year_summary(db, org.id, y, _data_dir(request))
    return {"org_id": org.id, "year": s.year, "non_sensitive": s.non_sensitive, "sensitive": s.sensitive,
            "thresholds": s.headroom}


class ApprovalIn(BaseModel):
    org_id: int
    kind: str = "security_assessment"
    reference: str
    issued_on: date
    scope: str = ""
    extended_from: int | None = None


def approval_out(a: AssessmentApproval, today: date, data_dir: Path) -> dict[str, Any]:
    return {"id": a.id, "org_id": a.org_id, "kind": a.kind, "reference": a.reference, "scope": a.scope,
            "issued_on": a.issued_on.isoformat(), "valid_until": a.valid_until.isoformat(),
            "extension_window_opens": a.window_opens.isoformat() if a.window_opens else None,
            "extended_from": a.extended_from, "superseded": a.superseded,
            "state": {k: (v.isoformat() if isinstance(v, date) else v)
                      for k, v in ds.approval_state(a, today, data_dir).items()}}


@router.get("/crossborder/approvals")
def approvals_list(request: Request, org_id: int | None = None,
                   principal: Principal = Depends(require("datasec.read")), db: Session = Depends(get_db)) -> dict:
    today = ds.local_today(_now(request))
    return {"items": [approval_out(a, today, _data_dir(request)) for a in ds.list_approvals(db, principal, org_id)]}


@router.post("/crossborder/approvals", status_code=201)
def approval_create(body: ApprovalIn, request: Request, principal: Principal = Depends(require("datasec.write")),
                    db: Session = Depends(get_db)) -> dict[str, Any]:
    data = body.model_dump()
    data["issued_on"] = body.issued_on.isoformat()
    row = ds.create_approval(db, principal, data.pop("org_id"), data, _data_dir(request))
    db.commit()
    return approval_out(row, ds.local_today(_now(request)), _data_dir(request))


@router.get("/crossborder/approvals/{approval_id}")
def approval_get(approval_id: int, request: Request, principal: Principal = Depends(require("datasec.read")),
                 db: Session = Depends(get_db)) -> dict[str, Any]:
    return approval_out(ds.get_approval(db, principal, approval_id), ds.local_today(_now(request)),
                        _data_dir(request))


@router.get("/crossborder/ftz-lists")
def ftz_lists(request: Request, principal: Principal = Depends(require("datasec.read"))) -> dict[str, Any]:
    lists = load_ftz_lists(_data_dir(request))
    return {"items": [{**describe(v), "categories": list(v.categories)} for v in lists.values()]}
