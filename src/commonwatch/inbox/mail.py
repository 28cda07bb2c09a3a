"""Mail for notifications: each pending one to its person, in their language and time zone,
through notify's SMTP path (``notify.staff.send_to_person``: the centre's signature, the outbox
when no SMTP server is configured)."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.access.models import User
from commonwatch.i18n import _, use_language
from commonwatch.inbox import services
from commonwatch.inbox.models import Notification

log = logging.getLogger("commonwatch.inbox.mail")


def pending(session: Session, limit: int = 500) -> list[Notification]:
    """Notifications the person wants by mail and not yet handed over, oldest first."""
    return list(session.scalars(select(Notification).where(
        Notification.channel.in_(services.BY_MAIL), Notification.mailed_at.is_(None),
        Notification.kind.not_in(sorted(services.MAILED_ELSEWHERE)))
        .order_by(Notification.created_at, Notification.id).limit(limit)))


def deliver(session: Session, notifier) -> int:
    """Mail every pending notification; returns how many were handed over. A temporary failure
    leaves it pending for the next run; a permanent one is recorded on the row."""
    from commonwatch.notify.staff import send_to_person

    settings = notifier.settings
    base = (settings.base_url or "").rstrip("/")
    sent = 0
    for row in pending(session):
        user = session.get(User, row.user_id)
        now = notifier.clock.now()
        if user is None or not user.active:
            row.mailed_at, row.mail_status = now, "none: user inactive"
            session.commit()
            continue
        with use_language(user.language):
            sentence = services.text(row, user.timezone or settings.timezone)
            subject = _("Notification: {text}").format(text=sentence)[:200]
            body = "\n".join([sentence, "", _("Open it: {url}").format(url=f"{base}{row.link}"), "",
                              _("You receive this because of your notification settings: {url}").format(
                                  url=f"{base}/account#notifications"), ""])
        outcome = send_to_person(notifier, address=user.email, subject=subject, text=body,
                                 name=f"inbox-{row.id:08d}", language=user.language)
        if outcome.status == "sent":
            row.mailed_at, row.mail_status = now, "sent"
            sent += 1
        elif outcome.status in ("dead", "held"):
            row.mailed_at, row.mail_status = now, f"failed: {outcome.error}"[:200]
            log.warning("notification not mailed", extra={"notification": row.id, "error": outcome.error})
        session.commit()
    return sent
