"""CII tables: the systems a critical-information-infrastructure operator runs (MLPS level, filing,
last assessment and inspection) and the asset inventory of each organisation. Every row belongs to
one organisation (``org_id``) and is read through ``db.scope``.

``cii_assets`` is read by the vulnerability matcher only through
``commonwatch.cii.services.asset_frame``."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from commonwatch.clock import utcnow
from commonwatch.db import Base, TenantScoped

ASSET_KINDS = ("software", "hardware", "os", "service")
ASSET_SOURCES = ("csv", "cyclonedx", "spdx", "nmap", "api", "form")


class CiiSystem(TenantScoped, Base):
    """One information system a CII operator runs, with its MLPS grading and supervision dates."""

    __tablename__ = "cii_systems"
    __table_args__ = (CheckConstraint("mlps_level BETWEEN 1 AND 5", name="mlps_level_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    mlps_level: Mapped[int] = mapped_column(Integer)
    filing_number: Mapped[str] = mapped_column(String(100), default="")
    filing_date: Mapped[date | None] = mapped_column(Date)
    # The sector's supervising body (保护工作部门), as text.
    protection_department: Mapped[str] = mapped_column(String(300), default="")
    # Where the department takes early warnings about this system, and in which language.
    protection_department_email: Mapped[str] = mapped_column(String(320), default="", server_default="")
    protection_department_language: Mapped[str] = mapped_column(String(16), default="zh-CN",
                                                                server_default="zh-CN")
    last_mlps_assessment: Mapped[date | None] = mapped_column(Date)
    # The last annual CII cybersecurity inspection / risk assessment.
    last_inspection: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    assets: Mapped[list[Asset]] = relationship(back_populates="system", passive_deletes=True)


class Asset(TenantScoped, Base):
    """One piece of software or hardware an organisation runs, identified by CPE 2.3 and/or purl."""

    __tablename__ = "cii_assets"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    system_id: Mapped[int | None] = mapped_column(ForeignKey("cii_systems.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="software")
    name: Mapped[str] = mapped_column(String(300))
    vendor: Mapped[str] = mapped_column(String(300), default="")
    product: Mapped[str] = mapped_column(String(300), default="")
    version: Mapped[str | None] = mapped_column(String(200))
    cpe: Mapped[str | None] = mapped_column(String(1000))
    purl: Mapped[str | None] = mapped_column(String(1000))
    host: Mapped[str] = mapped_column(String(300), default="")
    network: Mapped[str] = mapped_column(String(100), default="")
    owner: Mapped[str] = mapped_column(String(300), default="")
    source: Mapped[str] = mapped_column(String(16), default="form")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    system: Mapped[CiiSystem | None] = relationship(back_populates="assets")


class SupervisionReminder(TenantScoped, Base):
    """One reminder that a system's MLPS assessment or annual inspection is due soon or overdue, made
    once per due date and state, then mailed to the organisation's security contacts and the
    coordinators through notify (``delivered_at`` says when, ``delivery`` to whom or why not)."""

    __tablename__ = "cii_reminders"
    __table_args__ = (UniqueConstraint("system_id", "kind", "state", "due_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("cii_systems.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # mlps | inspection
    state: Mapped[str] = mapped_column(String(16))  # due_soon | overdue | unknown
    due_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column()
    delivery: Mapped[str] = mapped_column(Text, default="")


class AssetImport(TenantScoped, Base):
    """One inventory file imported for an organisation: how many assets it added, how many rows
    were already there, and how many were quarantined (kept in ``cii_quarantine`` with the reason)."""

    __tablename__ = "cii_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    system_id: Mapped[int | None] = mapped_column(ForeignKey("cii_systems.id", ondelete="SET NULL"), index=True)
    format: Mapped[str] = mapped_column(String(16))
    spec_version: Mapped[str] = mapped_column(String(32), default="")
    filename: Mapped[str] = mapped_column(String(300), default="")
    sha256: Mapped[str] = mapped_column(String(64))
    added: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(400), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    bad_rows: Mapped[list[QuarantinedRow]] = relationship(back_populates="batch", order_by="QuarantinedRow.id",
                                                          passive_deletes=True)


class QuarantinedRow(TenantScoped, Base):
    """One row of an inventory file that was not imported: where it is, the field, why, and its input."""

    __tablename__ = "cii_quarantine"
    __audit__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("cii_imports.id", ondelete="CASCADE"), index=True)
    location: Mapped[str] = mapped_column(String(300))
    field: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text, default="")

    batch: Mapped[AssetImport] = relationship(back_populates="bad_rows")
