"""TLP 2.0 on every read path: REST, pages, TAXII and every export, as readers of each kind
(centre staff, constituents of A and B, a partner CERT), against indicators at every label with
recipients of every kind. The SQL rule and the Python rule agree."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select

from commonwatch.access.services import principal_for, user_by_email
from commonwatch.db import session_scope
from commonwatch.intel import tlp
from commonwatch.intel.models import Indicator, IntelShare
from tests.intel.conftest import EXPECTED, taxii_headers

READERS = sorted(EXPECTED)


def _names(intel, stix_ids) -> set[str]:
    by_id = {v: k for k, v in intel.ids.items()}
    return {by_id[s] for s in stix_ids if s in by_id}


@pytest.mark.parametrize("who", READERS)
def test_rest_list_and_detail(client, world, intel, who):
    listing = client.get("/api/v1/indicators?per_page=500", headers=world.auth(who)).json()
    assert _names(intel, [i["stix_id"] for i in listing["items"]]) == EXPECTED[who]
    for name, pk in intel.pk.items():
        resp = client.get(f"/api/v1/indicators/{pk}", headers=world.auth(who))
        assert resp.status_code == (200 if name in EXPECTED[who] else 404), (who, name)
        bundle = client.get(f"/api/v1/indicators/{pk}/stix", headers=world.auth(who))
        assert bundle.status_code == (200 if name in EXPECTED[who] else 404), (who, name)


@pytest.mark.parametrize("who", READERS)
def test_exports(client, world, intel, who):
    stix_bundle = client.get("/api/v1/indicators/export?format=stix", headers=world.auth(who)).json()
    assert _names(intel, [o["id"] for o in stix_bundle["objects"]]) == EXPECTED[who]
    page_bundle = client.get("/intel/export?format=stix", headers=world.auth(who)).json()
    assert _names(intel, [o["id"] for o in page_bundle["objects"]]) == EXPECTED[who]
    text = client.get("/api/v1/indicators/export?format=csv", headers=world.auth(who)).text
    assert _names(intel, [r["stix_id"] for r in csv.DictReader(io.StringIO(text))]) == EXPECTED[who]
    event = client.get("/api/v1/indicators/export?format=misp", headers=world.auth(who)).json()["Event"]
    uuids = {f"indicator--{a['uuid']}" for a in event.get("Attribute", [])}
    assert _names(intel, uuids) == EXPECTED[who]
    if who in ("b", "partner", "a"):
        assert "SECRET-B" not in text + json.dumps(stix_bundle) + json.dumps(event) or who == "b"


@pytest.mark.parametrize("who", READERS)
def test_pages(client, world, intel, who):
    listing = client.get("/intel", headers=world.auth(who)).text
    for name, pk in intel.pk.items():
        assert (f'href="/intel/indicators/{pk}"' in listing) == (name in EXPECTED[who]), (who, name)
        page = client.get(f"/intel/indicators/{pk}", headers=world.auth(who))
        assert page.status_code == (200 if name in EXPECTED[who] else 404), (who, name)


@pytest.mark.parametrize("who", READERS)
def test_taxii(client, world, intel, who):
    shared_readers = {"partner", "a"}
    resp = client.get(f"/taxii2/api/collections/{intel.collection}/objects/", headers=taxii_headers(world.tokens[who]))
    if who in shared_readers or who in ("admin", "coordinator"):
        ceiling = {n for n in EXPECTED[who] if not n.startswith("red")}  # the collection serves up to AMBER+STRICT
        assert _names(intel, [o["id"] for o in resp.json().get("objects", [])]) == ceiling
        for name, sid in intel.ids.items():
            one = client.get(f"/taxii2/api/collections/{intel.collection}/objects/{sid}/",
                             headers=taxii_headers(world.tokens[who]))
            assert one.status_code == (200 if name in ceiling else 404), (who, name)
            manifest = client.get(f"/taxii2/api/collections/{intel.collection}/manifest/?match[id]={sid}",
                                  headers=taxii_headers(world.tokens[who])).json()
            assert bool(manifest.get("objects")) == (name in ceiling)
    else:
        assert resp.status_code == 404
    private = client.get(f"/taxii2/api/collections/{intel.private}/objects/", headers=taxii_headers(world.tokens[who]))
    assert private.status_code == (200 if who in ("admin", "coordinator") else 404)
    listed = client.get("/taxii2/api/collections/", headers=taxii_headers(world.tokens[who])).json()
    titles = {c["title"] for c in listed.get("collections", [])}
    assert ("Centre only SECRET-B" in titles) == (who in ("admin", "coordinator"))


def test_python_rule_agrees_with_sql(app, world, intel):
    with session_scope(app.state.sessionmaker, actor="test") as session:
        for who in READERS:
            principal = principal_for(session, user_by_email(session, world.users[who]))
            reader = tlp.reader_for(session, principal)
            for name, sid in intel.ids.items():
                ind = session.scalar(select(Indicator).where(Indicator.stix_id == sid))
                shares = session.scalars(select(IntelShare).where(IntelShare.stix_id == sid)).all()
                audience = tlp.Audience(ind.tlp, ind.owner_org_id, ind.author_user_id,
                                        frozenset(s.org_id for s in shares if s.org_id),
                                        frozenset(s.user_id for s in shares if s.user_id))
                assert tlp.allows(reader, audience) == (name in EXPECTED[who]), (who, name)


def test_partner_push_never_sends_red_or_strict(app, world, intel):
    from commonwatch.intel.exchange import outbound_objects

    with session_scope(app.state.sessionmaker, actor="test") as session:
        sent, refused = outbound_objects(session, world.partner, list(intel.ids.values()))
    assert _names(intel, [o["id"] for o in sent]) == {"clear", "green", "amber_partner"}
    assert intel.ids["red_partner"] in refused and intel.ids["strict_a"] in refused


def test_normalise_labels():
    assert tlp.normalise("TLP:WHITE") == "CLEAR" and tlp.normalise("amber_strict") == "AMBER+STRICT"
    with pytest.raises(ValueError):
        tlp.normalise("purple")
