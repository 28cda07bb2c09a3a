"""The FastAPI application factory: mounts each capability's API router and pages."""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from commonwatch import __version__, capabilities
from commonwatch.clock import Clock, SystemClock
from commonwatch.config import Settings, get_settings
from commonwatch.db import make_engine, make_sessionmaker, read_only_engine
from commonwatch.errors import CommonwatchError, Invalid
from commonwatch.i18n import _
from commonwatch.web import db_refusals
from commonwatch.web.deps import CsrfFailed, LoginRequired
from commonwatch.web.middleware import CommonwatchMiddleware, ConcurrencyLimit
from commonwatch.web.nav import collect_nav
from commonwatch.web.templating import make_environment

log = logging.getLogger("commonwatch.app")
BUILD_INFO = Gauge("commonwatch_build_info", "commonwatch version", ["version"])


def create_app(settings: Settings | None = None, *, clock: Clock | None = None,
               engine: Engine | None = None, run_jobs: bool = False) -> FastAPI:
    """Build the app. ``run_jobs`` starts the periodic work (notifications, feed fetches, clocks)."""
    settings = settings or get_settings()
    engine = engine or make_engine(settings.effective_database_url)
    capabilities.import_models()
    from commonwatch.access import audit

    audit.use_key(engine, audit.load_key(settings))  # the key file is made 0600 at first start

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        leader = None
        if run_jobs:
            # One process of several workers runs the jobs: the one holding the data dir's jobs lock.
            from commonwatch.serving import JobsLeader

            leader = JobsLeader(app.state, settings.path("jobs.lock"))
            leader.start()
        yield
        if leader is not None:
            leader.stop()

    app = FastAPI(
        title="commonwatch", version=__version__, lifespan=lifespan,
        openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None,
        description="REST API of commonwatch. Authenticate with `Authorization: Bearer <token>` "
                    "(see `commonwatch token create`).",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.clock = clock or SystemClock()
    app.state.jinja = make_environment(settings.data_dir, settings.timezone)
    app.state.nav = collect_nav()
    from commonwatch.web.counts import make_count_cache, watch_writes

    app.state.count_cache = make_count_cache(settings, app.state.clock)
    watch_writes(engine, settings)

    for _cap, module in capabilities.parts("api"):
        app.include_router(module.router, prefix="/api/v1")
    for _cap, module in capabilities.parts("routes"):
        for router in module.ROUTERS:
            app.include_router(router)
    from fastapi import Depends

    from commonwatch.web.nav import page_guard

    for _cap, module in capabilities.parts("pages"):  # a page hidden from a role is refused to it by URL too
        app.include_router(module.router, include_in_schema=False, dependencies=[Depends(page_guard)])
    _mount_static(app)
    _add_operational_routes(app)
    _add_error_handlers(app)
    body_limits: dict[str, int] = {}
    for _cap, module in capabilities.parts("routes"):
        body_limits.update(getattr(module, "BODY_LIMITS", {}))
    app.add_middleware(CommonwatchMiddleware, default_language=settings.default_language,
                       max_body=max(settings.max_upload_bytes, settings.max_import_bytes) + 64 * 1024,
                       body_limits=body_limits, hsts=settings.https)
    app.add_middleware(ConcurrencyLimit, limit=settings.max_concurrent_requests)  # outermost: waits before any work
    BUILD_INFO.labels(__version__).set(1)
    return app


def _mount_static(app: FastAPI) -> None:
    root = Path(__file__).resolve().parent
    for cap in capabilities.CAPABILITIES:
        folder = root / cap / "static"
        if folder.is_dir():
            app.mount(f"/static/{cap}", StaticFiles(directory=str(folder)), name=f"static-{cap}")


def _add_operational_routes(app: FastAPI) -> None:
    @app.get("/healthz", include_in_schema=False)
    def healthz(request: Request) -> Response:
        try:
            # A read: on SQLite it must not wait behind an ingest holding the write lock.
            with read_only_engine(request.app.state.engine).connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            log.warning("health check failed", extra={"error": str(exc)})
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok", "version": __version__, "worker": os.getpid()})

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        refusal = _metrics_refusal(request)
        if refusal is not None:
            return refusal
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _metrics_refusal(request: Request) -> Response | None:
    """/metrics asks for ``metrics_token`` as a bearer token; without one configured it answers only
    to a loopback peer that is not a trusted proxy (a proxy's requests come from anywhere)."""
    import hmac
    import ipaddress

    settings = request.app.state.settings
    if settings.metrics_token:
        given = request.headers.get("authorization", "")
        scheme, _sep, token = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), settings.metrics_token.encode()):
            return None
        return JSONResponse({"detail": "a metrics token is required"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
    peer = request.client.host if request.client else ""
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        ip = None
    proxied = ip is not None and any(ip in ipaddress.ip_network(t, strict=False) for t in settings.trusted_proxies
                                     if ipaddress.ip_network(t, strict=False).version == ip.version)
    if ip is None or not ip.is_loopback or proxied:
        return JSONResponse({"detail": "metrics answer only to loopback, or set metrics_token"}, status_code=403)
    return None


def _wants_html(request: Request) -> bool:
    """Pages answer with pages; the API, TAXII and the operational routes answer with JSON."""
    return not request.url.path.startswith(("/api/", "/taxii2", "/healthz", "/metrics"))


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    from commonwatch.web.pages import render

    return render(request, "web/error.html", {"title": title, "message": message}, status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if exc.bearer or not _wants_html(request):
            headers = {"WWW-Authenticate": 'Bearer error="invalid_token"' if exc.bearer else "Bearer"}
            return JSONResponse({"detail": exc.reason}, status_code=401, headers=headers)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        from urllib.parse import quote

        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: CsrfFailed) -> Response:
        message = _("The form has expired or did not come from this site. Reload the page and try again.")
        if not _wants_html(request):
            return JSONResponse({"detail": "CSRF token missing or invalid"}, status_code=403)
        return _error_page(request, 403, _("Forbidden"), message)

    @app.exception_handler(Invalid)
    async def invalid(request: Request, exc: Invalid) -> Response:
        return JSONResponse({"detail": exc.as_detail()}, status_code=422)

    @app.exception_handler(CommonwatchError)
    async def domain_error(request: Request, exc: CommonwatchError) -> Response:
        titles = {404: _("Not found"), 403: _("Forbidden"), 409: _("Conflict")}
        if not _wants_html(request):
            return JSONResponse({"detail": str(exc) if exc.status_code != 404 else "not found"},
                                status_code=exc.status_code)
        message = {404: _("There is nothing here, or you may not see it."),
                   403: _("Your role does not allow this.")}.get(exc.status_code, str(exc))
        return _error_page(request, exc.status_code, titles.get(exc.status_code, _("Error")), message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not _wants_html(request) or exc.status_code not in (404, 405):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                                headers=getattr(exc, "headers", None))
        title = _("Not found") if exc.status_code == 404 else _("Method not allowed")
        return _error_page(request, exc.status_code, title, _("There is nothing here, or you may not see it."))

    @app.exception_handler(OverflowError)
    async def out_of_range(request: Request, exc: OverflowError) -> Response:
        return JSONResponse({"detail": db_refusals.out_of_range(request)}, status_code=422)

    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError) -> Response:
        wide = [d for d in db_refusals.out_of_range(request) if d["loc"][0] != "body"]
        return JSONResponse({"detail": wide or db_refusals.data_error(exc)}, status_code=422)

    @app.exception_handler(IntegrityError)
    async def refused_write(request: Request, exc: IntegrityError) -> Response:
        status, detail = db_refusals.integrity(request, exc)
        if _wants_html(request) and isinstance(detail, str):
            return _error_page(request, status, _("Conflict"), detail)
        return JSONResponse({"detail": detail}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse({"detail": _clean_errors(exc.errors())}, status_code=422)


def _clean_errors(errors: Any) -> list[dict]:
    out = []
    for e in errors:
        out.append({"loc": list(e.get("loc", [])), "msg": e.get("msg", ""), "type": e.get("type", "")})
    return out
