"""ASGI middleware: request language, body size limit, security headers, access log and metrics."""

from __future__ import annotations

import logging
import time
import uuid
from http.cookies import SimpleCookie

from prometheus_client import Counter, Histogram

from commonwatch import i18n

log = logging.getLogger("commonwatch.http")

HTTP_REQUESTS = Counter("commonwatch_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_SECONDS = Histogram("commonwatch_http_request_seconds", "HTTP request duration", ["method", "route"])

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    # Everything a page needs ships with the package: no CDN, no inline third-party code.
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
     b"object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"),
]


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def request_language(scope, default: str) -> str:
    """The cookie the language switch sets, else the browser's Accept-Language, else the default."""
    cookie_header = _header(scope, b"cookie")
    if cookie_header:
        cookies = SimpleCookie()
        try:
            cookies.load(cookie_header)
        except Exception:
            cookies = SimpleCookie()
        if "cw_lang" in cookies:
            chosen = i18n.normalise_language(cookies["cw_lang"].value)
            if chosen:
                return chosen
    return i18n.negotiate(_header(scope, b"accept-language"), default)


class BodyTooLarge(Exception):
    pass


class CommonwatchMiddleware:
    """One pass over each HTTP request: language, size limit, headers, log line, metrics."""

    def __init__(self, app, *, default_language: str = "en", max_body: int = 50 * 1024 * 1024,
                 body_limits: dict[str, int] | None = None):
        self.app = app
        self.default_language = default_language
        self.max_body = max_body
        #: Path prefixes with their own limit (TAXII announces its max_content_length).
        self.body_limits = body_limits or {}

    def _limit_for(self, path: str) -> int:
        for prefix, limit in self.body_limits.items():
            if path.startswith(prefix):
                return limit
        return self.max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        i18n.set_language(request_language(scope, self.default_language))
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex[:16]
        limit = self._limit_for(scope["path"])
        declared = _header(scope, b"content-length")
        started = time.perf_counter()
        status_holder = {"status": 500}

        if declared and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            self._observe(scope, 413, started, request_id)
            return

        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, limited_receive, send_wrapper)
        except BodyTooLarge:
            await _too_large(send, limit)
            status_holder["status"] = 413
        finally:
            self._observe(scope, status_holder["status"], started, request_id)

    def _observe(self, scope, status: int, started: float, request_id: str) -> None:
        elapsed = time.perf_counter() - started
        route = scope.get("route")
        route_path = getattr(route, "path", None) or "unmatched"
        HTTP_REQUESTS.labels(scope["method"], route_path, str(status)).inc()
        HTTP_SECONDS.labels(scope["method"], route_path).observe(elapsed)
        log.info("request", extra={"method": scope["method"], "path": scope["path"], "status": status,
                                   "ms": round(elapsed * 1000, 1), "request_id": request_id})


async def _too_large(send, limit: int) -> None:
    body = f'{{"detail":"request body larger than {limit} bytes"}}'.encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
