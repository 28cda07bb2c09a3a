"""A constituent of B's saved filter for the tenancy walk: no one else reads, renames or deletes it."""

from __future__ import annotations

from commonwatch.access.saved_filters import SavedFilter


def seed(session, world, clock) -> dict[str, int]:
    row = SavedFilter(user_id=world.ids["user_b"], name="SECRET-B filter", path="/warnings",
                      query="q=SECRET-B", created_at=clock.now())
    session.add(row)
    session.flush()
    return {"filter_id": row.id}
