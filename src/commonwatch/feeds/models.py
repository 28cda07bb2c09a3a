"""Feeds fetched over HTTP(S) on a schedule, with the validators of the last fetch; what each run
brought of each feed and the faults the feed-health job found (``feeds.health``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from commonwatch.clock import utcnow
from commonwatch.db import Base, BigId


class FeedSubscription(Base):
    __tablename__ = "feed_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(Text)
    #: the parser, as on the command line (shadowserver, urlhaus, generic:PATH, ...)
    feed: Mapped[str] = mapped_column(String(500))
    every_minutes: Mapped[int] = mapped_column(Integer, default=60)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    etag: Mapped[str] = mapped_column(String(500), default="")
    last_modified: Mapped[str] = mapped_column(String(100), default="")
    last_fetched_at: Mapped[datetime | None]
    last_status: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FeedRunStats(Base):
    """What one ingest run brought of one feed (a run over a folder of Shadowserver reports has a row
    per report): volume, quarantine, constituency matches, the file's content hash and its header
    against the mapping. Written once per run at ingest by ``feeds.health.RunRecorder``."""

    __tablename__ = "feed_run_stats"
    __audit__ = False  # covered by the ingest run's one audit act (pipeline.runner.finish_run)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("ingest_runs.id", ondelete="CASCADE"), index=True)
    feed_name: Mapped[str] = mapped_column(String(500), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    events: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)
    #: events whose source matched an organisation of the constituency
    matched: Mapped[int] = mapped_column(Integer, default=0)
    #: SHA-256 of the bytes the parser read (every source of this feed in the run, in order)
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    header: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: columns of the header the mapping does not know (kept under ``extra.*``)
    new_columns: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: columns the mapping requires that the header lacks
    missing_columns: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: whether the feed has a mapping to hold the header against; how many header columns it knows
    has_mapping: Mapped[bool] = mapped_column(Boolean, default=False)
    known_columns: Mapped[int] = mapped_column(Integer, default=0)
    #: the scheduled feed (``feed_subscriptions.name``) whose fetch made the run; "" for others
    subscription: Mapped[str] = mapped_column(String(100), default="")


class FeedFault(Base):
    """One episode of one fault of one feed (late, empty, same file, new column, ...): opened when the
    health job first sees it, alerted once, closed when the job no longer sees it."""

    __tablename__ = "feed_faults"

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_name: Mapped[str] = mapped_column(String(500), index=True)
    #: late | empty | same_file | new_column | missing_column | renamed | quarantine | volume
    kind: Mapped[str] = mapped_column(String(32))
    opened_at: Mapped[datetime] = mapped_column(index=True)
    closed_at: Mapped[datetime | None] = mapped_column(index=True)
    #: what the reason is built from (columns, rate, band, cadence ...), in no language
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    alerted_at: Mapped[datetime | None]
    delivery: Mapped[str] = mapped_column(Text, default="")
