"""Named saved filters: a person keeps the filter set of a list (its plain GET link) under a name,
to come back to it; lists, renames and deletes their own. A saved filter is its owner's alone
(:meth:`SavedFilter.visible_to`: even an administrator reads only theirs); to share one, the
owner sends its link, which opens under the reader's own tenancy. Every change is audited as a
row change (the session's audit hook)."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from commonwatch.access.principal import Principal
from commonwatch.clock import utcnow
from commonwatch.db import Base, TenantScoped, get_scoped, scope
from commonwatch.errors import FieldError, Invalid, NotFound
from commonwatch.i18n import _
from commonwatch.textio import control_char_errors

MAX_NAME = 100
MAX_QUERY = 2000
#: A list's path: a page of this app (no scheme, no host, no ``//``), as the list specs name them.
_PATH_RE = re.compile(r"^/[a-z0-9][a-z0-9/_-]{0,198}$")
#: A person keeps at most this many.
MAX_PER_USER = 200
#: Parameters that are a place in a walk, not part of a filter set (a saved filter opens on page 1).
_NOT_KEPT = frozenset({"cursor", "before", "csrf_token"})


class SavedFilter(TenantScoped, Base):
    __tablename__ = "saved_filters"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME))
    #: The list's path (``/events``) and its query string, as the list's own link has them.
    path: Mapped[str] = mapped_column(String(200))
    query: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @classmethod
    def visible_to(cls, principal: Principal) -> ColumnElement[bool]:
        return cls.user_id == (principal.user_id or -1)

    @property
    def link(self) -> str:
        return self.path + ("?" + self.query if self.query else "")


def clean_link(path: str, query: str) -> tuple[str, str]:
    """The list path and its filter parameters (without a page position), checked."""
    errors: list[FieldError] = []
    path = (path or "").strip()
    if "?" in path:
        path, _sep, rest = path.partition("?")
        query = query or rest
    if not _PATH_RE.match(path) or "//" in path:
        errors.append(FieldError("path", _("is not a list of this site")))
    pairs = [(k, v) for k, v in parse_qsl((query or "").lstrip("?"), keep_blank_values=False)
             if k not in _NOT_KEPT]
    text = urlencode(pairs)
    if len(text) > MAX_QUERY:
        errors.append(FieldError("query", _("is longer than {n} characters").format(n=MAX_QUERY)))
    if errors:
        raise Invalid(errors)
    return path, text


def _check_name(name: str) -> str:
    name = (name or "").strip()
    errors: list[FieldError] = []
    if not name:
        errors.append(FieldError("name", _("give it a name")))
    elif len(name) > MAX_NAME:
        errors.append(FieldError("name", _("is longer than {n} characters").format(n=MAX_NAME)))
    errors += control_char_errors({"name": name})
    if errors:
        raise Invalid(errors)
    return name


def _name_taken(session: Session, principal: Principal, name: str, but: int | None = None) -> bool:
    stmt = scope(select(SavedFilter.id), principal, SavedFilter).where(SavedFilter.name == name)
    if but is not None:
        stmt = stmt.where(SavedFilter.id != but)
    return session.scalar(stmt) is not None


def my_filters(session: Session, principal: Principal, path: str | None = None) -> list[SavedFilter]:
    stmt = scope(select(SavedFilter), principal, SavedFilter)
    if path:
        stmt = stmt.where(SavedFilter.path == path)
    return list(session.scalars(stmt.order_by(SavedFilter.path, SavedFilter.name, SavedFilter.id)))


def save(session: Session, principal: Principal, name: str, path: str, query: str, *,
         now: datetime) -> SavedFilter:
    if not principal.user_id:
        raise Invalid("name", _("only a signed-in person keeps saved filters"))
    name = _check_name(name)
    path, query = clean_link(path, query)
    if _name_taken(session, principal, name):
        raise Invalid("name", _("you already have a saved filter named “{name}”").format(name=name))
    count = len(my_filters(session, principal))
    if count >= MAX_PER_USER:
        raise Invalid("name", _("you keep {n} saved filters already; delete one first").format(n=count))
    row = SavedFilter(user_id=principal.user_id, name=name, path=path, query=query, created_at=now)
    session.add(row)
    session.flush()
    return row


def _mine(session: Session, principal: Principal, filter_id: int) -> SavedFilter:
    row = get_scoped(session, principal, SavedFilter, filter_id)
    if row is None:
        raise NotFound("saved filter")
    return row


def rename(session: Session, principal: Principal, filter_id: int, name: str) -> SavedFilter:
    row = _mine(session, principal, filter_id)
    name = _check_name(name)
    if _name_taken(session, principal, name, but=row.id):
        raise Invalid("name", _("you already have a saved filter named “{name}”").format(name=name))
    row.name = name
    session.flush()
    return row


def delete(session: Session, principal: Principal, filter_id: int) -> str:
    row = _mine(session, principal, filter_id)
    name = row.name
    session.delete(row)
    session.flush()
    return name


