"""Data security tables: the graded data catalogue, PI scans and their findings, cross-border
transfer assessments, security-assessment approvals and their reminders. Every row belongs to one
organisation (``org_id``) and is read through ``db.scope``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from commonwatch.clock import utcnow
from commonwatch.db import Base, TenantScoped


class DataAsset(TenantScoped, Base):
    """One entry of an organisation's data catalogue."""

    __tablename__ = "datasec_assets"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    system: Mapped[str] = mapped_column(String(300), default="")
    location: Mapped[str] = mapped_column(String(300), default="")
    owner: Mapped[str] = mapped_column(String(300), default="")
    record_count: Mapped[int | None] = mapped_column(BigInteger)
    persons_count: Mapped[int | None] = mapped_column(BigInteger)
    pi_categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    sensitive_categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    purpose: Mapped[str] = mapped_column(Text, default="")
    retention: Mapped[str] = mapped_column(String(300), default="")
    leaves_country: Mapped[bool] = mapped_column(Boolean, default=False)
    destinations: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Facts the grading rules read.
    notified_as: Mapped[str] = mapped_column(String(16), default="none")  # none | important | core
    impact_object: Mapped[str] = mapped_column(String(32), default="")
    impact_degree: Mapped[str] = mapped_column(String(32), default="")
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    # The rules' suggestion, and the grade a person confirmed.
    suggested_level: Mapped[str] = mapped_column(String(16), default="")
    suggested_subgrade: Mapped[int | None] = mapped_column(Integer)
    suggested_rule: Mapped[str] = mapped_column(String(64), default="")
    suggestion: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    grade_level: Mapped[str] = mapped_column(String(16), default="")
    grade_subgrade: Mapped[int | None] = mapped_column(Integer)
    grade_note: Mapped[str] = mapped_column(Text, default="")
    confirmed_by: Mapped[str] = mapped_column(String(400), default="")
    confirmed_at: Mapped[datetime | None] = mapped_column()
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    scans: Mapped[list[Scan]] = relationship(back_populates="asset", order_by="Scan.id.desc()")

    @property
    def confirmed(self) -> bool:
        return bool(self.grade_level)


class Scan(TenantScoped, Base):
    """One PI scan of a file or database: counts and masked samples only, never the data."""

    __tablename__ = "datasec_scans"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("datasec_assets.id", ondelete="SET NULL"), index=True)
    source: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    parts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sampled: Mapped[bool] = mapped_column(Boolean, default=False)
    pi_categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    sensitive_categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(400), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    asset: Mapped[DataAsset | None] = relationship(back_populates="scans")
    findings: Mapped[list[ScanFinding]] = relationship(back_populates="scan", cascade="all, delete-orphan",
                                                       order_by="ScanFinding.id")


class ScanFinding(TenantScoped, Base):
    __tablename__ = "datasec_findings"
    __audit__ = False  # written with their scan, which is audited as one act

    id: Mapped[int] = mapped_column(primary_key=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("datasec_scans.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    part: Mapped[str] = mapped_column(String(500))
    field: Mapped[str] = mapped_column(String(300))
    detector: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(BigInteger)
    rows_total: Mapped[int] = mapped_column(BigInteger)
    share: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    pi_category: Mapped[str] = mapped_column(String(64), default="")
    sensitive_category: Mapped[str] = mapped_column(String(64), default="")
    minors: Mapped[int] = mapped_column(BigInteger, default=0)
    samples: Mapped[list[Any]] = mapped_column(JSON, default=list)

    scan: Mapped[Scan] = relationship(back_populates="findings")


class TransferAssessment(TenantScoped, Base):
    """A cross-border transfer assessed against the rules; recorded ones count towards the year."""

    __tablename__ = "crossborder_assessments"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("datasec_assets.id", ondelete="SET NULL"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    recipient: Mapped[str] = mapped_column(String(300), default="")
    recipient_country: Mapped[str] = mapped_column(String(2), default="")
    transfer_date: Mapped[date] = mapped_column(Date)
    year: Mapped[int] = mapped_column(Integer, index=True)
    recorded: Mapped[bool] = mapped_column(Boolean, default=True)
    persons_non_sensitive: Mapped[int] = mapped_column(BigInteger, default=0)
    persons_sensitive: Mapped[int] = mapped_column(BigInteger, default=0)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    mechanism: Mapped[str] = mapped_column(String(48))
    rule_id: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(400), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AssessmentApproval(TenantScoped, Base):
    """A passed security assessment (or a certificate): valid 3 years, extension window tracked."""

    __tablename__ = "crossborder_approvals"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # security_assessment | certification
    reference: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(Text, default="")
    issued_on: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    window_opens: Mapped[date | None] = mapped_column(Date)
    extended_from: Mapped[int | None] = mapped_column(ForeignKey("crossborder_approvals.id", ondelete="SET NULL"))
    superseded: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApprovalReminder(TenantScoped, Base):
    """One reminder about an approval (window soon, window open, expiring, expired), made once."""

    __tablename__ = "crossborder_reminders"
    __table_args__ = (UniqueConstraint("approval_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    approval_id: Mapped[int] = mapped_column(ForeignKey("crossborder_approvals.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    due_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
