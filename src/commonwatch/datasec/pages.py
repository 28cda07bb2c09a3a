"""Pages: the data catalogue with grades, the PI scan upload and its findings, the guided
cross-border assessment with year-to-date counts and approvals, and the PDF record for auditors."""

from __future__ import annotations

import contextlib
from datetime import date
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import String, case, cast, select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from commonwatch.access.principal import Principal
from commonwatch.datasec import crossborder as xb
from commonwatch.datasec import services as ds
from commonwatch.datasec.detectors import identifier_rules
from commonwatch.datasec.ftz import load_ftz_lists
from commonwatch.datasec.grading import grade_label, grading_rules
from commonwatch.datasec.models import DataAsset, TransferAssessment
from commonwatch.datasec.scanner import category_label, detector_label, is_possible, possible_reason
from commonwatch.db import scope
from commonwatch.errors import Invalid
from commonwatch.i18n import N_, _, pick
from commonwatch.web.deps import get_db, require
from commonwatch.web.listing import ListPage, ListSpec, empty_page, list_page, parse_list_query
from commonwatch.web.nav import PARTNER, NavItem
from commonwatch.web.pages import redirect, render

router = APIRouter()
NAV = [
    NavItem(label=N_("Data catalogue"), path="/datasec", permission="datasec.read", order=50, hidden_from=PARTNER),
    NavItem(label=N_("Cross-border"), path="/crossborder", permission="datasec.read", order=51,
            hidden_from=PARTNER),
]


def _dd(request: Request) -> Path:
    return request.app.state.settings.data_dir


def _today(request: Request) -> date:
    return ds.local_today(request.app.state.clock.now())


def _org_names(db: Session, principal: Principal) -> dict[int, str]:
    return {o.id: o.name for o in ds.visible_orgs(db, principal)}


def _helpers(request: Request) -> dict[str, Any]:
    dd = _dd(request)
    table = identifier_rules(dd)
    grading = grading_rules(dd)
    rules = xb.crossborder_rules(dd)
    return {
        "grade_label": lambda level, sub=None: grade_label(level, sub, grading),
        "detector_label": lambda name: detector_label(name, dd),
        "category_label": lambda code: category_label(code, dd),
        "is_possible": lambda name: is_possible(name, dd),
        "possible_reason": lambda name: pick(**possible_reason(name, dd)),
        "detector_status": lambda name: table["detectors"].get(name, {}).get("status", ""),
        "mechanism_label": lambda m: xb.mechanism_label(m, rules),
        "pi_choices": [(k, pick(v["en"], v["zh"])) for k, v in table["pi_categories"].items()],
        "sensitive_choices": [(k, pick(v["en"], v["zh"])) for k, v in table["sensitive_categories"].items()],
        "level_choices": [(k, pick(v["en"], v["zh"])) for k, v in grading["levels"].items()],
        "subgrade_choices": [(int(k), pick(v["en"], v["zh"])) for k, v in grading["general_subgrades"].items()],
        "impact_objects": [(k, pick(v["en"], v["zh"])) for k, v in grading["impact_objects"].items()],
        "impact_degrees": [(k, pick(v["en"], v["zh"])) for k, v in grading["impact_degrees"].items()],
        "notified_choices": [("none", _("Not notified")), ("important", _("Notified or published as important data")),
                             ("core", _("Notified or published as core data"))],
        "today": _today(request),
    }


async def _form(request: Request) -> dict[str, Any]:
    form = await request.form()
    out: dict[str, Any] = {}
    for key in form:
        values = form.getlist(key)
        out[key] = values if len(values) > 1 or key in ("pi_categories", "sensitive_categories",
                                                         "ftz_categories") else values[0]
    return out


# --- catalogue ----------------------------------------------------------------------------------------

def _level_rank(column: Any, dd: Path) -> Any:
    """A grade level's rank (core above important above general; none 0), from the grading rules."""
    levels = grading_rules(dd)["levels"]
    return case({k: int(v.get("rank", 0)) for k, v in levels.items()}, value=column, else_=0)


