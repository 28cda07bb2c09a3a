"""Event reads whose counts go through the web tier's short count cache (web/counts.py): the
events total every search page and API page shows, and the overview's 24-hour figures."""

from __future__ import annotations

from typing import Any

from commonwatch.access.principal import Principal
from commonwatch.events.search import NEWEST_FIRST, EventFilter, EventSort, Page
from commonwatch.events.store import event_store
from commonwatch.web.counts import cached_count


def filter_key(f: EventFilter) -> tuple:
    """A filter as a hashable key (its canonical parameters)."""
    return tuple(sorted(f.as_params().items()))


def search_page(state: Any, db: Any, principal: Principal, f: EventFilter, *, limit: int, after: str | None,
                before: str | None, count: bool = True, sort: EventSort = NEWEST_FIRST) -> Page:
    """One page of the search in the order ``sort``; its total from the cache while the store has
    not changed (the order does not change the count)."""
    store = event_store(db)
    page = store.search_page(principal, f, limit=limit, after=after, before=before, count=False, sort=sort)
    if count:
        page.total, page.total_exact = cached_count(state, "events", principal, ("total", filter_key(f)),
                                                    lambda: store.count_capped(principal, f))
    return page
