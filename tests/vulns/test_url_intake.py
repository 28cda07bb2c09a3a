"""Intake from a URL: through the outbound allowlist, a real HTTP server on loopback, and a
conditional request the second time (304: nothing read, nothing changed)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from commonwatch.config import Settings
from commonwatch.errors import Invalid
from commonwatch.vulns import services as svc
from commonwatch.vulns.models import VulnKev, VulnRecord, VulnSource
from tests.conftest import START
from tests.vulns.test_services import session  # noqa: F401  (the fixture)

SAMPLES = Path(svc.intake.__file__).parent / "samples"


class Handler(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self):
        Handler.seen.append(self.headers.get("If-None-Match", ""))
        name = self.path.strip("/")
        if self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.end_headers()
            return
        body = (SAMPLES / name).read_bytes()
        self.send_response(200)
        self.send_header("ETag", '"v1"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_intake_is_allowlisted_and_conditional(session, server, tmp_path):  # noqa: F811
    settings = Settings(data_dir=tmp_path, outbound_allowlist=[server + "/"], outbound_timeout_seconds=5)
    assert svc.import_url(session, server + "/nvd-page.json", settings, START).startswith("2 added")
    assert svc.import_url(session, server + "/nvd-page.json", settings, START) == "304 not modified"
    assert Handler.seen[-1] == '"v1"'
    assert session.scalar(select(func.count()).select_from(VulnRecord)) == 2
    assert svc.import_url(session, server + "/kev.json", settings, START, kind="kev") == "2 KEV entries"
    assert session.get(VulnKev, "CVE-2021-41773") is not None
    src = session.scalars(select(VulnSource).where(VulnSource.url == server + "/nvd-page.json")).one()
    assert src.etag == '"v1"' and src.last_status == "304 not modified"
    with pytest.raises(Invalid, match="allowlist"):
        svc.import_url(session, "http://elsewhere.invalid/x.json", settings, START)