def _assets_spec(dd: Path) -> ListSpec:
    return ListSpec(path="/datasec", id_column=DataAsset.id, default_sort="name", default_desc=False,
                    sorts={"name": DataAsset.name, "org": DataAsset.org_id,
                           "suggested": _level_rank(DataAsset.suggested_level, dd),
                           "confirmed": _level_rank(DataAsset.grade_level, dd),
                           "leaves": case((DataAsset.leaves_country.is_(True), 1), else_=0)},
                    filters=("q", "org_id"))


ASSESSMENTS_SPEC = ListSpec(
    path="/crossborder", id_column=TransferAssessment.id, default_sort="date",
    # The ISO text of the date: the same order, and a cursor value both engines compare as text.
    sorts={"date": cast(TransferAssessment.transfer_date, String), "title": TransferAssessment.title,
           "org": TransferAssessment.org_id, "mechanism": TransferAssessment.mechanism},
    filters=("q", "org_id"))


def _org_filter(lq: Any) -> int | None:
    text = lq.params.get("org_id", "")
    if text and (not text.isdigit() or len(text) > 18):
        raise Invalid("org_id", _("“{value}” is not an organisation id (a number, or none)").format(value=text))
    return int(text) if text else None


def _scoped_list(db: Session, principal: Principal, spec: ListSpec, model: Any, params: Any,
                 text_columns: tuple[Any, ...]) -> tuple[ListPage, dict[str, str], int | None]:
    """A datasec list under the reader's tenancy, through the shared list component."""
    try:
        lq = parse_list_query(spec, params)
        org_id = _org_filter(lq)
        stmt = scope(select(model), principal, model)
        if org_id:
            stmt = stmt.where(model.org_id == org_id)
        if lq.params.get("q"):
            from sqlalchemy import or_

            stmt = stmt.where(or_(*(c.contains(lq.params["q"]) for c in text_columns)))
        return list_page(db, stmt, spec, lq), {}, org_id
    except Invalid as exc:
        return empty_page(spec, params), exc.by_field(), None


@router.get("/datasec")
def catalogue(request: Request, principal: Principal = Depends(require("datasec.read")),
              db: Session = Depends(get_db)) -> HTMLResponse:
    lst, errors, org_id = _scoped_list(db, principal, _assets_spec(_dd(request)), DataAsset, request.query_params,
                                       (DataAsset.name, DataAsset.system))
    return render(request, "datasec/catalogue.html", {
        "title": _("Data catalogue"), "assets": list(lst.items), "lst": lst, "list_errors": errors,
        "orgs": ds.visible_orgs(db, principal), "org_id": org_id, "scans": ds.list_scans(db, principal, org_id, 20),
        "org_names": _org_names(db, principal),
        "alerts": ds.alerts(db, principal, _today(request), _dd(request)),
        "can_write": bool(ds.writable_orgs(db, principal)), **_helpers(request)},
        status_code=422 if errors else 200)


def _asset_form(request: Request, db: Session, principal: Principal, *, asset=None, form: dict, errors: dict,
                status_code: int = 200) -> HTMLResponse:
    return render(request, "datasec/asset_form.html", {
        "title": _("Edit data asset") if asset else _("New data asset"), "asset": asset, "form": form,
        "errors": errors, "orgs": ds.writable_orgs(db, principal), **_helpers(request)}, status_code=status_code)


@router.get("/datasec/assets/new")
def asset_new(request: Request, principal: Principal = Depends(require("datasec.write")),
              db: Session = Depends(get_db)) -> HTMLResponse:
    return _asset_form(request, db, principal, form={"notified_as": "none"}, errors={})


@router.post("/datasec/assets")
async def asset_create(request: Request, principal: Principal = Depends(require("datasec.write")),
                       db: Session = Depends(get_db)) -> Response:
    data = await _form(request)
    try:
        asset = ds.create_asset(db, principal, data.get("org_id"), data, _dd(request))
    except Invalid as exc:
        db.rollback()
        return _asset_form(request, db, principal, form=data, errors=exc.by_field(), status_code=422)
    db.commit()
    return redirect(f"/datasec/assets/{asset.id}", _("Data asset added; review the suggested grade."))


