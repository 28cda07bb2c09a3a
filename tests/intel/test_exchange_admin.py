"""Managing the exchange from its page: add a partner's TAXII collection (medallion on loopback) and
a MISP instance (a MISP-like server on loopback), test each connection, pause, resume, remove — each
CSRF-protected, audited and held to the outbound allowlist; our collections show their object
counts. The services run on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from commonwatch.access.models import AuditEntry
from commonwatch.clock import FrozenClock
from commonwatch.config import Settings
from commonwatch.db import make_sessionmaker, session_scope
from commonwatch.errors import Invalid
from commonwatch.intel import exchange, exchange_admin, services
from commonwatch.intel.models import MispPeer, Subscription
from tests.conftest import START, build_world, sign_in
from tests.intel.conftest import indicator_obj
from tests.intel.peers import MispPeer as MispServer
from tests.intel.peers import serve_medallion
from tests.intel.test_exchange import _medallion_data

COLLECTION = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"


def _audits(app, action: str) -> list[AuditEntry]:
    with app.state.sessionmaker() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_adding_is_checked_and_pausing_and_removing_are_kept(any_engine, tmp_path):
    clock = FrozenClock(START)
    factory = make_sessionmaker(any_engine)
    settings = Settings(data_dir=tmp_path, outbound_allowlist=["https://taxii.partner.example/"])
    with session_scope(factory, actor="test") as s:
        s.info["clock"] = clock
        world = build_world(s, clock)
        with pytest.raises(Invalid) as exc:
            exchange_admin.add_subscription(s, settings, {
                "name": "", "org_id": "999999", "collection_url": "https://elsewhere.example/api/collections/x/",
                "every_minutes": "1", "default_tlp": "RED"})
        fields = {e.field for e in exc.value.errors}
        assert fields == {"name", "org_id", "collection_url", "every_minutes", "default_tlp"}
        assert any("allowlist" in e.reason for e in exc.value.errors if e.field == "collection_url")
        sub = exchange_admin.add_subscription(s, settings, {
            "name": "DE feed", "org_id": str(world.partner),
            "collection_url": "https://taxii.partner.example/api/collections/abc/", "secret": "s3cret",
            "every_minutes": "30", "default_tlp": "green"})
        assert (sub.active, sub.every_minutes, sub.default_tlp) == (True, 30, "GREEN")
        with pytest.raises(Invalid) as exc:
            exchange_admin.add_subscription(s, settings, {
                "name": "DE feed", "org_id": str(world.partner),
                "collection_url": "https://taxii.partner.example/api/collections/abc/"})
        assert [e.field for e in exc.value.errors] == ["name"]
        with pytest.raises(Invalid) as exc:
            exchange_admin.add_misp_peer(s, settings, {"name": "DE MISP", "org_id": str(world.partner),
                                                       "url": "https://misp.partner.example", "api_key": ""})
        assert {e.field for e in exc.value.errors} == {"url", "api_key"}
        settings.outbound_allowlist.append("https://misp.partner.example/")
        peer = exchange_admin.add_misp_peer(s, settings, {"name": "DE MISP", "org_id": str(world.partner),
                                                          "url": "https://misp.partner.example", "api_key": "k"})
        exchange_admin.set_active(s, sub, False)
        exchange_admin.set_active(s, peer, False)
        sub_id, peer_id = sub.id, peer.id
    # a paused subscription or instance is not polled on schedule
    assert exchange.poll_due(factory, settings, clock) == {}
    with session_scope(factory, actor="test") as s:
        exchange_admin.remove(s, s.get(Subscription, sub_id))
        exchange_admin.remove(s, s.get(MispPeer, peer_id))
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Subscription)) == 0
        entries = list(s.scalars(select(AuditEntry).where(AuditEntry.entity.in_(["intel_subscriptions",
                                                                                  "intel_misp_peers"]))))
        assert [e.action for e in entries].count("delete") == 2 and [e.action for e in entries].count("update") == 2
        assert all("s3cret" not in f"{e.before} {e.after}" for e in entries)  # the secret is redacted


def test_collections_show_their_object_counts(app, client, world, clock):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        c = services.create_collection(s, "Outbound to partners", alias="outbound", max_tlp="AMBER")
        services.create_collection(s, "Empty one", alias="empty", max_tlp="AMBER")
        objs = [indicator_obj(f"192.0.2.{i}", "GREEN") for i in range(1, 4)]
        services.store_objects(s, objs, services.Origin("test", None, None, may_update_any=True), clock.now(), c)
        newer = dict(objs[0], modified="2026-11-20T00:00:00.000Z")
        services.store_objects(s, [newer], services.Origin("test", None, None, may_update_any=True), clock.now(), c)
        cid = c.id
        assert exchange_admin.collection_counts(s, [cid]) == {cid: (3, 4)}
    sign_in(client, world.users["coordinator"])
    page = client.get("/intel-exchange")
    assert f'<tr data-collection="{cid}">' in page.text
    row = page.text.split(f'<tr data-collection="{cid}">', 1)[1].split("</tr>", 1)[0]
    assert 'data-objects="3"' in row and ">4<" in row


def test_manage_a_taxii_subscription_from_the_page(app, client, world, clock):
    objects = [indicator_obj(f"198.18.0.{i}", "GREEN") for i in range(1, 4)]
    csrf = sign_in(client, world.users["coordinator"])
    with serve_medallion(_medallion_data(objects), {"cw": "secret"}) as (base, _backend):
        url = f"{base}/api1/collections/{COLLECTION}/"
        form = {"name": "medallion", "org_id": str(world.partner), "collection_url": url, "username": "cw",
                "secret": "secret", "every_minutes": "60", "default_tlp": "AMBER", "csrf_token": csrf}
        refused = client.post("/intel-exchange/subscriptions", data=form)
        assert refused.status_code == 422 and "allowlist" in refused.text and 'value="secret"' not in refused.text
        app.state.settings.outbound_allowlist = [base + "/"]
        assert client.post("/intel-exchange/subscriptions", data={**form, "csrf_token": "forged"}).status_code == 403
        added = client.post("/intel-exchange/subscriptions", data=form, follow_redirects=False)
        assert added.status_code == 303
        with app.state.sessionmaker() as s:
            sub_id = s.scalar(select(Subscription.id).where(Subscription.name == "medallion"))
        tested = client.post(f"/intel-exchange/subscriptions/{sub_id}/test", data={"csrf_token": csrf})
        assert "Connection to “medallion” works" in tested.text and "partner indicators" in tested.text
        # a wrong password: the test says so, and the attempt is in the audit log too
        with session_scope(app.state.sessionmaker, actor="test") as s:
            s.get(Subscription, sub_id).secret = "wrong"
        failed = client.post(f"/intel-exchange/subscriptions/{sub_id}/test", data={"csrf_token": csrf})
        assert "Connection to “medallion” failed" in failed.text
        assert [json.loads(a.after)["ok"] for a in _audits(app, "intel.subscription_test")] == [True, False]
        paused = client.post(f"/intel-exchange/subscriptions/{sub_id}/active", data={"active": "0", "csrf_token": csrf})
        assert "paused" in paused.text and 'data-state="paused"' in paused.text
        resumed = client.post(f"/intel-exchange/subscriptions/{sub_id}/active",
                              data={"active": "1", "csrf_token": csrf})
        assert 'data-state="active"' in resumed.text
        assert client.post(f"/intel-exchange/subscriptions/{sub_id}/remove", data={}).status_code == 403
        removed = client.post(f"/intel-exchange/subscriptions/{sub_id}/remove", data={"csrf_token": csrf})
        assert "removed" in removed.text and f'data-subscription="{sub_id}"' not in removed.text
        assert client.post(f"/intel-exchange/subscriptions/{sub_id}/test", data={"csrf_token": csrf}).status_code \
            == 404


def test_manage_a_misp_instance_from_the_page(app, client, world, clock):
    server = MispServer("misp-key")
    csrf = sign_in(client, world.users["coordinator"])
    with server.serve() as base:
        app.state.settings.outbound_allowlist = [base + "/"]
        added = client.post("/intel-exchange/misp", data={"name": "DE MISP", "org_id": str(world.partner),
                                                          "url": base, "api_key": "misp-key", "csrf_token": csrf})
        assert "Added “DE MISP”" in added.text
        with app.state.sessionmaker() as s:
            peer_id = s.scalar(select(MispPeer.id).where(MispPeer.name == "DE MISP"))
        tested = client.post(f"/intel-exchange/misp/{peer_id}/test", data={"csrf_token": csrf})
        assert "reached MISP 2.4.190" in tested.text
        assert ("GET", "/servers/getVersion") in server.requests
        with session_scope(app.state.sessionmaker, actor="test") as s:
            s.get(MispPeer, peer_id).api_key = "wrong"
        failed = client.post(f"/intel-exchange/misp/{peer_id}/test", data={"csrf_token": csrf})
        assert "failed" in failed.text and "403" in failed.text
        client.post(f"/intel-exchange/misp/{peer_id}/active", data={"active": "0", "csrf_token": csrf})
        with app.state.sessionmaker() as s:
            assert s.get(MispPeer, peer_id).active is False
        before = len(server.requests)
        assert exchange.poll_due(app.state.sessionmaker, app.state.settings, clock) == {}
        assert len(server.requests) == before  # paused: not pulled
        client.post(f"/intel-exchange/misp/{peer_id}/remove", data={"csrf_token": csrf})
        with app.state.sessionmaker() as s:
            assert s.get(MispPeer, peer_id) is None
    assert [json.loads(a.after)["ok"] for a in _audits(app, "intel.misp_peer_test")] == [True, False]


def test_a_constituent_cannot_manage_the_exchange(app, client, world):
    csrf = sign_in(client, world.users["a"])
    assert client.get("/intel-exchange").status_code == 403
    assert client.post("/intel-exchange/misp", data={"name": "x", "csrf_token": csrf}).status_code == 403
