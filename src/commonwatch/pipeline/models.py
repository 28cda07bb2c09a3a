"""Ingest runs (one per ``commonwatch ingest`` or scheduled fetch) and quarantined records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from commonwatch.clock import utcnow
from commonwatch.db import Base, BigId


class IngestRun(Base):
    """One ingest of one input (a file, a folder or a URL) with what became of its records."""

    __tablename__ = "ingest_runs"
    __audit__ = False  # audited as one act when the run ends (access.audit.record)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    feed: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(400), default="system")
    #: running | done | failed | interrupted (its process was killed mid-way: the next start finds it,
    #: see ``runner.mark_interrupted``; re-running the input completes it)
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)
    #: The process that runs it, so a later start can tell a run whose process is gone.
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255), default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None]
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    events_stored: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)
    notes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    error: Mapped[str] = mapped_column(Text, default="")


class QuarantinedRecord(Base):
    """A record that did not become an event, kept whole with the reason, its source and line."""

    __tablename__ = "quarantine"
    __audit__ = False

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: Stable identity (feed, source, line, raw): re-ingesting the same input quarantines it once.
    record_key: Mapped[str] = mapped_column(String(64), unique=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id", ondelete="SET NULL"), index=True)
    feed_name: Mapped[str] = mapped_column(String(500), index=True)
    source: Mapped[str] = mapped_column(Text)
    line: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