def _asset_page(request: Request, db: Session, principal: Principal, asset_id: int, *, errors: dict | None = None,
                form: dict | None = None, status_code: int = 200) -> HTMLResponse:
    asset = ds.get_asset(db, principal, asset_id)
    return render(request, "datasec/asset.html", {
        "title": asset.name, "asset": asset, "errors": errors or {}, "form": form or {},
        "can_write": principal.can("datasec.write", asset.org_id),
        "assessments": [a for a in ds.list_assessments(db, principal, asset.org_id) if a.asset_id == asset.id],
        **_helpers(request)}, status_code=status_code)


@router.get("/datasec/assets/{asset_id}")
def asset_view(asset_id: int, request: Request, principal: Principal = Depends(require("datasec.read")),
               db: Session = Depends(get_db)) -> HTMLResponse:
    return _asset_page(request, db, principal, asset_id)


@router.get("/datasec/assets/{asset_id}/edit")
def asset_edit(asset_id: int, request: Request, principal: Principal = Depends(require("datasec.write")),
               db: Session = Depends(get_db)) -> HTMLResponse:
    asset = ds.get_asset(db, principal, asset_id)
    ds.writable_org(db, principal, asset.org_id)
    form = {k: getattr(asset, k) for k in ds.ASSET_FIELDS}
    form["destinations"] = ", ".join(asset.destinations or [])
    form["org_id"] = asset.org_id
    return _asset_form(request, db, principal, asset=asset, form=form, errors={})


@router.post("/datasec/assets/{asset_id}/edit")
async def asset_update(asset_id: int, request: Request, principal: Principal = Depends(require("datasec.write")),
                       db: Session = Depends(get_db)) -> Response:
    asset = ds.get_asset(db, principal, asset_id)
    data = await _form(request)
    for key in ("pi_categories", "sensitive_categories"):
        data.setdefault(key, [])
    for key in ("leaves_country", "public"):
        data.setdefault(key, "")
    try:
        ds.update_asset(db, principal, asset, data, _dd(request))
    except Invalid as exc:
        db.rollback()
        return _asset_form(request, db, principal, asset=ds.get_asset(db, principal, asset_id), form=data,
                           errors=exc.by_field(), status_code=422)
    db.commit()
    return redirect(f"/datasec/assets/{asset_id}", _("Saved."))


@router.post("/datasec/assets/{asset_id}/grade")
async def asset_grade(asset_id: int, request: Request, principal: Principal = Depends(require("datasec.write")),
                      db: Session = Depends(get_db)) -> Response:
    asset = ds.get_asset(db, principal, asset_id)
    data = await _form(request)
    try:
        ds.confirm_grade(db, principal, asset, str(data.get("level", "")), data.get("subgrade"),
                         str(data.get("note", "")), request.app.state.clock.now(), _dd(request))
    except Invalid as exc:
        db.rollback()
        return _asset_page(request, db, principal, asset_id, errors=exc.by_field(), form=data, status_code=422)
    db.commit()
    return redirect(f"/datasec/assets/{asset_id}", _("Grade confirmed."))


# --- scans ----------------------------------------------------------------------------------------------

def _scan_form(request: Request, db: Session, principal: Principal, *, form: dict, errors: dict,
               status_code: int = 200) -> HTMLResponse:
    orgs = ds.writable_orgs(db, principal)
    assets = [a for a in ds.list_assets(db, principal) if a.org_id in {o.id for o in orgs}]
    return render(request, "datasec/scan_form.html", {
        "title": _("Scan a file for personal information"), "form": form, "errors": errors, "orgs": orgs,
        "assets": assets, "limit": request.app.state.settings.max_upload_bytes}, status_code=status_code)


@router.get("/datasec/scan")
def scan_form(request: Request, asset_id: int | None = None, principal: Principal = Depends(require("datasec.write")),
              db: Session = Depends(get_db)) -> HTMLResponse:
    return _scan_form(request, db, principal, form={"asset_id": asset_id or ""}, errors={})


