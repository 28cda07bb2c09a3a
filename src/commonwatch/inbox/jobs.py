"""Periodic work: mail the notifications people want by mail (every minute)."""

from __future__ import annotations

from typing import Any

from commonwatch.db import session_scope
from commonwatch.scheduler import Job


def mail_notifications(state: Any) -> str:
    from commonwatch.inbox.mail import deliver
    from commonwatch.notify.config import get_notify_settings
    from commonwatch.notify.runner import Notifier

    notifier = Notifier(settings=state.settings, sessions=state.sessionmaker, clock=state.clock, env=state.jinja,
                        nset=get_notify_settings())
    try:
        with session_scope(state.sessionmaker, actor="system inbox", clock=state.clock) as session:
            sent = deliver(session, notifier)
    finally:
        if notifier.transport is not None:
            notifier.transport.close()
    return f"{sent} notifications mailed"


JOBS = [Job("inbox-mail", 60.0, mail_notifications)]
