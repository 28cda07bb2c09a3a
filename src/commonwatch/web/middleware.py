"""ASGI middleware: request language, body size limit, JSON bodies the app can take, security headers,
access log and metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
import weakref
from http.cookies import SimpleCookie

from prometheus_client import Counter, Histogram

from commonwatch import i18n
from commonwatch.i18n import _
from commonwatch.textio import control_char, control_char_reason

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


def secure_cookie(header: bytes) -> bytes:
    """A Set-Cookie value with the ``Secure`` attribute (added once)."""
    attributes = [a.strip().lower() for a in header.split(b";")[1:]]
    return header if b"secure" in attributes else header + b"; Secure"


class BodyTooLarge(Exception):
    pass


#: The widest integer the databases store (SQLite INTEGER, PostgreSQL bigint): signed 64 bits.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: The widest number a body may carry: a float field holds counts, minutes and scores, and a float
#: that an integer field receives (``1e308``) must still fit that integer column.
FLOAT_MAX = float(2**63)


class _Unstorable(ValueError):
    pass


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) > FLOAT_MAX:
        raise _Unstorable(text)
    return value


def _int64(text: str) -> int:
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise _Unstorable(text)
    return value


def _no_constant(text: str) -> float:
    raise _Unstorable(text)


def _unstorable(value) -> str:
    """Why a parsed JSON value cannot be stored: "text", "integer", "number", or ""."""
    if isinstance(value, float):
        return "" if math.isfinite(value) and abs(value) <= FLOAT_MAX else "number"
    if isinstance(value, int) and not isinstance(value, bool):
        return "" if INT64_MIN <= value <= INT64_MAX else "integer"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "text"
        if code := control_char(value):
            return "control:" + code
    return ""


def _printable(key: str) -> str:
    return key.encode("utf-8", "backslashreplace").decode()


def first_unstorable(document) -> tuple[list[str], str]:
    """The path (keys and list indexes) of the first value or key that cannot be stored, and why."""
    stack: list[tuple[list[str], object]] = [([], document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, inner in value.items():
                if why := _unstorable(key):
                    return [*path, _printable(key)], why
                stack.append(([*path, key], inner))
        elif isinstance(value, list):
            stack.extend(([*path, str(i)], inner) for i, inner in enumerate(value))
        elif why := _unstorable(value):
            return path, why
    return [], ""


def is_json_request(scope) -> bool:
    """Whether FastAPI will read the body as JSON: no content type, ``application/json`` or ``*+json``."""
    content_type = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
    return not content_type or content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json"))


def json_body_problem(body: bytes) -> tuple[list[str], str] | None:
    """Where and why a JSON body cannot be taken although Python's parser reads it, or None.

    Python reads ``NaN``, ``Infinity`` and ``1e999`` (as infinity), integers of any size, a lone
    UTF-16 surrogate (``"\\ud800"``, which no database or encoder takes as text) and nests only to
    its recursion limit; each used to surface as a 500 somewhere later. A control character in a
    text (``"\\u0000"``; tab and line breaks are text) is refused naming the field, as every door
    refuses what one client sends (:mod:`commonwatch.textio`). Syntax errors are left to the route,
    which names the position."""
    if not body.strip():
        return None
    try:
        document = json.loads(body, parse_float=_finite, parse_int=_int64, parse_constant=_no_constant)
        json.dumps(document, ensure_ascii=False).encode("utf-8")
        path, why = first_unstorable(document)  # what is left: control characters in text
        if not why:
            return None
    except RecursionError:
        return [], _("the JSON is nested too deeply")
    except (_Unstorable, UnicodeEncodeError):
        path, why = first_unstorable(json.loads(body))
    except ValueError:
        return None
    if why.startswith("control:"):
        return path, control_char_reason(why.split(":", 1)[1])
    reasons = {"text": _("holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not a character"),
               "integer": _("is outside the range of a 64-bit integer (-2^63 to 2^63-1)")}
    return path, reasons.get(why, _("must be a finite number between -2^63 and 2^63"))


class ConcurrencyLimit:
    """At most ``limit`` HTTP requests inside the app at a time; the others wait, first come first
    served, on the event loop (where waiting costs nothing). Without it fifty requests at once took
    all forty of the thread pool's threads, each waiting for one of the database pool's fifteen
    connections, while the requests that held those connections waited for a thread: nothing
    answered. (``max_concurrent_requests``.)"""

    def __init__(self, app, *, limit: int):
        self.app = app
        self.limit = limit
        #: One semaphore per event loop (a worker has one; a test client makes one per client).
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = \
            weakref.WeakKeyDictionary()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.limit)
        async with slots:
            return await self.app(scope, receive, send)


class CommonwatchMiddleware:
    """One pass over each HTTP request: language, size limit, headers, log line, metrics."""

    def __init__(self, app, *, default_language: str = "en", max_body: int = 50 * 1024 * 1024,
                 body_limits: dict[str, int] | None = None, hsts: bool = False):
        self.app = app
        #: Strict-Transport-Security on every answer (the public URL is https).
        self.extra_headers = [(b"strict-transport-security", b"max-age=31536000; includeSubDomains")] if hsts else []
        #: Behind https every cookie is Secure, whichever part of the app set it (a flash message,
        #: the language, a sign-on's state), so no route has to remember it.
        self.secure_cookies = hsts
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
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and is_json_request(scope):
            try:
                messages = await _read_body(receive, limit)
            except BodyTooLarge:
                await _too_large(send, limit)
                self._observe(scope, 413, started, request_id)
                return
            problem = json_body_problem(b"".join(m.get("body", b"") for m in messages))
            if problem:
                await _unreadable_json(send, *problem)
                self._observe(scope, 422, started, request_id)
                return
            receive = _replay(messages, receive)

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
                headers += [(k, v) for k, v in SECURITY_HEADERS + self.extra_headers if k not in present]
                if self.secure_cookies:
                    headers = [(k, secure_cookie(v) if k.lower() == b"set-cookie" else v) for k, v in headers]
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


async def _read_body(receive, limit: int) -> list[dict]:
    """Every message of the request body, stopping past ``limit`` bytes."""
    messages, size = [], 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages
        size += len(message.get("body", b""))
        if size > limit:
            raise BodyTooLarge()
        if not message.get("more_body", False):
            return messages


def _replay(messages: list[dict], receive):
    """A receive that hands out ``messages`` first, then waits on the client as before."""
    pending = list(messages)

    async def replayed():
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


async def _unreadable_json(send, path: list[str], reason: str) -> None:
    body = json.dumps({"detail": [{"loc": ["body", *path], "msg": reason, "type": "value_error"}]},
                      ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": 422,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


async def _too_large(send, limit: int) -> None:
    body = f'{{"detail":"request body larger than {limit} bytes"}}'.encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
