"""Demo early warning: the centre's OpenPGP key, a few policies, a day of events on the demo
constituency and abroad, and a notification run. Without an SMTP server the digests land as
real .eml files in ``<data dir>/notify/outbox/``. Idempotent: events have fixed keys."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from commonwatch.events.store import batch_from_rows, event_store
from commonwatch.notify import policies
from commonwatch.notify.models import EventWarning, Feedback

log = logging.getLogger("commonwatch.notify.demo")

# key, organisation, partner, hours ago, type, identifier, severity, ip, port, fqdn/url, malware, tlp, feed
_EVENTS = [
    ("t1", "telecom", None, 20, "infected-system", "mirai", "medium", "198.51.100.23", 23, None, "mirai", "AMBER",
     "shadowserver-sinkhole"),
    ("t2", "telecom", None, 19, "infected-system", "mirai", "medium", "198.51.100.41", 2323, None, "mirai", "AMBER",
     "shadowserver-sinkhole"),
    ("t3", "telecom", None, 18, "infected-system", "mozi", "medium", "198.51.100.57", 23, None, "mozi", "AMBER",
     "shadowserver-sinkhole"),
    ("t4", "telecom", None, 16, "ddos-amplifier", "open-dns", "low", "198.51.100.8", 53, None, None, "GREEN",
     "shadowserver-scan_dns"),
    ("t5", "telecom", None, 15, "ddos-amplifier", "open-ntp", "low", "198.51.100.9", 123, None, None, "GREEN",
     "shadowserver-scan_ntp"),
    ("t6", "telecom", None, 14, "potentially-unwanted-accessible", "open-rdp", "medium", "198.51.100.120", 3389,
     None, None, "AMBER", "shadowserver-scan_rdp"),
    ("t7", "telecom", None, 13, "infected-system", "mirai", "medium", "198.51.100.23", 23, None, "mirai", "AMBER",
     "shadowserver-sinkhole"),
    ("g1", "grid", None, 12, "vulnerable-system", "CVE-2024-3400", "high", "203.0.113.10", 443, "vpn.eastgrid.example",
     None, "AMBER+STRICT", "shadowserver-scan_http"),
    ("g2", "grid", None, 11, "potentially-unwanted-accessible", "open-smb", "medium", "203.0.113.33", 445, None, None,
     "AMBER", "shadowserver-scan_smb"),
    ("d1", "dispatch", None, 10, "potentially-unwanted-accessible", "open-modbus", "critical", "203.0.113.70", 502,
     None, None, "RED", "shadowserver-scan_ics"),
    ("b1", "bank", None, 9, "phishing", "credential-phishing", "high", "198.18.0.15", 443,
     "https://login.demobank.example.attacker.example/verify", None, "AMBER", "openphish"),
    ("b2", "bank", None, 8, "weak-crypto", "ssl-poodle", "low", "198.18.0.20", 443, None, None, "GREEN",
     "shadowserver-scan_ssl"),
    ("v1", "gov", None, 7, "weak-crypto", "tls-1.0", "low", "192.0.2.44", 443, "data.gov-demo.example", None,
     "GREEN", "shadowserver-scan_ssl"),
    ("v2", "gov", None, 6, "scanner", "ssh-scan", "medium", "192.0.2.99", 22, None, None, "AMBER", "dshield"),
    ("p1", None, "partner_de", 5, "infected-system", "emotet", "high", "192.0.2.201", 8080, None, "emotet",
     "AMBER", "shadowserver-sinkhole"),
    ("p2", None, "partner_de", 4, "c2-server", "qakbot-c2", "critical", "192.0.2.202", 443, None, "qakbot", "AMBER",
     "abusech-feodotracker"),
    ("p3", None, "partner_sg", 3, "scanner", "rdp-scan", "medium", "192.0.2.230", 3389, None, None, "GREEN",
     "dshield"),
]


def _ensure_centre_key(settings, clock) -> None:
    from commonwatch.notify.pgp import Keyring, PgpError, default_home

    try:
        keyring = Keyring(default_home(settings), clock)
        if keyring.centre_key() is None:
            keyring.generate_centre_key(settings.centre_name, settings.mail_from)
    except PgpError as exc:  # the demo still works, unsigned
        log.warning("no centre key for the demo: %s", exc)


def _events(ctx) -> list[dict]:
    now = ctx.clock.now()
    rows = []
    for key, org, partner, hours, kind, ident, severity, ip, port, where, malware, tlp, feed in _EVENTS:
        at = now - timedelta(hours=24 + hours)
        org_row = ctx.orgs.get(org) if org else None
        partner_row = ctx.orgs.get(partner) if partner else None
        url = where if where and where.startswith("https://") else None
        fqdn = where if where and not url else None
        rows.append({
            "event_key": f"demo-notify-{key}", "time_source": at, "time_observation": at + timedelta(minutes=20),
            "feed_name": feed, "feed_provider": feed.split("-")[0], "source_ip": ip, "source_port": port,
            "source_asn": 64500, "source_as_name": "DEMO-AS", "source_cc": "DE" if partner == "partner_de" else (
                "SG" if partner == "partner_sg" else "CN"),
            "source_fqdn": fqdn, "source_url": url, "classification_taxonomy": "demo",
            "classification_type": kind, "classification_identifier": ident, "malware_name": malware,
            "extra": {"demo": True}, "org_id": org_row.id if org_row else None,
            "partner_org_id": partner_row.id if partner_row else None,
            "constituent_sector": org_row.sector if org_row else None,
            "constituent_cii": bool(org_row and org_row.is_cii), "severity": severity, "tlp": tlp,
        })
    return rows


def load(ctx) -> None:
    from commonwatch.db import make_sessionmaker
    from commonwatch.notify.config import get_notify_settings
    from commonwatch.notify.runner import Notifier
    from commonwatch.web.templating import make_environment

    session = ctx.session
    _ensure_centre_key(ctx.settings, ctx.clock)
    if "grid" in ctx.orgs and policies.own_policy(session, ctx.orgs["grid"].id) is None:
        policies.save_policy(session, ctx.orgs["grid"].id, {"cadence": "immediate", "min_severity": "low"},
                             allowlist=[])
    if "partner_de" in ctx.orgs and policies.own_policy(session, ctx.orgs["partner_de"].id) is None:
        policies.save_policy(session, ctx.orgs["partner_de"].id, {"min_severity": "medium", "language": "en",
                                                                   "attach_intelmq": True}, allowlist=[])
    store = event_store(session)
    rows = _events(ctx)
    # Stored a day ago (batch 0: no ingest run), so that daily digests are due in this run.
    inserted = store.append(batch_from_rows(rows), batch_id=0, now=ctx.clock.now() - timedelta(hours=24))
    if inserted:
        from commonwatch.access import audit

        audit.record(session, "events.demo", "events", "", after={"inserted": inserted})
    # The run writes in its own transactions (one writer at a time on SQLite): commit first.
    session.commit()
    notifier = Notifier(settings=ctx.settings, sessions=make_sessionmaker(session.get_bind()), clock=ctx.clock,
                        env=make_environment(ctx.settings.data_dir, ctx.settings.timezone), nset=get_notify_settings())
    notifier.run()
    _answer_one(ctx)


def _answer_one(ctx) -> None:
    """The bank already resolved its phishing warning, so the statistics show an answer."""
    session = ctx.session
    bank = ctx.orgs.get("bank")
    if bank is None:
        return
    event_id = event_store(session).existing_keys(["demo-notify-b1"]).get("demo-notify-b1")
    warning = session.scalar(select(EventWarning).where(EventWarning.event_id == event_id,
                                                        EventWarning.org_id == bank.id))
    if warning is None or session.scalar(select(Feedback.id).where(Feedback.warning_id == warning.id)):
        return
    now = ctx.clock.now()
    user = ctx.users.get("bank")
    session.add(Feedback(org_id=bank.id, warning_id=warning.id, user_id=user.id if user else None,
                         action="resolved", comment="钓鱼页面已下线，托管商已确认。", created_at=now))
    warning.status, warning.comment, warning.responded_at = "resolved", "钓鱼页面已下线，托管商已确认。", now
    warning.responded_by = user.id if user else None
