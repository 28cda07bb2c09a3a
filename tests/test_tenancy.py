"""Tenant isolation: walk every route of the app as a constituent of organisation A against the
objects of organisation B, and find nothing of B readable or writable.

Each capability contributes B-owned objects through ``tests/<capability>/tenancy_seed.py``
(``seed(session, world, clock) -> {path_parameter_name: id}``); every text it stores for B
contains the marker ``SECRET-B`` so a leak in any response body is caught.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from commonwatch import capabilities
from commonwatch.access.models import AuditEntry
from commonwatch.db import session_scope

MARKER = "SECRET-B"
TESTS = Path(__file__).resolve().parent
#: Routes that are deliberately public or about the caller alone.
NOT_TENANT_DATA = {"/login", "/logout", "/lang/{language}", "/healthz", "/metrics", "/api/v1/openapi.json"}


def _seeds():
    for path in sorted(TESTS.glob("*/tenancy_seed.py")):
        yield importlib.import_module(f"tests.{path.parent.name}.tenancy_seed")


@pytest.fixture
def tenancy(app, world, clock):
    """B's objects from every capability: path parameter name -> id."""
    params = {
        "org_id": world.org_b, "network_id": world.ids["network_b"], "asn_id": world.ids["asn_b"],
        "domain_id": world.ids["domain_b"], "contact_id": world.ids["contact_b"],
        "user_id": world.ids["user_b"], "token_id": world.ids["token_b"],
    }
    for module in _seeds():
        with session_scope(app.state.sessionmaker, actor="test") as session:
            session.info["clock"] = clock
            params.update(module.seed(session, world, clock))
    return params


def _routes(app):
    """Every (method, path) the capabilities mount: the API under /api/v1, pages, other routers."""
    mounted = [("/api/v1", m.router) for _c, m in capabilities.parts("api")]
    mounted += [("", m.router) for _c, m in capabilities.parts("pages")]
    mounted += [("", r) for _c, m in capabilities.parts("routes") for r in m.ROUTERS]
    for prefix, router in mounted:
        for route in router.routes:
            path = prefix + route.path
            if isinstance(route, APIRoute) and path not in NOT_TENANT_DATA:
                for method in sorted(route.methods - {"HEAD"}):
                    yield method, path


def _fill(path: str, params: dict[str, int]) -> str | None:
    names = re.findall(r"{(\w+)(?::\w+)?}", path)
    if any(n not in params for n in names):
        return None
    out = path
    for n in names:
        out = re.sub(r"\{" + n + r"(?::\w+)?\}", str(params[n]), out)
    return out


def _audit_since(app, seq: int) -> list[AuditEntry]:
    with app.state.sessionmaker() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.seq > seq)))


def _last_seq(app) -> int:
    with app.state.sessionmaker() as s:
        return s.scalar(select(func.coalesce(func.max(AuditEntry.seq), 0)))


def test_every_route_hides_b_from_a_constituent_of_a(app, client, world, tenancy):
    headers = world.auth("a")
    body = {k: v for k, v in tenancy.items()}
    body.update({"org_ids": [world.org_b], "org": world.org_b})
    unfilled, checked = [], 0
    before = _last_seq(app)
    for method, path in _routes(app):
        url = _fill(path, tenancy)
        if url is None:
            unfilled.append(f"{method} {path}")
            continue
        resp = client.request(method, url, headers=headers, json=body if method != "GET" else None,
                              follow_redirects=False)
        checked += 1
        assert MARKER not in resp.text, f"{method} {url} leaked B's data: {resp.text[:300]}"
        if "{" in path and method != "GET":
            assert resp.status_code in (401, 403, 404, 405, 422), f"{method} {url} -> {resp.status_code}"
        if "{" in path and method == "GET":
            assert resp.status_code in (403, 404, 405), f"{method} {url} answered {resp.status_code} for B's object"
    assert not unfilled, f"no seed for the parameters of: {unfilled}"
    assert checked > 20
    # A may have changed its own things (a token of its own); nothing of B's was touched.
    for entry in _audit_since(app, before):
        text = f"{entry.before} {entry.after}"
        assert MARKER not in text, f"{entry.action} {entry.entity} {entry.entity_id} touched B"
        assert f'"org_id": {world.org_b}' not in text, f"{entry.action} {entry.entity} wrote to B"


def test_a_sees_its_own_organisation(client, world):
    resp = client.get(f"/api/v1/organisations/{world.org_a}", headers=world.auth("a"))
    assert resp.status_code == 200 and resp.json()["name"] == "Alpha Telecom"
    listing = client.get("/api/v1/organisations", headers=world.auth("a")).json()
    assert {o["id"] for o in listing["items"]} == {world.org_a, world.org_a_unit}


def test_staff_see_every_tenant(client, world):
    for who in ("admin", "coordinator", "analyst", "auditor"):
        resp = client.get(f"/api/v1/organisations/{world.org_b}", headers=world.auth(who))
        assert resp.status_code == 200, who


def test_partner_sees_only_its_own_organisation(client, world):
    listing = client.get("/api/v1/organisations", headers=world.auth("partner")).json()
    assert [o["id"] for o in listing["items"]] == [world.partner]
    assert client.get(f"/api/v1/organisations/{world.org_b}", headers=world.auth("partner")).status_code == 404
