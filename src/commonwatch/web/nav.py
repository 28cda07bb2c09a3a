"""Navigation: each capability's ``pages.NAV`` lists its entries; the layout shows those the
viewer's role may use."""

from __future__ import annotations

from dataclasses import dataclass

from commonwatch import capabilities


@dataclass(frozen=True)
class NavItem:
    label: str  # an English msgid, translated when rendered
    path: str
    permission: str
    order: int = 100
    staff_only: bool = False


def collect_nav() -> list[NavItem]:
    items: list[NavItem] = []
    for _cap, module in capabilities.parts("pages"):
        items.extend(getattr(module, "NAV", []))
    return sorted(items, key=lambda i: (i.order, i.path))


def visible_nav(items: list[NavItem], principal) -> list[NavItem]:
    if principal is None:
        return []
    return [i for i in items if (principal.has(i.permission) or principal.has(f"{i.permission}.own"))
            and (principal.is_staff or not i.staff_only)]
