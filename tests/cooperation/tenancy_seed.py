"""Cooperation records for the tenancy walk: an assistance request (need-to-know) with an attachment,
and a partner's directory profile and agreement. Every text carries SECRET-B."""

from __future__ import annotations

from commonwatch.access.principal import SYSTEM
from commonwatch.cooperation import services as coop


def seed(session, world, clock) -> dict[str, int]:
    now = clock.now()
    coop.save_profile(session, SYSTEM, world.partner, {"kind": "national", "constituency": "SECRET-B constituency",
                                                       "channels": ["pgp-email"]})
    coop.add_agreement(session, SYSTEM, world.partner, {"title": "SECRET-B memorandum", "signed_on": "2024-01-10",
                                                         "renews_on": "2027-01-10", "scope": "SECRET-B scope"},
                       coop.local_today(now))
    req = coop.create_request(session, SYSTEM, {
        "direction": "incoming", "country": "DE", "authority": "SECRET-B authority", "legal_basis": "reciprocity",
        "kind": "preservation", "subject": "SECRET-B subject", "body": "SECRET-B body",
        "contents": {"requesting_authority": "SECRET-B"}, "concerns": [{"type": "network", "ref": "203.0.113.7"}],
    }, now)
    coop.add_attachment(session, SYSTEM, req, "secret-b.txt", b"SECRET-B attachment", now)
    from commonwatch.cooperation.models import InboundReport, PartnerMail

    report = InboundReport(digest="b" * 64, origin="api", sender="secret-b@partner.example", subject="SECRET-B report",
                           partner_org_id=world.partner, status="held", reason="SECRET-B reason", received_at=now)
    session.add(report)
    session.flush()
    session.add(PartnerMail(dedup_key=f"ack:{report.id}", kind="ack", partner_org_id=world.partner,
                            inbound_report_id=report.id, recipient="secret-b@partner.example",
                            subject="SECRET-B ack", body="SECRET-B ack body", status="sent"))
    session.flush()
    return {"request_id": req.id, "report_id": report.id}
