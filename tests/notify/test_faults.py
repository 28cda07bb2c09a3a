"""Faults: the SMTP server refusing or down for a while, a run killed at the worst moment, keys
that cannot be used, bad addresses. Nothing is lost, nothing is sent twice, every problem is
recorded with its reason."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from commonwatch.access.principal import SYSTEM
from commonwatch.clock import FrozenClock
from commonwatch.constituency import services as registry
from commonwatch.constituency.models import Contact
from commonwatch.i18n import use_language
from commonwatch.notify import policies, services
from commonwatch.notify.models import Delivery
from tests.notify.conftest import event_row, insert_events
from tests.notify.helpers import csv_rows, entity_parts, signed_parts


def _keys_in(sink) -> list[str]:
    keys = []
    for m in sink.messages:
        _text, files = entity_parts(signed_parts(m.data)[0])
        keys += [r["event.key"] for f, data in files.items() if f.endswith(".csv") for r in csv_rows(data)]
    return keys


def _deliveries(nenv) -> list[Delivery]:
    with nenv.session() as s:
        return list(s.scalars(select(Delivery).order_by(Delivery.id)))


def test_refusals_and_an_outage_lose_nothing_and_send_nothing_twice(nenv, sink):
    w = nenv.world
    now = nenv.clock.now()
    first = [event_row(w.org_a, at=now, ip=f"198.51.100.{i}", severity="high") for i in range(1, 4)]
    with nenv.session() as s:
        insert_events(s, first)
    sink.handler.refuse = 2
    report = nenv.notifier().run()
    assert report.retry == 1 and not sink.messages
    (d,) = _deliveries(nenv)
    assert d.status == "retry" and d.last_error.startswith("end of data: 451") and d.next_attempt_at > now
    assert nenv.notifier().run().sent == 0  # not due yet: backoff
    nenv.clock.advance(timedelta(seconds=61))
    assert nenv.notifier().run().retry == 1
    nenv.clock.advance(timedelta(seconds=301))
    assert nenv.notifier().run().sent == 1
    (d,) = _deliveries(nenv)
    assert d.status == "sent" and d.attempts == 3 and [h["outcome"] for h in d.history] == ["retry", "retry", "sent"]

    # The server goes away; new events wait; the server comes back on the same port.
    sink.stop()
    second = [event_row(w.org_a, at=nenv.clock.now(), ip=f"198.51.100.{i}", severity="high") for i in range(10, 12)]
    with nenv.session() as s:
        insert_events(s, second)
    assert nenv.notifier().run().retry == 1
    d2 = _deliveries(nenv)[-1]
    assert d2.status == "retry" and "cannot reach 127.0.0.1" in d2.last_error
    sink.start()
    nenv.clock.advance(timedelta(seconds=61))
    assert nenv.notifier().run().sent == 1
    nenv.clock.advance(timedelta(hours=2))
    assert nenv.notifier().run().sent == 0
    keys = _keys_in(sink)
    assert sorted(keys) == sorted(r["event_key"] for r in first + second)  # each exactly once


def test_retries_end_in_a_dead_letter_that_the_centre_resends(nenv, sink):
    w = nenv.world
    with nenv.session() as s:
        insert_events(s, [event_row(w.org_a, at=nenv.clock.now(), severity="high")])
    sink.handler.refuse = 99
    for _ in range(4):
        nenv.notifier().run()
        nenv.clock.advance(timedelta(hours=1))
    (d,) = _deliveries(nenv)
    assert d.status == "dead" and d.attempts == 4 and "gave up after 4 attempts" in d.last_error
    assert not sink.messages
    sink.handler.refuse = 0
    with nenv.session() as s:
        assert "will be sent again" in services.resend(s, SYSTEM, d.id, nenv.clock.now())
    assert nenv.notifier().run().sent == 1 and len(sink.messages) == 1
    (again,) = _deliveries(nenv)
    assert again.id == d.id and again.status == "sent"
    assert sink.messages[0].data.count(again.message_id.encode()) == 1


def test_a_permanent_refusal_is_a_dead_letter_at_once(nenv, sink):
    w = nenv.world
    with nenv.session() as s:
        s.execute(update(Contact).where(Contact.id == w.ids["contact_a"]).values(email="bounce@alpha.example"))
        insert_events(s, [event_row(w.org_a, at=nenv.clock.now(), severity="high")])
    assert nenv.notifier().run().dead == 1
    (d,) = _deliveries(nenv)
    assert d.status == "dead" and d.last_error.startswith("RCPT TO: 550")


def test_unusable_keys_and_addresses_are_held_with_the_reason(nenv, sink, gpg_homes):
    w = nenv.world
    now = nenv.clock.now()
    with nenv.session() as s:
        policies.save_policy(s, w.org_a, {"encryption_required": True}, allowlist=[])
        insert_events(s, [event_row(w.org_a, at=now, severity="high")])
    report = nenv.notifier().run()
    assert report.held == 1 and not sink.messages
    (d,) = _deliveries(nenv)
    assert d.last_error == "encryption is required but noc@alpha.example has no OpenPGP key"
    with use_language("zh-CN"):  # the log shows the reason in the viewer's language
        assert services.reason_text(d) == "要求加密，但 noc@alpha.example 没有 OpenPGP 密钥"

    # A key that expires tomorrow, seen the day after.
    alpha = gpg_homes("alpha")
    fpr = alpha.generate_centre_key("Alpha", "noc@alpha.example", expire="1d")
    with nenv.session() as s:
        registry.update_contact(s, s.get(Contact, w.ids["contact_a"]), {"pgp_key": alpha.export_public(fpr)}, now)
        services.resend(s, SYSTEM, d.id, now)
    nenv.clock.advance(timedelta(days=2))
    assert nenv.notifier().run().held == 1
    assert "expired on" in _deliveries(nenv)[0].last_error and fpr in _deliveries(nenv)[0].last_error

    # A revoked key (GnuPG's own revocation certificate, imported as a keyserver refresh would).
    revoked = gpg_homes("revoked")
    rfpr = revoked.generate_centre_key("Alpha", "noc@alpha.example")
    cert = (revoked.home / "openpgp-revocs.d" / f"{rfpr}.rev").read_text()
    revoked.gpg.import_keys(cert.replace(":-----BEGIN", "-----BEGIN"))
    with nenv.session() as s:
        s.execute(update(Contact).where(Contact.id == w.ids["contact_a"]).values(
            pgp_key=revoked.export_public(rfpr), pgp_fingerprint=rfpr, pgp_expires_at=None))
        services.resend(s, SYSTEM, d.id, nenv.clock.now())
    assert nenv.notifier().run().held == 1
    assert _deliveries(nenv)[0].last_error == f"the OpenPGP key {rfpr} of noc@alpha.example is revoked"

    # A malformed address (stored before validation existed, say).
    with nenv.session() as s:
        s.execute(update(Contact).where(Contact.id == w.ids["contact_a"]).values(email="noc at alpha"))
        policies.save_policy(s, w.org_a, {"encryption_required": False}, allowlist=[])
        services.resend(s, SYSTEM, d.id, nenv.clock.now())
    assert nenv.notifier().run().held == 1
    assert _deliveries(nenv)[0].last_error.startswith("malformed address 'noc at alpha'")
    assert not sink.messages


def test_an_organisation_without_contacts_is_held_and_rerouted_once_it_has_one(nenv, sink):
    w = nenv.world
    with nenv.session() as s:
        s.execute(update(Contact).where(Contact.org_id == w.org_a).values(active=False))
        insert_events(s, [event_row(w.org_a, at=nenv.clock.now(), severity="high")])
    assert nenv.notifier().run().sent == 0
    (d,) = _deliveries(nenv)
    assert d.status == "held" and "no active contact" in d.last_error
    with nenv.session() as s:
        s.execute(update(Contact).where(Contact.org_id == w.org_a).values(active=True))
        assert "1 warnings queued" in services.resend(s, SYSTEM, d.id, nenv.clock.now())
    assert nenv.notifier().run().sent == 1 and sink.messages[0].recipients == ["noc@alpha.example"]


def test_a_run_stopped_before_the_handover_is_retried(nenv, sink):
    w = nenv.world
    with nenv.session() as s:
        insert_events(s, [event_row(w.org_a, at=nenv.clock.now(), severity="high")])
    nenv.notifier().run(send=False)
    with nenv.session() as s:  # what a run leaves behind when it dies while preparing the message
        s.execute(update(Delivery).values(status="sending", attempts=1,
                                          lease_until=nenv.clock.now() + timedelta(seconds=600)))
    assert nenv.notifier().run().sent == 0  # the lease still holds
    nenv.clock.advance(timedelta(seconds=601))
    report = nenv.notifier().run()
    assert report.recovered == 1 and report.sent == 1 and len(sink.messages) == 1


def test_a_run_killed_after_the_handover_is_held_in_doubt_not_resent(nenv, sink, tmp_path):
    """A real process is killed while the server holds its end-of-data reply."""
    w = nenv.world
    real_now = datetime.now(UTC)
    with nenv.session() as s:
        insert_events(s, [event_row(w.org_a, at=real_now, severity="high", created_at=real_now)])
    sink.handler.holding = True
    env = {**os.environ, "COMMONWATCH_DATABASE_URL": nenv.settings.database_url,
           "COMMONWATCH_DATA_DIR": str(nenv.settings.data_dir), "COMMONWATCH_SMTP_HOST": "127.0.0.1",
           "COMMONWATCH_SMTP_PORT": str(sink.port), "COMMONWATCH_SMTP_SECURITY": "none",
           "COMMONWATCH_MAIL_FROM": "cert@centre.example", "COMMONWATCH_GNUPG_HOME": str(nenv.centre.home),
           "COMMONWATCH_LOG_FORMAT": "text"}
    proc = subprocess.Popen([sys.executable, "-c", "from commonwatch.cli import main; main()", "notify", "run"],
                            env=env, cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert sink.handler.entered.wait(120), proc.stderr.read().decode() if proc.poll() is not None else "no"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    sink.handler.hold.set()
    assert len(sink.messages) == 1  # the server has the message; the dead run never heard so
    (d,) = _deliveries(nenv)
    assert d.status == "sending" and d.handoff_at is not None

    later = FrozenClock(real_now + timedelta(seconds=nenv.nset.lease_seconds + 60))
    nenv.clock = later
    report = nenv.notifier().run()
    assert report.recovered == 1 and report.sent == 0
    (d,) = _deliveries(nenv)
    assert d.status == "held" and d.last_error.startswith("in doubt:") and d.message_id in d.last_error
    assert nenv.notifier().run().sent == 0 and len(sink.messages) == 1
    with nenv.session() as s:
        services.mark_sent(s, SYSTEM, d.id, later.now(), "seen in the mail log")
    assert _deliveries(nenv)[0].status == "sent"
