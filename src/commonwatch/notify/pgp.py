"""OpenPGP through GnuPG (python-gnupg): inspecting contacts' public keys.

Keys are inspected in a throw-away GnuPG home so nothing the centre did not choose to trust ever
enters its keyring.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime

import gnupg

from commonwatch.errors import Invalid
from commonwatch.i18n import _


@dataclass
class KeyInfo:
    fingerprint: str
    uids: list[str] = field(default_factory=list)
    expires_at: datetime | None = None
    revoked: bool = False
    expired: bool = False
    can_encrypt: bool = False

    def usable(self, now: datetime) -> bool:
        return (not self.revoked and self.can_encrypt
                and (self.expires_at is None or self.expires_at > now))


def gpg_binary() -> str | None:
    return shutil.which("gpg") or shutil.which("gpg2")


def inspect_public_key(armored: str, field_name: str = "pgp_key") -> KeyInfo:
    """The facts of one ASCII-armoured public key; :class:`Invalid` if it is not one."""
    text = armored.strip()
    if "-----BEGIN PGP PUBLIC KEY BLOCK-----" not in text:
        raise Invalid(field_name, _("is not an ASCII-armoured OpenPGP public key block"))
    if "PRIVATE KEY" in text:
        raise Invalid(field_name, _("is a private key; paste the public key only"))
    binary = gpg_binary()
    if binary is None:
        raise Invalid(field_name, _("cannot be checked: GnuPG (gpg) is not installed on the server"))
    with tempfile.TemporaryDirectory(prefix="cw-gpg-") as home:
        gpg = gnupg.GPG(gpgbinary=binary, gnupghome=home)
        keys = gpg.scan_keys_mem(text)
    primaries = [k for k in keys if k.get("type") == "pub"]
    if not primaries:
        raise Invalid(field_name, _("holds no OpenPGP public key that GnuPG can read"))
    if len(primaries) > 1:
        raise Invalid(field_name, _("holds {n} keys; paste exactly one").format(n=len(primaries)))
    key = primaries[0]
    expires = key.get("expires") or ""
    trust = key.get("trust") or ""
    caps = key.get("cap") or ""
    return KeyInfo(
        fingerprint=key.get("fingerprint", "").upper(),
        uids=list(key.get("uids") or []),
        expires_at=datetime.fromtimestamp(int(expires), UTC) if expires.isdigit() else None,
        revoked=trust == "r",
        expired=trust == "e",
        can_encrypt="E" in caps,
    )
