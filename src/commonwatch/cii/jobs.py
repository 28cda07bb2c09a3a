"""Periodic work: make the supervision reminders due today (MLPS assessment, annual inspection; each
once per due date and state) and mail them through notify to the organisation's security contacts
and to the centre's coordinators, each in their language."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.db import session_scope
from commonwatch.i18n import use_language
from commonwatch.scheduler import Job

log = logging.getLogger("commonwatch.cii.jobs")


def recipients(session: Session, org_id: int) -> list[tuple[str, str]]:
    """``(address, language)``: the organisation's active security contacts (its abuse contacts when
    it has none) and the active coordinators."""
    from commonwatch.access.models import User
    from commonwatch.constituency.models import Contact

    contacts = session.scalars(select(Contact).where(Contact.org_id == org_id, Contact.active.is_(True))
                               .order_by(Contact.id)).all()
    chosen = [c for c in contacts if c.role == "security"] or [c for c in contacts if c.role == "abuse"]
    staff = session.scalars(select(User).where(User.role == "coordinator", User.active.is_(True))
                            .order_by(User.id)).all()
    out = [(c.email, c.language) for c in chosen] + [(u.email, u.language) for u in staff]
    seen: set[str] = set()
    return [(a, lang) for a, lang in out if not (a.lower() in seen or seen.add(a.lower()))]


def department_recipients(session: Session, system_ids) -> dict[tuple[str, str], set[int]]:
    """``(address, language)`` of each protection department that takes early warnings, with the
    systems it supervises among ``system_ids``."""
    from commonwatch.cii.models import CiiSystem

    out: dict[tuple[str, str], set[int]] = {}
    ids = [i for i in system_ids if i is not None]
    if not ids:
        return out
    for s in session.scalars(select(CiiSystem).where(CiiSystem.id.in_(ids), CiiSystem.protection_department_email != "")
                             .order_by(CiiSystem.id)):
        out.setdefault((s.protection_department_email.lower(), s.protection_department_language or "zh-CN"),
                       set()).add(s.id)
    return out


def deliver(session: Session, notifier) -> int:
    """Mail each pending reminder; returns how many were handed over to at least one recipient.

    A temporary failure leaves the reminder pending for the next run; a permanent one is recorded on
    it (it stays on the pages either way)."""
    from commonwatch.cii import services as cii
    from commonwatch.cii.models import CiiSystem
    from commonwatch.constituency.models import Organisation
    from commonwatch.notify.staff import send_to_person

    sent = 0
    for reminder in cii.pending_reminders(session):
        system = session.get(CiiSystem, reminder.system_id)
        org = session.get(Organisation, reminder.org_id)
        people = recipients(session, reminder.org_id)
        if system is None or org is None or not people:
            reminder.delivered_at, reminder.delivery = notifier.clock.now(), "none: no recipient"
            session.commit()
            continue
        outcomes = []
        for address, language in people:
            with use_language(language):
                subject, text = cii.reminder_text(system, org, reminder)
            outcome = send_to_person(notifier, address=address, subject=subject, text=text + "\n",
                                     name=f"cii-reminder-{reminder.id:08d}-{len(outcomes)}", language=language)
            outcomes.append((address, outcome))
        if any(o.status == "retry" for _a, o in outcomes):
            log.info("cii reminder will be retried", extra={"reminder": reminder.id})
            continue
        ok = [a for a, o in outcomes if o.status == "sent"]
        failed = [f"{a}: {o.error}" for a, o in outcomes if o.status != "sent"]
        reminder.delivered_at = notifier.clock.now()
        reminder.delivery = "; ".join([*(f"email {a}" for a in ok), *(f"failed {f}" for f in failed)])[:4000]
        sent += bool(ok)
        session.commit()
    return sent


def remind(state: Any) -> str:
    from commonwatch.cii import services as cii
    from commonwatch.notify.config import get_notify_settings
    from commonwatch.notify.runner import Notifier

    with session_scope(state.sessionmaker, actor="job:cii-reminders") as session:
        session.info["clock"] = state.clock
        made = len(cii.run_reminders(session, cii.local_today(state.clock.now()), state.settings.data_dir))
    notifier = Notifier(settings=state.settings, sessions=state.sessionmaker, clock=state.clock, env=state.jinja,
                        nset=get_notify_settings())
    with session_scope(state.sessionmaker, actor="job:cii-reminders") as session:
        session.info["clock"] = state.clock
        sent = deliver(session, notifier)
    if notifier.transport is not None:
        notifier.transport.close()
    return f"{made} reminders made; {sent} mailed"


JOBS = [Job(name="cii-reminders", every_seconds=6 * 3600, run=remind)]
