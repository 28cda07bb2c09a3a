"""REST: CII operators' systems (with their due dates) and the asset inventory (CRUD, import, export)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from pydantic import BaseModel
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.cii import services as cii
from commonwatch.cii.models import Asset, AssetImport, CiiSystem
from commonwatch.cii.supervision import Due, load_supervision_rules
from commonwatch.errors import Invalid
from commonwatch.exports import csv_text
from commonwatch.i18n import _
from commonwatch.web.deps import SearchText, get_db, require

router = APIRouter(tags=["cii"])
READ = "vulns.read"


def _today(request: Request) -> date:
    return cii.local_today(request.app.state.clock.now())


def _data_dir(request: Request) -> Path:
    return request.app.state.settings.data_dir


# --- systems ------------------------------------------------------------------------------------------

class SystemIn(BaseModel):
    org_id: int
    name: str
    description: str = ""
    mlps_level: int
    filing_number: str = ""
    filing_date: date | None = None
    protection_department: str = ""
    protection_department_email: str = ""
    protection_department_language: str = "zh-CN"
    last_mlps_assessment: date | None = None
    last_inspection: date | None = None


class SystemPatch(BaseModel):
    name: str | None = None
    description: str | None = None
    mlps_level: int | None = None
    filing_number: str | None = None
    filing_date: date | None = None
    protection_department: str | None = None
    protection_department_email: str | None = None
    protection_department_language: str | None = None
    last_mlps_assessment: date | None = None
    last_inspection: date | None = None


def due_out(d: Due) -> dict[str, Any]:
    return {"last": d.last.isoformat() if d.last else None, "due_on": d.due_on.isoformat() if d.due_on else None,
            "state": d.state, "days_left": d.days_left, "rule_status": d.status, "citation": d.citation}


def system_out(s: CiiSystem, today: date, rules) -> dict[str, Any]:
    from commonwatch.cii.supervision import due_items

    due = due_items(s, today, rules)
    return {
        "id": s.id, "org_id": s.org_id, "name": s.name, "description": s.description, "mlps_level": s.mlps_level,
        "filing_number": s.filing_number, "filing_date": s.filing_date.isoformat() if s.filing_date else None,
        "protection_department": s.protection_department,
        "protection_department_email": s.protection_department_email,
        "protection_department_language": s.protection_department_language,
        "last_mlps_assessment": s.last_mlps_assessment.isoformat() if s.last_mlps_assessment else None,
        "last_inspection": s.last_inspection.isoformat() if s.last_inspection else None,
        "due": {k: due_out(v) for k, v in due.items()},
        "created_at": s.created_at.isoformat(), "updated_at": s.updated_at.isoformat(),
    }


@router.get("/cii/systems")
def systems_list(request: Request, org_id: int | None = None, principal: Principal = Depends(require(READ)),
                 db: Session = Depends(get_db)) -> dict[str, Any]:
    rules, today = load_supervision_rules(_data_dir(request)), _today(request)
    return {"items": [system_out(s, today, rules) for s in cii.list_systems(db, principal, org_id)]}


@router.post("/cii/systems", status_code=201)
def system_create(body: SystemIn, request: Request, principal: Principal = Depends(require(READ)),
                  db: Session = Depends(get_db)) -> dict[str, Any]:
    data = body.model_dump()
    system = cii.create_system(db, principal, data.pop("org_id"), data, _today(request))
    db.commit()
    return system_out(system, _today(request), load_supervision_rules(_data_dir(request)))


@router.get("/cii/systems/{cii_system_id}")
def system_get(cii_system_id: int, request: Request, principal: Principal = Depends(require(READ)),
               db: Session = Depends(get_db)) -> dict[str, Any]:
    return system_out(cii.get_system(db, principal, cii_system_id), _today(request),
                      load_supervision_rules(_data_dir(request)))


@router.patch("/cii/systems/{cii_system_id}")
def system_patch(cii_system_id: int, body: SystemPatch, request: Request, principal: Principal = Depends(require(READ)),
                 db: Session = Depends(get_db)) -> dict[str, Any]:
    system = cii.get_system(db, principal, cii_system_id)
    cii.update_system(db, principal, system, body.model_dump(exclude_unset=True), _today(request))
    db.commit()
    return system_out(system, _today(request), load_supervision_rules(_data_dir(request)))


@router.delete("/cii/systems/{cii_system_id}", status_code=204)
def system_delete(cii_system_id: int, principal: Principal = Depends(require(READ)),
                  db: Session = Depends(get_db)) -> Response:
    cii.delete_system(db, principal, cii.get_system(db, principal, cii_system_id))
    db.commit()
    return Response(status_code=204)


@router.get("/cii/due")
def due_list(request: Request, principal: Principal = Depends(require(READ)),
             db: Session = Depends(get_db)) -> dict[str, Any]:
    """Supervision items needing action (overdue, undated, due soon), most urgent first."""
    items = cii.due_overview(db, principal, _today(request), data_dir=_data_dir(request), only_action=True)
    return {"items": [{"system_id": r["system"].id, "org_id": r["system"].org_id, "system": r["system"].name,
                       "kind": r["due"].kind, **due_out(r["due"])} for r in items]}


# --- assets -------------------------------------------------------------------------------------------

class AssetIn(BaseModel):
    org_id: int
    system_id: int | None = None
    kind: str = "software"
    name: str = ""
    vendor: str = ""
    product: str = ""
    version: str | None = None
    cpe: str | None = None
    purl: str | None = None
    host: str = ""
    network: str = ""
    owner: str = ""


class AssetPatch(BaseModel):
    system_id: int | None = None
    kind: str | None = None
    name: str | None = None
    vendor: str | None = None
    product: str | None = None
    version: str | None = None
    cpe: str | None = None
    purl: str | None = None
    host: str | None = None
    network: str | None = None
    owner: str | None = None


def asset_out(a: Asset) -> dict[str, Any]:
    return {"id": a.id, "org_id": a.org_id, "system_id": a.system_id, "kind": a.kind, "name": a.name,
            "vendor": a.vendor, "product": a.product, "version": a.version, "cpe": a.cpe, "purl": a.purl,
            "host": a.host, "network": a.network, "owner": a.owner, "source": a.source,
            "created_at": a.created_at.isoformat(), "updated_at": a.updated_at.isoformat()}


def import_out(b: AssetImport, with_rows: bool = True) -> dict[str, Any]:
    out = {"id": b.id, "org_id": b.org_id, "system_id": b.system_id, "format": b.format,
           "spec_version": b.spec_version, "filename": b.filename, "sha256": b.sha256, "added": b.added,
           "unchanged": b.unchanged, "quarantined": b.quarantined, "created_at": b.created_at.isoformat()}
    if with_rows:
        out["quarantine"] = [{"location": r.location, "field": r.field, "reason": r.reason, "raw": r.raw}
                             for r in b.bad_rows]
    return out


def _filter(org_id: int | None, system_id: int | None, kind: str, source: str, q: str) -> cii.AssetFilter:
    return cii.AssetFilter(org_id=org_id, system_id=system_id, kind=kind, source=source, q=q)


@router.get("/cii/assets")
def assets_list(org_id: int | None = None, system_id: int | None = None, kind: str = "", source: str = "",
                q: SearchText = "", page: int = Query(1, ge=1, le=1_000_000), per_page: int = Query(100, ge=1, le=1000),
                principal: Principal = Depends(require(READ)), db: Session = Depends(get_db)) -> dict[str, Any]:
    rows, total = cii.list_assets(db, principal, _filter(org_id, system_id, kind, source, q), page=page,
                                  per_page=per_page)
    return {"items": [asset_out(a) for a in rows], "total": total, "page": page, "per_page": per_page}


@router.get("/cii/assets/export")
def assets_export(org_id: int | None = None, system_id: int | None = None, kind: str = "", source: str = "",
                  q: SearchText = "", principal: Principal = Depends(require(READ)),
                  db: Session = Depends(get_db)) -> Response:
    """The selection as CSV (cells a spreadsheet would run as formulas are neutralised)."""
    rows = cii.export_rows(db, principal, _filter(org_id, system_id, kind, source, q))
    return Response(csv_text(cii.ASSET_EXPORT_COLUMNS, rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="assets.csv"'})


@router.post("/cii/assets", status_code=201)
def asset_create(body: AssetIn, principal: Principal = Depends(require(READ)),
                 db: Session = Depends(get_db)) -> dict[str, Any]:
    data = body.model_dump()
    asset = cii.create_asset(db, principal, data.pop("org_id"), data, source="api")
    db.commit()
    return asset_out(asset)


@router.get("/cii/assets/{cii_asset_id}")
def asset_get(cii_asset_id: int, principal: Principal = Depends(require(READ)),
              db: Session = Depends(get_db)) -> dict[str, Any]:
    return asset_out(cii.get_asset(db, principal, cii_asset_id))


@router.patch("/cii/assets/{cii_asset_id}")
def asset_patch(cii_asset_id: int, body: AssetPatch, principal: Principal = Depends(require(READ)),
                db: Session = Depends(get_db)) -> dict[str, Any]:
    asset = cii.get_asset(db, principal, cii_asset_id)
    cii.update_asset(db, principal, asset, body.model_dump(exclude_unset=True))
    db.commit()
    return asset_out(asset)


@router.delete("/cii/assets/{cii_asset_id}", status_code=204)
def asset_delete(cii_asset_id: int, principal: Principal = Depends(require(READ)),
                 db: Session = Depends(get_db)) -> Response:
    cii.delete_asset(db, principal, cii.get_asset(db, principal, cii_asset_id))
    db.commit()
    return Response(status_code=204)


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes, refused past ``limit``."""
    chunks, size = [], 0
    while chunk := await upload.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            raise Invalid("file", _("is larger than the upload limit of {limit} bytes").format(limit=limit))
        chunks.append(chunk)
    if size == 0:
        raise Invalid("file", _("is empty"))
    return b"".join(chunks)


