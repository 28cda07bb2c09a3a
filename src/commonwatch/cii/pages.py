"""Pages: CII systems per organisation (MLPS level, filing, due assessments and inspections), the
asset inventory (list, filter, add, edit, import, export CSV) and each import's quarantined rows."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from commonwatch.access.principal import Principal
from commonwatch.cii import services as cii
from commonwatch.cii.importers import FORMATS, MAX_BYTES
from commonwatch.cii.models import ASSET_KINDS, ASSET_SOURCES
from commonwatch.cii.supervision import due_items, load_supervision_rules
from commonwatch.errors import Invalid
from commonwatch.exports import csv_text
from commonwatch.i18n import N_, _
from commonwatch.web.deps import SearchText, get_db, require
from commonwatch.web.nav import PARTNER, NavItem
from commonwatch.web.pages import redirect, render

router = APIRouter()
READ = "vulns.read"
NAV = [
    NavItem(label=N_("CII systems"), path="/cii/systems", permission=READ, order=45, hidden_from=PARTNER),
    NavItem(label=N_("Assets"), path="/cii/assets", permission=READ, order=46, hidden_from=PARTNER),
]
KIND_LABELS = {"software": N_("software"), "hardware": N_("hardware"), "os": N_("operating system"),
               "service": N_("network service")}
FORMAT_LABELS = {"csv": N_("CSV file"), "cyclonedx": N_("CycloneDX JSON (1.4-1.6)"), "spdx": N_("SPDX 2.3 JSON file"),
                 "nmap": N_("nmap XML (-sV)")}


def _dd(request: Request) -> Path:
    return request.app.state.settings.data_dir


def _today(request: Request) -> date:
    return cii.local_today(request.app.state.clock.now())


def _helpers(request: Request, db: Session, principal: Principal) -> dict[str, Any]:
    return {"kind_label": cii.kind_label, "state_label": cii.state_label,
            "asset_kind_label": lambda k: _(KIND_LABELS.get(k, k)),
            "asset_kinds": [(k, _(KIND_LABELS[k])) for k in ASSET_KINDS],
            "org_names": {o.id: o.name for o in cii.visible_orgs(db, principal)}, "today": _today(request)}


async def _form(request: Request) -> dict[str, Any]:
    form = await request.form()
    return {k: form.get(k) for k in form}


# --- systems -------------------------------------------------------------------------------------------

@router.get("/cii/systems")
def systems(request: Request, org_id: int | None = None, due: str = "",
            principal: Principal = Depends(require(READ)), db: Session = Depends(get_db)) -> HTMLResponse:
    rules, today = load_supervision_rules(_dd(request)), _today(request)
    rows = []
    for s in cii.list_systems(db, principal, org_id):
        items = due_items(s, today, rules)
        if due == "action" and not any(d.needs_action for d in items.values()):
            continue
        rows.append({"system": s, "due": items})
    return render(request, "cii/systems.html", {
        "title": _("CII systems"), "rows": rows, "orgs": cii.visible_orgs(db, principal), "org_id": org_id,
        "due": due, "can_write": bool(cii.writable_orgs(db, principal)),
        "reminders": cii.reminders(db, principal, 20), **_helpers(request, db, principal)})


def _system_form(request: Request, db: Session, principal: Principal, *, system=None, form: dict, errors: dict,
                 status_code: int = 200) -> HTMLResponse:
    return render(request, "cii/system_form.html", {
        "title": _("Edit CII system") if system else _("New CII system"), "system": system, "form": form,
        "errors": errors, "orgs": cii.writable_orgs(db, principal), "levels": [(n, str(n)) for n in range(1, 6)],
        "dept_languages": [("zh-CN", "中文 (zh-CN)"), ("en", "English (en)")],
        **_helpers(request, db, principal)}, status_code=status_code)


@router.get("/cii/systems/new")
def system_new(request: Request, org_id: int | None = None, principal: Principal = Depends(require(READ)),
               db: Session = Depends(get_db)) -> HTMLResponse:
    if not cii.writable_orgs(db, principal):
        raise Invalid("org_id", _("you may not add systems for any organisation"))
    return _system_form(request, db, principal, form={"org_id": org_id or "", "mlps_level": 3}, errors={})


@router.post("/cii/systems")
async def system_create(request: Request, principal: Principal = Depends(require(READ)),
                        db: Session = Depends(get_db)) -> Response:
    data = await _form(request)
    try:
        system = cii.create_system(db, principal, data.get("org_id"), data, _today(request))
    except Invalid as exc:
        db.rollback()
        return _system_form(request, db, principal, form=data, errors=exc.by_field(), status_code=422)
    db.commit()
    return redirect(f"/cii/systems/{system.id}", _("System added."))


@router.get("/cii/systems/{cii_system_id}")
def system_view(cii_system_id: int, request: Request, principal: Principal = Depends(require(READ)),
                db: Session = Depends(get_db)) -> HTMLResponse:
    system = cii.get_system(db, principal, cii_system_id)
    rules = load_supervision_rules(_dd(request))
    assets, total = cii.list_assets(db, principal, cii.AssetFilter(system_id=system.id), per_page=200)
    return render(request, "cii/system.html", {
        "title": system.name, "system": system, "due": due_items(system, _today(request), rules),
        "assets": assets, "asset_total": total, "can_write": cii.may_write(principal, system.org_id),
        **_helpers(request, db, principal)})


@router.get("/cii/systems/{cii_system_id}/edit")
def system_edit(cii_system_id: int, request: Request, principal: Principal = Depends(require(READ)),
                db: Session = Depends(get_db)) -> HTMLResponse:
    system = cii.get_system(db, principal, cii_system_id)
    cii.writable_org(db, principal, system.org_id)
    form = {k: getattr(system, k) for k in cii.SYSTEM_FIELDS}
    return _system_form(request, db, principal, system=system, form=form, errors={})


@router.post("/cii/systems/{cii_system_id}/edit")
async def system_update(cii_system_id: int, request: Request, principal: Principal = Depends(require(READ)),
                        db: Session = Depends(get_db)) -> Response:
    system = cii.get_system(db, principal, cii_system_id)
    data = await _form(request)
    try:
        cii.update_system(db, principal, system, {k: v for k, v in data.items() if k in cii.SYSTEM_FIELDS},
                          _today(request))
    except Invalid as exc:
        db.rollback()
        system = cii.get_system(db, principal, cii_system_id)
        return _system_form(request, db, principal, system=system, form=data, errors=exc.by_field(), status_code=422)
    db.commit()
    return redirect(f"/cii/systems/{system.id}", _("System saved."))


# --- assets --------------------------------------------------------------------------------------------

def _asset_filter(org_id: str, system_id: str, kind: str, source: str, q: str) -> cii.AssetFilter:
    def num(v: str) -> int | None:
        return int(v) if v.strip().isdigit() and len(v.strip()) < 19 else None

    return cii.AssetFilter(org_id=num(org_id), system_id=num(system_id), kind=kind if kind in ASSET_KINDS else "",
                           source=source if source in ASSET_SOURCES else "", q=q)


@router.get("/cii/assets")
def assets(request: Request, org_id: str = "", system_id: str = "", kind: str = "", source: str = "",
           q: SearchText = "", page: int = 1, principal: Principal = Depends(require(READ)),
           db: Session = Depends(get_db)) -> HTMLResponse:
    f = _asset_filter(org_id, system_id, kind, source, q)
    page = max(1, min(page, 1_000_000))
    rows, total = cii.list_assets(db, principal, f, page=page, per_page=100)
    query = "&".join(f"{k}={v}" for k, v in (("org_id", f.org_id or ""), ("system_id", f.system_id or ""),
                                             ("kind", f.kind), ("source", f.source)) if v)
    return render(request, "cii/assets.html", {
        "title": _("Assets"), "assets": rows, "total": total, "page": page, "pages": max(1, -(-total // 100)),
        "filter": f, "query": query, "orgs": cii.visible_orgs(db, principal),
        "systems": cii.list_systems(db, principal), "sources": ASSET_SOURCES,
        "imports": cii.list_imports(db, principal, f.org_id, 10), "can_write": bool(cii.writable_orgs(db, principal)),
        **_helpers(request, db, principal)})


@router.get("/cii/assets/export.csv")
def assets_export(org_id: str = "", system_id: str = "", kind: str = "", source: str = "", q: SearchText = "",
                  principal: Principal = Depends(require(READ)), db: Session = Depends(get_db)) -> Response:
    rows = cii.export_rows(db, principal, _asset_filter(org_id, system_id, kind, source, q))
    return Response(csv_text(cii.ASSET_EXPORT_COLUMNS, rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="assets.csv"'})


def _asset_form(request: Request, db: Session, principal: Principal, *, asset=None, form: dict, errors: dict,
                status_code: int = 200) -> HTMLResponse:
    orgs = cii.writable_orgs(db, principal)
    return render(request, "cii/asset_form.html", {
        "title": _("Edit asset") if asset else _("New asset"), "asset": asset, "form": form, "errors": errors,
        "orgs": orgs, "systems": [s for s in cii.list_systems(db, principal) if cii.may_write(principal, s.org_id)],
        **_helpers(request, db, principal)}, status_code=status_code)


@router.get("/cii/assets/new")
def asset_new(request: Request, principal: Principal = Depends(require(READ)),
              db: Session = Depends(get_db)) -> HTMLResponse:
    return _asset_form(request, db, principal, form={"kind": "software"}, errors={})


@router.post("/cii/assets")
async def asset_create(request: Request, principal: Principal = Depends(require(READ)),
                       db: Session = Depends(get_db)) -> Response:
    data = await _form(request)
    try:
        asset = cii.create_asset(db, principal, data.get("org_id"), data, source="form")
    except Invalid as exc:
        db.rollback()
        return _asset_form(request, db, principal, form=data, errors=exc.by_field(), status_code=422)
    db.commit()
    return redirect(f"/cii/assets?org_id={asset.org_id}", _("Asset added."))


@router.get("/cii/assets/{cii_asset_id}/edit")
def asset_edit(cii_asset_id: int, request: Request, principal: Principal = Depends(require(READ)),
               db: Session = Depends(get_db)) -> HTMLResponse:
    asset = cii.get_asset(db, principal, cii_asset_id)
    cii.writable_org(db, principal, asset.org_id)
    form = {k: getattr(asset, k) for k in ("system_id", "kind", "name", "vendor", "product", "version", "cpe", "purl",
                                           "host", "network", "owner")}
    return _asset_form(request, db, principal, asset=asset, form=form, errors={})


@router.post("/cii/assets/{cii_asset_id}/edit")
async def asset_update(cii_asset_id: int, request: Request, principal: Principal = Depends(require(READ)),
                       db: Session = Depends(get_db)) -> Response:
    asset = cii.get_asset(db, principal, cii_asset_id)
    data = await _form(request)
    data.pop("csrf_token", None)
    try:
        cii.update_asset(db, principal, asset, data)
    except Invalid as exc:
        db.rollback()
        asset = cii.get_asset(db, principal, cii_asset_id)
        return _asset_form(request, db, principal, asset=asset, form=data, errors=exc.by_field(), status_code=422)
    db.commit()
    return redirect(f"/cii/assets?org_id={asset.org_id}", _("Asset saved."))


@router.post("/cii/assets/{cii_asset_id}/delete")
def asset_delete(cii_asset_id: int, principal: Principal = Depends(require(READ)),
                 db: Session = Depends(get_db)) -> Response:
    asset = cii.get_asset(db, principal, cii_asset_id)
    org_id = asset.org_id
    cii.delete_asset(db, principal, asset)
    db.commit()
    return redirect(f"/cii/assets?org_id={org_id}", _("Asset removed."))


# --- import --------------------------------------------------------------------------------------------

def _import_form(request: Request, db: Session, principal: Principal, *, form: dict, errors: dict,
                 status_code: int = 200) -> HTMLResponse:
    return render(request, "cii/import_form.html", {
        "title": _("Import an inventory"), "form": form, "errors": errors, "orgs": cii.writable_orgs(db, principal),
        "systems": [s for s in cii.list_systems(db, principal) if cii.may_write(principal, s.org_id)],
        "formats": [(f, _(FORMAT_LABELS[f])) for f in FORMATS], "limit": _limit(request),
        **_helpers(request, db, principal)}, status_code=status_code)


def _limit(request: Request) -> int:
    return min(MAX_BYTES, request.app.state.settings.max_upload_bytes)


@router.get("/cii/assets/import")
def import_new(request: Request, principal: Principal = Depends(require(READ)),
               db: Session = Depends(get_db)) -> HTMLResponse:
    return _import_form(request, db, principal, form={}, errors={})


@router.post("/cii/assets/import")
async def import_upload(request: Request, principal: Principal = Depends(require(READ)),
                        db: Session = Depends(get_db)) -> Response:
    from commonwatch.cii.api import read_upload

    form = await request.form()
    data = {k: v for k, v in form.items() if isinstance(v, str)}
    upload = form.get("file")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Invalid("file", _("choose a file to import"))
        cii.writable_org(db, principal, data.get("org_id"))
        raw = await read_upload(upload, _limit(request))
        batch = cii.import_assets(db, principal, data.get("org_id"), data.get("format", ""), raw,
                                  system_id=data.get("system_id") or None, filename=upload.filename,
                                  now=request.app.state.clock.now())
    except Invalid as exc:
        db.rollback()
        return _import_form(request, db, principal, form=data, errors=exc.by_field(), status_code=422)
    db.commit()
    return redirect(f"/cii/imports/{batch.id}", _("Inventory imported: {added} added, {bad} quarantined.").format(
        added=batch.added, bad=batch.quarantined))


@router.get("/cii/imports/{cii_import_id}")
def import_view(cii_import_id: int, request: Request, principal: Principal = Depends(require(READ)),
                db: Session = Depends(get_db)) -> HTMLResponse:
    batch = cii.get_import(db, principal, cii_import_id)
    return render(request, "cii/import.html", {"title": _("Inventory import"), "batch": batch,
                                               "format_label": lambda f: _(FORMAT_LABELS.get(f, f)),
                                               **_helpers(request, db, principal)})
