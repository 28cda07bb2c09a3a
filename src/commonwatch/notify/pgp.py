"""OpenPGP through GnuPG (python-gnupg): inspecting contacts' public keys, and the centre's keyring
that signs and encrypts warnings.

Pasted keys are inspected in a throw-away GnuPG home so nothing the centre did not choose to trust
ever enters its keyring; only keys saved on a contact are imported into the centre's home.

Every gpg run is told the time by commonwatch's clock (``--faked-system-time``): whether a key has
expired, when a key was created and the time in a signature are commonwatch's decisions, so they
follow the same clock as the deadlines and digests around them, in production and in tests alike.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gnupg

from commonwatch.clock import Clock, FrozenClock, SystemClock
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


def inspect_public_key(armored: str, field_name: str = "pgp_key", *, now: datetime) -> KeyInfo:
    """The facts of one ASCII-armoured public key as of ``now``; :class:`Invalid` if it is not one."""
    text = armored.strip()
    if "-----BEGIN PGP PUBLIC KEY BLOCK-----" not in text:
        raise Invalid(field_name, _("is not an ASCII-armoured OpenPGP public key block"))
    if "PRIVATE KEY" in text:
        raise Invalid(field_name, _("is a private key; paste the public key only"))
    binary = gpg_binary()
    if binary is None:
        raise Invalid(field_name, _("cannot be checked: GnuPG (gpg) is not installed on the server"))
    with tempfile.TemporaryDirectory(prefix="cw-gpg-") as home:
        gpg = ClockedGPG(FrozenClock(now), gpgbinary=binary, gnupghome=home)
        keys = gpg.scan_keys_mem(text)
    primaries = [k for k in keys if k.get("type") == "pub"]
    if not primaries:
        raise Invalid(field_name, _("holds no OpenPGP public key that GnuPG can read"))
    if len(primaries) > 1:
        raise Invalid(field_name, _("holds {n} keys; paste exactly one").format(n=len(primaries)))
    return _key_info(primaries[0])


def faked_time_option(at: datetime) -> list[str]:
    """gpg's option that makes ``at`` its current time, frozen for the run."""
    return ["--faked-system-time", f"{int(at.timestamp())}!"]


class ClockedGPG(gnupg.GPG):
    """python-gnupg whose every gpg run takes its time from a commonwatch clock.

    The time is read per run (not set once in ``options``), so a long-lived handle follows a clock
    that moves, and threads sharing the handle do not race on a shared option."""

    def __init__(self, clock: Clock, **kwargs):
        self.clock = clock  # before super().__init__, which already runs gpg --version
        super().__init__(**kwargs)

    def make_args(self, args, passphrase):
        cmd = super().make_args(args, passphrase)
        return [cmd[0], *faked_time_option(self.clock.now()), *cmd[1:]]

    def verify_detached(self, data: bytes, signature: bytes) -> tuple[Any, str]:
        """GnuPG's verdict on a detached ``signature`` over ``data`` and the signer's primary-key
        fingerprint (upper case, empty if none). gpg reads a detached signature only from a file,
        so it is written into this handle's own home and removed after."""
        fd, sig_path = tempfile.mkstemp(dir=self.gnupghome, suffix=".sig")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(signature)
            result = self.verify_data(sig_path, data)
        finally:
            os.unlink(sig_path)
        return result, (getattr(result, "pubkey_fingerprint", None) or result.fingerprint or "").upper()


class PgpError(Exception):
    """GnuPG refused an operation; the message says what GnuPG reported."""


def default_home(settings) -> Path:
    """The centre's GnuPG home: ``settings.gnupg_home`` or ``<data dir>/gnupg``."""
    return Path(settings.gnupg_home) if settings.gnupg_home else settings.data_dir / "gnupg"


def _key_info(key: dict) -> KeyInfo:
    expires = key.get("expires") or ""
    trust = key.get("trust") or ""
    caps = key.get("cap") or ""
    return KeyInfo(
        fingerprint=(key.get("fingerprint") or "").upper(),
        uids=list(key.get("uids") or []),
        expires_at=datetime.fromtimestamp(int(expires), UTC) if expires.isdigit() else None,
        revoked=trust == "r",
        expired=trust == "e",
        can_encrypt="E" in caps,
    )


