"""Pages: the person's saved filters (``/filters``): save the filter set of a list under a name
(the form under every list's filter line), open, rename and delete one's own."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from commonwatch.access import saved_filters as saved
from commonwatch.access.principal import Principal
from commonwatch.errors import Invalid
from commonwatch.i18n import _
from commonwatch.web.deps import get_db, require_principal
from commonwatch.web.pages import redirect, render

router = APIRouter()


def _page(request: Request, db: Session, principal: Principal, *, errors: dict | None = None,
          form: dict | None = None, editing: int | None = None, status_code: int = 200) -> HTMLResponse:
    rows = saved.my_filters(db, principal)
    return render(request, "access/saved_filters.html", {
        "title": _("Saved filters"), "rows": rows, "errors": errors or {}, "form": form or {},
        "editing": editing,
    }, status_code=status_code)


@router.get("/filters")
def saved_filters_page(request: Request, principal: Principal = Depends(require_principal),
                       db: Session = Depends(get_db)) -> HTMLResponse:
    return _page(request, db, principal)


@router.post("/filters")
def save_filter(request: Request, name: str = Form(""), path: str = Form(""), query: str = Form(""),
                principal: Principal = Depends(require_principal), db: Session = Depends(get_db)) -> Response:
    try:
        row = saved.save(db, principal, name, path, query, now=request.app.state.clock.now())
    except Invalid as exc:
        db.rollback()
        return _page(request, db, principal, errors=exc.by_field(), form={"name": name, "path": path, "query": query},
                     status_code=422)
    db.commit()
    return redirect(row.link, _("Filters saved as “{name}”.").format(name=row.name))


@router.post("/filters/{filter_id}/rename")
def rename_filter(filter_id: int, request: Request, name: str = Form(""),
                  principal: Principal = Depends(require_principal), db: Session = Depends(get_db)) -> Response:
    try:
        row = saved.rename(db, principal, filter_id, name)
    except Invalid as exc:
        db.rollback()
        return _page(request, db, principal, errors=exc.by_field(), form={"name": name}, editing=filter_id,
                     status_code=422)
    db.commit()
    return redirect("/filters", _("Renamed to “{name}”.").format(name=row.name))


@router.post("/filters/{filter_id}/delete")
def delete_filter(filter_id: int, request: Request, principal: Principal = Depends(require_principal),
                  db: Session = Depends(get_db)) -> Response:
    name = saved.delete(db, principal, filter_id)
    db.commit()
    return redirect("/filters", _("Deleted “{name}”.").format(name=name))
