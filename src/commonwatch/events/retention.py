"""Retention: events older than ``event_retention_days`` are dropped a whole UTC day at a time.

Legal holds: an event linked to an incident is kept whatever its age (its day is rewritten
without the others). The warnings planned for a dropped event go with it: the event store may live
outside the database, so no foreign key does this. Each run that drops anything, or is asked to
look (``--dry-run``), is one audit record naming the days and their counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from commonwatch.access.audit import record
from commonwatch.events.store import DayDrop, EventStore


@dataclass
class RetentionResult:
    cutoff: date
    dry_run: bool
    days: list[DayDrop] = field(default_factory=list)
    warnings_removed: int = 0

    @property
    def dropped(self) -> int:
        return sum(d.dropped for d in self.days)

    @property
    def kept(self) -> int:
        return sum(d.kept for d in self.days)


def cutoff_day(now: datetime, retention_days: int) -> date:
    """The first UTC day kept: every day before it is dropped."""
    return (now - timedelta(days=retention_days)).date()


def held_event_ids(session: Session) -> set[int]:
    """Ids of the events under a legal hold: those linked to an incident."""
    from commonwatch.incidents.models import IncidentEvent

    return set(session.scalars(select(IncidentEvent.event_id).distinct()))


def forget_warnings_before(session: Session, cutoff: date) -> int:
    """Remove the warnings of the events retention drops (those before ``cutoff`` not under a
    hold); returns how many went."""
    from commonwatch.incidents.models import IncidentEvent
    from commonwatch.notify.models import EventWarning

    midnight = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC)
    gone = session.execute(delete(EventWarning).where(
        EventWarning.time_source < midnight,
        EventWarning.event_id.not_in(select(IncidentEvent.event_id))))
    return gone.rowcount or 0


def apply_retention(session: Session, store: EventStore, *, now: datetime, retention_days: int,
                    dry_run: bool = False) -> RetentionResult:
    """Drop the days before the cutoff from ``store`` (holds kept) and record the run in the audit
    log through ``session`` (the caller commits)."""
    result = RetentionResult(cutoff_day(now, retention_days), dry_run)
    result.days = store.drop_days_before(result.cutoff, held_event_ids(session), dry_run=dry_run)
    if not dry_run:
        result.warnings_removed = forget_warnings_before(session, result.cutoff)
    record(session, "events.retention", "events", "", after={
        "store": store.name, "retention_days": retention_days, "cutoff": result.cutoff.isoformat(),
        "dry_run": dry_run, "dropped": result.dropped, "kept": result.kept,
        "warnings_removed": result.warnings_removed,
        "days": [{"day": d.day, "dropped": d.dropped, "kept": d.kept} for d in result.days]})
    return result
