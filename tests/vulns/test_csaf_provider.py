"""A CSAF provider read offline (a mirror folder) and online (a real HTTP server on loopback): the
metadata, the directory's changes.csv (index.txt when it is missing), the ROLIE feed, conditional
requests, the delta cursor, and each advisory checked with its failures kept by test id."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from commonwatch.config import Settings
from commonwatch.errors import Invalid
from commonwatch.vulns import csaf_provider as prov
from commonwatch.vulns import services as svc
from commonwatch.vulns.intake import IntakeError
from commonwatch.vulns.models import VulnQuarantine, VulnRecord, VulnSource
from tests.conftest import START
from tests.vulns.test_services import session  # noqa: F401  (the fixture)

MIRROR = Path(svc.intake.__file__).parent / "samples" / "csaf-provider"


def count(session, model):  # noqa: F811
    return session.scalar(select(func.count()).select_from(model))


def test_offline_mirror_is_read_like_the_provider(session, tmp_path):  # noqa: F811
    rep = prov.import_provider(session, MIRROR, Settings(data_dir=tmp_path), START)
    assert (rep.added, rep.quarantined, rep.fetched) == (2, 1, 3), rep.summary()
    keys = {r.record_key for r in session.scalars(select(VulnRecord))}
    assert keys == {"csaf:ACME-VEX-2021-0007#CVE-2021-41773", "csaf:ACME-SA-2021-0010#CVE-2021-44228"}
    q = session.scalars(select(VulnQuarantine)).one()
    assert q.name.endswith("acme-sa-2021-0009.json")
    assert q.failures == [{"test": "6.1.27.5", "path": "/vulnerabilities/0/notes",
                           "reason": "required in csaf_security_advisory"}]
    again = prov.import_provider(session, MIRROR / "provider-metadata.json", Settings(data_dir=tmp_path), START)
    assert (again.added, again.updated, again.keys) == (0, 0, [])


def test_index_txt_when_changes_csv_is_missing(session, tmp_path):  # noqa: F811
    mirror = tmp_path / "m"
    shutil.copytree(MIRROR, mirror)
    (mirror / "white" / "changes.csv").unlink()
    rep = prov.import_provider(session, mirror, Settings(data_dir=tmp_path), START)
    assert "index.txt" in rep.lines[0] and rep.added == 2


@pytest.mark.parametrize(("change", "reason"), [
    (lambda m: m.pop("role"), "/role: required"),
    (lambda m: m.__setitem__("metadata_version", "1.0"), "is not 2.0"),
    (lambda m: m["distributions"].append({}), "directory_url or rolie is required"),
    (lambda m: m["distributions"][1]["rolie"]["feeds"][0].__setitem__("tlp_label", "PINK"), "tlp_label"),
])
def test_bad_metadata_is_refused_before_anything_is_read(session, tmp_path, change, reason):  # noqa: F811
    meta = json.loads((MIRROR / "provider-metadata.json").read_text())
    change(meta)
    (tmp_path / "provider-metadata.json").write_text(json.dumps(meta))
    with pytest.raises(IntakeError, match=reason):
        prov.import_provider(session, tmp_path, Settings(data_dir=tmp_path), START)
    assert count(session, VulnRecord) == 0


class Provider(BaseHTTPRequestHandler):
    root: Path
    base: str
    hits: list[tuple[str, int]] = []

    def do_GET(self):
        path = (self.root / self.path.lstrip("/").removeprefix(".well-known/csaf/")).resolve()
        if not path.is_file():
            Provider.hits.append((self.path, 404))   # recorded before the answer: the client reads hits next
            self.send_response(404)
            self.end_headers()
            return
        body = path.read_bytes().replace(b"https://acme.example", self.base.encode())
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            Provider.hits.append((self.path, 304))
            self.send_response(304)
            self.end_headers()
            return
        Provider.hits.append((self.path, 200))
        self.send_response(200)
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def provider(tmp_path):
    root = tmp_path / "site"
    shutil.copytree(MIRROR, root)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    Provider.root, Provider.base, Provider.hits = root, f"http://127.0.0.1:{httpd.server_address[1]}", []
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield Provider.base, root
    httpd.shutdown()
    httpd.server_close()


def test_online_provider_conditional_and_delta(session, provider, tmp_path):  # noqa: F811
    base, root = provider
    settings = Settings(data_dir=tmp_path, outbound_allowlist=[base + "/.well-known/csaf/"],
                        outbound_timeout_seconds=5)
    url = base + "/.well-known/csaf/provider-metadata.json"
    rep = prov.import_provider(session, url, settings, START)
    assert (rep.added, rep.quarantined) == (2, 1), rep.summary()
    assert {p for p, s in Provider.hits if s == 200} >= {"/.well-known/csaf/white/changes.csv",
                                                        "/.well-known/csaf/feed-tlp-white.json",
                                                        "/.well-known/csaf/white/2021/acme-vex-2021-0007.json"}
    listing = session.scalars(select(VulnSource).where(VulnSource.url.endswith("/white/changes.csv"))).one()
    assert listing.cursor == "2021-10-11T09:00:00Z" and listing.etag
    # nothing changed: the listings answer 304 and no advisory is fetched
    Provider.hits = []
    rep = prov.import_provider(session, url, settings, START)
    assert rep.fetched == 0 and rep.keys == []
    assert sorted(s for _p, s in Provider.hits) == [200, 304, 304]   # the metadata, then both listings
    # a new revision of the VEX: only it is fetched, and only it comes back as changed
    vex_path = root / "white" / "2021" / "acme-vex-2021-0007.json"
    doc = json.loads(vex_path.read_text())
    doc["document"]["tracking"].update(version="3", current_release_date="2021-10-12T10:00:00Z")
    doc["document"]["tracking"]["revision_history"].append({"date": "2021-10-12T10:00:00Z", "number": "3",
                                                            "summary": "Wording"})
    vex_path.write_text(json.dumps(doc))
    (root / "white" / "changes.csv").write_text(
        '"2021/acme-vex-2021-0007.json","2021-10-12T10:00:00Z"\n'
        '"2021/acme-sa-2021-0009.json","2021-10-11T09:00:00Z"\n'
        '"2021/acme-vex-2021-0007.json","2021-10-09T10:00:00Z"\n')
    Provider.hits = []
    rep = prov.import_provider(session, url, settings, START)
    fetched = [p for p, s in Provider.hits if p.endswith(".json") and "2021/" in p]
    assert fetched == ["/.well-known/csaf/white/2021/acme-vex-2021-0007.json"]
    assert rep.keys == ["csaf:ACME-VEX-2021-0007#CVE-2021-41773"] and rep.updated == 1
    assert session.scalars(select(VulnRecord).where(VulnRecord.record_key == rep.keys[0])).one().version == 2


def test_online_provider_off_the_allowlist_is_refused(session, provider, tmp_path):  # noqa: F811
    base, _root = provider
    with pytest.raises(Invalid, match="allowlist"):
        prov.import_provider(session, base + "/.well-known/csaf/provider-metadata.json",
                             Settings(data_dir=tmp_path, outbound_allowlist=["http://elsewhere.invalid/"]), START)
    assert Provider.hits == []


def test_a_subscribed_provider_is_polled_with_the_other_sources(session, provider, tmp_path):  # noqa: F811
    base, _root = provider
    settings = Settings(data_dir=tmp_path, outbound_allowlist=[base + "/.well-known/csaf/"],
                        outbound_timeout_seconds=5)
    url = base + "/.well-known/csaf/provider-metadata.json"
    status, keys = svc.fetch_source(session, url, settings, START, "csaf-provider")
    assert len(keys) == 2 and "2 added" in status
    Provider.hits = []
    rep = svc.poll_sources(session, settings, START)
    assert [line.split(": ", 1)[0] for line in rep.lines] == [url]   # advisories and listings are not polled alone
    assert rep.keys == [] and rep.failed == 0
    assert session.scalars(select(VulnSource).where(VulnSource.url == url)).one().kind == "csaf-provider"
