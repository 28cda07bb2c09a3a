"""Partner reports as they arrive: IODEF v2 JSON, XARF v4, ARF and plain-text mails, signed with a
real GnuPG key or not, and a Dovecot IMAP server of the test's own on a loopback port."""

from __future__ import annotations

import email.policy
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest

from commonwatch.notify.pgp import faked_time_option, gpg_binary
from tests.conftest import START

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
PARTNER_EMAIL = "reports@cert-partner.example"


def iodef(n: int = 10, first_ip: int = 1, ident: str | None = None) -> dict:
    nodes = [{"Address": [{"value": f"198.51.100.{first_ip + i}", "category": "ipv4-addr"}]} for i in range(n)]
    return {"IODEF-Document": {"version": "2.0", "lang": "en", "Incident": [{
        "purpose": "mitigation", "IncidentID": {"id": ident or str(uuid.uuid4()), "name": "cert-partner.example"},
        "ReportTime": "2026-11-24T08:00:00Z", "DetectTime": "2026-11-24T07:30:00Z",
        "Assessment": [{"Impact": [{"type": "malware"}]}],
        "EventData": [{"Flow": [{"System": [{"category": "source", "Node": node}]}]} for node in nodes]}]}}


def xarf(ip: str = "198.51.100.200") -> dict:
    return {"xarf_version": "4.0.0", "report_id": str(uuid.uuid4()), "timestamp": "2026-11-24T09:00:00Z",
            "reporter": {"org": "CERT Partner", "contact": PARTNER_EMAIL, "domain": "cert-partner.example"},
            "sender": {"org": "CERT Partner", "contact": PARTNER_EMAIL, "domain": "cert-partner.example"},
            "source_identifier": ip, "category": "connection", "type": "ddos", "evidence_source": "honeypot"}


def mail(body: dict | str, *, sender: str = PARTNER_EMAIL, subject: str = "Report",
         filename: str = "report.json") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "incoming@centre.example", subject
    msg["Message-ID"] = f"<{uuid.uuid4()}@cert-partner.example>"
    msg["Date"] = "Tue, 24 Nov 2026 09:30:00 +0000"
    if isinstance(body, str):
        msg.set_content(body)
    else:
        msg.set_content("Report attached.")
        msg.add_attachment(json.dumps(body).encode(), maintype="application", subtype="json", filename=filename)
    return msg


def arf(ip: str = "198.51.100.77", *, drop: str | None = None) -> EmailMessage:
    fields = {"Feedback-Type": "abuse", "User-Agent": "PartnerFBL/1.0", "Version": "1", "Source-IP": ip,
              "Arrival-Date": "Tue, 24 Nov 2026 08:00:00 +0000"}
    if drop:
        fields.pop(drop)
    report = "\r\n".join(f"{k}: {v}" for k, v in fields.items()) + "\r\n"
    raw = (f"From: {PARTNER_EMAIL}\r\nTo: incoming@centre.example\r\nSubject: FBL\r\nMIME-Version: 1.0\r\n"
           f"Message-ID: <{uuid.uuid4()}@cert-partner.example>\r\nDate: Tue, 24 Nov 2026 09:30:00 +0000\r\n"
           'Content-Type: multipart/report; report-type=feedback-report; boundary="b1"\r\n\r\n'
           "--b1\r\nContent-Type: text/plain\r\n\r\nThis is a spam report.\r\n"
           f"--b1\r\nContent-Type: message/feedback-report\r\n\r\n{report}"
           "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: spammer@example.net\r\n--b1--\r\n")
    return email.message_from_bytes(raw.encode(), policy=email.policy.default)


def as_bytes(msg: EmailMessage) -> bytes:
    return msg.as_bytes(policy=email.policy.SMTP)


