"""Email: MIME composition, PGP/MIME (RFC 3156) signing and encryption, and the two transports —
SMTP (plain, STARTTLS or TLS, with authentication) and the outbox folder used when no SMTP
server is configured (real .eml files, one per delivery).

The signed and encrypted structures are assembled byte by byte: the bytes that are signed are
exactly the bytes sent, which a MIME generator re-folding headers would not guarantee.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email import policy as email_policy
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

from commonwatch.config import Settings
from commonwatch.notify.pgp import Keyring
from commonwatch.notify.reasons import Reason

SMTP_POLICY = email_policy.SMTP
CRLF = b"\r\n"


@dataclass
class Envelope:
    sender: str
    recipient: str
    data: bytes
    signed: bool
    encrypted: bool


@dataclass
class Outcome:
    """What a transport reports: ``sent``, ``retry`` (temporary), ``dead`` (permanent) or ``held``,
    with the reason (a code the log translates, and its English text)."""

    status: str
    error: str = ""
    remote_id: str = ""
    reason: Reason | None = None

    @classmethod
    def because(cls, status: str, code: str, **args) -> Outcome:
        why = Reason(code, args)
        return cls(status, why.english(), "", why)


def content_entity(text: str, attachments: list[tuple[str, str, bytes]]) -> bytes:
    """The message content (text and attachments) as one MIME entity, CRLF, 7-bit clean."""
    inner = EmailMessage(policy=SMTP_POLICY)
    inner.set_content(text, charset="utf-8", cte="quoted-printable")
    for filename, mime, payload in attachments:
        maintype, subtype = mime.split("/", 1)
        inner.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename, cte="base64")
    raw = inner.as_bytes(policy=SMTP_POLICY)
    # Only the Content-* headers belong to the entity; MIME-Version goes on the outer message.
    head, _sep, body = raw.partition(CRLF + CRLF)
    lines = [h for h in re.split(rb"\r\n(?![ \t])", head) if not h.lower().startswith(b"mime-version:")]
    return CRLF.join(lines) + CRLF + CRLF + body.rstrip(CRLF) + CRLF


def _headers(items: list[tuple[str, str]]) -> bytes:
    """Header lines; values never carry a line break (no header injection through an org name)."""
    out = []
    for name, value in items:
        value = " ".join(value.replace("\r", " ").replace("\n", " ").split())
        if not value.isascii():
            value = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
        out.append(f"{name}: {value}\r\n".encode("ascii"))
    return b"".join(out)


def outer_headers(*, sender: str, sender_name: str, recipient: str, subject: str, message_id: str, date,
                  delivery_id: int, tlp: str) -> list[tuple[str, str]]:
    return [
        ("From", formataddr((sender_name, sender), charset="utf-8")), ("To", recipient), ("Subject", subject),
        ("Date", format_datetime(date)), ("Message-ID", message_id), ("MIME-Version", "1.0"),
        ("Auto-Submitted", "auto-generated"), ("X-Commonwatch-Delivery", str(delivery_id)),
        ("X-Commonwatch-TLP", tlp),
    ]


def _boundary() -> str:
    return "=_cw_" + secrets.token_hex(12)


def plain_message(headers: list[tuple[str, str]], entity: bytes) -> bytes:
    return _headers(headers) + entity


def signed_message(headers: list[tuple[str, str]], entity: bytes, keyring: Keyring, signer: str) -> bytes:
    """multipart/signed (RFC 3156 section 5): the entity, then a detached signature over it."""
    signed_part = entity.rstrip(CRLF)
    signature = keyring.sign_detached(signed_part, signer)
    boundary = _boundary()
    ctype = f'multipart/signed; micalg="pgp-sha256"; protocol="application/pgp-signature"; boundary="{boundary}"'
    b = boundary.encode()
    body = (b"This is an OpenPGP/MIME signed message (RFC 3156)." + CRLF
            + b"--" + b + CRLF + signed_part + CRLF
            + b"--" + b + CRLF
            + b'Content-Type: application/pgp-signature; name="signature.asc"' + CRLF
            + b"Content-Description: OpenPGP digital signature" + CRLF
            + b'Content-Disposition: attachment; filename="signature.asc"' + CRLF + CRLF
            + signature.replace(b"\r\n", b"\n").replace(b"\n", CRLF).rstrip(CRLF) + CRLF
            + b"--" + b + b"--" + CRLF)
    return _headers([*headers, ("Content-Type", ctype)]) + CRLF + body


def encrypted_message(headers: list[tuple[str, str]], entity: bytes, keyring: Keyring, recipient: str,
                      signer: str | None) -> bytes:
    """multipart/encrypted (RFC 3156 sections 4 and 6.2): the entity signed and encrypted in one
    OpenPGP message, so only the recipient can read it and can check it came from the centre."""
    armored = keyring.encrypt(entity, recipient, signer)
    boundary = _boundary()
    b = boundary.encode()
    ctype = f'multipart/encrypted; protocol="application/pgp-encrypted"; boundary="{boundary}"'
    body = (b"This is an OpenPGP/MIME encrypted message (RFC 3156)." + CRLF
            + b"--" + b + CRLF
            + b"Content-Type: application/pgp-encrypted" + CRLF
            + b"Content-Description: PGP/MIME version identification" + CRLF + CRLF
            + b"Version: 1" + CRLF + CRLF
            + b"--" + b + CRLF
            + b'Content-Type: application/octet-stream; name="encrypted.asc"' + CRLF
            + b"Content-Description: OpenPGP encrypted message" + CRLF
            + b'Content-Disposition: inline; filename="encrypted.asc"' + CRLF + CRLF
            + armored.replace(b"\r\n", b"\n").replace(b"\n", CRLF).rstrip(CRLF) + CRLF
            + b"--" + b + b"--" + CRLF)
    return _headers([*headers, ("Content-Type", ctype)]) + CRLF + body


# --- transports --------------------------------------------------------------------------------------

def _dot_stuff(data: bytes) -> bytes:
    data = re.sub(rb"(?m)^\.", b"..", data)
    return data if data.endswith(CRLF) else data + CRLF


class SmtpTransport:
    """One SMTP connection reused for a run's messages.

    The end-of-data marker is the point of no return: ``on_handoff`` runs (and the caller
    commits) just before it is sent, so a run that stops later knows the message may have been
    delivered and never sends it again on its own.
    """

    def __init__(self, settings: Settings, timeout: float = 60.0):
        self.settings = settings
        self.timeout = timeout
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context()
        if s.smtp_security == "tls":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=self.timeout, context=context)
        else:
            conn = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=self.timeout)
        # The end-of-data marker is a small write right after the message's: with Nagle's
        # algorithm it waits for the server's delayed ACK (~40 ms a message on Linux).
        if conn.sock is not None:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.ehlo()
        if s.smtp_security == "starttls":
            conn.starttls(context=context)
            conn.ehlo()
        if s.smtp_username:
            conn.login(s.smtp_username, s.smtp_password)
        return conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        self._conn = None

    @staticmethod
    def _refused(stage: str, code: int, reply: bytes) -> Outcome:
        return Outcome.because("dead" if 500 <= code < 600 else "retry", "refused", stage=stage,
                               reply=f"{code} {reply.decode('utf-8', 'replace')}".strip())

    def send(self, envelope: Envelope, on_handoff: Callable[[], None]) -> Outcome:
        try:
            if self._conn is None:
                self._conn = self._connect()
        except smtplib.SMTPAuthenticationError as exc:
            self._drop()
            return Outcome.because("retry", "auth_failed", detail=f"{exc.smtp_code} {exc.smtp_error!r}")
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            server = f"{self.settings.smtp_host}:{self.settings.smtp_port}"
            return Outcome.because("retry", "unreachable", server=server, detail=str(exc))
        conn = self._conn
        handed = False
        try:
            code, reply = conn.mail(envelope.sender)
            if code != 250:
                conn.rset()
                return self._refused("MAIL FROM", code, reply)
            code, reply = conn.rcpt(envelope.recipient)
            if code not in (250, 251):
                conn.rset()
                return self._refused("RCPT TO", code, reply)
            code, reply = conn.docmd("DATA")
            if code != 354:
                conn.rset()
                return self._refused("DATA", code, reply)
            conn.send(_dot_stuff(envelope.data))
            on_handoff()
            handed = True
            conn.send(b"." + CRLF)
            code, reply = conn.getreply()
            if code != 250:
                return self._refused("end of data", code, reply)
            return Outcome("sent", "", reply.decode("utf-8", "replace"))
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            if handed:
                return Outcome.because("held", "in_doubt_connection", detail=str(exc))
            return Outcome.because("retry", "connection_failed", detail=str(exc))

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._conn.quit()
        self._conn = None


class OutboxTransport:
    """Writes each message to ``<data dir>/notify/outbox/<delivery id>.eml`` (atomically).

    Used when no SMTP server is configured, so a demo or an air-gapped site still produces the
    real messages; another tool (or a person) can pick them up from there.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def send(self, envelope: Envelope, on_handoff: Callable[[], None], *, name: str) -> Outcome:
        target = self.folder / f"{name}.eml"
        tmp = target.with_suffix(".eml.tmp")
        tmp.write_bytes(envelope.data)
        on_handoff()
        os.replace(tmp, target)
        return Outcome("sent", "", str(target))

    def close(self) -> None:
        return None
