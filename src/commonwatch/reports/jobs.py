"""Periodic work: once a period is complete, build its situation report and mail it (through
notify's sending) to the recipients the policy names; each period once (``reports_runs``)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from commonwatch.access.principal import SYSTEM
from commonwatch.db import session_scope
from commonwatch.scheduler import Job


def last_complete(kind: str, today: date) -> str:
    """The value naming the latest complete period of ``kind`` before ``today``."""
    if kind == "week":
        monday = today - timedelta(days=today.weekday() + 7)
        iso = monday.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if kind == "month":
        prev = today.replace(day=1) - timedelta(days=1)
        return f"{prev.year:04d}-{prev.month:02d}"
    return str(today.year - 1)


def send_reports(state: Any) -> int:
    """Build and mail every due report; returns how many messages were handed over."""
    from commonwatch.i18n import _, use_language
    from commonwatch.notify.config import get_notify_settings
    from commonwatch.notify.runner import Notifier
    from commonwatch.notify.staff import send_to_person
    from commonwatch.reports import render
    from commonwatch.reports import services as svc
    from commonwatch.reports.models import ReportRun
    from commonwatch.reports.policy import load_policy

    recipients = load_policy(state.settings.data_dir)
    if not recipients:
        return 0
    tz = svc.zone_name(state.settings.timezone)
    now = state.clock.now()
    today = svc.local_today(now, tz)
    notifier = Notifier(settings=state.settings, sessions=state.sessionmaker, clock=state.clock, env=state.jinja,
                        nset=get_notify_settings())
    sent = 0
    for kind in ("week", "month", "year"):
        wanted = [r for r in recipients if kind in r.periods]
        if not wanted:
            continue
        value = last_complete(kind, today)
        with session_scope(state.sessionmaker, actor="job:reports") as session:
            period = svc.report_period(kind, value, tz)
            start = period.start.isoformat()
            if session.scalar(select(ReportRun.id).where(ReportRun.period == kind, ReportRun.start == start)):
                continue
            report = svc.build_report(session, SYSTEM, kind, value, tz, now)
            pdf = render.report_pdf(report)
            for n, r in enumerate(wanted, start=1):
                with use_language(r.language):
                    subject = f"{report.title} {period.label()}"
                    text = "\n".join([report.title, period.label(), "", *svc.summarise(report.results, report.before),
                                      "", _("The full report is attached (PDF, English and Chinese).")])
                outcome = send_to_person(notifier, address=r.address, subject=subject, text=text,
                                         name=f"report-{kind}-{start}-{n}", language=r.language,
                                         attachments=[(f"commonwatch-{kind}-{start}.pdf", "application/pdf", pdf)])
                sent += outcome.status == "sent"
            session.add(ReportRun(period=kind, start=start, recipients=len(wanted), status="mailed"))
    return sent


def keep_rollups(state: Any) -> int:
    """Count the events stored since the last run into the rollups, a chunk per transaction (so
    the ingest's writer waits for one chunk at most); returns how many were counted."""
    from commonwatch.events.store import event_store
    from commonwatch.reports.rollup import catch_up

    counted = 0
    while True:
        with session_scope(state.sessionmaker, actor="job:reports-rollups") as session:
            conn = session.connection()
            n = catch_up(conn, event_store(conn, settings=state.settings), zone=state.settings.timezone)
        counted += n
        if not n:
            return counted


JOBS = [Job(name="reports-mail", every_seconds=3600, run=send_reports),
        Job(name="reports-rollups", every_seconds=15, run=keep_rollups)]
