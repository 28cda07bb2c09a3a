"""Lists: the parameters of a list page (sort, direction, cursor, free text and filters) checked
once, and one keyset walk shared by every list and the event store.

A list page is a plain GET URL (``?q=...&status=open&sort=severity&dir=asc``), so a filter set
can be bookmarked or sent as a link. Each list names the columns it may be sorted by
(:class:`ListSpec.sorts`); anything else is refused with the field named. Rows are ordered by
``(sort key, id)`` so rows that tie on the key keep one stable order, and a page continues from
the position of the last row shown (a keyset cursor) instead of an OFFSET that reads and throws
away every earlier row.

:func:`walk_page` is the walk itself (limit + 1 rows to know whether there is more, the rows of
a "previous" page read backwards then turned round); the event store's pages use it too.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from commonwatch.clock import ensure_utc
from commonwatch.errors import FieldError, Invalid
from commonwatch.i18n import _

DEFAULT_PER_PAGE = 50
#: The parameters every list understands; a list's own filters are named in its spec.
LIST_PARAMS = ("sort", "dir", "cursor", "before")
#: The longest free text or filter value a list takes (as the search fields of the API).
MAX_FILTER_CHARS = 1000


@dataclass(frozen=True)
class ListSpec:
    """What one list may be sorted and filtered by.

    ``sorts`` maps a sort key (as it appears in the URL) to a column expression that is never
    NULL (wrap a nullable column in ``coalesce``): a NULL would make the keyset comparison lose
    rows. ``id_column`` breaks ties and must be unique.
    """

    path: str
    id_column: Any
    sorts: Mapping[str, Any]
    default_sort: str
    default_desc: bool = True
    #: The list's own filter parameters (kept in every sort and page link), ``q`` included.
    filters: tuple[str, ...] = ("q",)
    per_page: int = DEFAULT_PER_PAGE


@dataclass(frozen=True)
class ListQuery:
    """A checked list request."""

    sort: str
    descending: bool
    after: tuple[Any, int] | None = None
    before: tuple[Any, int] | None = None
    #: The filter parameters given (non-empty), as they were typed.
    params: Mapping[str, str] = field(default_factory=dict)


# --- cursors ------------------------------------------------------------------------------------------

def encode_cursor(value: Any, ident: int) -> str:
    """A position ``(sort value, id)`` as an opaque URL-safe token."""
    if isinstance(value, datetime):
        item: list[Any] = ["t", ensure_utc(value).isoformat(), ident]
    elif isinstance(value, bool) or not isinstance(value, int | float | str):
        item = ["s", str(value), ident]
    else:
        item = ["n" if not isinstance(value, str) else "s", value, ident]
    raw = json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(token: str, field_name: str = "cursor") -> tuple[Any, int]:
    """The position a token from :func:`encode_cursor` stands for; :class:`Invalid` otherwise."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        tag, value, ident = json.loads(raw.decode("utf-8"))
        if not isinstance(ident, int) or isinstance(ident, bool):
            raise ValueError(ident)
        if tag == "t":
            value = ensure_utc(datetime.fromisoformat(value))
        elif tag == "n":
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(value)
        elif tag != "s" or not isinstance(value, str):
            raise ValueError(tag)
        return value, ident
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
        raise Invalid(field_name, _("is not a cursor this server gave out")) from None


# --- parsing --------------------------------------------------------------------------------------------

