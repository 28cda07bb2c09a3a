"""Rollups of stored events, kept by the ``reports-rollups`` job (``rollup.catch_up``) and rebuilt from the event
store's counts (``commonwatch reports rebuild``), so that a dashboard over a year reads these
tables and never scans events.

Times are whole hours / days since the Unix epoch (UTC): a day in any whole-hour time zone is a
sum of hours. Absent values are stored as ``""`` / ``0`` so that the composite keys are unique (a
NULL never conflicts). Tenancy mirrors the events': a row belongs to ``org_id`` and is also read by
the partner it was routed to (``partner_org_id``); the centre-wide rows (``ALL``) only by staff.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, UniqueConstraint, false, or_, true
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from commonwatch.access.principal import Principal
from commonwatch.clock import utcnow
from commonwatch.db import Base, TenantScoped

#: Rollup dimensions: name -> the event store's ``counts`` dimension. Each event is counted once
#: per dimension (long format), with its type beside, so a chart splits by one dimension and may
#: filter by type, and the number of rows grows with the values seen, not with their combinations.
DIMENSIONS: dict[str, str] = {"type": "type", "severity": "severity", "feed": "feed", "sector": "sector",
                              "country": "country", "asn": "asn", "org": "org"}
#: ``org_id`` / ``partner_org_id`` of the centre-wide rows (every organisation together): no
#: principal's organisation, so only staff read them.
ALL = -1
#: ``type`` of the centre-wide rows that count every type together (the ``org`` dimension's are
#: ``""``, as it is kept only without the type), so that a centre-wide split without a type
#: filter reads a row per value, not one per value and type. Not a type an event can have.
ANY_TYPE = "*"


class _RoutedScope(TenantScoped):
    @classmethod
    def visible_to(cls, principal: Principal) -> ColumnElement[bool]:
        if principal.sees_all_tenants:
            return true()
        if not principal.org_ids:
            return false()
        ids = sorted(principal.org_ids)
        return or_(cls.org_id.in_(ids), cls.partner_org_id.in_(ids))  # type: ignore[attr-defined]


class EventCount(_RoutedScope, Base):
    """Events per hour (``grain`` 0) or UTC day (``grain`` 1), per value of one dimension and event
    type, per organisation and partner; the rows with ``org_id`` :data:`ALL` hold the whole centre's.
    The ``org`` dimension is kept only centre-wide and without the type (``type = ""``); the
    per-organisation split is the ``type`` rows by ``org_id`` (see ``rollup.layout``)."""

    __tablename__ = "reports_event_counts"
    #: stored in key order (a dashboard reads a key range; see migration 0013_reports_clustered);
    #: a partner's rows found by the partner
    __table_args__ = (Index("ix_reports_event_counts_partner", "grain", "dim", "partner_org_id", "bucket"),
                      {"sqlite_with_rowid": False})
    __audit__ = False

    grain: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0 = hour, 1 = day
    dim: Mapped[str] = mapped_column(String(16), primary_key=True)
    org_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, default=0)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # hours or days since epoch
    value: Mapped[str] = mapped_column(String(100), primary_key=True, default="")
    type: Mapped[str] = mapped_column(String(64), primary_key=True, default="")
    partner_org_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, default=0)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class HostSet(_RoutedScope, Base):
    """The affected hosts (64-bit hashes of their address, else of their host name) seen on one
    UTC day (``grain`` 1) or in one UTC month (``grain`` 2, months since January 1970) in events of
    one type (``""``: every type), for one organisation and partner, as one sorted array of
    little-endian 64-bit integers (``hosts``, ``n`` of them). The rows with ``org_id``
    :data:`ALL` hold every constituent's hosts together (events that match no organisation are
    not in them). Distinct hosts over a year are the union of a dozen months' sets and the edge
    days' (``query.distinct_hosts``): exact, and a few arrays read instead of a row per host."""

    __tablename__ = "reports_host_sets"
    __table_args__ = {"sqlite_with_rowid": False}
    __audit__ = False

    grain: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    type: Mapped[str] = mapped_column(String(64), primary_key=True, default="")
    org_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, default=0)
    partner_org_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, default=0)
    n: Mapped[int] = mapped_column(BigInteger, default=0)
    hosts: Mapped[bytes] = mapped_column(LargeBinary)


class ReportRun(Base):
    """A situation report built (by the schedule or by hand): what period, which language, where
    it was mailed; the figures themselves are recomputed from the rollups on demand."""

    __tablename__ = "reports_runs"
    __table_args__ = (UniqueConstraint("period", "start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period: Mapped[str] = mapped_column(String(8))  # week | month | year
    start: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD, first day of the period
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="built")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RollupMark(Base):
    """How far the rollups have counted: the highest event id whose event is in them. Event ids
    grow with each append, so the events still to count are those above it."""

    __tablename__ = "reports_rollup_mark"
    __audit__ = False

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # one row, id 1
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)


class AckStep(TenantScoped, Base):
    """Answered warnings per period bucket (the event rollups' grains: part-day, UTC day, UTC
    month, by when the warning was created), organisation (:data:`ALL`: the centre's) and time to
    the answer: ``level`` 1 counts each :data:`reports.acks.STEP_SECONDS` step, ``level`` 0 each
    bin of ``reports.acks.BIN`` steps (an hour), so that a year's median reads a few hundred bins
    and then the steps of the bins its ranks fall in (``reports.acks``). Kept when a warning is
    answered (the old answer taken out, the new one added) and rebuilt with the event rollups."""

    __tablename__ = "reports_ack_steps"
    __table_args__ = {"sqlite_with_rowid": False}
    __audit__ = False

    grain: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)
