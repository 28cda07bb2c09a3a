"""Collectors against a real HTTP server on loopback: allowlist, size and time limits,
conditional requests, redirects; the scheduled fetch of subscribed feeds."""

from __future__ import annotations

import gzip
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from commonwatch.config import Settings
from commonwatch.db import make_sessionmaker, session_scope
from commonwatch.errors import Conflict, Invalid
from commonwatch.feeds.collect import fetch_url
from commonwatch.feeds.models import FeedSubscription
from commonwatch.feeds.services import fetch_due, subscribe
from commonwatch.outbound import Policy, check
from commonwatch.pipeline.demo import samples_dir
from commonwatch.pipeline.models import IngestRun
from tests.pipeline.helpers import count_events, seed_registry

BODY = (samples_dir() / "feodotracker.csv").read_bytes()


class Handler(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        Handler.requests.append({"path": self.path, "inm": self.headers.get("If-None-Match"),
                                 "ims": self.headers.get("If-Modified-Since")})
        if self.path == "/feodo.csv":
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.send_header("ETag", '"v1"')
                self.end_headers()
                return
            self._send(BODY, etag='"v1"')
        elif self.path == "/feodo.csv.gz":
            self._send(gzip.compress(BODY))
        elif self.path == "/big":
            self._send(b"x" * 5000)
        elif self.path == "/endless":
            self.send_response(200)
            self.end_headers()  # no Content-Length: the limit has to stop the stream
            for _ in range(100):
                self.wfile.write(b"y" * 1000)
        elif self.path == "/slow":
            time.sleep(3)
            self._send(b"late")
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "http://evil.invalid/x")
            self.end_headers()
        elif self.path == "/moved-ok":
            self.send_response(302)
            self.send_header("Location", "/feodo.csv")
            self.end_headers()
        else:
            self.send_response(404)
            self.end_headers()

    def _send(self, body: bytes, etag: str = "") -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Last-Modified", "Tue, 24 Nov 2026 08:05:01 GMT")
        if etag:
            self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server():
    Handler.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _policy(allow: list[str], max_bytes: int = 10_000, timeout: float = 5) -> Policy:
    return Policy(tuple(allow), timeout, max_bytes, 5)


def test_allowlist():
    with pytest.raises(Invalid, match="not on the outbound allowlist"):
        check("https://feeds.example/x", ["https://other.example/"])
    with pytest.raises(Invalid, match="not an http"):
        check("file:///etc/passwd", ["file://"])
    check("https://feeds.example/x", ["https://feeds.example/"])


def test_fetch_then_conditional_request(server):
    allow = [server + "/"]
    first = fetch_url(server + "/feodo.csv", _policy(allow, 10_000, 5))
    assert first.status == 200 and first.body.read_bytes() == BODY and first.etag == '"v1"'
    first.body.unlink()
    second = fetch_url(server + "/feodo.csv", _policy(allow, 10_000, 5), etag=first.etag,
                       last_modified=first.last_modified)
    assert second.not_modified and second.body is None
    assert Handler.requests[-1]["inm"] == '"v1"' and Handler.requests[-1]["ims"] == "Tue, 24 Nov 2026 08:05:01 GMT"


def test_size_and_time_limits_and_redirects(server):
    allow = [server + "/"]
    with pytest.raises(Invalid, match="over the limit of 1000"):
        fetch_url(server + "/big", _policy(allow, 1000, 5))
    with pytest.raises(Invalid, match="more than the limit of 20000"):
        fetch_url(server + "/endless", _policy(allow, 20_000, 5))
    with pytest.raises(Invalid, match="took longer than 0.5 s"):
        fetch_url(server + "/slow", _policy(allow, 1000, 0.5))
    with pytest.raises(Invalid, match="not on the outbound allowlist"):
        fetch_url(server + "/moved", _policy(allow, 1000, 5))
    moved = fetch_url(server + "/moved-ok", _policy(allow, 10_000, 5))
    assert moved.body.read_bytes() == BODY
    moved.body.unlink()
    with pytest.raises(Invalid, match="answered HTTP 404"):
        fetch_url(server + "/missing", _policy(allow, 1000, 5))


def test_scheduled_fetch_ingests_and_then_sends_conditional_requests(server, engine, clock, tmp_path):
    seed_registry(engine, clock)
    factory = make_sessionmaker(engine)
    settings = Settings(data_dir=tmp_path, outbound_allowlist=[server + "/"], outbound_timeout_seconds=5)
    with session_scope(factory, actor="test") as session:
        with pytest.raises(Invalid, match="allowlist"):
            subscribe(session, "x", "http://elsewhere.invalid/", "feodotracker", 60, settings.outbound_allowlist)
        subscribe(session, "feodo", server + "/feodo.csv", "feodotracker", 60, settings.outbound_allowlist)
        subscribe(session, "feodo-gz", server + "/feodo.csv.gz", "feodotracker", 30, settings.outbound_allowlist)
        with pytest.raises(Conflict):
            subscribe(session, "feodo", server + "/feodo.csv", "feodotracker", 60, settings.outbound_allowlist)
    lines = fetch_due(engine, factory, settings, clock)
    assert lines[0].startswith("feodo: run ") and "3 stored" in lines[0]
    assert lines[1].startswith("feodo-gz: run ") and "0 stored" in lines[1]  # the same events, gzipped
    assert count_events(engine) == 3
    assert fetch_due(engine, factory, settings, clock) == []  # nothing due yet
    clock.advance(timedelta(minutes=61))
    assert fetch_due(engine, factory, settings, clock)[0] == "feodo: not modified"
    with factory() as session:
        sub = session.scalars(select(FeedSubscription).where(FeedSubscription.name == "feodo")).one()
        assert sub.etag == '"v1"' and sub.last_status == "not modified"
        assert session.scalars(select(IngestRun.source)).all().count(server + "/feodo.csv") == 1


def test_ingest_command_fetches_a_url(server, settings, engine, clock):
    from typer.testing import CliRunner

    from commonwatch.cli import app
    from commonwatch.runtime import Runtime, set_runtime

    seed_registry(engine, clock)
    set_runtime(Runtime(settings.model_copy(update={"outbound_allowlist": [server + "/"]}), clock))
    try:
        result = CliRunner().invoke(app, ["ingest", server + "/feodo.csv.gz", "--feed", "feodotracker"])
    finally:
        set_runtime(None)
    assert result.exit_code == 0, result.output
    assert count_events(engine) == 3
    with make_sessionmaker(engine)() as session:
        assert session.scalars(select(IngestRun.source)).one() == server + "/feodo.csv.gz"
