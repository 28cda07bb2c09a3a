"""Digests by email through a real SMTP server, signed and encrypted with real GnuPG, read back
as the recipient reads them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from commonwatch.constituency import services as registry
from commonwatch.constituency.models import Contact
from commonwatch.notify import policies
from commonwatch.notify.models import Delivery, EventWarning, LedgerEntry
from tests.notify.conftest import event_row, insert_events
from tests.notify.helpers import csv_rows, decrypt, entity_parts, parse, signed_parts, verify_detached


def _give_key(nenv, contact_id: int, keyring) -> str:
    fpr = keyring.generate_centre_key("Alpha NOC", "noc@alpha.example")
    with nenv.session() as s:
        contact = s.get(Contact, contact_id)
        registry.update_contact(s, contact, {"pgp_key": keyring.export_public(fpr), "language": "en"},
                                nenv.clock.now())
    return fpr


def test_encrypted_and_signed_digests_read_back_into_the_events(nenv, sink, gpg_homes):
    w = nenv.world
    alpha = gpg_homes("alpha")
    _give_key(nenv, w.ids["contact_a"], alpha)
    alpha.gpg.import_keys(nenv.centre.export_public(nenv.centre.centre_key().fingerprint))
    now = nenv.clock.now()
    rows_a = [event_row(w.org_a, at=now - timedelta(hours=i), ip=f"198.51.100.{i}", port=3389,
                        kind="potentially-unwanted-accessible", severity="high", identifier="open-rdp",
                        malware=None, extra={"tag": f"rdp-{i}"}) for i in range(1, 6)]
    rows_a += [event_row(w.org_a, at=now - timedelta(hours=1), ip="198.51.100.9", severity="high",
                         url="=HYPERLINK(\"http://evil.example\")")]
    rows_b = [event_row(w.org_b, at=now - timedelta(hours=2), ip="203.0.113.5", severity="critical",
                        tlp="RED", cii=True)]
    with nenv.session() as s:
        insert_events(s, rows_a + rows_b)

    report = nenv.notifier().run()
    assert report.sent == 2 and report.held == 0, report.as_dict()
    by_rcpt = {m.recipients[0]: m for m in sink.messages}
    assert set(by_rcpt) == {"noc@alpha.example", "secret-b@bravo.example"}

    # Alpha: encrypted to its key, signed by the centre; English; the CSV gives back every event.
    raw = by_rcpt["noc@alpha.example"].data
    outer = parse(raw)
    assert outer["Subject"] == "[TLP:AMBER] Early warning for Alpha Telecom: security events: 6"
    assert outer["Auto-Submitted"] == "auto-generated"
    entity, signer = decrypt(alpha, raw)
    assert signer == nenv.centre.centre_key().fingerprint
    text, files = entity_parts(entity)
    assert "Potentially unwanted accessible service" in text and "What to do:" in text
    assert "TLP:AMBER" in text and "https://cw.example/warnings" in text
    rows = csv_rows(files[f"commonwatch-{outer['X-Commonwatch-Delivery']}.csv"])
    assert {r["event.key"] for r in rows} == {r["event_key"] for r in rows_a}
    rdp = {r["source.ip"]: r for r in rows if r["classification.identifier"] == "open-rdp"}
    assert rdp["198.51.100.3"]["source.port"] == "3389" and '"rdp-3"' in rdp["198.51.100.3"]["extra"]
    # A cell that a spreadsheet would run as a formula arrives neutralised.
    assert [r["source.url"] for r in rows if r["source.url"]] == ["'=HYPERLINK(\"http://evil.example\")"]

    # Bravo has no key and encryption is not required: signed only, in Chinese, TLP:RED.
    raw_b = by_rcpt["secret-b@bravo.example"].data
    msg_b = parse(raw_b)
    assert msg_b.get_content_type() == "multipart/signed" and msg_b.get_param("micalg") == "pgp-sha256"
    assert msg_b["Subject"] == "[TLP:RED] Bravo Grid SECRET-B 预警：安全事件 1 起"
    signed, signature = signed_parts(raw_b)
    assert verify_detached(nenv.centre, signed, signature) == nenv.centre.centre_key().fingerprint
    assert verify_detached(nenv.centre, signed.replace(b"203.0.113.5", b"203.0.113.6"), signature) == ""
    text_b, files_b = entity_parts(signed)
    assert "处置建议" in text_b and "仅限指定收件人" in text_b
    assert [r["source.ip"] for r in csv_rows(next(iter(files_b.values())))] == ["203.0.113.5"]

    # Running again sends nothing more: each event went once to each recipient.
    again = nenv.notifier().run()
    assert again.sent == 0 and again.plan.warned == 0 and len(sink.messages) == 2
    with nenv.session() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 7
        assert {d.status for d in s.scalars(select(Delivery))} == {"sent"}


def test_cadence_waits_for_the_digest_and_immediate_goes_at_once(nenv, sink):
    w = nenv.world
    now = nenv.clock.now()
    with nenv.session() as s:
        policies.save_policy(s, w.org_a, {"cadence": "hourly", "immediate_severity": "critical"}, allowlist=[])
        insert_events(s, [event_row(w.org_a, at=now, ip="198.51.100.20", severity="medium", created_at=now)])
    assert nenv.notifier().run().sent == 0
    nenv.clock.advance(timedelta(minutes=59))
    assert nenv.notifier().run().sent == 0
    with nenv.session() as s:
        insert_events(s, [event_row(w.org_a, at=nenv.clock.now(), ip="198.51.100.21", severity="critical",
                                    created_at=nenv.clock.now())])
    report = nenv.notifier().run()
    # The critical event is due at once and takes the waiting one along in the same digest.
    assert report.sent == 1 and len(sink.messages) == 1
    with nenv.session() as s:
        assert s.scalar(select(Delivery.event_count)) == 2


def test_reobservations_are_counted_not_resent(nenv, sink):
    w = nenv.world
    now = nenv.clock.now()
    with nenv.session() as s:
        insert_events(s, [event_row(w.org_a, at=now - timedelta(hours=h), ip="198.51.100.30", port=23,
                                    kind="infected-system", severity="high") for h in (1, 2, 3)])
    first = nenv.notifier().run()
    assert (first.plan.warned, first.plan.repeats, first.sent) == (1, 2, 1)
    nenv.clock.advance(timedelta(days=1))
    with nenv.session() as s:
        insert_events(s, [event_row(w.org_a, at=nenv.clock.now(), ip="198.51.100.30", port=23, severity="high",
                                    feed="another-feed")])
    second = nenv.notifier().run()
    assert (second.plan.warned, second.plan.repeats, second.sent) == (0, 1, 0)
    with nenv.session() as s:
        warned = s.scalar(select(EventWarning).where(EventWarning.disposition == "warn"))
        assert s.scalar(select(func.count()).where(EventWarning.repeat_of_id == warned.id)) == 3
    # Past the window (7 days by default) the same observation is news again.
    nenv.clock.advance(timedelta(days=8))
    with nenv.session() as s:
        insert_events(s, [event_row(w.org_a, at=nenv.clock.now(), ip="198.51.100.30", port=23, severity="high")])
    assert nenv.notifier().run().sent == 1
    assert len(sink.messages) == 2


def test_partner_cert_gets_events_abroad_under_its_own_policy(nenv, sink):
    w = nenv.world
    now = nenv.clock.now()
    with nenv.session() as s:
        partner = registry.get_org(s, __import__("commonwatch.access.principal", fromlist=["SYSTEM"]).SYSTEM,
                                   w.partner)
        registry.add_contact(s, partner, {"email": "incident@cert-de.example", "language": "en"}, now)
        policies.save_policy(s, w.partner, {"min_severity": "high", "cadence": "immediate"}, allowlist=[])
        insert_events(s, [event_row(None, partner_org_id=w.partner, at=now, ip="192.0.2.10", severity="high"),
                          event_row(None, partner_org_id=w.partner, at=now, ip="192.0.2.11", severity="low")])
    report = nenv.notifier().run()
    assert report.sent == 1
    (message,) = sink.messages
    assert message.recipients == ["incident@cert-de.example"]
    _text, files = entity_parts(signed_parts(message.data)[0])
    assert [r["source.ip"] for r in csv_rows(next(iter(files.values())))] == ["192.0.2.10"]
