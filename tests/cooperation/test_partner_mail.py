"""Mail back to partner CERTs through notify's SMTP path, against a real SMTP server on loopback and
real GnuPG: one acknowledgement per report (signed by the centre where the partner has a key), with
both sides' references, on the report's record and in the audit log; re-processing sends none twice."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from commonwatch.access.models import AuditEntry
from commonwatch.config import Settings
from commonwatch.constituency import services as registry
from commonwatch.constituency.models import Organisation
from commonwatch.cooperation.mailing import deliver_pending
from commonwatch.cooperation.models import PartnerMail
from commonwatch.db import session_scope
from commonwatch.notify.pgp import Keyring, gpg_binary
from tests.conftest import CI
from tests.cooperation.mails import PARTNER_EMAIL, Signer, as_bytes, iodef, mail
from tests.notify.conftest import Sink
from tests.notify.helpers import parse, signed_parts, verify_detached


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    return Signer(tmp_path_factory.mktemp("partner-gpg"), f"CERT Partner <{PARTNER_EMAIL}>")


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    s.start()
    yield s
    s.handler.hold.set()
    s.stop()


@pytest.fixture
def centre(clock) -> Iterator[Keyring]:
    if gpg_binary() is None:
        if CI:
            pytest.fail("gpg is required under CI=true", pytrace=False)
        pytest.skip("gpg is not installed")
    root = Path(tempfile.mkdtemp(prefix="cwk"))  # short: gpg-agent socket paths are limited
    keyring = Keyring(root / "centre", clock)
    keyring.generate_centre_key("Test CERT", "cert@centre.example")
    yield keyring
    keyring.close()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def settings(tmp_path, sqlite_url, sink, centre) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=sqlite_url, timezone="Asia/Shanghai",
                    log_format="text", smtp_host="127.0.0.1", smtp_port=sink.port, smtp_security="none",
                    mail_from="cert@centre.example", gnupg_home=centre.home)


@pytest.fixture
def partner(app, world, clock, signer):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        registry.add_contact(s, s.get(Organisation, world.partner),
                             {"email": PARTNER_EMAIL, "pgp_key": signer.public, "role": "security", "language": "en"},
                             clock.now())
    return world.partner


def _submit(client, world, raw: bytes, name: str = "report.eml"):
    resp = client.post("/api/v1/cooperation/reports", files={"file": (name, raw, "message/rfc822")},
                       headers=world.auth("coordinator"))
    assert resp.status_code == 201, resp.text
    return resp.json()["items"]


def test_an_accepted_report_is_acknowledged_once_signed_with_both_references(app, client, world, clock, partner,
                                                                            signer, sink, centre):
    raw = signer.sign(mail(iodef(3, ident="PARTNER-2026-0042")))
    [report] = _submit(client, world, raw)
    assert report["status"] == "ingested"
    assert len(sink.messages) == 1
    got = sink.messages[0]
    assert got.recipients == [PARTNER_EMAIL] and got.sender == "cert@centre.example"
    msg = parse(got.data)
    assert msg.get_content_type() == "multipart/signed"
    entity, signature = signed_parts(got.data)
    assert verify_detached(centre, entity, signature) == centre.centre_key().fingerprint
    body = parse(b"MIME-Version: 1.0\r\n" + entity).get_content()
    ours = f"PR-2026-{report['id']:06d}"
    assert ours in body and "PARTNER-2026-0042" in body and "3 records" in body
    assert "PARTNER-2026-0042" in msg["Subject"] and msg["In-Reply-To"] == report["message_id"]

    record = client.get(f"/api/v1/cooperation/reports/{report['id']}", headers=world.auth("coordinator")).json()
    [ack] = record["mails"]
    assert ack["kind"] == "ack" and ack["status"] == "sent" and ack["signed"] is True
    assert ack["our_ref"] == ours and ack["their_ref"] == "PARTNER-2026-0042"
    assert ack["message_id"] == msg["Message-ID"]

    # The same report again (a second poll, a re-submission) and another delivery pass: nothing more sent.
    assert _submit(client, world, raw) == []
    assert deliver_pending(app.state.sessionmaker, app.state.settings, clock) == []
    assert len(sink.messages) == 1
    with app.state.sessionmaker() as s:
        assert len(s.scalars(select(PartnerMail)).all()) == 1
        actions = set(s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("cooperation.ack%"))))
    assert actions == {"cooperation.ack_queued", "cooperation.ack_mail_sent"}


def test_a_held_report_from_a_partner_is_acknowledged_with_the_reason_a_strangers_is_not(app, client, world,
                                                                                        partner, sink):
    bad = json.dumps({"IODEF-Document": {"version": "2.0", "Incident": [{"purpose": "mitigation"}]}})
    [held] = _submit(client, world, as_bytes(mail(bad)))
    assert held["status"] == "held"
    [got] = sink.messages
    assert parse(got.data).get_content_type() == "multipart/signed"  # the partner has a key: signed
    body = parse(b"MIME-Version: 1.0\r\n" + signed_parts(got.data)[0]).get_content()
    assert "could not read it" in body and "IncidentID" in body
    [stranger] = _submit(client, world, as_bytes(mail("198.51.100.9 is scanning", sender="x@elsewhere.example")))
    assert stranger["status"] == "held"
    assert len(sink.messages) == 1  # no backscatter to unknown senders


def test_a_refused_acknowledgement_is_retried_later_not_lost(app, client, world, clock, partner, signer, sink):
    from datetime import timedelta

    sink.handler.refuse = 1
    [report] = _submit(client, world, signer.sign(mail(iodef(1))))
    assert sink.messages == []
    [ack] = client.get(f"/api/v1/cooperation/reports/{report['id']}", headers=world.auth("coordinator")).json()["mails"]
    assert ack["status"] == "retry" and "451" in ack["error"]
    assert deliver_pending(app.state.sessionmaker, app.state.settings, clock) == []  # not yet due
    clock.advance(timedelta(minutes=2))
    assert [r["status"] for r in deliver_pending(app.state.sessionmaker, app.state.settings, clock)] == ["sent"]
    assert len(sink.messages) == 1


def _decrypt_as_partner(signer: Signer, centre: Keyring, armored: bytes) -> tuple[bytes, str]:
    """What the partner's own GnuPG makes of the mail: the plaintext and the status lines."""
    import subprocess

    # At the real time, not the signer's faked one (the centre's key was made at the test clock's time).
    subprocess.run([gpg_binary(), "--homedir", str(signer.home), "--batch", "--import"], check=True,
                   input=centre.export_public(centre.centre_key().fingerprint).encode(), capture_output=True)
    done = subprocess.run([gpg_binary(), "--homedir", str(signer.home), "--batch", "--status-fd", "2", "--decrypt"],
                          input=armored, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout, done.stderr.decode()


def test_documents_are_mailed_encrypted_to_the_partner_signed_and_retried(app, client, world, clock, partner,
                                                                          signer, sink, centre):
    from datetime import timedelta

    from commonwatch.cooperation.reports import parse_iodef_json
    from tests.cooperation.test_outbound import _incident
    from tests.notify.helpers import entity_parts

    iid = _incident(app, world, clock)
    sink.handler.refuse = 1  # the partner's first attempt meets a temporary failure
    resp = client.post(f"/api/v1/cooperation/incidents/{iid}/exchange?format=iodef&transmit=true",
                       headers=world.auth("coordinator"))
    assert resp.status_code == 200, resp.text
    de = {i["country"]: i for i in resp.json()["items"]}["DE"]
    assert de["delivery"] == "retry" and "451" in de["delivery_error"] and sink.messages == []
    clock.advance(timedelta(minutes=2))
    assert [r["status"] for r in deliver_pending(app.state.sessionmaker, app.state.settings, clock)] == ["sent"]
    [got] = sink.messages
    assert got.recipients == [PARTNER_EMAIL]
    msg = parse(got.data)
    assert msg.get_content_type() == "multipart/encrypted" and b"198.51.100.10" not in got.data
    armored = msg.get_payload()[1].get_payload(decode=True)
    entity, status = _decrypt_as_partner(signer, centre, armored)
    assert f"VALIDSIG {centre.centre_key().fingerprint}" in status
    text, files = entity_parts(entity)
    ref = client.get(f"/api/v1/incidents/{iid}", headers=world.auth("coordinator")).json()["ref"]
    assert ref in text and f"{ref}-iodef.json" in files
    parsed = parse_iodef_json(json.loads(files[f"{ref}-iodef.json"]))
    assert sorted(r["source.ip"] for r in parsed.records) == ["198.51.100.10", "198.51.100.11"]

    mails = client.get(f"/api/v1/cooperation/incidents/{iid}/mails", headers=world.auth("coordinator")).json()["items"]
    assert [(m["status"], m["attempts"], m["encrypted"], m["signed"]) for m in mails] == [("sent", 2, True, True)]
    timeline = client.get(f"/api/v1/incidents/{iid}/timeline", headers=world.auth("coordinator")).json()
    texts = [e["text"] for e in timeline if e["kind"] == "partner_exchange"]
    assert texts[0] == "2 events sent to CERT Partner DE as IODEF v2 JSON."
    assert texts[1].startswith("2 events sent to CERT Partner DE as IODEF v2 JSON. Delivery failed for now")
    assert texts[2].endswith(f"Delivered by e-mail to {PARTNER_EMAIL}.")
    # Another pass sends nothing again.
    assert deliver_pending(app.state.sessionmaker, app.state.settings, clock) == []
    assert len(sink.messages) == 1


def test_a_partner_without_a_key_gets_signed_documents_and_plain_acknowledgements(app, client, world, clock, sink,
                                                                                  centre):
    from tests.cooperation.test_outbound import _incident
    from tests.notify.helpers import entity_parts

    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        registry.add_contact(s, s.get(Organisation, world.partner),
                             {"email": PARTNER_EMAIL, "role": "security", "language": "en"}, clock.now())
    [report] = _submit(client, world, as_bytes(mail(iodef(1))))
    assert report["status"] == "ingested"
    ack = parse(sink.messages[0].data)
    assert ack.get_content_type() == "text/plain" and f"PR-2026-{report['id']:06d}" in ack.get_content()
    iid = _incident(app, world, clock)
    de = {i["country"]: i for i in client.post(f"/api/v1/cooperation/incidents/{iid}/exchange?format=xarf&transmit=true",
                                               headers=world.auth("coordinator")).json()["items"]}["DE"]
    assert de["delivery"] == "sent"
    raw = sink.messages[1].data
    assert parse(raw).get_content_type() == "multipart/signed"
    entity, signature = signed_parts(raw)
    assert verify_detached(centre, entity, signature) == centre.centre_key().fingerprint
    _text, files = entity_parts(entity)
    [(name, body)] = files.items()
    assert name.endswith("-xarf.json") and len(json.loads(body)) == 2
