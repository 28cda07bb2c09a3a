"""Reading what commonwatch sent, as a recipient would: split PGP/MIME, decrypt, verify, parse CSV."""

from __future__ import annotations

import csv
import email
import io
import re
from email import policy

from commonwatch.notify.pgp import Keyring


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=policy.default)


def signed_parts(raw: bytes) -> tuple[bytes, bytes]:
    """(the signed entity exactly as sent, the armoured signature) of a multipart/signed message."""
    head, _sep, body = raw.partition(b"\r\n\r\n")
    boundary = re.search(rb'boundary="([^"]+)"', head).group(1)
    _preamble, first, second, _end = body.split(b"--" + boundary)
    # Each part sits between the CRLF that ends a delimiter line and the CRLF that starts the next.
    signature = second[2:-2].split(b"\r\n\r\n", 1)[1]
    return first[2:-2], signature


def verify_detached(keyring: Keyring, data: bytes, signature: bytes) -> str:
    """The signer's fingerprint if the signature is good, else ''."""
    import os
    import tempfile

    with tempfile.NamedTemporaryFile(delete=False, suffix=".asc") as fh:
        fh.write(signature)
        sig_path = fh.name
    try:
        verified = keyring.gpg.verify_data(sig_path, data)
    finally:
        os.unlink(sig_path)
    return verified.fingerprint.upper() if verified.valid else ""


def decrypt(keyring: Keyring, raw: bytes) -> tuple[bytes, str]:
    """(the decrypted inner entity, the signer's fingerprint if the inner signature is good)."""
    msg = parse(raw)
    assert msg.get_content_type() == "multipart/encrypted"
    assert msg.get_param("protocol") == "application/pgp-encrypted"
    control, payload = msg.get_payload()
    assert control.get_content_type() == "application/pgp-encrypted"
    assert b"Version: 1" in control.get_payload(decode=True)
    armored = payload.get_payload(decode=True)
    result = keyring.gpg.decrypt(armored)
    assert result.ok, result.status
    return bytes(result.data), (result.fingerprint or "").upper() if result.valid else ""


def entity_parts(entity: bytes) -> tuple[str, dict[str, bytes]]:
    """(the plain-text body, {attachment filename: bytes}) of the content entity."""
    msg = parse(b"MIME-Version: 1.0\r\n" + entity)
    text, files = "", {}
    for part in msg.walk():
        if part.is_multipart():
            continue
        name = part.get_filename()
        if name:
            files[name] = part.get_payload(decode=True)
        elif part.get_content_type() == "text/plain":
            text = part.get_content()
    return text, files


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