@router.post("/cii/assets/import", status_code=201)
async def assets_import(request: Request, org_id: int = Form(...), format: str = Form(""),
                        system_id: int | None = Form(None), file: UploadFile = File(...),
                        principal: Principal = Depends(require(READ)), db: Session = Depends(get_db)) -> dict:
    """Import an inventory file (csv, cyclonedx, spdx or nmap; guessed from the content when not
    given): good rows added, bad rows quarantined with the reason, or the whole file refused (422)."""
    from commonwatch.cii.importers import MAX_BYTES

    cii.writable_org(db, principal, org_id)
    raw = await read_upload(file, min(MAX_BYTES, request.app.state.settings.max_upload_bytes))
    batch = cii.import_assets(db, principal, org_id, format, raw, system_id=system_id, filename=file.filename or "",
                              now=request.app.state.clock.now())
    db.commit()
    return import_out(batch)


@router.get("/cii/imports")
def imports_list(org_id: int | None = None, principal: Principal = Depends(require(READ)),
                 db: Session = Depends(get_db)) -> dict[str, Any]:
    return {"items": [import_out(b, with_rows=False) for b in cii.list_imports(db, principal, org_id)]}


@router.get("/cii/imports/{cii_import_id}")
def import_get(cii_import_id: int, principal: Principal = Depends(require(READ)),
               db: Session = Depends(get_db)) -> dict[str, Any]:
    return import_out(cii.get_import(db, principal, cii_import_id))
