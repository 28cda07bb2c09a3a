"""Feeds fetched over HTTP(S) on a schedule, with the validators of the last fetch."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from commonwatch.clock import utcnow
from commonwatch.db import Base


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
