"""Deadline alerts: a clock at risk or missed notifies the case owner and the coordinators.

``check_clocks`` runs every minute in the server (``jobs.py``) and from ``commonwatch incidents
check-clocks``. Each alert is a row in ``incident_alerts`` addressed to one person, a log line and a
timeline entry; pages show them at once. The notification capability delivers from the same rows:

    for alert in alerts.pending(session):          # undelivered, oldest first
        text = alerts.message(session, alert, rules)   # in the recipient's language (use_language)
        ... send ...
        alerts.mark_delivered(session, alert.id, now, "email")
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.access.models import User
from commonwatch.access.principal import Principal, Role
from commonwatch.clock import ensure_utc
from commonwatch.db import scope
from commonwatch.i18n import _
from commonwatch.incidents.clocks import clock_state
from commonwatch.incidents.models import Incident, IncidentAlert
from commonwatch.incidents.rules import IncidentRules
from commonwatch.incidents.services import clocks_for, notify_people, timeline

log = logging.getLogger("commonwatch.incidents.alerts")
ALERT_STATES = ("at_risk", "missed")


@dataclass
class CheckResult:
    checked: int = 0
    raised: int = 0

    def __str__(self) -> str:
        return f"{self.checked} incidents checked, {self.raised} alerts raised"


def coordinators(session: Session) -> list[int]:
    return list(session.scalars(select(User.id).where(User.role == Role.COORDINATOR, User.active.is_(True))))


def recipients(incident: Incident, coordinator_ids: list[int]) -> list[int]:
    """The case owner and every active coordinator."""
    ids = set(coordinator_ids)
    if incident.owner_id:
        ids.add(incident.owner_id)
    return sorted(ids)


def check_clocks(session: Session, now: datetime, rules: IncidentRules) -> CheckResult:
    """Raise an alert for every clock that is at risk or missed and not yet alerted (idempotent)."""
    now = ensure_utc(now)
    result = CheckResult()
    staff = coordinators(session)
    open_cases = select(Incident.id).where(Incident.status != "closed", Incident.merged_into_id.is_(None))
    # Every alert already raised for the open cases, in one query: (incident, clock, state, due) -> users.
    raised: dict[tuple, set[int]] = {}
    for row in session.execute(select(IncidentAlert.incident_id, IncidentAlert.clock, IncidentAlert.state,
                                      IncidentAlert.due_at, IncidentAlert.user_id)
                               .where(IncidentAlert.incident_id.in_(open_cases))):
        raised.setdefault((row[0], row[1], row[2], ensure_utc(row[3])), set()).add(row[4])
    for incident in session.scalars(select(Incident).where(Incident.id.in_(open_cases))):
        result.checked += 1
        for clock in clocks_for(incident, rules).clocks:
            state = clock_state(clock, now, rules.reporting)
            if state not in ALERT_STATES or clock.due_at is None:
                continue
            existing = raised.get((incident.id, clock.key, state, clock.due_at), set())
            new_users = [u for u in recipients(incident, staff) if u not in existing]
            if not new_users:
                continue
            for user_id in new_users:
                session.add(IncidentAlert(incident_id=incident.id, user_id=user_id, clock=clock.key, state=state,
                                          due_at=clock.due_at, created_at=now))
            notify_people(session, "clock", incident, now=now, user_ids=new_users, clock=clock.key, state=state,
                          due_at=clock.due_at)
            if not existing:
                timeline(session, incident, "clock_alert", "system", now, visibility="reporter", clock=clock.key,
                         state=state, due_at=clock.due_at.isoformat())
                log.warning("incident deadline %s", state.replace("_", " "),
                            extra={"incident": incident.ref, "clock": clock.key, "due_at": clock.due_at.isoformat(),
                                   "recipients": new_users})
            result.raised += len(new_users)
    session.flush()
    return result


def pending(session: Session, limit: int = 500) -> list[IncidentAlert]:
    """Alerts not yet delivered by a notification channel, oldest first."""
    return list(session.scalars(select(IncidentAlert).where(IncidentAlert.delivered_at.is_(None))
                                .order_by(IncidentAlert.created_at, IncidentAlert.id).limit(limit)))


def mark_delivered(session: Session, alert_id: int, at: datetime, via: str) -> None:
    alert = session.get(IncidentAlert, alert_id)
    if alert is not None:
        alert.delivered_at = ensure_utc(at)
        alert.delivered_via = via[:64]


def unread_for(session: Session, principal: Principal, incident_id: int | None = None) -> list[IncidentAlert]:
    stmt = scope(select(IncidentAlert), principal, IncidentAlert).where(IncidentAlert.read_at.is_(None))
    if incident_id is not None:
        stmt = stmt.where(IncidentAlert.incident_id == incident_id)
    return list(session.scalars(stmt.order_by(IncidentAlert.created_at.desc())))


def mark_read(session: Session, principal: Principal, alert_ids: list[int], at: datetime) -> int:
    rows = session.scalars(scope(select(IncidentAlert), principal, IncidentAlert).where(
        IncidentAlert.id.in_(alert_ids), IncidentAlert.read_at.is_(None))).all()
    for row in rows:
        row.read_at = ensure_utc(at)
    return len(rows)


def clock_title(key: str, rules: IncidentRules) -> str:
    if key == "first_report":
        return _("First report")
    if key == "escalation":
        return _("Escalation by the receiving authority")
    if key == "summary":
        return _("Summary report")
    if key.startswith("duty:"):
        for duty in rules.reporting.duties:
            if duty.id == key[5:]:
                return str(duty.text)
    return key


def message(session: Session, alert: IncidentAlert, rules: IncidentRules, tz: str | None = None) -> str:
    """The alert as one sentence in the current language."""
    from commonwatch.web.templating import format_datetime

    incident = session.get(Incident, alert.incident_id)
    ref = incident.ref if incident else str(alert.incident_id)
    due = format_datetime(alert.due_at, tz or "Asia/Shanghai")
    if alert.state == "missed":
        return _("{ref}: the deadline for “{clock}” passed at {due}.").format(
            ref=ref, clock=clock_title(alert.clock, rules), due=due)
    return _("{ref}: the deadline for “{clock}” is at risk (due {due}).").format(
        ref=ref, clock=clock_title(alert.clock, rules), due=due)