def parse_list_query(spec: ListSpec, params: Mapping[str, Any]) -> ListQuery:
    """Check ``sort``, ``dir`` and the cursors against ``spec``; every bad one is named."""
    errors: list[FieldError] = []
    sort = str(params.get("sort") or "").strip() or spec.default_sort
    if sort not in spec.sorts:
        errors.append(FieldError("sort", _("“{value}” is not one of: {choices}").format(
            value=sort, choices=", ".join(spec.sorts))))
    direction = str(params.get("dir") or "").strip().lower()
    if direction not in ("", "asc", "desc"):
        errors.append(FieldError("dir", _("“{value}” is not one of: {choices}").format(
            value=direction, choices="asc, desc")))
    descending = spec.default_desc if not direction else direction == "desc"
    after = before = None
    cursor, back = str(params.get("cursor") or ""), str(params.get("before") or "")
    if cursor and back:
        errors.append(FieldError("before", _("give either “cursor” or “before”, not both")))
    for name, token in (("cursor", cursor), ("before", back)):
        if token:
            try:
                position = decode_cursor(token, name)
            except Invalid as exc:
                errors.extend(exc.errors)
                continue
            if name == "cursor":
                after = position
            else:
                before = position
    given = {k: str(params[k]).strip() for k in spec.filters if str(params.get(k) or "").strip()}
    for name, text in given.items():
        if len(text) > MAX_FILTER_CHARS:
            errors.append(FieldError(name, _("is longer than {n} characters").format(n=MAX_FILTER_CHARS)))
    if errors:
        raise Invalid(errors)
    return ListQuery(sort=sort, descending=descending, after=after, before=before, params=given)


# --- the walk ---------------------------------------------------------------------------------------------

@dataclass
class ListPage:
    """One page of a list, with what its links need."""

    items: list[Any]
    next_cursor: str | None = None
    prev_cursor: str | None = None
    total: int | None = None
    total_exact: bool = True
    limit: int = DEFAULT_PER_PAGE
    spec: ListSpec | None = None
    query: ListQuery | None = None

    # links, for the list macros -------------------------------------------------------------------
    def _url(self, **extra: str | None) -> str:
        assert self.spec is not None and self.query is not None
        params = dict(self.query.params)
        params.update({k: v for k, v in extra.items() if v})
        return self.spec.path + ("?" + urlencode(params) if params else "")

    def _order(self) -> dict[str, str | None]:
        assert self.spec is not None and self.query is not None
        default = self.query.sort == self.spec.default_sort and self.query.descending == self.spec.default_desc
        return {} if default else {"sort": self.query.sort, "dir": "desc" if self.query.descending else "asc"}

    def sort_link(self, key: str) -> str:
        """The list sorted by ``key``: the other way round when it is already sorted by it."""
        assert self.query is not None
        if key == self.query.sort:
            return self._url(sort=key, dir="asc" if self.query.descending else "desc")
        return self._url(sort=key, dir="desc")

    def sort_state(self, key: str) -> str:
        """``ascending``/``descending`` for the column the list is sorted by, else ``none`` (aria-sort)."""
        assert self.query is not None
        if key != self.query.sort:
            return "none"
        return "descending" if self.query.descending else "ascending"

    @property
    def self_link(self) -> str:
        """This filter set and order from its first page: the link to save or share."""
        return self._url(**self._order())

    @property
    def next_link(self) -> str | None:
        return self._url(**self._order(), cursor=self.next_cursor) if self.next_cursor else None

    @property
    def prev_link(self) -> str | None:
        return self._url(**self._order(), before=self.prev_cursor) if self.prev_cursor else None

    @property
    def first_link(self) -> str | None:
        assert self.query is not None
        return self.self_link if (self.query.after or self.query.before) else None

    @property
    def hidden_order(self) -> dict[str, str]:
        """The order as hidden form fields, so filtering keeps the chosen sort."""
        return {k: v for k, v in self._order().items() if v}


def walk_page(ordered: Callable[..., list[Any]], position: Callable[[Any], str], *, limit: int,
              after: Any = None, before: Any = None, total: int | None = None, exact: bool = True) -> ListPage:
    """One page of a keyset walk from ``ordered(limit=, after=|before=)``.

    ``ordered`` returns rows in list order after ``after``, or in reverse order (nearest first)
    before ``before``; ``position`` gives the cursor token of a row. The next/previous cursors are
    set only when there is a page there."""
    if before is not None:
        rows = ordered(limit=limit + 1, before=before)
        more = len(rows) > limit
        rows = rows[:limit][::-1]
        page = ListPage(rows, limit=limit)
        page.prev_cursor = position(rows[0]) if rows and more else None
        page.next_cursor = position(rows[-1]) if rows else None
    else:
        rows = ordered(limit=limit + 1, after=after)
        more = len(rows) > limit
        rows = rows[:limit]
        page = ListPage(rows, limit=limit)
        page.next_cursor = position(rows[-1]) if rows and more else None
        page.prev_cursor = position(rows[0]) if rows and after is not None else None
    page.total, page.total_exact = total, exact
    return page


