"""One policy for every outbound request: feeds, webhooks, TAXII and MISP peers.

An entry of ``outbound_allowlist`` is a URL. A request's URL passes when its scheme, host and port
equal an entry's exactly (the scheme's default port made explicit, so ``https://h/`` and
``https://h:443/`` are one entry; host names compared lower-case, IDNA-encoded, without a trailing
dot) and the entry's path is a prefix of the request's path on a ``/`` boundary (``/feeds`` admits
``/feeds`` and ``/feeds/x``, not ``/feedsx``). URLs are parsed, never compared as text: a user name
or password, a port outside 1-65535, a ``.``/``..`` path segment (also percent-encoded), a backslash,
a space or a control character is refused.

Redirects are followed here, at most ``outbound_max_redirects`` hops, each target checked like the
first URL; a POST is followed only through 307/308 (which keep the method and body: a 301/302/303
answering a POST is refused with its reason), and the ``Authorization`` header is dropped when a
redirect changes scheme, host or port.

The host is resolved once and the connection goes to that address, so a DNS answer cannot change
between the check and the connection: the URL handed to httpx names the address, the ``Host``
header names the host, and for https the ``sni_hostname`` request extension (httpx/httpcore's
documented way to connect to an address while naming a host) makes TLS send and verify the
certificate for the host name. Proxy settings from the environment are not used.

Every request has ``outbound_timeout_seconds`` for the whole exchange (redirects included) and every
body ``outbound_max_bytes`` (counted after content decoding, so a compressed bomb stops too).
Transport failures are raised as httpx exceptions for the caller to classify (retry, hold, report);
refusals and limits as :class:`Invalid` naming the URL's field.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx

from commonwatch.errors import Invalid
from commonwatch.i18n import _

DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Redirects that keep the method and the body (RFC 9110 section 15.4.8 and 15.4.9).
METHOD_KEEPING_REDIRECTS = frozenset({307, 308})
SAFE_METHODS = frozenset({"GET", "HEAD"})
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Place:
    """What a URL names, in the form two URLs are compared in."""

    scheme: str
    host: str
    port: int
    path: str

    def admits(self, other: Place) -> bool:
        """Whether ``other`` lies under this allowlist entry."""
        if (self.scheme, self.host, self.port) != (other.scheme, other.host, other.port):
            return False
        prefix = self.path
        return (other.path == prefix or other.path.startswith(prefix if prefix.endswith("/") else prefix + "/"))


def _refuse(field: str, reason: str) -> Invalid:
    return Invalid(field, reason)


def parse(url: str, field: str = "url") -> tuple[httpx.URL, Place]:
    """The parsed URL and its :class:`Place`, or :class:`Invalid` naming ``field`` and the reason."""
    if not isinstance(url, str) or not url:
        raise _refuse(field, _("must be an http or https URL"))
    if "\\" in url or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise _refuse(field, _("{url} contains a backslash, a space or a control character").format(url=url[:200]))
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise _refuse(field, _("{url} is not a valid URL: {error}").format(url=url[:200], error=exc)) from None
    if parsed.scheme not in DEFAULT_PORTS or not parsed.raw_host:
        raise _refuse(field, _("{url} is not an http or https URL").format(url=url[:200]))
    if parsed.userinfo:
        raise _refuse(field, _("{url} carries a user name or password; put credentials in their own field").format(
            url=url[:200]))
    port = parsed.port if parsed.port is not None else DEFAULT_PORTS[parsed.scheme]
    if not 1 <= port <= 65535:
        raise _refuse(field, _("{url} has port {port}, outside 1-65535").format(url=url[:200], port=port))
    path = unquote(parsed.raw_path.split(b"?", 1)[0].decode("ascii")) or "/"
    if any(segment in (".", "..") for segment in path.split("/")):
        raise _refuse(field, _("{url} has a “.” or “..” path segment").format(url=url[:200]))
    host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    return parsed, Place(parsed.scheme, host, port, path)


def parse_entry(entry: str) -> Place:
    """An allowlist entry as a :class:`Place`; ``ValueError`` says what is wrong with it."""
    try:
        parsed, place = parse(entry, "outbound_allowlist")
    except Invalid as exc:
        raise ValueError(str(exc)) from None
    if parsed.query or parsed.fragment:
        raise ValueError(f"outbound_allowlist: {entry} has a query or fragment; entries are scheme://host[:port]/path")
    return place


def check(url: str, allowlist: Sequence[str], field: str = "url") -> httpx.URL:
    """The parsed URL if it is on the allowlist, else :class:`Invalid` naming ``field``."""
    parsed, place = parse(url, field)
    for entry in allowlist:
        try:
            if parse_entry(entry).admits(place):
                return parsed
        except ValueError:
            continue  # a malformed entry admits nothing (settings refuse them at start-up)
    raise _refuse(field, _("{url} is not on the outbound allowlist (setting outbound_allowlist)").format(
        url=url[:200]))


def resolve(host: str, port: int) -> str:
    """One address for ``host``: the literal itself, or the first answer of one DNS look-up."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpx.ConnectError(f"{host} could not be resolved: {exc}") from None
    if not infos:
        raise httpx.ConnectError(f"{host} could not be resolved")
    return str(infos[0][4][0]).split("%", 1)[0]


