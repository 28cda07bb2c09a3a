"""Contacts' PGP keys are checked with real GnuPG: usable, expired, revoked, wrong material.

The keys are made a day before the tests' clock, by that clock, so they are the same keys whatever
the date today."""

import subprocess
from datetime import timedelta

import pytest

from commonwatch.notify.pgp import faked_time_option, gpg_binary
from tests.conftest import START

MADE_AT = START - timedelta(days=1)


def _gpg(home, *args, stdin: bytes | None = None) -> bytes:
    return subprocess.run([gpg_binary(), "--homedir", str(home), "--batch", "--yes", *faked_time_option(MADE_AT),
                           *args], input=stdin, capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    if gpg_binary() is None:
        pytest.fail("GnuPG (gpg) is required for these tests")
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    out = {}
    for name, expiry in (("good", "1y"), ("old", "seconds=1"), ("gone", "1y"), ("signonly", "1y")):
        _gpg(home, "--passphrase", "", "--quick-gen-key", f"{name} <{name}@alpha.example>", "ed25519", "sign", expiry)
        if name != "signonly":
            fpr = _gpg(home, "--with-colons", "--list-keys", f"{name}@alpha.example").decode()
            fpr = next(line.split(":")[9] for line in fpr.splitlines() if line.startswith("fpr"))
            _gpg(home, "--passphrase", "", "--quick-add-key", fpr, "cv25519", "encr", expiry)
        out[name] = _gpg(home, "--armor", "--export", f"{name}@alpha.example").decode()
    fpr = _gpg(home, "--with-colons", "--list-keys", "gone@alpha.example").decode()
    fpr = next(line.split(":")[9] for line in fpr.splitlines() if line.startswith("fpr"))
    # GnuPG writes a revocation certificate for every new key, guarded by a leading colon.
    revocation = home / "openpgp-revocs.d" / f"{fpr}.rev"
    text = revocation.read_text().replace(":-----BEGIN PGP", "-----BEGIN PGP")
    _gpg(home, "--import", stdin=text.encode())
    out["gone"] = _gpg(home, "--armor", "--export", "gone@alpha.example").decode()
    return out


def _add(client, world, key):
    return client.post(f"/api/v1/organisations/{world.org_a}/contacts",
                       json={"email": "pgp@alpha.example", "pgp_key": key}, headers=world.auth("coordinator"))


def test_a_usable_key_is_stored_with_its_fingerprint(client, world, keys):
    resp = _add(client, world, keys["good"])
    assert resp.status_code == 201, resp.text
    assert len(resp.json()["pgp_fingerprint"]) == 40 and resp.json()["pgp_expires_at"]


def test_expired_revoked_and_sign_only_keys_are_refused(client, world, keys):
    # The "old" key lived one second, a day before the tests' clock.
    resp = _add(client, world, keys["old"])
    assert resp.status_code == 422 and "expired" in resp.json()["detail"][0]["msg"]
    resp = _add(client, world, keys["gone"])
    assert resp.status_code == 422 and "revoked" in resp.json()["detail"][0]["msg"]
    resp = _add(client, world, keys["signonly"])
    assert resp.status_code == 422 and "cannot encrypt" in resp.json()["detail"][0]["msg"]


def test_not_a_key(client, world, keys):
    for text, reason in (("hello", "not an ASCII-armoured"),
                         ("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----",
                          "no OpenPGP public key"),
                         (keys["good"] + keys["gone"], "paste exactly one")):
        resp = _add(client, world, text)
        assert resp.status_code == 422 and resp.json()["detail"][0]["loc"][-1] == "pgp_key"
        assert reason in resp.json()["detail"][0]["msg"], resp.json()
