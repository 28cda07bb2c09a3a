"""The event store: one row per security event (one observation about one network resource).

Columns are the IntelMQ harmonisation field names with dots as underscores (``source.ip`` ->
``source_ip``); ``commonwatch.events.schema`` maps between the two spellings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
    or_,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from commonwatch.clock import utcnow
from commonwatch.db import Base, BigId, TenantScoped


class Event(TenantScoped, Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_org_time", "org_id", "time_source"),
        Index("ix_events_type_time", "classification_type", "time_source"),
        # Few events are routed abroad: a partial index costs the bulk insert almost nothing.
        Index("ix_events_partner_time", "partner_org_id", "time_source",
              sqlite_where=text("partner_org_id IS NOT NULL"), postgresql_where=text("partner_org_id IS NOT NULL")),
    )
    __audit__ = False  # bulk data: each ingest run is audited as one act
    # Each index costs every bulk insert; feed, country, severity and batch filters ride on the
    # time and organisation indexes instead of having their own.

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: Stable identity of the observation (``event.key``): the same input yields the same key.
    event_key: Mapped[str] = mapped_column(String(64), unique=True)
    time_source: Mapped[datetime] = mapped_column(index=True)
    time_observation: Mapped[datetime]
    feed_name: Mapped[str] = mapped_column(String(100))
    feed_provider: Mapped[str] = mapped_column(String(100), default="")
    source_ip: Mapped[str | None] = mapped_column(String(45))
    #: 16-byte big-endian address (IPv4 mapped), for CIDR searches by byte range.
    source_ip_bin: Mapped[bytes | None] = mapped_column(LargeBinary(16), index=True)
    source_port: Mapped[int | None] = mapped_column(Integer)
    source_asn: Mapped[int | None] = mapped_column(BigInteger, index=True)
    source_as_name: Mapped[str | None] = mapped_column(String(200))
    source_cc: Mapped[str | None] = mapped_column(String(2))
    source_fqdn: Mapped[str | None] = mapped_column(String(253))
    source_url: Mapped[str | None] = mapped_column(Text)
    source_reverse_dns: Mapped[str | None] = mapped_column(String(253))
    destination_ip: Mapped[str | None] = mapped_column(String(45))
    destination_port: Mapped[int | None] = mapped_column(Integer)
    destination_fqdn: Mapped[str | None] = mapped_column(String(253))
    protocol_transport: Mapped[str | None] = mapped_column(String(16))
    protocol_application: Mapped[str | None] = mapped_column(String(64))
    classification_taxonomy: Mapped[str] = mapped_column(String(64))
    classification_type: Mapped[str] = mapped_column(String(64))
    classification_identifier: Mapped[str | None] = mapped_column(String(200))
    malware_name: Mapped[str | None] = mapped_column(String(200))
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: ``constituent.org_id``: the organisation whose network the resource is in.
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="SET NULL"))
    #: The partner CERT abroad the event is routed to when the host is in its country.
    partner_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="SET NULL"))
    constituent_sector: Mapped[str | None] = mapped_column(String(64))
    constituent_cii: Mapped[bool] = mapped_column(Boolean, default=False)
    severity: Mapped[str] = mapped_column(String(16), default="low")
    gbt_category: Mapped[str | None] = mapped_column(String(64))
    tlp: Mapped[str] = mapped_column(String(16), default="AMBER")
    batch_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @classmethod
    def visible_to(cls, principal) -> ColumnElement[bool]:
        if principal.sees_all_tenants:
            return true()
        if not principal.org_ids:
            return false()
        ids = sorted(principal.org_ids)
        return or_(cls.org_id.in_(ids), cls.partner_org_id.in_(ids))