@router.post("/datasec/scan")
async def scan_upload(request: Request, principal: Principal = Depends(require("datasec.write")),
                      db: Session = Depends(get_db)) -> Response:
    from commonwatch.datasec.api import scan_upload_file

    form = await request.form()
    data = {k: form.get(k) for k in ("org_id", "asset_id")}
    upload = form.get("file")
    try:
        ds.writable_org(db, principal, data.get("org_id"))
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Invalid("file", _("choose a file to scan"))
        report = await scan_upload_file(request, upload)
        scan = ds.record_scan(db, principal, data.get("org_id"), report, request.app.state.clock.now(),
                              asset_id=int(data["asset_id"]) if data.get("asset_id") else None, data_dir=_dd(request))
    except Invalid as exc:
        db.rollback()
        shown = {k: v for k, v in data.items() if isinstance(v, str)}
        return _scan_form(request, db, principal, form=shown, errors=exc.by_field(), status_code=422)
    db.commit()
    return redirect(f"/datasec/scans/{scan.id}", _("Scan finished; the file was not kept."))


@router.get("/datasec/scans/{scan_id}")
def scan_view(scan_id: int, request: Request, principal: Principal = Depends(require("datasec.read")),
              db: Session = Depends(get_db)) -> HTMLResponse:
    scan = ds.get_scan(db, principal, scan_id)
    return render(request, "datasec/scan.html", {"title": _("Scan of {source}").format(source=scan.source),
                                                 "scan": scan, **_helpers(request)})


# --- cross-border --------------------------------------------------------------------------------------------

def _summaries(request: Request, db: Session, principal: Principal, orgs, year: int) -> list[dict[str, Any]]:
    return [{"org": o, "summary": ds.year_summary(db, o.id, year, _dd(request))} for o in orgs]


@router.get("/crossborder")
def crossborder_home(request: Request, principal: Principal = Depends(require("datasec.read")),
                     db: Session = Depends(get_db)) -> HTMLResponse:
    today = _today(request)
    lst, list_errors, org_id = _scoped_list(db, principal, ASSESSMENTS_SPEC, TransferAssessment, request.query_params,
                                            (TransferAssessment.title, TransferAssessment.recipient))
    orgs = [o for o in ds.visible_orgs(db, principal) if org_id in (None, o.id) and o.kind != "partner-cert"]
    return render(request, "datasec/crossborder.html", {
        "title": _("Cross-border transfers"), "assessments": list(lst.items), "lst": lst, "list_errors": list_errors,
        "all_orgs": ds.visible_orgs(db, principal), "org_id": org_id,
        "approvals": [(a, ds.approval_state(a, today, _dd(request))) for a in ds.list_approvals(db, principal, org_id)],
        "alerts": ds.alerts(db, principal, today, _dd(request)), "reminders": ds.reminders(db, principal),
        "summaries": _summaries(request, db, principal, orgs[:50], today.year), "year": today.year,
        "org_names": _org_names(db, principal),
        "writable": ds.writable_orgs(db, principal), "form": {}, "errors": {}, **_helpers(request)},
        status_code=422 if list_errors else 200)


def _assessment_form(request: Request, db: Session, principal: Principal, *, form: dict, errors: dict,
                     status_code: int = 200) -> HTMLResponse:
    rules = xb.crossborder_rules(_dd(request))
    orgs = ds.writable_orgs(db, principal)
    today = _today(request)
    chosen = next((o for o in orgs if str(o.id) == str(form.get("org_id", ""))), orgs[0] if len(orgs) == 1 else None)
    year = today.year
    if form.get("transfer_date"):
        with contextlib.suppress(ValueError):
            year = date.fromisoformat(str(form["transfer_date"])).year
    summary = ds.year_summary(db, chosen.id, year, _dd(request)) if chosen else None
    return render(request, "datasec/assessment_form.html", {
        "title": _("Assess a cross-border transfer"), "form": form, "errors": errors, "orgs": orgs,
        "chosen": chosen, "summary": summary,
        "scenarios": [(k, pick(v["en"], v["zh"])) for k, v in rules["scenarios"].items()],
        "ftz_lists": list(load_ftz_lists(_dd(request)).values()),
        "assets": ds.list_assets(db, principal, chosen.id) if chosen else [],
        "asset_choices": [(a.id, a.name) for a in ds.list_assets(db, principal, chosen.id)] if chosen else [],
        **_helpers(request)}, status_code=status_code)


