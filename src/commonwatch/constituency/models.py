"""The constituency: organisations, their networks, AS numbers and domains, and their contacts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
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
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from commonwatch.clock import utcnow
from commonwatch.db import Base, TenantScoped


class OrgKind(StrEnum):
    NETWORK_OPERATOR = "network-operator"
    CII_OPERATOR = "cii-operator"
    GOVERNMENT = "government"
    PARTNER_CERT = "partner-cert"
    OTHER = "other"


NOTICE_KINDS = ("early-warning", "incidents", "advisories", "reports")
CONTACT_ROLES = ("abuse", "security", "management", "technical", "legal", "other")


class Organisation(TenantScoped, Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300), index=True)
    name_local: Mapped[str] = mapped_column(String(300), default="")
    kind: Mapped[str] = mapped_column(String(32), index=True)
    sector: Mapped[str] = mapped_column(String(64), default="none")
    country: Mapped[str] = mapped_column(String(2), default="CN")
    region: Mapped[str] = mapped_column(String(100), default="")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="SET NULL"), index=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    networks: Mapped[list[Network]] = relationship(back_populates="org", cascade="all, delete-orphan",
                                                   order_by="Network.cidr")
    asns: Mapped[list[OrgAsn]] = relationship(back_populates="org", cascade="all, delete-orphan",
                                              order_by="OrgAsn.asn")
    domains: Mapped[list[Domain]] = relationship(back_populates="org", cascade="all, delete-orphan",
                                                 order_by="Domain.name")
    contacts: Mapped[list[Contact]] = relationship(back_populates="org", cascade="all, delete-orphan",
                                                   order_by="Contact.email")
    parent: Mapped[Organisation | None] = relationship(remote_side="Organisation.id")

    @property
    def is_cii(self) -> bool:
        return self.kind == OrgKind.CII_OPERATOR

    @classmethod
    def visible_to(cls, principal) -> ColumnElement[bool]:
        if principal.sees_all_tenants:
            return true()
        if not principal.org_ids:
            return false()
        return cls.id.in_(sorted(principal.org_ids))


class Network(TenantScoped, Base):
    """An IPv4 or IPv6 prefix. ``first``/``last`` are 16-byte big-endian addresses (IPv4 mapped
    into ::ffff:0:0/96) so one byte comparison answers "is this address inside" on every engine."""

    __tablename__ = "networks"
    __table_args__ = (UniqueConstraint("org_id", "cidr"), Index("ix_networks_first_last", "first", "last"))

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    cidr: Mapped[str] = mapped_column(String(64))
    family: Mapped[int] = mapped_column(Integer)
    prefixlen: Mapped[int] = mapped_column(Integer)
    first: Mapped[bytes] = mapped_column(LargeBinary(16))
    last: Mapped[bytes] = mapped_column(LargeBinary(16))
    description: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    org: Mapped[Organisation] = relationship(back_populates="networks")


class OrgAsn(TenantScoped, Base):
    __tablename__ = "org_asns"
    __table_args__ = (UniqueConstraint("org_id", "asn"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    asn: Mapped[int] = mapped_column(BigInteger, index=True)
    description: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    org: Mapped[Organisation] = relationship(back_populates="asns")


class Domain(TenantScoped, Base):
    """A domain and all its subdomains, stored in ASCII (A-label) form."""

    __tablename__ = "domains"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(253), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    org: Mapped[Organisation] = relationship(back_populates="domains")


class Contact(TenantScoped, Base):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("org_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(32), default="abuse")
    language: Mapped[str] = mapped_column(String(10), default="zh-CN")
    phone: Mapped[str] = mapped_column(String(64), default="")
    pgp_key: Mapped[str] = mapped_column(Text, default="")
    pgp_fingerprint: Mapped[str] = mapped_column(String(64), default="")
    pgp_expires_at: Mapped[datetime | None]
    notices: Mapped[list[Any]] = mapped_column(JSON, default=lambda: list(NOTICE_KINDS))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    org: Mapped[Organisation] = relationship(back_populates="contacts")

    def wants(self, notice: str) -> bool:
        return self.active and notice in (self.notices or [])

