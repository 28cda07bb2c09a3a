"""Demo: the partner CERTs' directory profiles and memoranda (one coming up for renewal), a third
partner in Asia-Pacific, and two assistance requests assigned to the demo coordinator. Idempotent."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from commonwatch.access.principal import SYSTEM
from commonwatch.constituency.models import Organisation
from commonwatch.cooperation import services as coop
from commonwatch.cooperation.models import AssistanceRequest, PartnerProfile

PROFILES = {
    "partner_de": {"kind": "national", "short_name": "CERT-DE", "first_member": True, "ti_level": "certified",
                   "constituency": "Federal administration and operators of critical infrastructure",
                   "hours": "24/7", "timezone": "Europe/Berlin", "emergency_contact": "+49 30 0000 0000",
                   "rfc2350_url": "https://cert-de.example/rfc2350.txt", "channels": ["pgp-email", "misp", "iodef"]},
    "partner_sg": {"kind": "national", "short_name": "CERT-SG", "first_member": True, "apcert_member": True,
                   "constituency": "Singapore's networks", "hours": "Mon-Fri 09:00-18:00", "timezone": "Asia/Singapore",
                   "emergency_contact": "+65 0000 0000", "channels": ["pgp-email", "taxii", "xarf"]},
}


def load(ctx) -> None:
    session = ctx.session
    today = coop.local_today(ctx.clock.now())
    session.info["actor"] = "demo"
    for key, data in PROFILES.items():
        org = ctx.orgs.get(key)
        if org is None or session.scalar(select(PartnerProfile.id).where(PartnerProfile.org_id == org.id)):
            continue
        coop.save_profile(session, SYSTEM, org.id, data)
        coop.add_agreement(session, SYSTEM, org.id, {
            "title": "Memorandum of understanding on incident exchange", "signed_on": (today - timedelta(days=700)),
            "scope": "Incident and indicator exchange, points of contact",
            "renews_on": today + timedelta(days=30 if key == "partner_de" else 400)}, today)
    if not session.scalar(select(Organisation.id).where(Organisation.name == "CERT Demo Japan")):
        jp = coop.create_partner(session, SYSTEM, {"name": "CERT Demo Japan", "name_local": "日本演示 CERT",
                                                   "country": "JP", "region": "Asia-Pacific", "kind": "national",
                                                   "apcert_member": True, "first_member": True,
                                                   "channels": ["pgp-email", "iodef"]})
        coop.add_agreement(session, SYSTEM, jp.id, {"title": "APCERT liaison note",
                                                     "signed_on": today - timedelta(days=100)}, today)
    coop.run_renewal_reminders(session, today, ctx.settings.data_dir)
    if session.scalar(select(AssistanceRequest.id).limit(1)):
        return
    coordinator = ctx.users.get("coordinator")
    assignees = [coordinator.id] if coordinator is not None else []
    now = ctx.clock.now()
    de = ctx.orgs.get("partner_de")
    coop.create_request(session, SYSTEM, {
        "direction": "incoming", "country": "DE", "authority": "Demo federal criminal police, cybercrime unit",
        "partner_org_id": de.id if de else None, "legal_basis": "preservation_request", "kind": "preservation",
        "subject": "Preserve connection logs of a botnet controller", "body":
        "Please preserve the connection logs of 203.0.113.45 from 1 to 20 November.",
        "contents": {"requesting_authority": "Demo federal criminal police", "offence_summary": "Botnet control",
                     "data_and_relation": "Connection logs of the controller", "necessity": "Logs roll over",
                     "mla_to_follow": "Yes, within 60 days"},
        "concerns": [{"type": "network", "ref": "203.0.113.45"}], "deadline": today + timedelta(days=10),
        "assignees": assignees}, now, ctx.settings.data_dir)
    out = coop.create_request(session, SYSTEM, {
        "direction": "outgoing", "country": "SG", "authority": "CERT Demo Singapore",
        "legal_basis": "reciprocity", "kind": "takedown", "subject": "Take down a phishing page imitating a bank",
        "body": "The page at https://phish.example/login imitates a demo bank.",
        "concerns": [{"type": "indicator", "ref": "https://phish.example/login"}], "assignees": assignees},
        now, ctx.settings.data_dir)
    coop.transition(session, SYSTEM, out, "acknowledged", now)
