"""Early warning: new findings on a CII operator's assets are mailed, ranked, through notify to the
operator's security contacts and the centre's coordinators (``cii.jobs.recipients``) and to the
protection department of each system concerned (``cii.jobs.department_recipients``: its own
systems' findings), each in their language, signed with the centre's key when it has one
(``notify.staff.send_to_person``)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.db import session_scope
from commonwatch.i18n import _, use_language
from commonwatch.scheduler import Job

log = logging.getLogger("commonwatch.vulns.jobs")



def _severity(sev: str) -> str:
    labels = {"critical": _("Critical"), "high": _("High"), "medium": _("Medium"), "low": _("Low"),
              "unknown": _("Unknown")}
    return labels.get(sev, sev)


def warning_text(org_name: str, rows: list[dict[str, Any]], department: bool = False) -> tuple[str, str]:
    """Subject and body of one organisation's warning, in the current language; ``department``:
    the copy for the protection department that supervises the systems concerned."""
    subject = _("Vulnerability warning for {org}: {count} new finding(s)").format(org=org_name, count=len(rows))
    lines = [_("New vulnerabilities match assets of {org}, most urgent first.").format(org=org_name), ""]
    if department:
        lines[1:1] = [_("You receive this early warning as the protection department of the CII systems "
                        "concerned; the operator's security contacts are warned too."), ""]
    cvss_label, kev_label, mlps_label = _("CVSS"), _("known exploited (KEV)"), _("MLPS level")
    for r in rows:
        lines.append(f"{r['rank']}. {r['vuln_id']} — {_severity(r['severity'])}"
                     + (f" ({cvss_label} {r['cvss_base']})" if r["cvss_base"] is not None else "")
                     + (f" · {kev_label}" if r["kev"] else "")
                     + (f" · EPSS {r['epss']:.3f}" if r["epss"] is not None else "")
                     + (f" · {mlps_label} {r['mlps_level']}" if r["mlps_level"] is not None else ""))
        lines.append("   " + _("Asset: {identifier}").format(identifier=r["identifier"]))
        lines.append("   " + _("Why: {reason}").format(reason=r["reason"]))
        lines.append("   " + _("Remediate by: {due}").format(due=r["due"].isoformat()))
    lines += ["", _("Remediation periods are provisional defaults of this centre (rules/vuln_remediation.yaml).")]
    return subject, "\n".join(lines)


def deliver_warnings(session: Session, notifier, data_dir=None) -> int:
    """Warn about every open finding not yet warned of on a CII operator's assets; returns how many
    organisations were warned. A temporary failure leaves the findings for the next run."""
    from commonwatch.access.principal import SYSTEM
    from commonwatch.cii.jobs import department_recipients, recipients
    from commonwatch.constituency.models import Organisation
    from commonwatch.notify.staff import send_to_person
    from commonwatch.vulns import services as svc
    from commonwatch.vulns.models import VulnFinding

    pending = session.execute(select(VulnFinding.org_id).where(
        VulnFinding.warned_at.is_(None), VulnFinding.status == "open", VulnFinding.matched.is_(True)).distinct()
    ).scalars().all()
    warned = 0
    for org_id in sorted(pending):
        org = session.get(Organisation, org_id)
        if org is None or org.kind != "cii-operator":
            continue
        frame = svc.ranked_findings(session, SYSTEM, org_id=org_id, data_dir=data_dir)
        ids = {f.id for f in session.scalars(select(VulnFinding).where(
            VulnFinding.org_id == org_id, VulnFinding.warned_at.is_(None)))}
        rows = [r for r in frame.iter_rows(named=True) if r["id"] in ids]
        if not rows:
            continue
        people = [(a, lang, rows, False) for a, lang in recipients(session, org_id)]
        taken = {a.lower() for a, *_rest in people}
        # The protection department of each system concerned: its own systems' findings only.
        for (address, language), systems in department_recipients(session, {r["system_id"] for r in rows}).items():
            if address not in taken:
                people.append((address, language, [r for r in rows if r["system_id"] in systems], True))
                taken.add(address)
        now = notifier.clock.now()
        outcomes = []
        for address, language, mine, department in people:
            with use_language(language):
                subject, text = warning_text(org.name, mine, department)
            outcome = send_to_person(notifier, address=address, subject=subject, text=text + "\n",
                                     name=f"vulns-warning-{org_id:06d}-{min(ids):08d}-{len(outcomes)}",
                                     language=language)
            outcomes.append((address, outcome))
        if any(o.status == "retry" for _a, o in outcomes):
            log.info("vulnerability warning will be retried", extra={"org": org_id})
            continue
        ok = [a for a, o in outcomes if o.status == "sent"]
        failed = [f"{a}: {o.error}" for a, o in outcomes if o.status != "sent"]
        delivery = "; ".join([*(f"email {a}" for a in ok), *(f"failed {f}" for f in failed)]) or "none: no recipient"
        for f in session.scalars(select(VulnFinding).where(VulnFinding.id.in_([r["id"] for r in rows]))):
            f.warned_at, f.warning_delivery = now, delivery[:4000]
        warned += bool(ok)
        session.commit()
    return warned


def warn(state: Any) -> str:
    from commonwatch.notify.config import get_notify_settings
    from commonwatch.notify.runner import Notifier

    notifier = Notifier(settings=state.settings, sessions=state.sessionmaker, clock=state.clock, env=state.jinja,
                        nset=get_notify_settings())
    with session_scope(state.sessionmaker, actor="job:vulns-warnings") as session:
        session.info["clock"] = state.clock
        warned = deliver_warnings(session, notifier, state.settings.data_dir)
    if notifier.transport is not None:
        notifier.transport.close()
    return f"{warned} organisation(s) warned"


def poll(state: Any) -> str:
    """Scheduled intake: every subscribed URL source, conditional requests, then the delta matched."""
    from commonwatch.vulns import services as svc

    with session_scope(state.sessionmaker, actor="job:vulns-sources") as session:
        session.info["clock"] = state.clock
        rep = svc.poll_sources(session, state.settings, state.clock.now())
    new = len(rep.match.new) if rep.match else 0
    return f"{len(rep.lines)} source(s), {rep.failed} failed, {len(rep.keys)} record(s) changed, {new} new finding(s)"


JOBS = [Job(name="vulns-sources", every_seconds=6 * 3600, run=poll),
        Job(name="vulns-warnings", every_seconds=15 * 60, run=warn)]
