"""Tables of intelligence exchange.

* ``intel_objects`` -- every version of every STIX 2.1 object we hold, as its exact JSON, with the
  sharing facts TLP needs (label, owner organisation, author). TAXII and exports serve these bytes.
* ``indicators`` -- the latest version of each indicator in typed columns, for search, edit and
  matching events against it.
* ``intel_shares`` -- organisations and people an object is shared with (its named recipients).
* ``intel_collections`` (+ access rights, entries) -- TAXII collections; ``intel_taxii_status``.
* ``intel_sightings`` -- sightings of our indicators in the event store.
* ``intel_subscriptions`` / ``intel_misp_peers`` -- partners' TAXII collections and MISP
  instances we pull from and push to; ``intel_state`` -- job watermarks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    exists,
    false,
    select,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from commonwatch.clock import utcnow
from commonwatch.db import Base, BigId, TenantScoped
from commonwatch.intel import tlp


class TlpScoped(TenantScoped):
    """Rows readable under the TLP rule (:func:`commonwatch.intel.tlp.clause`)."""

    @classmethod
    def visible_to(cls, principal) -> ColumnElement[bool]:
        return tlp.clause(principal, tlp=cls.tlp, owner=cls.owner_org_id,  # type: ignore[attr-defined]
                          author=cls.author_user_id, stix_id=cls.stix_id)  # type: ignore[attr-defined]


class IntelObject(TlpScoped, Base):
    """One version of one STIX object, stored as the JSON we received or produced."""

    __tablename__ = "intel_objects"
    __table_args__ = (UniqueConstraint("stix_id", "version"), Index("ix_intel_objects_type_latest", "type", "latest"))
    __audit__ = False  # each import/push/edit is audited as one act with the ids it touched

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    stix_id: Mapped[str] = mapped_column(String(100), index=True)
    type: Mapped[str] = mapped_column(String(64))
    spec_version: Mapped[str] = mapped_column(String(8), default="2.1")
    #: ``modified``, else ``created``, else when we added it (TAXII's version of an object).
    version: Mapped[datetime]
    date_added: Mapped[datetime] = mapped_column(index=True)
    latest: Mapped[bool] = mapped_column(Boolean, default=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    tlp: Mapped[str] = mapped_column(String(16), default="AMBER")
    owner_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="SET NULL"), index=True)
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(200), default="local")
    body: Mapped[str] = mapped_column(Text)


class Indicator(TlpScoped, Base):
    __tablename__ = "indicators"
    __table_args__ = (Index("ix_indicators_kind_key", "kind", "value_key"),
                      Index("ix_indicators_first_last", "first", "last"))

    id: Mapped[int] = mapped_column(primary_key=True)
    stix_id: Mapped[str] = mapped_column(String(100), unique=True)
    #: ipv4, ipv6, cidr, domain, url, md5, sha1, sha256, email, or pattern (any other STIX pattern).
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Text, default="")
    #: The normalised value events are matched on (lower-case domain, hash, address text).
    value_key: Mapped[str] = mapped_column(String(512), default="")
    first: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    last: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    pattern: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(300), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    indicator_types: Mapped[list[Any]] = mapped_column(JSON, default=list)
    labels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    kill_chain_phases: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: STIX ids of related malware / threat actors / intrusion sets ("indicates" relationships).
    related: Mapped[list[Any]] = mapped_column(JSON, default=list)
    confidence: Mapped[int | None] = mapped_column(Integer)
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime | None] = mapped_column(index=True)
    tlp: Mapped[str] = mapped_column(String(16), default="AMBER", index=True)
    owner_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="SET NULL"), index=True)
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(200), default="local")
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime]
    modified: Mapped[datetime]
    #: STIX properties we hold but do not map to a column; written back on export.
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sighting_count: Mapped[int] = mapped_column(Integer, default=0)
    last_seen: Mapped[datetime | None]

    def is_live(self, now: datetime) -> bool:
        return not self.revoked and self.valid_from <= now and (self.valid_until is None or self.valid_until > now)


class IntelShare(Base):
    """An organisation or a person an object (all its versions) is shared with."""

    __tablename__ = "intel_shares"
    __table_args__ = (UniqueConstraint("stix_id", "org_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    stix_id: Mapped[str] = mapped_column(String(100), index=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class IntelCollection(TenantScoped, Base):
    """A TAXII collection. Who may read or write it is in ``intel_collection_access``."""

    __tablename__ = "intel_collections"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    alias: Mapped[str | None] = mapped_column(String(100), unique=True)
    #: The strictest label the collection will serve, whoever reads (its sharing ceiling).
    max_tlp: Mapped[str] = mapped_column(String(16), default="AMBER")
    #: The label given to posted objects that carry no TLP marking.
    default_tlp: Mapped[str] = mapped_column(String(16), default="AMBER")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @classmethod
    def visible_to(cls, principal) -> ColumnElement[bool]:
        if principal.sees_all_tenants:
            return true()
        if not principal.org_ids:
            return false()
        return exists(select(CollectionAccess.id).where(
            CollectionAccess.collection_id == cls.id, CollectionAccess.org_id.in_(sorted(principal.org_ids)),
            (CollectionAccess.can_read | CollectionAccess.can_write)))


class CollectionAccess(Base):
    __tablename__ = "intel_collection_access"
    __table_args__ = (UniqueConstraint("collection_id", "org_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("intel_collections.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    can_read: Mapped[bool] = mapped_column(Boolean, default=True)
    can_write: Mapped[bool] = mapped_column(Boolean, default=False)


class CollectionEntry(Base):
    """An object version in a collection. The id orders the collection (TAXII ``next``)."""

    __tablename__ = "intel_collection_entries"
    __table_args__ = (UniqueConstraint("collection_id", "object_id"),
                      Index("ix_intel_collection_entries_coll_added", "collection_id", "date_added"),
                      # pages are read in entry order within one collection
                      Index("ix_intel_collection_entries_coll_id", "collection_id", "id"))
    __audit__ = False

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("intel_collections.id", ondelete="CASCADE"))
    object_id: Mapped[int] = mapped_column(ForeignKey("intel_objects.id", ondelete="CASCADE"), index=True)
    #: Strictly increasing within a collection, so ``added_after`` never skips or repeats.
    date_added: Mapped[datetime]


class TaxiiStatus(Base):
    """The status resource of one POST of an envelope."""

    __tablename__ = "intel_taxii_status"
    __audit__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("intel_collections.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="complete")
    request_timestamp: Mapped[datetime]
    total_count: Mapped[int] = mapped_column(Integer, default=0)
    success_count: Mapped[int] = mapped_column(Integer, default=0)
    failure_count: Mapped[int] = mapped_column(Integer, default=0)
    pending_count: Mapped[int] = mapped_column(Integer, default=0)
    successes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    failures: Mapped[list[Any]] = mapped_column(JSON, default=list)


class Sighting(TlpScoped, Base):
    """How often an indicator was seen in the event store, per organisation whose network saw it."""

    __tablename__ = "intel_sightings"
    __table_args__ = (UniqueConstraint("indicator_id", "org_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    stix_id: Mapped[str] = mapped_column(String(100), unique=True)
    indicator_id: Mapped[int] = mapped_column(ForeignKey("indicators.id", ondelete="CASCADE"), index=True)
    #: The organisation whose network the events were about (None: outside the constituency).
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="SET NULL"))
    #: ``org_id`` or 0, so the unique constraint also holds for sightings outside the constituency.
    org_key: Mapped[int] = mapped_column(Integer, default=0)
    count: Mapped[int] = mapped_column(Integer, default=0)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    last_event_id: Mapped[int] = mapped_column(BigId, default=0)
    tlp: Mapped[str] = mapped_column(String(16), default="AMBER")
    owner_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="SET NULL"))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    modified: Mapped[datetime]


class Subscription(Base):
    """A partner's TAXII collection we poll (and may push selected indicators to)."""

    __tablename__ = "intel_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    #: The partner organisation this feed comes from: it owns what we take in.
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    collection_url: Mapped[str] = mapped_column(Text)
    username: Mapped[str] = mapped_column(String(200), default="")
    secret: Mapped[str] = mapped_column(Text, default="", info={"audit": "secret"})
    every_minutes: Mapped[int] = mapped_column(Integer, default=60)
    default_tlp: Mapped[str] = mapped_column(String(16), default="AMBER")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: The ``X-TAXII-Date-Added-Last`` of the last page taken in: the next poll asks for later ones.
    added_after: Mapped[str | None] = mapped_column(String(40))
    last_polled_at: Mapped[datetime | None] = mapped_column(info={"audit": "skip"})
    last_error: Mapped[str] = mapped_column(Text, default="", info={"audit": "skip"})


class MispPeer(Base):
    """A MISP instance we pull events from and push events to."""

    __tablename__ = "intel_misp_peers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    api_key: Mapped[str] = mapped_column(Text, info={"audit": "secret"})
    default_tlp: Mapped[str] = mapped_column(String(16), default="AMBER")
    #: MISP ``timestamp`` of the newest event taken in: the next pull asks for later ones.
    last_timestamp: Mapped[int] = mapped_column(Integer, default=0)
    #: paused (False): not pulled on schedule, kept with its settings until resumed
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_polled_at: Mapped[datetime | None] = mapped_column(info={"audit": "skip"})


class IntelState(Base):
    """Small named values the jobs keep between runs (the events watermark)."""

    __tablename__ = "intel_state"
    __audit__ = False

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
