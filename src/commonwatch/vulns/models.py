"""Vulnerability tables.

* ``vuln_records`` -- the current version of each record (one per ``source:record_id``: a CVE 5
  record, an NVD entry, an OSV entry, one vulnerability of a CSAF advisory), with its criteria as
  the matcher reads them; not tenant data (public advisories).
* ``vuln_record_versions`` -- every earlier version of a record, kept when a newer one replaces it.
* ``vuln_quarantine`` -- input refused, with the reason and the raw bytes (bounded).
* ``vuln_kev`` / ``vuln_epss`` -- the CISA KEV catalogue and the FIRST EPSS scores, by CVE id.
* ``vuln_findings`` -- one row per asset and vulnerability a match found; tenant data (``org_id``).
  Its status (open, mitigated, accepted risk, false positive) and reason survive re-matching.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from commonwatch.clock import utcnow
from commonwatch.db import Base, TenantScoped

FINDING_STATUSES = ("open", "mitigated", "accepted_risk", "false_positive")


class VulnRecord(Base):
    __tablename__ = "vuln_records"
    __audit__ = False  # bulk intake; each import records one act in the audit log

    id: Mapped[int] = mapped_column(primary_key=True)
    record_key: Mapped[str] = mapped_column(String(300), unique=True)
    source: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str] = mapped_column(String(250))
    vuln_id: Mapped[str] = mapped_column(String(250), index=True)
    state: Mapped[str] = mapped_column(String(16), default="PUBLISHED")
    modified: Mapped[str] = mapped_column(String(64), default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    title: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    aliases: Mapped[list[Any]] = mapped_column(JSON, default=list)
    cvss: Mapped[list[Any]] = mapped_column(JSON, default=list)
    cwes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    kev: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    criteria: Mapped[list[Any]] = mapped_column(JSON, default=list)
    raw: Mapped[str] = mapped_column(Text, default="")
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A CSAF advisory read from a provider: {provider, publisher, role, integrity (signed | unsigned |
    # unverified), hash (the algorithm whose file matched), signer (fingerprint), checked_at,
    # failures: [{test: R2 | R18 | R19 | R20, path, reason}] that did not stop the advisory}
    provenance: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class VulnRecordVersion(Base):
    __tablename__ = "vuln_record_versions"
    __audit__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("vuln_records.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    modified: Mapped[str] = mapped_column(String(64), default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    raw: Mapped[str] = mapped_column(Text, default="")
    replaced_at: Mapped[datetime] = mapped_column(default=utcnow)


class VulnQuarantine(Base):
    __tablename__ = "vuln_quarantine"
    __audit__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A CSAF advisory's failed checks: [{test: "schema" | "6.1.n", path, reason}]
    failures: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)


class VulnKev(Base):
    __tablename__ = "vuln_kev"
    __audit__ = False

    cve_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    vendor_project: Mapped[str] = mapped_column(String(300))
    product: Mapped[str] = mapped_column(String(300))
    name: Mapped[str] = mapped_column(Text)
    date_added: Mapped[str] = mapped_column(String(10))
    due_date: Mapped[str] = mapped_column(String(10))
    required_action: Mapped[str] = mapped_column(Text)
    ransomware: Mapped[str] = mapped_column(String(16), default="Unknown")
    catalog_version: Mapped[str] = mapped_column(String(32), default="")


class VulnEpss(Base):
    __tablename__ = "vuln_epss"
    __audit__ = False

    cve_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    epss: Mapped[float] = mapped_column(Float)
    percentile: Mapped[float] = mapped_column(Float)
    score_date: Mapped[str] = mapped_column(String(32), default="")


class VulnFinding(TenantScoped, Base):
    __tablename__ = "vuln_findings"
    __table_args__ = (UniqueConstraint("asset_id", "vuln_id", name="asset_vuln"),
                      CheckConstraint("status IN ('open', 'mitigated', 'accepted_risk', 'false_positive')",
                                      name="status_known"))

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    # cii_assets.id; no foreign key, so this branch needs no depends_on (alembic leaves a dependency
    # head out of alembic_version, which migrate.is_current counts as not current); a match run
    # closes the findings of assets that are gone.
    asset_id: Mapped[int] = mapped_column(Integer, index=True)
    system_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    vuln_id: Mapped[str] = mapped_column(String(250), index=True)
    record_key: Mapped[str] = mapped_column(String(300))
    identifier: Mapped[str] = mapped_column(String(1100))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    status_reason: Mapped[str] = mapped_column(Text, default="")
    matched: Mapped[bool] = mapped_column(default=True)  # False: the last match no longer found it
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    # Early warning: when the operator's security contacts were warned, and to whom (or why not).
    warned_at: Mapped[datetime | None] = mapped_column(nullable=True)
    warning_delivery: Mapped[str] = mapped_column(Text, default="")


class VulnSource(Base):
    """A URL on the collector's allowlist that advisories are fetched from, with the validators of the
    last fetch so the next one is a conditional request."""

    __tablename__ = "vuln_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="records")  # records | kev | epss
    etag: Mapped[str] = mapped_column(String(500), default="")
    last_modified: Mapped[str] = mapped_column(String(100), default="")
    last_status: Mapped[str] = mapped_column(Text, default="")
    fetched_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # A CSAF provider's delta cursor: the newest current_release_date (changes.csv) or ROLIE
    # "updated" taken so far; advisories not newer are not fetched again.
    cursor: Mapped[str] = mapped_column(String(64), default="", server_default="")
