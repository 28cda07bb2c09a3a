"""The navigation each role gets, and the one entry a page marks as current (the browser side is in
tests/e2e/test_layout_browser.py)."""

from __future__ import annotations

import pytest

from commonwatch.access.principal import Principal, Role
from commonwatch.web.nav import collect_nav, current_nav, visible_nav


def _paths(role: Role) -> set[str]:
    return {i.path for i in visible_nav(collect_nav(), Principal(1, "x@example", role, frozenset({1})))}


def test_a_partner_sees_what_is_shared_with_it_not_the_constituency_registers():
    paths = _paths(Role.PARTNER)
    assert {"/", "/shared-incidents", "/tasks", "/warnings", "/intel"} <= paths
    assert not paths & {"/datasec", "/crossborder", "/cii/systems", "/cii/assets", "/incidents", "/reports",
                        "/audit", "/admin/users", "/notify"}


def test_the_coordinator_reaches_the_audit_log_and_a_constituent_does_not():
    assert {"/audit", "/incidents", "/events", "/cooperation"} <= _paths(Role.COORDINATOR)
    assert {"/audit", "/admin/users"} <= _paths(Role.ADMIN)
    assert "/audit" in _paths(Role.AUDITOR)
    constituent = _paths(Role.CONSTITUENT)
    assert {"/incidents", "/datasec", "/cii/assets"} <= constituent
    assert not constituent & {"/audit", "/admin/users", "/cooperation", "/notify"}


@pytest.mark.parametrize(("path", "current"), [
    ("/", "/"), ("/account", None), ("/events", "/events"), ("/events/12", "/events"),
    ("/incidents/3/edit", "/incidents"), ("/cooperation", "/cooperation"), ("/cooperation/partners/6", "/cooperation"),
    ("/cooperation/requests/2", "/cooperation/requests"), ("/shared-incidents/1", "/shared-incidents"),
    ("/admin/signin-locks", "/admin/signin-locks"), ("/datasec-other", None),
])
def test_one_entry_is_current(path, current):
    found = current_nav(collect_nav(), path)
    assert (found.path if found else None) == current
