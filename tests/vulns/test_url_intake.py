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
        if not (SAMPLES / name).is_file():
            self.send_response(404)
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


def test_scheduled_poll_fetches_every_source_and_matches_only_the_delta(session, server, tmp_path):  # noqa: F811
    from commonwatch.vulns.models import VulnFinding
    from tests.vulns.test_services import _inventory

    _a, _b, assets = _inventory(session)
    settings = Settings(data_dir=tmp_path, outbound_allowlist=[server + "/"], outbound_timeout_seconds=5)
    for name, kind in (("nvd-page.json", "records"), ("kev.json", "kev"), ("epss.csv", "epss"),
                       ("missing.json", "records")):
        session.add(VulnSource(url=f"{server}/{name}", kind=kind, etag="", last_modified="", last_status=""))
    session.add(VulnSource(url="http://elsewhere.invalid/x.json", kind="records", etag="", last_modified="",
                           last_status=""))
    session.flush()
    rep = svc.poll_sources(session, settings, START)
    assert rep.failed == 2, rep.lines      # the missing file and the URL off the allowlist
    assert sorted(rep.keys) == ["nvd:CVE-2021-41773", "nvd:CVE-2024-3400"]
    assert rep.match is not None and len(rep.match.new) == 2   # web and gw run httpd 2.4.49
    assert {f.asset_id for f in session.scalars(select(VulnFinding))} == {assets[0].id, assets[2].id}
    assert session.get(VulnKev, "CVE-2021-41773") is not None
    failed = session.scalars(select(VulnSource).where(VulnSource.url.endswith("missing.json"))).one()
    assert failed.last_status.startswith("failed:")
    # the next run: every source answers 304, nothing is matched
    rep = svc.poll_sources(session, settings, START)
    assert rep.keys == [] and rep.match is None
    assert sum("304 not modified" in line for line in rep.lines) == 3
