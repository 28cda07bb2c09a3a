"""Periodic work of access: anchoring the audit log's head outside the database."""

from __future__ import annotations

from typing import Any

from commonwatch.access import anchor
from commonwatch.scheduler import Job


def anchor_audit(state: Any) -> str:
    now = state.clock.now()
    if not anchor.anchor_due(state.settings, now):
        return "not due"
    head = anchor.anchor(state.settings, state.engine, now)
    return f"anchored link {head.seq}"


JOBS = [Job("audit-anchor", 300, anchor_audit)]
