"""Partner reports in: IODEF v2 JSON, XARF, ARF and plain text through the feed pipeline; signatures
checked with real GnuPG against the partner's registry key; unreadable reports held with the reason;
a real Dovecot IMAP server polled, the poller killed mid-mailbox and run again: nothing lost or twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from commonwatch.constituency import services as registry
from commonwatch.constituency.models import Organisation
from commonwatch.cooperation.imap import ImapFailure, poll
from commonwatch.cooperation.models import ImapCursor, InboundReport
from commonwatch.cooperation.reports import Mail, drop_folder, ingest_mails
from commonwatch.db import session_scope
from commonwatch.pipeline.models import IngestRun
from tests.cooperation.mails import PARTNER_EMAIL, Dovecot, Signer, arf, as_bytes, iodef, mail, xarf


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    return Signer(tmp_path_factory.mktemp("partner-gpg"), f"CERT Partner <{PARTNER_EMAIL}>")


@pytest.fixture(scope="module")
def stranger(tmp_path_factory):
    return Signer(tmp_path_factory.mktemp("stranger-gpg"), "Someone <someone@elsewhere.example>")


@pytest.fixture
def partner(app, world, clock, signer):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        org = s.get(Organisation, world.partner)
        registry.add_contact(s, org, {"email": PARTNER_EMAIL, "pgp_key": signer.public, "role": "security"},
                             clock.now())
    return world.partner


def _events(app) -> int:
    with app.state.sessionmaker() as s:
        return s.scalar(select(func.coalesce(func.sum(IngestRun.events_stored), 0)))


def _ingest(app, clock, mails):
    return ingest_mails(app.state.engine, app.state.sessionmaker, mails, clock, app.state.settings.data_dir)


def test_formats_become_events_and_bad_ones_are_held(app, clock, partner, signer, stranger):
    good = [
        Mail(signer.sign(mail(iodef(10))), "api"),
        Mail(as_bytes(mail(xarf())), "api"),
        Mail(as_bytes(arf()), "api"),
        Mail(as_bytes(mail("Please look at 198.51.100.90 and http://bad.example/x today.")), "api"),
    ]
    bad = [
        Mail(as_bytes(mail({"IODEF-Document": {"Incident": [{"ReportTime": "2026-11-24T08:00:00Z"}]}})), "api"),
        Mail(as_bytes(mail({**xarf(), "xarf_version": "3.0"})), "api"),
        Mail(as_bytes(mail({k: v for k, v in xarf().items() if k != "category"})), "api"),
        Mail(stranger.sign(mail(iodef(2)), ), "api"),
        Mail(signer.sign(mail(iodef(2)), tamper=True), "api"),
        Mail(as_bytes(mail(iodef(1), sender="nobody@unknown.example")), "api"),
        Mail(as_bytes(arf(drop="User-Agent")), "api"),
        Mail(b"\x00\xff not a mail at all", "api"),
    ]
    rows = _ingest(app, clock, good + bad)
    by = {r.status: [] for r in rows}
    for r in rows:
        by[r.status].append(r)
    assert [r.format for r in by["ingested"]] == ["iodef", "xarf", "arf", "text"]
    assert by["ingested"][0].signature == "good" and by["ingested"][0].signer == signer.fingerprint
    assert all(r.partner_org_id == partner for r in by["ingested"])
    assert [r.rows for r in by["ingested"]] == [10, 1, 1, 2]
    assert _events(app) == 14
    reasons = [r.reason for r in by["held"]]
    assert "lacks IncidentID" in reasons[0]
    assert "xarf_version 3.0" in reasons[1]
    assert "lacks category" in reasons[2]
    assert "unknown key" in reasons[3]
    assert "does not verify" in reasons[4]
    assert "not a partner contact" in reasons[5]
    assert "lacks user-agent" in reasons[6]
    assert reasons[7]
    assert all(r.raw for r in by["held"])  # kept for the coordinator
    assert all(r.respond_by and (r.respond_by - r.received_at).total_seconds() == 24 * 3600 for r in rows)
    # The same bytes again: taken once.
    assert _ingest(app, clock, good) == []
    assert _events(app) == 14


def test_drop_folder_and_too_large(app, clock, partner, signer, tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a.eml").write_bytes(signer.sign(mail(iodef(3))))
    (folder / "b.eml").write_bytes(as_bytes(mail(xarf())))
    rows = drop_folder(app.state.engine, app.state.sessionmaker, folder, clock, app.state.settings.data_dir)
    assert [r.status for r in rows] == ["ingested", "ingested"] and not list(folder.glob("*.eml"))
    assert len(list((folder / "done").glob("*.eml"))) == 2
    huge = Mail(as_bytes(mail("198.51.100.1 " + "x" * (26 * 1024 * 1024))), "api")
    (row,) = _ingest(app, clock, [huge])
    assert row.status == "held" and "at most 26,214,400" in row.reason and row.raw is None


def test_api_submission_and_held_list(client, app, world, partner, signer):
    resp = client.post("/api/v1/cooperation/reports", headers=world.auth("coordinator"),
                       files={"file": ("r.eml", signer.sign(mail(iodef(4))), "message/rfc822")})
    assert resp.status_code == 201 and resp.json()["items"][0]["status"] == "ingested", resp.text
    resp = client.post("/api/v1/cooperation/reports", headers=world.auth("coordinator"),
                       data={"partner_org_id": str(partner)},
                       files={"file": ("r.json", json.dumps({"xarf_version": "4.0.0"}).encode(), "application/json")})
    assert resp.status_code == 201 and resp.json()["items"][0]["status"] == "held"
    held = client.get("/api/v1/cooperation/reports?status=held", headers=world.auth("coordinator")).json()["items"]
    assert held and "lacks" in held[0]["reason"]
    assert client.get("/api/v1/cooperation/reports", headers=world.auth("a")).status_code == 403


POLLER = """
import sys
from commonwatch.clock import FrozenClock
from commonwatch.db import make_engine, make_sessionmaker
from commonwatch.cooperation.imap import poll
from tests.conftest import START
from commonwatch.access import audit
from commonwatch.config import Settings
url, port, data_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
engine = make_engine(url)
# The app's audit key, as a poller started by the server or the CLI has it.
audit.use_key(engine, audit.load_key(Settings(data_dir=data_dir, database_url=url), create=False))
poll(engine, make_sessionmaker(engine), host="127.0.0.1", port=port, user="reports", password="secret-pw",
     clock=FrozenClock(START), data_dir=None, chunk=1)
