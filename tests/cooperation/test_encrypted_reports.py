"""Reports encrypted to the centre, with real GnuPG: PGP/MIME (``multipart/encrypted``, signed and
encrypted in one message or signed inside then encrypted) and an armoured encrypted block, decrypted
with the centre's key (the notify key handling's home) and their inner signature checked against the
partner's registry key; what cannot be decrypted is held with the reason. Also through a real Dovecot."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from commonwatch.constituency import services as registry
from commonwatch.constituency.models import Organisation
from commonwatch.cooperation.imap import poll
from commonwatch.cooperation.models import InboundReport
from commonwatch.cooperation.reports import Mail, ingest_mails
from commonwatch.db import session_scope
from commonwatch.notify.pgp import Keyring, default_home, gpg_binary
from commonwatch.pipeline.models import IngestRun
from tests.conftest import CI
from tests.cooperation.mails import PARTNER_EMAIL, Dovecot, Signer, as_bytes, iodef, mail, xarf


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    return Signer(tmp_path_factory.mktemp("partner-gpg"), f"CERT Partner <{PARTNER_EMAIL}>")


@pytest.fixture(scope="module")
def stranger(tmp_path_factory):
    return Signer(tmp_path_factory.mktemp("stranger-gpg"), "Someone <someone@elsewhere.example>")


@pytest.fixture
def centre(app, clock):
    """The centre's key in its default GnuPG home (``<data dir>/gnupg``), as ``cw keys`` makes it."""
    if gpg_binary() is None:
        if CI:
            pytest.fail("gpg is required under CI=true", pytrace=False)
        pytest.skip("gpg is not installed")
    keyring = Keyring(default_home(app.state.settings), clock)
    keyring.generate_centre_key("Test CERT", "cert@centre.example")
    public = keyring.export_public(keyring.centre_key().fingerprint)
    yield public
    keyring.close()


@pytest.fixture
def partner(app, world, clock, signer):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        registry.add_contact(s, s.get(Organisation, world.partner),
                             {"email": PARTNER_EMAIL, "pgp_key": signer.public, "role": "security"}, clock.now())
    return world.partner


def _ingest(app, clock, raws):
    return ingest_mails(app.state.engine, app.state.sessionmaker, [Mail(r, "api") for r in raws], clock,
                        app.state.settings.data_dir)


def _armoured_body(signer: Signer, centre: str, text: str, *, sign: bool) -> bytes:
    armoured = signer.encrypt(text.encode(), centre, sign=sign).decode()
    return as_bytes(mail(f"Our report, encrypted:\n\n{armoured}"))


def test_encrypted_reports_are_decrypted_and_their_signature_checked(app, clock, partner, signer, stranger, centre):
    import json

    rows = _ingest(app, clock, [
        signer.encrypt_mime(mail(iodef(3)), centre),                       # signed+encrypted, one message
        signer.encrypt_mime(mail(iodef(2, first_ip=50)), centre, signed_inside=True),  # signed, then encrypted
        _armoured_body(signer, centre, json.dumps(xarf("198.51.100.222")), sign=False),  # unsigned, known sender
        stranger.encrypt_mime(mail(iodef(1, first_ip=90)), centre),       # signed by a key not a partner's
        signer.encrypt_mime(mail(iodef(1, first_ip=91)), stranger.public),  # encrypted to someone else
        as_bytes(mail("-----BEGIN PGP MESSAGE-----\n\nhQEMA0123456789ABCDEF\n=abcd\n-----END PGP MESSAGE-----\n")),
    ])
    got = [(r.status, r.format, r.signature, r.encrypted) for r in rows]
    assert got[:3] == [("ingested", "iodef", "good", True), ("ingested", "iodef", "good", True),
                       ("ingested", "xarf", "unsigned", True)]
    assert rows[0].signer == signer.fingerprint and rows[1].signer == signer.fingerprint
    assert rows[0].rows == 3 and rows[1].rows == 2
    assert [r.status for r in rows[3:]] == ["held"] * 3
    assert "unknown key" in rows[3].reason
    assert "cannot decrypt" in rows[4].reason
    assert "cannot decrypt" in rows[5].reason
    with app.state.sessionmaker() as s:
        assert s.scalar(select(func.sum(IngestRun.events_stored))) == 6


def test_without_the_centres_key_an_encrypted_report_is_held_then_released(app, client, world, clock, partner,
                                                                         signer):
    """No centre key yet: held with the reason; once the key is imported, a coordinator reads it again."""
    root = Path(tempfile.mkdtemp(prefix="cwk"))
    try:
        later = Keyring(root / "later", clock)
        later.generate_centre_key("Test CERT", "cert@centre.example")
        public = later.export_public(later.centre_key().fingerprint)
        secret = str(later.gpg.export_keys(later.centre_key().fingerprint, secret=True, expect_passphrase=False))
        [row] = _ingest(app, clock, [signer.encrypt_mime(mail(iodef(2)), public)])
        assert row.status == "held" and "no OpenPGP key" in row.reason
        home = Keyring(default_home(app.state.settings), clock)
        home.import_secret_key(secret)
        from tests.conftest import sign_in

        csrf = sign_in(client, world.users["coordinator"])
        resp = client.post(f"/cooperation/reports/{row.id}/release", data={"csrf_token": csrf},
                           follow_redirects=False)
        assert resp.status_code == 303
        with app.state.sessionmaker() as s:
            again = s.get(InboundReport, row.id)
            assert (again.status, again.encrypted, again.signature, again.rows) == ("ingested", True, "good", 2)
        assert "encrypted to the centre" in client.get(f"/cooperation/reports/{row.id}").text
        home.close()
        later.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_encrypted_reports_through_a_real_imap_server(app, clock, partner, signer, centre):
    server = Dovecot()
    try:
        server.append([signer.encrypt_mime(mail(iodef(2)), centre),
                       signer.encrypt_mime(mail(iodef(1, first_ip=70)), signer.public)])
        result = poll(app.state.engine, app.state.sessionmaker, host="127.0.0.1", port=server.port, user="reports",
                      password="secret-pw", clock=clock, data_dir=app.state.settings.data_dir)
    finally:
        server.stop()
    assert (result.fetched, result.ingested, result.held) == (2, 1, 1)
    with app.state.sessionmaker() as s:
        rows = list(s.scalars(select(InboundReport).order_by(InboundReport.id)))
    assert rows[0].encrypted and rows[0].signature == "good" and rows[0].origin == "imap"
    assert "cannot decrypt" in rows[1].reason and rows[1].raw  # kept for the coordinator
