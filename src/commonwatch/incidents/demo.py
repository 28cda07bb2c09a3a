"""Demo incidents at several levels with running clocks, coordination tasks to other organisations,
a partner share with an update, and a resolved case whose summary report is due. Idempotent.

Every time is set relative to the moment the demo is loaded. The first-report clocks are legitimately
short: the Reporting Measures give 1, 2 or 4 hours, so they run out within hours of `make run`. The
resolved mail-system case keeps a clock running for weeks: its summary report is due 30 days after
handling ended, and handling ended 10 days before the load (tests/incidents/test_demo_clocks.py)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from commonwatch.access import services as access
from commonwatch.incidents import alerts, sharing
from commonwatch.incidents import services as svc
from commonwatch.incidents.models import Incident
from commonwatch.incidents.rules import load_incident_rules


def _principal(ctx, key: str):
    return access.principal_for(ctx.session, ctx.users[key], via="system")


def load(ctx) -> None:
    session, now = ctx.session, ctx.clock.now()
    rules = load_incident_rules(ctx.settings.data_dir)
    coordinator = _principal(ctx, "coordinator")
    analyst = ctx.users["analyst"]

    def exists(title: str) -> bool:
        return session.scalar(select(Incident.id).where(Incident.title == title)) is not None

    def iso(delta: timedelta) -> str:
        return (now + delta).isoformat()

    title = "客户数据库暴露：约120万用户信息泄露 / Subscriber database exposed (about 1.2 M subscribers)"
    if not exists(title):
        incident = svc.file_incident(session, _principal(ctx, "telecom"), {
            "title": title, "affected_system": "Customer self-service portal and its MySQL database (CRM-2)",
            "discovered_at": iso(-timedelta(minutes=50)), "discovery_basis": "Alert from our DLP system",
            "occurred_at": iso(-timedelta(days=2)), "location": "Beijing data centre",
            "category": "DS", "subcategory": "DSLEAK",
            "effects": "Names, phone numbers and addresses of about 1.2 M subscribers offered for sale on a forum.",
            "measures_taken": "Portal taken offline; database credentials rotated.",
            "impact": {"pi_persons_leaked": 1_200_000}, "suspected_crime": True,
        }, now=now, rules=rules, via="portal")
        svc.assign(session, coordinator, incident, ctx.users["coordinator"].id, now=now)
        svc.create_task(session, coordinator, incident, {
            "org_id": ctx.orgs["bank"].id, "title": "Watch for account-takeover attempts using the leaked data",
            "body": "Phone numbers of your customers may be among the leaked records. Please check for unusual "
                    "password resets and SIM-swap patterns and report what you see.",
            "due_at": iso(timedelta(hours=20))}, now=now)
        share = sharing.share(session, coordinator, incident, ctx.orgs["partner_de"].id, "TLP:AMBER", None, now=now,
                              rules=rules)
        sharing.partner_update(session, _principal(ctx, "partner_de"), share,
                               "The forum's hosting provider is in our constituency; takedown requested.",
                               now=now + timedelta(minutes=5))

    title = "调度支撑系统遭勒索软件攻击 / Ransomware on dispatch support servers"
    if not exists(title):
        incident = svc.file_incident(session, _principal(ctx, "grid"), {
            "title": title, "affected_system": "Dispatch support servers (historian, reporting), not the SCADA core",
            "discovered_at": iso(-timedelta(minutes=35)), "discovery_basis": "Operators saw encrypted files",
            "category": "MP", "subcategory": "MPRANS",
            "effects": "Main dispatch-support functions unavailable for 45 minutes.",
            "measures_taken": "Affected segment isolated; manual procedures in place.",
            "ransom_amount": "20 BTC", "ransom_method": "Bitcoin", "ransom_dates": "by 28 Nov",
            "impact": {"cii_main_function_outage_minutes": 45},
        }, now=now, rules=rules, via="portal")
        svc.assign(session, coordinator, incident, analyst.id, now=now)
        svc.create_task(session, coordinator, incident, {
            "org_id": ctx.orgs["dispatch"].id, "title": "Isolate the OT jump hosts and send their logs",
            "body": "Disconnect the two jump hosts between IT and OT and upload their Windows event logs.",
            "due_at": iso(timedelta(hours=2))}, now=now)

    title = "市政务门户遭DDoS攻击无法访问 / City portal unreachable after a DDoS attack"
    if not exists(title):
        # A city body reports to the provincial CAC ("other"), not as a central organ: route chosen by hand.
        svc.file_incident(session, coordinator, {
            "org_id": ctx.orgs["gov"].id, "title": title, "affected_system": "City government portal",
            "discovered_at": iso(-timedelta(hours=3, minutes=10)), "discovery_basis": "Uptime monitoring",
            "category": "NA", "subcategory": "NADOS", "route": "other",
            "effects": "Portal unreachable for 7 hours so far.", "measures_taken": "Traffic scrubbing ordered.",
            "impact": {"portal_kind": "prefecture_gov", "portal_unreachable_minutes": 420},
        }, now=now, rules=rules, via="centre")

    title = "针对网银用户的钓鱼网站 / Phishing site imitating online banking"
    if not exists(title):
        incident = svc.file_incident(session, _principal(ctx, "bank"), {
            "title": title, "affected_system": "None of ours: a look-alike domain",
            "discovered_at": iso(-timedelta(hours=5)), "category": "NA", "subcategory": "NAPHISH",
            "effects": "Some customers entered credentials on the fake site.",
            "impact": {"pi_persons_leaked": 350},
        }, now=now, rules=rules, via="portal")
        svc.change_status(session, coordinator, incident, "in_progress", now=now, rules=rules)

    title = "已处置：邮件系统凭据泄露 / Resolved: mail-system credential leak"
    if not exists(title):
        then = now - timedelta(days=12)
        incident = svc.file_incident(session, _principal(ctx, "telecom"), {
            "title": title, "affected_system": "Staff webmail",
            "discovered_at": (then - timedelta(hours=2)).isoformat(),
            "category": "DS", "subcategory": "DSTHEFT", "effects": "Mailboxes of 2 million customers' contact data "
            "exported through a stolen admin account.", "impact": {"pi_persons_leaked": 2_000_000},
        }, now=then, rules=rules, via="portal")
        svc.record_report(session, _principal(ctx, "telecom"), incident, "first_report",
                          (then - timedelta(hours=1)).isoformat(), now=then, rules=rules,
                          channel="12387.cert.org.cn")
        svc.change_status(session, coordinator, incident, "in_progress", now=then, rules=rules)
        svc.change_status(session, coordinator, incident, "resolved", now=now - timedelta(days=10), rules=rules)
        svc.update_report(session, _principal(ctx, "telecom"), incident, {
            "summary_cause": "Phished administrator password without a second factor.",
            "summary_handling": "Account disabled, sessions revoked, all admin passwords reset.",
            "summary_harm": "Contact data of 2 M customers exposed; no financial loss known.",
            "summary_accountability": "Responsible administrator retrained; vendor contract reviewed.",
            "summary_rectification": "Second factor for all administrative access; DLP on exports.",
            "summary_lessons": "Admin access needs hardware keys; export alerts must page the SOC.",
        }, now=now, rules=rules)

    alerts.check_clocks(session, now, rules)
