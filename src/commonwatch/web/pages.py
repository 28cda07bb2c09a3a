"""The web shell: page rendering, flash messages, the home page and the language switch."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from commonwatch import i18n
from commonwatch.access.principal import Principal
from commonwatch.db import scope
from commonwatch.i18n import N_, _
from commonwatch.web.deps import LANG_COOKIE, get_db, require_principal
from commonwatch.web.nav import NavItem, visible_nav

FLASH_COOKIE = "cw_flash"

router = APIRouter()
NAV = [NavItem(label=N_("Overview"), path="/", permission="registry.read", order=0)]


def render(request: Request, name: str, context: dict[str, Any] | None = None, *,
           status_code: int = 200) -> HTMLResponse:
    """Render a page with the layout's context: principal, navigation, CSRF token, language."""
    state = request.app.state
    principal: Principal | None = getattr(request.state, "principal", None)
    flash = request.cookies.get(FLASH_COOKIE)
    ctx = {
        "request": request,
        "principal": principal,
        "nav": visible_nav(state.nav, principal),
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "lang": i18n.current_language(),
        "settings": state.settings,
        "tz": (principal.timezone if principal else None) or state.settings.timezone,
        "flash": unquote(flash) if flash else "",
        "path": request.url.path,
    }
    ctx.update(context or {})
    html = state.jinja.get_template(name).render(**ctx)
    response = HTMLResponse(html, status_code=status_code)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def redirect(url: str, message: str | None = None) -> RedirectResponse:
    """A 303 to ``url``, carrying a one-time message shown on the next page."""
    response = RedirectResponse(url, status_code=303)
    if message:
        response.set_cookie(FLASH_COOKIE, quote(message), max_age=60, httponly=True, samesite="lax", path="/")
    return response


def safe_next(target: str | None, default: str = "/") -> str:
    """Only local paths: a sign-in or language link must not redirect to another site."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


@router.get("/fonts/noto-sans-sc.otf", include_in_schema=False)
def full_cjk_font() -> FileResponse:
    """The full Noto Sans SC from its package, for characters the pages' subset lacks (fonts.css)."""
    from commonwatch import fonts

    return FileResponse(fonts.font_path(), media_type="font/otf",
                        headers={"Cache-Control": "public, max-age=604800"})


@router.get("/lang/{language}")
def switch_language(language: str, request: Request, next: str | None = None) -> Response:
    chosen = i18n.normalise_language(language) or i18n.DEFAULT_LANGUAGE
    response = RedirectResponse(safe_next(next), status_code=303)
    secure = request.app.state.settings.secure_cookies
    response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, samesite="lax", secure=secure, path="/")
    return response


@router.get("/")
def home(request: Request, principal: Principal = Depends(require_principal),
         db: Session = Depends(get_db)) -> HTMLResponse:
    from commonwatch.constituency.models import Contact, Network, Organisation
    from commonwatch.web.counts import cached_count

    def registry_counts() -> dict[str, int]:
        return {
            "organisations": db.scalar(scope(select(func.count(Organisation.id)), principal, Organisation)),
            "networks": db.scalar(scope(select(func.count(Network.id)), principal, Network)),
            "contacts": db.scalar(scope(select(func.count(Contact.id)), principal, Contact)),
        }

    state = request.app.state
    counts = cached_count(state, "registry", principal, "overview", registry_counts)

    def all_panels() -> list[dict[str, Any]]:
        panels: list[dict[str, Any]] = []
        for _cap, module in _dashboard_modules():
            panels.extend(module.panels(db, principal, state))
        return panels

    # The panels as this viewer sees them (the deadline alerts are their own; the texts are in their
    # language and zone), kept while no write moved them and for at most the cache's TTL: about
    # fifteen queries over many capabilities' tables that fifty viewers would otherwise repeat.
    view = (principal.user_id, i18n.current_language(), principal.timezone or state.settings.timezone)
    panels = cached_count(state, "overview", principal, ("panels", view), all_panels)
    return render(request, "web/home.html", {"counts": counts, "panels": panels,
                                              "title": _("Overview")})


@functools.cache
def _dashboard_modules() -> tuple:
    """The capabilities' overview panel modules (looked up once: a lookup imports and searches)."""
    from commonwatch import capabilities

    return tuple(capabilities.parts("dashboard"))


@router.get("/search")
def global_search(request: Request, q: str = "", principal: Principal = Depends(require_principal),
                  db: Session = Depends(get_db)) -> Response:
    """The header's search box: straight to the one object asked for, else the hits by capability."""
    from commonwatch.web.globalsearch import search_everywhere

    results = search_everywhere(db, principal, q)
    target = results.only_exact()
    if target is not None:
        return RedirectResponse(target.href, status_code=303)
    groups: dict[str, list[Any]] = {}
    for hit in results.hits:
        groups.setdefault(hit.group, []).append(hit)
    return render(request, "web/search.html", {"title": _("Search"), "query": results.query, "groups": groups})
