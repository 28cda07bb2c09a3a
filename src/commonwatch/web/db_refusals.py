"""What the database refuses, answered as the client's mistake instead of a 500: a number wider than
a column (422 naming the parameter), a duplicate value (409 naming the field), a row that other
rows still hold (409 saying which), a reference to a row that does not exist or a missing value (422).

The app's exception handlers call these; they are the one place such refusals are worded, so a
route does not need its own try/except around every flush.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import DataError, IntegrityError
from starlette.requests import Request

from commonwatch.i18n import _
from commonwatch.web.middleware import INT64_MAX, INT64_MIN

_UNIQUE = (re.compile(r"UNIQUE constraint failed: ([\w., ]+)"),  # SQLite
           re.compile(r"Key \(([^)]+)\)=\(.*\) already exists"))  # PostgreSQL
_NOT_NULL = (re.compile(r"NOT NULL constraint failed: \w+\.(\w+)"),
             re.compile(r'null value in column "(\w+)"'))
_DELETE = re.compile(r"^\s*DELETE FROM (\w+)", re.IGNORECASE)


def _detail(loc: list[Any], msg: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": "value_error"}


def out_of_range(request: Request) -> list[dict[str, Any]]:
    """The 422 detail for a number too wide for the database, naming the path or query parameter."""
    found = []
    for where, params in (("path", request.path_params), ("query", request.query_params)):
        for key, value in params.items():
            text = str(value).strip()
            if re.fullmatch(r"[+-]?\d+", text) and not INT64_MIN <= int(text) <= INT64_MAX:
                found.append(_detail([where, key], _("is outside the range of a 64-bit integer (-2^63 to 2^63-1)")))
    return found or [_detail(["body"], _("a number is outside the range the database can store"))]


def _columns(text: str) -> list[str]:
    for pattern in _UNIQUE:
        if m := pattern.search(text):
            return [c.strip().rsplit(".", 1)[-1] for c in m.group(1).split(",")]
    return []


def _holders(request: Request, statement: str, params: Any) -> list[str]:
    """For a refused DELETE: "table (n rows)" for each table whose rows still refer to the row."""
    from commonwatch.db import Base

    m = _DELETE.match(statement or "")
    if not m or not params:
        return []
    table = Base.metadata.tables.get(m.group(1))
    value = (params[0] if isinstance(params, list | tuple) else next(iter(params.values()), None))
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if table is None or value is None:
        return []
    out = []
    with request.app.state.sessionmaker() as session:
        for other in Base.metadata.sorted_tables:
            for fk in other.foreign_keys:
                if fk.column.table is table and (fk.ondelete or "").upper() not in ("CASCADE", "SET NULL"):
                    n = session.scalar(select(func.count()).select_from(other).where(fk.parent == value))
                    if n:
                        out.append(f"{other.name} ({n})")
    return out


def integrity(request: Request, exc: IntegrityError) -> tuple[int, list[dict[str, Any]] | str]:
    """The status and detail for a refused write."""
    text = str(exc.orig)
    if columns := _columns(text):
        return 409, [_detail(["body", c], _("another record already has this {field}").format(field=c))
                     for c in columns]
    for pattern in _NOT_NULL:
        if m := pattern.search(text):
            return 422, [_detail(["body", m.group(1)], _("is required"))]
    if "FOREIGN KEY" in text.upper():
        if _DELETE.match(exc.statement or ""):
            holders = _holders(request, exc.statement, exc.params)
            return 409, (_("it is still in use by: {holders}; remove or move those first").format(
                holders=", ".join(holders)) if holders else _("it is still in use by other records"))
        return 422, [_detail(["body"], _("refers to a record that does not exist"))]
    return 409, _("the change conflicts with the stored data: {reason}").format(reason=text[:300])


def data_error(exc: DataError) -> list[dict[str, Any]]:
    """The 422 detail for a value the database cannot hold (PostgreSQL: out of range, too long)."""
    return [_detail(["body"], _("a value cannot be stored: {reason}").format(reason=str(exc.orig).split("\n")[0]))]
