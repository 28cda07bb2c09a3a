"""Periodic work: check every running clock once a minute, raise deadline alerts, and mail them
to the case owner and the coordinators through the notification capability."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from commonwatch.access.models import User
from commonwatch.db import session_scope
from commonwatch.i18n import _, use_language
from commonwatch.incidents import alerts
from commonwatch.incidents.rules import IncidentRules, load_incident_rules
from commonwatch.scheduler import Job

log = logging.getLogger("commonwatch.incidents.jobs")


def check_clocks(state: Any) -> alerts.CheckResult:
    rules = load_incident_rules(state.settings.data_dir)
    with session_scope(state.sessionmaker, actor="system clocks", clock=state.clock) as session:
        return alerts.check_clocks(session, state.clock.now(), rules)


def deliver_alerts(session: Session, notifier, rules: IncidentRules) -> int:
    """Mail each pending alert to its person in their language; returns how many were handed over.

    A temporary failure leaves the alert pending for the next run; a permanent one is recorded on
    the alert (it stays on the person's pages either way).
    """
    from commonwatch.notify.staff import send_to_person

    sent = 0
    for alert in alerts.pending(session):
        user = session.get(User, alert.user_id)
        if user is None or not user.active:
            alerts.mark_delivered(session, alert.id, notifier.clock.now(), "none: user inactive")
            continue
        if not _wants_mail(session, user.id):
            alerts.mark_delivered(session, alert.id, notifier.clock.now(), "none: not wanted by mail")
            continue
        with use_language(user.language):
            text = alerts.message(session, alert, rules, user.timezone or notifier.settings.timezone)
            subject = _("Incident deadline: {text}").format(text=text)[:200]
        outcome = send_to_person(notifier, address=user.email, subject=subject, text=text + "\n",
                                 name=f"incident-alert-{alert.id:08d}", language=user.language)
        if outcome.status == "sent":
            alerts.mark_delivered(session, alert.id, notifier.clock.now(), "email")
            sent += 1
        elif outcome.status in ("dead", "held"):
            alerts.mark_delivered(session, alert.id, notifier.clock.now(), f"email failed: {outcome.error}")
            log.warning("incident alert not delivered", extra={"alert": alert.id, "error": outcome.error})
        session.commit()
    return sent


def _wants_mail(session: Session, user_id: int) -> bool:
    """The person's choice for deadline alerts (``commonwatch.inbox``; by mail unless they said not)."""
    from commonwatch.inbox.services import wants_mail

    return wants_mail(session, user_id, "clock")


def check_and_deliver(state: Any) -> str:
    from commonwatch.notify.config import get_notify_settings
    from commonwatch.notify.runner import Notifier

    raised = check_clocks(state)
    notifier = Notifier(settings=state.settings, sessions=state.sessionmaker, clock=state.clock, env=state.jinja,
                        nset=get_notify_settings())
    rules = load_incident_rules(state.settings.data_dir)
    with session_scope(state.sessionmaker, actor="system clocks", clock=state.clock) as session:
        sent = deliver_alerts(session, notifier, rules)
    if notifier.transport is not None:
        notifier.transport.close()
    return f"{raised}; {sent} alerts mailed"


JOBS = [Job("incident-clocks", 60.0, check_and_deliver)]