@router.get("/crossborder/new")
def assessment_new(request: Request, org_id: int | None = None,
                   principal: Principal = Depends(require("datasec.write")),
                   db: Session = Depends(get_db)) -> HTMLResponse:
    form = {"org_id": org_id or "", "transfer_date": _today(request).isoformat(), "contains_pi": "1",
            "important_data": "none", "scenario": "other", "recorded": "1"}
    return _assessment_form(request, db, principal, form=form, errors={})


@router.post("/crossborder/new")
async def assessment_create(request: Request, principal: Principal = Depends(require("datasec.write")),
                            db: Session = Depends(get_db)) -> Response:
    data = await _form(request)
    for key in ("contains_pi", "contains_sensitive_pi", "foreign_origin_no_domestic_mix", "treaty_applies",
                "recorded", "ftz_unsure"):
        data.setdefault(key, "")
    if data.get("ftz"):
        data.setdefault("ftz_categories", [])
    if data.get("is_ciio") in (None, "", "auto"):
        data.pop("is_ciio", None)
    try:
        row = ds.create_assessment(db, principal, data.get("org_id"), data, request.app.state.clock.now(),
                                   _dd(request))
    except Invalid as exc:
        db.rollback()
        return _assessment_form(request, db, principal, form=data, errors=exc.by_field(), status_code=422)
    db.commit()
    return redirect(f"/crossborder/assessments/{row.id}", _("Assessment recorded."))


@router.get("/crossborder/assessments/{assessment_id}")
def assessment_view(assessment_id: int, request: Request, principal: Principal = Depends(require("datasec.read")),
                    db: Session = Depends(get_db)) -> HTMLResponse:
    row = ds.get_assessment(db, principal, assessment_id)
    return render(request, "datasec/assessment.html", {"title": row.title, "a": row, "r": row.result,
                                                       **_helpers(request)})


@router.post("/crossborder/approvals")
async def approval_create(request: Request, principal: Principal = Depends(require("datasec.write")),
                          db: Session = Depends(get_db)) -> Response:
    data = await _form(request)
    try:
        ds.create_approval(db, principal, data.get("org_id"), data, _dd(request))
    except Invalid as exc:
        db.rollback()
        today = _today(request)
        lst, _list_errors, _org = _scoped_list(db, principal, ASSESSMENTS_SPEC, TransferAssessment, {}, ())
        return render(request, "datasec/crossborder.html", {
            "title": _("Cross-border transfers"), "assessments": list(lst.items), "lst": lst, "list_errors": {},
            "all_orgs": ds.visible_orgs(db, principal), "org_id": None,
            "approvals": [(a, ds.approval_state(a, today, _dd(request))) for a in ds.list_approvals(db, principal)],
            "alerts": ds.alerts(db, principal, today, _dd(request)), "reminders": ds.reminders(db, principal),
            "summaries": [], "year": today.year, "writable": ds.writable_orgs(db, principal), "form": data,
            "org_names": _org_names(db, principal),
            "errors": exc.by_field(), **_helpers(request)}, status_code=422)
    db.commit()
    return redirect("/crossborder#approvals", _("Approval recorded; its validity and extension window are tracked."))


# --- the record for auditors --------------------------------------------------------------------------------

@router.get("/datasec/record.pdf")
def record_pdf(request: Request, org_id: int | None = None, principal: Principal = Depends(require("datasec.read")),
               db: Session = Depends(get_db)) -> Response:
    """The catalogue and the assessments (one organisation, or all visible) as a bilingual PDF."""
    from commonwatch.datasec.record import build_record

    data = build_record(db, principal, org_id, request.app.state.clock.now(), _dd(request))
    name = f"datasec-record-{org_id or 'all'}.pdf"
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