class Keyring:
    """The centre's GnuPG home: its own secret key (signing, protecting stored secrets) and the
    public keys of contacts it chose to encrypt to (imported from the registry, addressed by the
    fingerprint recorded on the contact, so a stale or foreign key is never used)."""

    def __init__(self, home: Path, clock: Clock | None = None):
        binary = gpg_binary()
        if binary is None:
            raise PgpError("GnuPG (gpg) is not installed; install the Debian package gnupg")
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        os.chmod(self.home, 0o700)
        self.gpg = ClockedGPG(clock or SystemClock(), gpgbinary=binary, gnupghome=str(self.home))
        self.gpg.encoding = "utf-8"
        self._public: dict[str, KeyInfo] | None = None
        self._centre: KeyInfo | None = None
        #: fingerprint -> hash of the key text imported by this handle (so a run imports each once).
        self._imported: dict[str, str] = {}

    # --- the centre's key ---------------------------------------------------------------------

    def centre_key(self) -> KeyInfo | None:
        """The secret key the centre signs with (the first one, if several were imported)."""
        if self._centre is None:
            keys = self.gpg.list_keys(secret=True)
            self._centre = _key_info(keys[0]) if keys else None
        return self._centre

    def generate_centre_key(self, name: str, email: str, expire: str = "2y") -> str:
        """A new Ed25519 signing key with a Curve25519 encryption subkey; returns its fingerprint.

        The key has no passphrase: the server signs unattended, so the key is protected by the
        file permissions of the GnuPG home (0700) instead.
        """
        params = self.gpg.gen_key_input(key_type="EDDSA", key_curve="ed25519", key_usage="sign",
                                        subkey_type="ECDH", subkey_curve="cv25519", subkey_usage="encrypt",
                                        name_real=name, name_email=email, expire_date=expire,
                                        no_protection=True)
        result = self.gpg.gen_key(params)
        self._centre = None
        if not result.fingerprint:
            raise PgpError(f"key generation failed: {result.stderr.strip()[-300:]}")
        return str(result.fingerprint).upper()

    def import_secret_key(self, armored: str) -> str:
        """Import the centre's secret key (ASCII-armoured, without passphrase); returns its fingerprint."""
        if "PRIVATE KEY BLOCK" not in armored:
            raise PgpError("not an ASCII-armoured OpenPGP private key block")
        result = self.gpg.import_keys(armored)
        self._centre = None
        secret = {_key_info(k).fingerprint for k in self.gpg.list_keys(secret=True)}
        imported = [str(f).upper() for f in result.fingerprints if str(f).upper() in secret]
        if not imported:
            raise PgpError(f"no secret key was imported: {result.stderr.strip()[-300:]}")
        return imported[0]

    def export_public(self, fingerprint: str) -> str:
        return str(self.gpg.export_keys(fingerprint))

    # --- contacts' public keys -------------------------------------------------------------------

    def public_keys(self) -> dict[str, KeyInfo]:
        if self._public is None:
            self._public = {_key_info(k).fingerprint: _key_info(k) for k in self.gpg.list_keys()}
        return self._public

    def ensure_public_key(self, fingerprint: str, armored: str) -> KeyInfo | None:
        """Make sure the contact's key (as the registry holds it now) is in the keyring; its state."""
        fingerprint = fingerprint.upper()
        digest = hashlib.sha256(armored.strip().encode()).hexdigest()
        if armored.strip() and self._imported.get(fingerprint) != digest:
            # Import the registry's copy once per handle: it may carry news (a revocation, a new expiry).
            self.gpg.import_keys(armored)
            self._imported[fingerprint] = digest
            self._public = None
        return self.public_keys().get(fingerprint)

    def imported(self) -> dict[str, str]:
        """The keys this handle imported: fingerprint -> digest of the armoured copy."""
        return dict(self._imported)

    def already_imported(self, imported: dict[str, str]) -> None:
        """Treat ``imported`` (another handle's :meth:`imported`, same GnuPG home) as imported here."""
        self._imported.update(imported)

    # --- signing and encrypting ----------------------------------------------------------------

    def sign_detached(self, data: bytes, signer: str) -> bytes:
        result = self.gpg.sign(data, keyid=signer, detach=True, binary=False,
                               extra_args=["--digest-algo", "SHA256"])
        if not result.data:
            raise PgpError(f"signing failed: {result.status or result.stderr.strip()[-300:]}")
        return bytes(result.data)

    def encrypt(self, data: bytes, recipient: str, signer: str | None) -> bytes:
        """OpenPGP-encrypt ``data`` to ``recipient`` (a fingerprint), signed by ``signer`` if given."""
        result = self.gpg.encrypt(data, [recipient], sign=signer or None, always_trust=True, armor=True,
                                  extra_args=["--digest-algo", "SHA256"])
        if not result.ok:
            raise PgpError(f"encryption to {recipient} failed: {result.status or result.stderr.strip()[-300:]}")
        return bytes(result.data)

    def decrypt(self, data: bytes | str) -> bytes:
        result = self.gpg.decrypt(data)
        if not result.ok:
            raise PgpError(f"decryption failed: {result.status}")
        return bytes(result.data)

    def close(self) -> None:
        """Stop the gpg-agent this home started (tests and short-lived homes)."""
        gpgconf = shutil.which("gpgconf")
        if gpgconf:
            subprocess.run([gpgconf, "--homedir", str(self.home), "--kill", "gpg-agent"],
                           check=False, capture_output=True, timeout=30)
