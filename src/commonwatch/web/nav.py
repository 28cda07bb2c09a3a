"""Navigation: each capability's ``pages.NAV`` lists its entries; the layout shows those the
viewer's role may use."""

from __future__ import annotations

from dataclasses import dataclass

from commonwatch import capabilities

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
