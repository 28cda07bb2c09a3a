"""Address ranges with their AS number, AS name and country, loaded from operator files."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from commonwatch.clock import utcnow
from commonwatch.db import Base, BigId


class EnrichmentRange(Base):
    """One address range from one reference file. ``first``/``last`` are ``net.ip_key`` values."""

    __tablename__ = "enrichment_ranges"
    __table_args__ = (Index("ix_enrichment_ranges_kind_first", "kind", "first"),)
    __audit__ = False  # reference data: each load is audited as one act

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: mmdb | iptoasn | rir: one load replaces every range of its kind
    kind: Mapped[str] = mapped_column(String(16))
    first: Mapped[bytes] = mapped_column(LargeBinary(16))
    last: Mapped[bytes] = mapped_column(LargeBinary(16))
    asn: Mapped[int | None] = mapped_column(BigInteger)
    as_name: Mapped[str | None] = mapped_column(String(200))
    cc: Mapped[str | None] = mapped_column(String(2))


class EnrichmentLoad(Base):
    """What was loaded, from which file, when: shown by ``commonwatch enrichment status``."""

    __tablename__ = "enrichment_loads"
    __audit__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    file_name: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    ranges: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)
