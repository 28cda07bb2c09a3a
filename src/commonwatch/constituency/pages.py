"""Pages: the organisation list and search, an organisation with its resources and contacts,
forms to register and edit them, overlapping networks, import and export."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.constituency import services as registry
from commonwatch.constituency import transfer
from commonwatch.constituency.models import (
    CONTACT_ROLES,
    NOTICE_KINDS,
    Contact,
    Domain,
    Network,
    Organisation,
    OrgAsn,
    OrgKind,
)
from commonwatch.db import scope
from commonwatch.errors import Invalid
from commonwatch.i18n import N_, _
from commonwatch.web.deps import authorize, get_db, require
from commonwatch.web.listing import ListSpec, empty_page, list_page, parse_list_query
from commonwatch.web.nav import NavItem
from commonwatch.web.pages import redirect, render

router = APIRouter()
NAV = [
    NavItem(label=N_("Organisations"), path="/organisations", permission="registry.read", order=10),
    NavItem(label=N_("Overlaps"), path="/constituency/overlaps", permission="registry.write", order=11,
            staff_only=True),
]


def _choices() -> dict[str, Any]:
    return {
        "kinds": [(k.value, registry.kind_label(k)) for k in OrgKind],
        "sectors": [(s["code"], registry.sector_label(s["code"])) for s in registry.sector_table()],
        "contact_roles": list(CONTACT_ROLES),
        "notice_kinds": [(n, registry.notice_label(n)) for n in NOTICE_KINDS],
        "kind_label": registry.kind_label,
        "sector_label": registry.sector_label,
        "notice_label": registry.notice_label,
    }


ORGS_LIST = ListSpec(path="/organisations", id_column=Organisation.id, sorts=registry.ORG_SORTS,
                     default_sort="name", default_desc=False, filters=("q", "kind", "sector", "country"))


@router.get("/organisations")
def org_list(request: Request, principal: Principal = Depends(require("registry.read")),
             db: Session = Depends(get_db)) -> HTMLResponse:
    errors: dict[str, str] = {}
    try:
        lq = parse_list_query(ORGS_LIST, request.query_params)
        f = registry.OrgFilter(*(lq.params.get(k, "") for k in ("q", "kind", "sector", "country")))
        lst = list_page(db, registry.orgs_query(principal, f), ORGS_LIST, lq)
    except Invalid as exc:
        errors = exc.by_field()
        lst = empty_page(ORGS_LIST, request.query_params)
    return render(request, "constituency/list.html", {
        "title": _("Organisations"), "orgs": list(lst.items), "lst": lst, "errors": errors,
        "f": {k: lst.query.params.get(k, "") for k in ("q", "kind", "sector", "country")}, **_choices(),
    }, status_code=422 if errors else 200)


def _org_form(request: Request, db: Session, *, org: Organisation | None, form: dict, errors: dict,
              status_code: int = 200) -> HTMLResponse:
    parents = [(o.id, o.name) for o in db.scalars(select(Organisation).order_by(Organisation.name))
               if org is None or o.id != org.id]
    return render(request, "constituency/org_form.html", {
        "title": _("Edit organisation") if org else _("New organisation"), "org": org, "form": form,
        "errors": errors, "parents": parents, **_choices(),
    }, status_code=status_code)


@router.get("/organisations/new")
def org_new(request: Request, principal: Principal = Depends(require("registry.write")),
            db: Session = Depends(get_db)) -> HTMLResponse:
    return _org_form(request, db, org=None, form={"country": "CN", "sector": "none", "kind": "network-operator"},
                     errors={})


_ORG_FORM_FIELDS = ("name", "name_local", "kind", "sector", "country", "region", "parent_id", "notes")


async def _form_dict(request: Request, keys: tuple[str, ...]) -> dict[str, Any]:
    form = await request.form()
    return {k: str(form.get(k, "")) for k in keys if k in form}


@router.post("/organisations")
async def org_create(request: Request, principal: Principal = Depends(require("registry.write")),
                     db: Session = Depends(get_db)) -> Response:
    data = await _form_dict(request, _ORG_FORM_FIELDS)
    try:
        org = registry.create_org(db, data)
    except Invalid as exc:
        db.rollback()
        return _org_form(request, db, org=None, form=data, errors=exc.by_field(), status_code=422)
    db.commit()
    return redirect(f"/organisations/{org.id}", _("Organisation registered."))


def _org_page(request: Request, db: Session, principal: Principal, org_id: int, *, errors: dict | None = None,
              form: dict | None = None, section: str = "", status_code: int = 200) -> HTMLResponse:
    org = registry.load_org_full(db, principal, org_id)
    children = db.scalars(scope(select(Organisation), principal, Organisation)
                          .where(Organisation.parent_id == org.id).order_by(Organisation.name)).all()
    return render(request, "constituency/org.html", {
        "title": org.name, "org": org, "children": children, "errors": errors or {}, "form": form or {},
        "section": section, "can_write": principal.has("registry.write"),
        "can_contacts": principal.can("contacts.write", org.id), "now": request.app.state.clock.now(),
        **_choices(),
    }, status_code=status_code)


@router.get("/organisations/{org_id}")
def org_view(org_id: int, request: Request, principal: Principal = Depends(require("registry.read")),
             db: Session = Depends(get_db)) -> HTMLResponse:
    return _org_page(request, db, principal, org_id)


@router.get("/organisations/{org_id}/edit")
def org_edit(org_id: int, request: Request, principal: Principal = Depends(require("registry.write")),
             db: Session = Depends(get_db)) -> HTMLResponse:
    org = registry.get_org(db, principal, org_id)
    form = {k: ("" if getattr(org, k) is None else getattr(org, k)) for k in _ORG_FORM_FIELDS}
    return _org_form(request, db, org=org, form=form, errors={})


@router.post("/organisations/{org_id}/edit")
async def org_update(org_id: int, request: Request, principal: Principal = Depends(require("registry.write")),
                     db: Session = Depends(get_db)) -> Response:
    org = registry.get_org(db, principal, org_id)
    data = await _form_dict(request, _ORG_FORM_FIELDS)
    try:
        registry.update_org(db, org, data)
    except Invalid as exc:
        db.rollback()
        return _org_form(request, db, org=registry.get_org(db, principal, org_id), form=data,
                         errors=exc.by_field(), status_code=422)
    db.commit()
    return redirect(f"/organisations/{org.id}", _("Saved."))


@router.post("/organisations/{org_id}/delete")
def org_delete(org_id: int, principal: Principal = Depends(require("registry.write")),
               db: Session = Depends(get_db)) -> Response:
    org = registry.get_org(db, principal, org_id)
    name = org.name
    db.delete(org)
    db.commit()
    return redirect("/organisations", _("{name} was removed.").format(name=name))


def _add_resource(request: Request, db: Session, principal: Principal, org_id: int, section: str, form: dict, action):
    org = registry.get_org(db, principal, org_id)
    try:
        action(org)
    except Invalid as exc:
        db.rollback()
        return _org_page(request, db, principal, org_id, errors=exc.by_field(), form=form, section=section,
                         status_code=422)
    db.commit()
    return redirect(f"/organisations/{org_id}#{section}", _("Saved."))


@router.post("/organisations/{org_id}/networks")
def network_add(org_id: int, request: Request, cidr: str = Form(""), description: str = Form(""),
                principal: Principal = Depends(require("registry.write")), db: Session = Depends(get_db)) -> Response:
    return _add_resource(request, db, principal, org_id, "networks", {"cidr": cidr, "description": description},
                         lambda org: registry.add_network(db, org, cidr, description))


@router.post("/organisations/{org_id}/asns")
def asn_add(org_id: int, request: Request, asn: str = Form(""), description: str = Form(""),
            principal: Principal = Depends(require("registry.write")), db: Session = Depends(get_db)) -> Response:
    return _add_resource(request, db, principal, org_id, "asns", {"asn": asn, "asn_description": description},
                         lambda org: registry.add_asn(db, org, asn, description))


@router.post("/organisations/{org_id}/domains")
def domain_add(org_id: int, request: Request, domain: str = Form(""),
               principal: Principal = Depends(require("registry.write")), db: Session = Depends(get_db)) -> Response:
    return _add_resource(request, db, principal, org_id, "domains", {"domain": domain},
                         lambda org: registry.add_domain(db, org, domain))


_CONTACT_FIELDS = ("email", "name", "role", "language", "phone", "pgp_key")


async def _contact_form(request: Request) -> dict[str, Any]:
    form = await request.form()
    data: dict[str, Any] = {k: str(form.get(k, "")) for k in _CONTACT_FIELDS if k in form}
    data["notices"] = [str(v) for v in form.getlist("notices")]
    data["active"] = bool(form.get("active"))
    return data


@router.post("/organisations/{org_id}/contacts")
async def contact_add(org_id: int, request: Request, principal: Principal = Depends(require("contacts.write")),
                      db: Session = Depends(get_db)) -> Response:
    org = registry.get_org(db, principal, org_id)
    authorize(principal, "contacts.write", org.id)
    data = await _contact_form(request)
    data["active"] = True
    return _add_resource(request, db, principal, org_id, "contacts", data,
                         lambda org: registry.add_contact(db, org, data, request.app.state.clock.now()))


@router.get("/contacts/{contact_id}/edit")
def contact_edit(contact_id: int, request: Request, principal: Principal = Depends(require("contacts.write")),
                 db: Session = Depends(get_db)) -> HTMLResponse:
    contact = registry.get_child(db, principal, Contact, contact_id)
    authorize(principal, "contacts.write", contact.org_id)
    return render(request, "constituency/contact_form.html", {
        "title": contact.email, "contact": contact, "form": {}, "errors": {}, **_choices()})


@router.post("/contacts/{contact_id}/edit")
async def contact_update(contact_id: int, request: Request, principal: Principal = Depends(require("contacts.write")),
                         db: Session = Depends(get_db)) -> Response:
    contact = registry.get_child(db, principal, Contact, contact_id)
    authorize(principal, "contacts.write", contact.org_id)
    data = await _contact_form(request)
    try:
        registry.update_contact(db, contact, data, request.app.state.clock.now())
    except Invalid as exc:
        db.rollback()
        contact = registry.get_child(db, principal, Contact, contact_id)
        return render(request, "constituency/contact_form.html", {
            "title": contact.email, "contact": contact, "form": data, "errors": exc.by_field(), **_choices()},
            status_code=422)
    db.commit()
    return redirect(f"/organisations/{contact.org_id}#contacts", _("Saved."))


def _delete_child(db: Session, principal: Principal, model, ident: int, permission: str) -> Response:
    row = registry.get_child(db, principal, model, ident)
    authorize(principal, permission, row.org_id)
    org_id = row.org_id
    db.delete(row)
    db.commit()
    return redirect(f"/organisations/{org_id}", _("Removed."))


@router.post("/networks/{network_id}/delete")
def network_delete(network_id: int, principal: Principal = Depends(require("registry.write")),
                   db: Session = Depends(get_db)) -> Response:
    return _delete_child(db, principal, Network, network_id, "registry.write")


@router.post("/asns/{asn_id}/delete")
def asn_delete(asn_id: int, principal: Principal = Depends(require("registry.write")),
               db: Session = Depends(get_db)) -> Response:
    return _delete_child(db, principal, OrgAsn, asn_id, "registry.write")


@router.post("/domains/{domain_id}/delete")
def domain_delete(domain_id: int, principal: Principal = Depends(require("registry.write")),
                  db: Session = Depends(get_db)) -> Response:
    return _delete_child(db, principal, Domain, domain_id, "registry.write")


@router.post("/contacts/{contact_id}/delete")
def contact_delete(contact_id: int, principal: Principal = Depends(require("contacts.write")),
                   db: Session = Depends(get_db)) -> Response:
    return _delete_child(db, principal, Contact, contact_id, "contacts.write")


@router.get("/constituency/overlaps")
def overlaps_page(request: Request, principal: Principal = Depends(require("registry.read")),
                  db: Session = Depends(get_db)) -> HTMLResponse:
    found = registry.find_overlaps(db, principal)
    names = dict(db.execute(select(Organisation.id, Organisation.name)).all()) if found else {}
    return render(request, "constituency/overlaps.html", {"title": _("Overlapping networks"), "overlaps": found,
                                                          "names": names})


@router.get("/constituency/import")
def import_page(request: Request, principal: Principal = Depends(require("registry.write"))) -> HTMLResponse:
    return render(request, "constituency/import.html", {"title": _("Import organisations"), "report": None,
                                                        "columns": transfer.CSV_COLUMNS})


@router.post("/constituency/import")
async def import_upload(request: Request, file: UploadFile = File(...), partial: str = Form(""),
                        principal: Principal = Depends(require("registry.write")),
                        db: Session = Depends(get_db)) -> HTMLResponse:
    raw = await file.read(request.app.state.settings.max_import_bytes + 1)
    if len(raw) > request.app.state.settings.max_import_bytes:
        report = transfer.ImportReport(errors=[transfer.RowError(0, "file", _("is larger than the import limit"))])
    else:
        try:
            records, errors = transfer.read_file(raw, filename=file.filename or "")
        except Invalid as exc:
            records, errors = [], [transfer.RowError(0, e.field, e.reason) for e in exc.errors]
        report = transfer.import_records(db, records, errors, now=request.app.state.clock.now(),
                                         partial=bool(partial), source=file.filename or "upload")
        if report.applied:
            db.commit()
    return render(request, "constituency/import.html", {"title": _("Import organisations"), "report": report,
                                                        "columns": transfer.CSV_COLUMNS},
                  status_code=200 if report.applied else 422)


@router.get("/constituency/export")
def export_download(format: str = "csv", principal: Principal = Depends(require("registry.read")),
                    db: Session = Depends(get_db)) -> Response:
    if format == "json":
        return Response(transfer.export_json(db, principal), media_type="application/json",
                        headers={"Content-Disposition": 'attachment; filename="organisations.json"'})
    return Response(transfer.export_csv(db, principal), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="organisations.csv"'})
