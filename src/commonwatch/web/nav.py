"""Navigation: each capability's ``pages.NAV`` lists its entries; the layout shows those the
viewer's role may use."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from commonwatch import capabilities
from commonwatch.errors import Forbidden
from commonwatch.web.deps import current_principal, get_db, submitted_csrf

#: For ``NavItem.hidden_from``: a partner CERT abroad reads what is shared with it, not the
#: constituency's own registers.
PARTNER = frozenset({"partner"})


@dataclass(frozen=True)
class NavItem:
    label: str  # an English msgid, translated when rendered
    path: str
    permission: str
    order: int = 100
    staff_only: bool = False
    #: Roles that hold the permission but have nothing to do on the page (a partner CERT and the
    #: data catalogue): the entry is not shown to them; the page itself still answers.
    hidden_from: frozenset[str] = frozenset()


def collect_nav() -> list[NavItem]:
    items: list[NavItem] = []
    for _cap, module in capabilities.parts("pages"):
        items.extend(getattr(module, "NAV", []))
    return sorted(items, key=lambda i: (i.order, i.path))


def visible_nav(items: list[NavItem], principal) -> list[NavItem]:
    if principal is None:
        return []
    return [i for i in items if (principal.has(i.permission) or principal.has(f"{i.permission}.own"))
            and (principal.is_staff or not i.staff_only) and principal.role not in i.hidden_from]


def current_nav(items: list[NavItem], path: str) -> NavItem | None:
    """The one entry the page at ``path`` belongs to: the longest entry path that is the page's path
    or a folder of it (``/cooperation/requests/4`` is under "Assistance requests", not "Partner
    CERTs"); None for a page outside the navigation (the account page)."""
    matches = [i for i in items if path == i.path or (i.path != "/" and path.startswith(i.path.rstrip("/") + "/"))]
    return max(matches, key=lambda i: len(i.path), default=None)


def hidden_for(items: list[NavItem], path: str, principal) -> NavItem | None:
    """The navigation entry the page at ``path`` belongs to when it is hidden from the viewer's
    role (``hidden_from``), else None."""
    if principal is None:
        return None
    item = current_nav(items, path)
    return item if item is not None and principal.role in item.hidden_from else None


async def page_guard(request: Request, db: Session = Depends(get_db)) -> None:
    """A dependency of every page router: a page under an entry hidden from the viewer's role
    answers 403, as a page of a permission the role does not hold does (``web.deps.require``).
    Hiding an entry is not only leaving it out of the navigation; its pages are refused by URL.

    Only a page under an entry hidden from some role looks the viewer up (the sign-in form and
    every other page are left to their own guards)."""
    item = current_nav(request.app.state.nav, request.url.path)
    if item is None or not item.hidden_from:
        return
    principal = current_principal(request, db, await submitted_csrf(request))
    if principal is not None and principal.role in item.hidden_from:
        raise Forbidden()
