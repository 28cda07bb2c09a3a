"""GnuPG takes its time from commonwatch's clock: keys are made, expire and sign at the clock's
time, whatever the date on the machine (run under libfaketime a year ahead in CI)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from commonwatch.notify.pgp import inspect_public_key

# Far from any real date this suite runs on, in both directions.
PAST = datetime(2019, 3, 4, 5, 6, 7, tzinfo=UTC)
FUTURE = datetime(2031, 7, 8, 9, 10, 11, tzinfo=UTC)


def test_a_key_is_made_at_the_clocks_time_and_expires_by_it(gpg_homes, clock):
    for at in (PAST, FUTURE):
        clock.set(at)
        ring = gpg_homes(f"k{at.year}")
        fpr = ring.generate_centre_key("Alpha", "noc@alpha.example", expire="1d")
        (key,) = [k for k in ring.gpg.list_keys() if k["fingerprint"] == fpr]
        assert int(key["date"]) == int(at.timestamp())
        public = ring.export_public(fpr)

        fresh = inspect_public_key(public, now=at + timedelta(hours=23))
        assert fresh.expires_at == at + timedelta(days=1) and not fresh.expired and fresh.can_encrypt
        stale = inspect_public_key(public, now=at + timedelta(days=2))
        assert stale.expired and not stale.usable(at + timedelta(days=2))


def test_signatures_carry_the_clocks_time(gpg_homes, clock, tmp_path):
    clock.set(FUTURE)
    ring = gpg_homes("signer")
    fpr = ring.generate_centre_key("Test CERT", "cert@centre.example")
    (tmp_path / "warning.asc").write_bytes(ring.sign_detached(b"warning", fpr))
    clock.advance(timedelta(minutes=5))
    verified = ring.gpg.verify_data(str(tmp_path / "warning.asc"), b"warning")
    assert verified.valid and int(verified.sig_timestamp) == int(FUTURE.timestamp())


def test_the_keyring_reads_its_clock_at_each_run(gpg_homes, clock):
    ring = gpg_homes("moving")
    assert ring.gpg.clock is clock
    clock.set(PAST)
    assert ring.gpg.make_args([], False)[1:3] == ["--faked-system-time", f"{int(PAST.timestamp())}!"]
    clock.set(FUTURE)
    assert ring.gpg.make_args([], False)[1:3] == ["--faked-system-time", f"{int(FUTURE.timestamp())}!"]