"""


def test_imap_poller_killed_mid_mailbox_loses_nothing_and_reads_nothing_twice(app, clock, partner, signer,
                                                                              sqlite_url, tmp_path):
    server = Dovecot()
    try:
        n = 24
        raws = [signer.sign(mail(iodef(2, first_ip=1 + 2 * i))) if i % 2 else as_bytes(mail(xarf(f"198.51.100.{100 + i}")))
                for i in range(n)]
        raws.append(as_bytes(mail({"broken": True})))
        server.append(raws)
        child = subprocess.Popen([sys.executable, "-c", POLLER, sqlite_url, str(server.port),
                                  str(app.state.settings.data_dir)],
                                 cwd=os.getcwd(), stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        taken = 0
        while time.monotonic() < deadline and child.poll() is None:
            with app.state.sessionmaker() as s:
                taken = s.scalar(select(func.max(ImapCursor.last_uid))) or 0
            if taken >= 3:
                os.kill(child.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        child.wait(10)
        assert child.returncode == -signal.SIGKILL, child.stderr.read().decode()[-2000:]
        with app.state.sessionmaker() as s:
            at_kill = s.scalar(select(func.count()).select_from(InboundReport))
        assert 3 <= at_kill < n + 1  # killed mid-mailbox
        result = poll(app.state.engine, app.state.sessionmaker, host="127.0.0.1", port=server.port, user="reports",
                      password="secret-pw", clock=clock, data_dir=app.state.settings.data_dir, chunk=5)
        assert result.fetched == n + 1 - at_kill
        with app.state.sessionmaker() as s:
            reports = list(s.scalars(select(InboundReport)))
            assert len(reports) == n + 1 and len({r.digest for r in reports}) == n + 1
            assert sum(r.status == "held" for r in reports) == 1
            assert s.scalar(select(ImapCursor.last_uid)) == n + 1
        assert _events(app) == (n // 2) * 2 + (n // 2)
        # A third run finds nothing new.
        again = poll(app.state.engine, app.state.sessionmaker, host="127.0.0.1", port=server.port, user="reports",
                     password="secret-pw", clock=clock, data_dir=app.state.settings.data_dir)
        assert again.fetched == 0
    finally:
        server.stop()
    # The server gone: a clear error, no report touched.
    with pytest.raises(ImapFailure, match="cannot connect"):
        poll(app.state.engine, app.state.sessionmaker, host="127.0.0.1", port=server.port, user="reports",
             password="x", clock=clock, data_dir=None, timeout=2)



def test_held_reports_page(client, app, world, clock, partner):
    _ingest(app, clock, [Mail(as_bytes(mail({"xarf_version": "4.0.0"})), "api")])
    from tests.conftest import sign_in

    sign_in(client, world.users["coordinator"])
    page = client.get("/cooperation/reports?status=held")
    assert page.status_code == 200 and "XARF: report 1 lacks" in page.text and "held for you" in page.text
    client.get("/lang/zh-CN")
    assert "已为您保留" in client.get("/cooperation/reports").text


def test_inline_pgp_clearsigned_and_armoured_reports_are_checked_like_pgp_mime(app, clock, partner, signer,
                                                                              stranger):
    body = json.dumps(iodef(2, first_ip=140))
    clear = signer.clearsign(body)
    tampered = clear.replace("198.51.100.140", "198.51.100.141")
    armoured = signer.armour_sign(json.dumps(xarf("198.51.100.150")))
    with_file = mail("Report below, signed.")
    with_file.add_attachment(armoured.encode(), maintype="application", subtype="pgp-signature",
                             filename="report.json.asc")
    rows = _ingest(app, clock, [
        Mail(as_bytes(mail("Please see the report.\n\n" + clear + "\n-- \nCERT Partner")), "api"),
        Mail(as_bytes(with_file), "api"),
        Mail(as_bytes(mail(tampered)), "api"),
        Mail(as_bytes(mail(stranger.clearsign(body))), "api"),
    ])
    by = [(r.status, r.signature, r.signer, r.format, r.rows) for r in rows]
    assert by[0] == ("ingested", "good", signer.fingerprint, "iodef", 2)
    assert by[1] == ("ingested", "good", signer.fingerprint, "xarf", 1)
    assert by[2][0] == "held" and "does not verify" in rows[2].reason
    assert by[3][0] == "held" and "unknown key" in rows[3].reason and rows[3].raw