def keyset_condition(key: Any, id_column: Any, value: Any, ident: int, *, descending: bool) -> ColumnElement[bool]:
    """Rows strictly past ``(value, ident)`` in the ``(key, id)`` order (descending or not)."""
    if descending:
        return or_(key < value, and_(key == value, id_column < ident))
    return or_(key > value, and_(key == value, id_column > ident))


def ordered_rows(session: Session, stmt: Select, spec: ListSpec, q: ListQuery, *, limit: int,
                 after: tuple[Any, int] | None = None, before: tuple[Any, int] | None = None) -> list[Any]:
    """Up to ``limit`` rows of ``stmt`` (a scoped select of one entity, or of an entity and more)
    in the list's order after ``after``, or in reverse order before ``before``.

    The sort value rides along as a labelled column, so the cursor of any row is known
    without knowing how the key was computed (a ``case`` rank, a ``coalesce``)."""
    key = spec.sorts[q.sort]
    descending = q.descending if before is None else not q.descending
    if after is not None or before is not None:
        value, ident = after if after is not None else before  # type: ignore[misc]
        stmt = stmt.where(keyset_condition(key, spec.id_column, value, ident, descending=descending))
    order = (key.desc(), spec.id_column.desc()) if descending else (key.asc(), spec.id_column.asc())
    stmt = stmt.add_columns(key.label("_sort_value"), spec.id_column.label("_sort_id"))
    return list(session.execute(stmt.order_by(None).order_by(*order).limit(limit)).all())


def count_rows(session: Session, stmt: Select) -> int:
    """How many rows a (scoped) list statement selects."""
    return session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0


def list_page(session: Session, stmt: Select, spec: ListSpec, q: ListQuery, *,
              count: bool = True) -> ListPage:
    """One page of a scoped ``stmt`` in the order of ``q``, with the number of rows it selects.

    ``stmt`` must already be under the reader's tenancy (``db.scope``): this function only orders,
    cuts and counts. Each item is the row's selected entities: a single entity comes back as is,
    several as a tuple."""
    total = count_rows(session, stmt) if count else None
    width = len(stmt.column_descriptions)

    def ordered(*, limit: int, after: Any = None, before: Any = None) -> list[Any]:
        return ordered_rows(session, stmt, spec, q, limit=limit, after=after, before=before)

    page = walk_page(ordered, lambda row: encode_cursor(row._sort_value, row._sort_id), limit=spec.per_page,
                     after=q.after, before=q.before, total=total)
    page.items = [row[0] if width == 1 else tuple(row[:width]) for row in page.items]
    page.spec, page.query = spec, q
    return page


def empty_page(spec: ListSpec, params: Mapping[str, Any]) -> ListPage:
    """The page shown when the request was refused: no rows, links back to the plain list."""
    given = {k: str(params[k]).strip() for k in spec.filters if str(params.get(k) or "").strip()}
    page = ListPage([], total=0, limit=spec.per_page)
    page.spec, page.query = spec, ListQuery(sort=spec.default_sort, descending=spec.default_desc, params=given)
    return page


# --- bulk acts ---------------------------------------------------------------------------------------------

#: At most this many rows in one bulk act (a page is 50; "select all" never exceeds a few pages).
MAX_BULK = 500


def parse_bulk_ids(values: Sequence[Any], field_name: str = "ids") -> list[int]:
    """The selected row ids of a bulk form (``ids`` repeated), unique and in the order given."""
    out: list[int] = []
    for item in values:
        text = str(item).strip()
        if not text.isdigit() or len(text) > 18 or int(text) <= 0:
            raise Invalid(field_name, _("“{value}” is not an id").format(value=item))
        if int(text) not in out:
            out.append(int(text))
    if not out:
        raise Invalid(field_name, _("select at least one row"))
    if len(out) > MAX_BULK:
        raise Invalid(field_name, _("lists more than {n} ids").format(n=MAX_BULK))
    return out


@dataclass
class BulkPlan:
    """What a bulk act will do: the rows it may touch and those it refuses (with why)."""

    action: str
    allowed: list[int]
    refused: list[int] = field(default_factory=list)