@dataclass(frozen=True)
class Policy:
    """The allowlist and the limits every outbound request obeys."""

    allowlist: tuple[str, ...]
    timeout: float
    max_bytes: int
    max_redirects: int
    #: CA certificates trusted for https instead of the system's (a partner's private CA).
    ca_file: str | None = None

    @classmethod
    def of(cls, settings: Any) -> Policy:
        """The policy the settings describe."""
        ca = settings.outbound_ca_file
        return cls(tuple(settings.outbound_allowlist), float(settings.outbound_timeout_seconds),
                   int(settings.outbound_max_bytes), int(settings.outbound_max_redirects), str(ca) if ca else None)

    def verify(self) -> ssl.SSLContext | bool:
        """What httpx verifies server certificates with."""
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True


class Deadline:
    """The time one exchange may still take."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        return self._end - time.monotonic()

    def check(self, field: str, url: str) -> None:
        if self.left() <= 0:
            raise _refuse(field, _("{url} took longer than {seconds} s").format(url=url, seconds=f"{self.seconds:g}"))


@dataclass
class Opened:
    """The final response of an exchange (body not yet read) and the URL it came from."""

    url: str
    response: httpx.Response
    deadline: Deadline
    policy: Policy
    field: str

    def iter_body(self) -> Iterator[bytes]:
        """The body in chunks, stopping with :class:`Invalid` past the size or time limit."""
        declared = self.response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.policy.max_bytes:
            raise _refuse(self.field, _("{url} is {size} bytes, over the limit of {limit}").format(
                url=self.url, size=int(declared), limit=self.policy.max_bytes))
        size = 0
        for chunk in self.response.iter_bytes(_CHUNK):
            size += len(chunk)
            if size > self.policy.max_bytes:
                raise _refuse(self.field, _("{url} sent more than the limit of {limit} bytes").format(
                    url=self.url, limit=self.policy.max_bytes))
            self.deadline.check(self.field, self.url)
            yield chunk

    def read(self) -> bytes:
        return b"".join(self.iter_body())


def _pinned_request(client: httpx.Client, method: str, url: httpx.URL, place: Place, headers: dict[str, str],
                    content: bytes | None, timeout: float) -> httpx.Request:
    """A request to the address ``place.host`` resolves to now, naming the host in Host and TLS."""
    address = resolve(place.host, place.port)
    extensions: dict[str, Any] = {"timeout": httpx.Timeout(timeout).as_dict()}
    if place.scheme == "https" and address != place.host:
        extensions["sni_hostname"] = place.host
    target = url.copy_with(host=address, port=place.port, fragment=None)
    request = client.build_request(method, target, headers={**headers, "Host": url.netloc.decode("ascii")},
                                   content=content, extensions=extensions)
    return request


@contextmanager
def open_exchange(policy: Policy, method: str, url: str, *, field: str = "url",
                  headers: Mapping[str, str] | None = None, content: bytes | None = None) -> Iterator[Opened]:
    """Send a request under the policy, following allowed redirects; yields the final response.

    Raises :class:`Invalid` (naming ``field``) for a refused URL or redirect target and for the
    limits, and httpx exceptions for transport failures.
    """
    method = method.upper()
    parsed = check(url, policy.allowlist, field)
    _parsed, place = parse(str(parsed), field)
    sent_headers = {k: v for k, v in (headers or {}).items() if k.lower() not in ("host", "content-length")}
    deadline = Deadline(policy.timeout)
    with httpx.Client(trust_env=False, follow_redirects=False, timeout=policy.timeout,
                      verify=policy.verify()) as client:
        for _hop in range(policy.max_redirects + 1):
            deadline.check(field, str(parsed))
            request = _pinned_request(client, method, parsed, place, sent_headers, content, deadline.left())
            response = client.send(request, stream=True)
            try:
                location = response.headers.get("location")
                if response.status_code not in REDIRECT_STATUSES or not location:
                    yield Opened(str(parsed), response, deadline, policy, field)
                    return
                if method not in SAFE_METHODS and response.status_code not in METHOD_KEEPING_REDIRECTS:
                    raise _refuse(field, _("{url} answered a {method} with redirect {status} to {target}; a {method} "
                                           "is redirected only by 307 or 308, which keep it").format(
                        url=str(parsed), method=method, status=response.status_code, target=location[:200]))
            finally:
                response.close()
            try:
                target = parsed.join(location)
            except (httpx.InvalidURL, ValueError) as exc:
                raise _refuse(field, _("{url} redirected to {target}, which is not a valid URL: {error}").format(
                    url=str(parsed), target=location[:200], error=exc)) from None
            try:
                next_parsed = check(str(target), policy.allowlist, field)
            except Invalid as exc:
                raise _refuse(field, _("{url} redirected to a URL that is refused: {reason}").format(
                    url=str(parsed), reason=exc.errors[0].reason)) from None
            _next, next_place = parse(str(next_parsed), field)
            if (next_place.scheme, next_place.host, next_place.port) != (place.scheme, place.host, place.port):
                sent_headers = {k: v for k, v in sent_headers.items() if k.lower() != "authorization"}
            parsed, place = next_parsed, next_place
        raise _refuse(field, _("{url} redirected more than {count} times").format(url=url[:200],
                                                                                count=policy.max_redirects))


@dataclass(frozen=True)
class Reply:
    """A whole response read within the limits."""

    url: str
    status: int
    reason: str
    headers: httpx.Headers
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def send(policy: Policy, method: str, url: str, *, field: str = "url", headers: Mapping[str, str] | None = None,
         content: bytes | None = None) -> Reply:
    """One request under the policy, its body read within the limits (see :func:`open_exchange`)."""
    with open_exchange(policy, method, url, field=field, headers=headers, content=content) as opened:
        body = opened.read()
        resp = opened.response
        return Reply(opened.url, resp.status_code, resp.reason_phrase, resp.headers, body)
