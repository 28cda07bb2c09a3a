"""The outbound policy against real HTTP(S) servers on loopback: URLs are parsed, not compared as
text (the bypasses found in issue 15 are refused, naming the field, in both languages), redirects
are checked hop by hop, the address checked is the address connected to, and a refused URL never
reaches the server behind it."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from commonwatch.config import Settings
from commonwatch.errors import Invalid
from commonwatch.feeds.collect import fetch_url
from commonwatch.i18n import use_language
from commonwatch.outbound import Policy, check, parse_entry, send


@dataclass
class Server:
    """A loopback HTTP server answering from ``routes`` and recording every request it saw."""

    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    seen: list[dict[str, str]] = field(default_factory=list)
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serve(routes: dict[str, tuple[int, dict[str, str], bytes]] | None = None,
          tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    state = Server(routes or {})

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            state.seen.append({"method": self.command, "path": self.path, "host": self.headers.get("Host", ""),
                               "authorization": self.headers.get("Authorization", "")})
            status, headers, body = state.routes.get(self.path.split("?")[0], (200, {}, b"ok"))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v.replace("{port}", str(state.port)))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def _policy(*allow: str, max_bytes: int = 10_000, timeout: float = 5, ca_file: str | None = None) -> Policy:
    return Policy(tuple(allow), timeout, max_bytes, 3, ca_file)


def _bypasses(allowed: int, target: int) -> list[str]:
    """The URLs that passed the old text-prefix checks although they lead to ``target``."""
    return [f"http://127.0.0.1:{allowed}@127.0.0.1:{target}/",  # user info that looks like the allowed place
            f"http://127.0.0.1:{allowed}.attacker.example/",  # the allowed port followed by a host name
            f"http://127.0.0.1:{allowed}0/"]  # a longer port with the allowed one as its prefix


def test_the_bypass_urls_are_refused_with_the_field_named_in_both_languages():
    allow = ["http://127.0.0.1:8099/"]
    reasons = {}
    for url in _bypasses(8099, 8098):
        for language in ("en", "zh-CN"):
            with use_language(language), pytest.raises(Invalid) as caught:
                check(url, allow, "collection_url")
            assert caught.value.errors[0].field == "collection_url"
            reasons[url, language] = caught.value.errors[0].reason
    assert "user name or password" in reasons[_bypasses(8099, 8098)[0], "en"]
    assert "not a valid URL" in reasons[_bypasses(8099, 8098)[1], "en"]
    assert "outside 1-65535" in reasons[_bypasses(8099, 8098)[2], "en"]
    assert "用户名或密码" in reasons[_bypasses(8099, 8098)[0], "zh-CN"]
    assert "不是有效的 URL" in reasons[_bypasses(8099, 8098)[1], "zh-CN"]
    assert "1-65535" in reasons[_bypasses(8099, 8098)[2], "zh-CN"] and "端口" in reasons[
        _bypasses(8099, 8098)[2], "zh-CN"]


@pytest.mark.parametrize(("url", "allowed"), [
    ("http://127.0.0.1:8099/feeds/x.csv", True),
    ("http://127.0.0.1:8099/feeds", True),
    ("http://127.0.0.1:8099/feeds?x=1", True),
    ("http://127.0.0.1:8099/feedsx", False),  # a path prefix counts only on a "/" boundary
    ("http://127.0.0.1:8099/feeds/%2e%2e/admin", False),  # an encoded ".." segment
    ("http://127.0.0.1:8098/feeds/x", False),
    ("https://127.0.0.1:8099/feeds/x", False),  # the scheme is part of the place
    ("http://127.0.0.1:8099\\@evil.example/feeds/", False),
    ("HTTP://LOCALHOST.:80/feeds/a", True),  # case, trailing dot and the default port are normalised
    ("http://localhost/feeds/a", True),
])
def test_places_are_compared_by_scheme_host_port_and_path(url, allowed):
    allow = ["http://127.0.0.1:8099/feeds", "http://localhost:80/feeds/"]
    if allowed:
        assert check(url, allow)
    else:
        with pytest.raises(Invalid):
            check(url, allow)


def test_malformed_allowlist_entries_stop_the_settings():
    assert parse_entry("https://feeds.example").path == "/"
    for bad in ("https://user@feeds.example/", "https://feeds.example/?q=1", "ftp://feeds.example/"):
        with pytest.raises(ValueError, match="outbound_allowlist"):
            Settings(outbound_allowlist=[bad])


def test_a_feed_fetch_and_a_misp_pull_to_an_unlisted_port_never_connect(app, world, clock):
    from commonwatch.db import session_scope
    from commonwatch.intel import exchange
    from commonwatch.intel.models import MispPeer

    with serve() as allowed, serve() as target:
        listed = [allowed.base + "/", f"http://127.0.0.1:{target.port // 10}"]  # a port that prefixes the target's
        sneaky = [*_bypasses(allowed.port, target.port), f"http://127.0.0.1:{target.port}/"]
        for url in sneaky:
            with pytest.raises(Invalid, match="^url: "):
                fetch_url(url, _policy(*listed))
        app.state.settings.outbound_allowlist = listed
        with session_scope(app.state.sessionmaker, actor="test") as s:
            for url in sneaky:
                peer = MispPeer(name=f"peer {url}", org_id=world.partner, url=url, api_key="k")
                s.add(peer)
                s.flush()
                with pytest.raises(Invalid, match="^url: "):
                    exchange.misp_pull(s, app.state.settings, peer, clock.now())
        assert target.seen == [] and allowed.seen == []


def test_redirects_are_checked_at_every_hop():
    with serve() as other, serve({"/to-other": (302, {"Location": "http://127.0.0.1:{port}0/x"}, b""),
                                  "/to-unlisted": (302, {"Location": "http://127.0.0.1:0/x"}, b""),
                                  "/loop": (302, {"Location": "/loop"}, b""),
                                  "/post-302": (302, {"Location": "/landing"}, b""),
                                  "/post-307": (307, {"Location": "/landing"}, b"")}) as first:
        first.routes["/to-other-port"] = (302, {"Location": other.base + "/secret"}, b"")
        first.routes["/to-listed"] = (302, {"Location": other.base + "/open/x"}, b"")
        policy = _policy(first.base + "/", other.base + "/open/")
        with pytest.raises(Invalid, match="redirected to a URL that is refused: .* not on the outbound allowlist"):
            send(policy, "GET", first.base + "/to-other-port", headers={"Authorization": "Bearer t"})
        assert other.seen == []
        for path in ("/to-other", "/to-unlisted"):
            with pytest.raises(Invalid, match="redirected to a URL that is refused"):
                send(policy, "GET", first.base + path)
        with pytest.raises(Invalid, match="redirected more than 3 times"):
            send(policy, "GET", first.base + "/loop")
        with pytest.raises(Invalid, match="answered a POST with redirect 302"):
            send(policy, "POST", first.base + "/post-302", content=b"{}")
        kept = send(policy, "POST", first.base + "/post-307", content=b"{}")
        assert kept.status == 200 and first.seen[-1]["method"] == "POST" and first.seen[-1]["path"] == "/landing"
        moved = send(policy, "GET", first.base + "/to-listed", headers={"Authorization": "Bearer t"})
        assert moved.status == 200 and moved.url == other.base + "/open/x"
        assert other.seen == [{"method": "GET", "path": "/open/x", "host": f"127.0.0.1:{other.port}",
                               "authorization": ""}]  # credentials do not follow a redirect to another place


def test_the_connection_goes_to_the_address_resolved_once(monkeypatch):
    """A name is looked up once per hop and the request goes to that answer, with the name as Host."""
    real = socket.getaddrinfo
    lookups = []

    def answer(host, *args, **kwargs):
        lookups.append(host)
        return real("127.0.0.1" if host == "feeds.test" else host, *args, **kwargs)

    with serve() as server:
        monkeypatch.setattr(socket, "getaddrinfo", answer)
        reply = send(_policy(f"http://feeds.test:{server.port}/"), "GET", f"http://feeds.test:{server.port}/a")
    assert reply.status == 200 and [h for h in lookups if h != "127.0.0.1"] == ["feeds.test"]  # the rest: literals
    assert server.seen[0]["host"] == f"feeds.test:{server.port}"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for the name feeds.test, made with the openssl command."""
    d = tmp_path_factory.mktemp("tls")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=commonwatch test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=feeds.test")
    (d / "ext.cnf").write_text("subjectAltName=DNS:feeds.test\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
        "srv.pem", "-days", "2", "-extfile", "ext.cnf")
    return d / "ca.pem", d / "srv.pem", d / "srv.key"


def test_https_to_a_pinned_address_verifies_the_certificate_for_the_name(monkeypatch, tls_files):
    ca, cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo",
                        lambda host, *a, **k: real("127.0.0.1" if host in ("feeds.test", "other.test") else host,
                                                   *a, **k))
    with serve(tls=context) as server:
        url = f"https://feeds.test:{server.port}/a"
        reply = send(_policy(f"https://feeds.test:{server.port}/", ca_file=str(ca)), "GET", url)
        assert reply.status == 200 and names == ["feeds.test"]
        assert server.seen[0]["host"] == f"feeds.test:{server.port}"
        wrong = f"https://other.test:{server.port}/a"  # same address, a name the certificate does not carry
        with pytest.raises(httpx.ConnectError, match="certificate"):
            send(_policy(f"https://other.test:{server.port}/", ca_file=str(ca)), "GET", wrong)
