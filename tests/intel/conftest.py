"""Fixtures for intelligence exchange: a centre identity, a partner collection, indicators at every
TLP, and helpers to build STIX objects."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from commonwatch.db import session_scope
from commonwatch.intel import services, stix

CENTRE = stix.centre_identity("Test Centre", "http://testserver", "3b5c1a70-33f8-4d4e-9a51-0a4c2a1b7e01")
TAXII = "application/taxii+json;version=2.1"


def indicator_obj(value: str, label: str | None = "GREEN", *, created: str = "2026-11-01T00:00:00.000Z",
                  modified: str | None = None, **extra) -> dict:
    v = stix.normalise_value(stix.detect_kind(value), value)
    obj = {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}", "created": created,
           "modified": modified or created, "pattern": stix.pattern_for(v), "pattern_type": "stix",
           "valid_from": created, **extra}
    return stix.with_tlp(obj, label) if label else obj


def taxii_headers(token: str, post: bool = False) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}", "Accept": TAXII}
    if post:
        headers["Content-Type"] = TAXII
    return headers


@dataclass
class Intel:
    """What the ``intel`` fixture arranged: a partner collection and indicators by name."""

    collection: str = ""
    private: str = ""
    ids: dict[str, str] = field(default_factory=dict)  # name -> STIX id
    pk: dict[str, int] = field(default_factory=dict)  # name -> indicators.id


def arrange(session, world, clock) -> Intel:
    """Indicators at every TLP with recipients of every kind, in a collection the partner reads."""
    from sqlalchemy import select

    from commonwatch.intel.models import Indicator

    now = clock.now()
    out = Intel()
    shared = services.create_collection(session, "Shared with partners", alias="partners", max_tlp="AMBER+STRICT")
    services.grant(session, shared, world.partner, read=True, write=True)
    services.grant(session, shared, world.org_a, read=True)
    private = services.create_collection(session, "Centre only SECRET-B", alias="centre")
    out.collection, out.private = shared.uuid, private.uuid
    centre = services.Origin("test", None, None, may_update_any=True)
    specs = {
        # name: (value, tlp, owner, shares orgs, shares users)
        "clear": ("192.0.2.1", "CLEAR", None, [], []),
        "green": ("192.0.2.2", "GREEN", None, [], []),
        "amber_a": ("192.0.2.3", "AMBER", None, [world.org_a], []),
        "amber_partner": ("192.0.2.4", "AMBER", None, [world.partner], []),
        "amber_b": ("203.0.113.9", "AMBER", world.org_b, [], []),
        "strict_a": ("192.0.2.5", "AMBER+STRICT", None, [world.org_a], []),
        "strict_unit": ("192.0.2.6", "AMBER+STRICT", None, [world.org_a_unit], []),
        "red_partner": ("192.0.2.7", "RED", None, [], [world.ids["user_partner"]]),
        "red_coordinator": ("192.0.2.8", "RED", None, [], [world.ids["user_coordinator"]]),
        "amber_centre": ("192.0.2.10", "AMBER", None, [], []),
    }
    for name, (value, label, owner, orgs, users) in specs.items():
        obj = indicator_obj(value, label, name=f"{name} SECRET-B" if owner == world.org_b else name)
        origin = services.Origin("test", owner, None, may_update_any=True)
        report = services.store_objects(session, [obj], origin if owner else centre, now - timedelta(days=1))
        assert report.count("added") == 1, report.as_dict()
        services.set_shares(session, obj["id"], orgs, users)
        out.ids[name] = obj["id"]
        services.publish(session, shared, [obj["id"]], now - timedelta(days=1))
    services.publish(session, private, list(out.ids.values()), now)
    session.flush()
    for name, sid in out.ids.items():
        out.pk[name] = session.scalar(select(Indicator.id).where(Indicator.stix_id == sid))
    return out


#: Who may read which of the arranged indicators (the TLP rule written out by hand).
EXPECTED = {
    "admin": {"clear", "green", "amber_a", "amber_partner", "amber_b", "strict_a", "strict_unit", "amber_centre"},
    "coordinator": {"clear", "green", "amber_a", "amber_partner", "amber_b", "strict_a", "strict_unit",
                    "amber_centre", "red_coordinator"},
    "a": {"clear", "green", "amber_a", "strict_a"},
    "b": {"clear", "green", "amber_b"},
    "partner": {"clear", "green", "amber_partner", "red_partner"},
}


@pytest.fixture
def intel(app, world, clock) -> Intel:
    with session_scope(app.state.sessionmaker, actor="test") as session:
        session.info["clock"] = clock
        return arrange(session, world, clock)
