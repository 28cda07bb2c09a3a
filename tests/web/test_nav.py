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


def _hidden_entries():
    return [(item, role) for item in collect_nav() for role in sorted(item.hidden_from)]


def test_every_hidden_entry_is_hidden_from_someone():
    assert {i.path for i, _r in _hidden_entries()} >= {"/datasec", "/crossborder", "/cii/systems", "/cii/assets",
                                                        "/incidents", "/reports"}


def test_a_page_hidden_from_a_role_is_refused_to_it_by_url(client, world):
    """Each hidden entry's page, and a page under it, answers 403 to the role it is hidden from
    (as a page of a permission the role lacks), while a role that sees the entry opens it."""
    who = {"partner": "partner"}
    for item, role in _hidden_entries():
        headers = world.auth(who[role])
        resp = client.get(item.path, headers=headers, follow_redirects=False)
        assert resp.status_code == 403, (role, item.path, resp.status_code)
        under = client.get(item.path + "/1", headers=headers, follow_redirects=False)
        assert under.status_code in (403, 404), (role, item.path, under.status_code)  # 404: no such route
        post = client.post(item.path, headers=headers, follow_redirects=False)
        assert post.status_code in (403, 405), (role, item.path, post.status_code)
        assert client.get(item.path, headers=world.auth("coordinator")).status_code == 200, item.path
    for path in ("/incidents/1", "/incidents/1/edit", "/datasec/assets/1", "/crossborder/assessments/1",
                 "/cii/systems/1", "/cii/assets/1/edit", "/reports/dashboard/year"):
        assert client.get(path, headers=world.auth("partner")).status_code == 403, path
    # What the partner may use still opens.
    for path in ("/", "/shared-incidents", "/tasks", "/warnings", "/intel"):
        assert client.get(path, headers=world.auth("partner")).status_code == 200, path
