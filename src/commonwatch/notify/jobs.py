"""The server's periodic work: send what is due every minute."""

from __future__ import annotations

from typing import Any

from commonwatch.scheduler import Job


def run_notifications(state: Any) -> dict:
    from commonwatch.notify.config import get_notify_settings
    from commonwatch.notify.runner import Notifier

    notifier = Notifier(settings=state.settings, sessions=state.sessionmaker, clock=state.clock, env=state.jinja,
                        nset=get_notify_settings())
    return notifier.run().as_dict()


JOBS = [Job(name="notify.run", every_seconds=60, run=run_notifications)]