class Signer:
    """A real GnuPG key made a day before the tests' clock, and PGP/MIME (RFC 3156) signing with it."""

    def __init__(self, home: Path, uid: str):
        self.home = home
        home.chmod(0o700)
        self._gpg("--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "2y")
        colons = self._gpg("--with-colons", "--list-keys").decode()
        self.fingerprint = next(line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr"))
        self._gpg("--passphrase", "", "--quick-add-key", self.fingerprint, "cv25519", "encr", "2y")
        self.public = self._gpg("--armor", "--export", self.fingerprint).decode()

    def _gpg(self, *args, stdin: bytes | None = None, at=None) -> bytes:
        at = at or START - __import__("datetime").timedelta(days=1)
        done = subprocess.run([gpg_binary(), "--homedir", str(self.home), "--batch", "--yes",
                               *faked_time_option(at), *args], input=stdin, capture_output=True)
        if done.returncode:
            raise RuntimeError(f"gpg {' '.join(args[:3])}: {done.stderr.decode()[-500:]}")
        return done.stdout

    def clearsign(self, text: str) -> str:
        """Inline PGP: the text as an RFC 4880 clearsigned message."""
        return self._gpg("--clearsign", "--digest-algo", "SHA256", "-u", self.fingerprint, stdin=text.encode()).decode()

    def armour_sign(self, text: str) -> str:
        """Inline PGP: the text inside an ASCII-armoured signed OpenPGP message."""
        return self._gpg("--armor", "--sign", "-u", self.fingerprint, stdin=text.encode()).decode()

    def sign(self, msg: EmailMessage, *, tamper: bool = False) -> bytes:
        """The mail as multipart/signed: its content (without the envelope headers) is the signed part."""
        keep = ("From", "To", "Subject", "Message-ID", "Date")
        head = "".join(f"{k}: {msg[k]}\r\n" for k in keep if msg[k])
        for k in keep:
            del msg[k]
        del msg["MIME-Version"]
        inner = msg.as_bytes(policy=email.policy.SMTP)
        sig = self._gpg("--armor", "--detach-sign", "-u", self.fingerprint, stdin=inner)
        if tamper:
            inner = inner.replace(b"Report attached.", b"Report attached!")
        return (head + "MIME-Version: 1.0\r\nContent-Type: multipart/signed; micalg=pgp-sha256; "
                'protocol="application/pgp-signature"; boundary="sig-b"\r\n\r\n--sig-b\r\n').encode() + inner + (
            b"\r\n--sig-b\r\nContent-Type: application/pgp-signature; name=signature.asc\r\n\r\n" + sig
            + b"\r\n--sig-b--\r\n")


    def encrypt(self, data: bytes, to_public: str, *, sign: bool = True) -> bytes:
        """``data`` as an ASCII-armoured OpenPGP message encrypted to the key ``to_public`` (and signed
        by this key in the same message, RFC 3156 section 6.2, when ``sign``)."""
        later = START + __import__("datetime").timedelta(minutes=1)  # the centre's key may be made at START
        self._gpg("--import", stdin=to_public.encode(), at=later)
        colons = self._gpg("--with-colons", "--import-options", "show-only", "--import",
                           stdin=to_public.encode()).decode()
        to = next(line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr"))
        args = ["--armor", "--trust-model", "always", "--encrypt", "-r", to]
        if sign:
            args += ["--sign", "-u", self.fingerprint]
        return self._gpg(*args, stdin=data, at=later)

    def encrypt_mime(self, msg: EmailMessage, to_public: str, *, sign: bool = True,
                     signed_inside: bool = False) -> bytes:
        """The mail as PGP/MIME ``multipart/encrypted`` (RFC 3156 section 4) to ``to_public``: its content
        encrypted and signed in one message, or (``signed_inside``) first made ``multipart/signed`` and
        then encrypted (section 6.1)."""
        keep = ("From", "To", "Subject", "Message-ID", "Date")
        head = "".join(f"{k}: {msg[k]}\r\n" for k in keep if msg[k])
        if signed_inside:
            signed = self.sign(msg)
            inner = signed.split(b"MIME-Version: 1.0\r\n", 1)[1]
            sign = False
        else:
            for k in keep:
                del msg[k]
            del msg["MIME-Version"]
            inner = msg.as_bytes(policy=email.policy.SMTP)
        armoured = self.encrypt(inner, to_public, sign=sign)
        return (head + "MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; "
                'protocol="application/pgp-encrypted"; boundary="enc-b"\r\n\r\n--enc-b\r\n'
                "Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--enc-b\r\n"
                "Content-Type: application/octet-stream; name=encrypted.asc\r\n\r\n").encode() + armoured + (
            b"\r\n--enc-b--\r\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dovecot:
    """Dovecot in the foreground with its own configuration and folders; stopped by its PID."""

    def __init__(self):
        if DOVECOT is None:
            pytest.fail("Dovecot is required for these tests (apt-get install dovecot-imapd)")
        # Its own folder directly under /tmp: the mail processes run as nobody, who cannot enter
        # pytest's private tmp folders.
        root = Path(tempfile.mkdtemp(prefix="cw-dovecot-"))
        root.chmod(0o755)
        self.root, self.user, self.password = root, "reports", "secret-pw"
        (root / "mail").mkdir()
        (root / "run").mkdir()
        os.chown(root / "mail", 65534, 65534)
        (root / "users").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        self.port = free_port()
        uid = gid = 65534
        (root / "dovecot.conf").write_text(f"""
base_dir = {root}/run
state_dir = {root}/run
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 0
default_internal_user = dovecot
default_login_user = dovenull
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
""")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(root / "dovecot.conf")], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"dovecot did not start: {self.proc.stderr.read().decode()[:500]}") from None
                time.sleep(0.05)

    def append(self, raws: list[bytes]) -> None:
        import imaplib

        conn = imaplib.IMAP4("127.0.0.1", self.port)
        conn.login(self.user, self.password)
        for raw in raws:
            conn.append("INBOX", None, None, raw)
        conn.logout()

    def stop(self) -> None:
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)
