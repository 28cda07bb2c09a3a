"""The demo: a small constituency with users of every role, then each capability's sample data.

Idempotent: a second run changes nothing and prints the same sign-ins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from commonwatch import capabilities
from commonwatch.clock import Clock
from commonwatch.config import Settings

DEMO_PASSWORD = "demo-password"  # noqa: S105 - printed by `make run` on purpose


@dataclass
class DemoContext:
    session: Session
    settings: Settings
    clock: Clock
    #: Demo organisations by short key (``telecom``, ``grid``, ...), filled by the constituency demo.
    orgs: dict[str, Any] = field(default_factory=dict)
    #: Demo users by key (``admin``, ``coordinator``, ``telecom``, ...).
    users: dict[str, Any] = field(default_factory=dict)
    sign_ins: list[tuple[str, str, str]] = field(default_factory=list)


def load_demo(rt) -> list[tuple[str, str, str]]:
    """Load every capability's demo data in dependency order; return (role, email, password) rows."""
    with rt.session("demo") as session:
        ctx = DemoContext(session, rt.settings, rt.clock)
        for _cap, module in capabilities.parts("demo"):
            module.load(ctx)
            session.flush()
    return ctx.sign_ins
