"""Exchange with real peers on loopback: a partner's commonwatch and the OASIS reference TAXII
server medallion (subscriptions keep added_after: nothing fetched twice or missed; selected
indicators pushed), and a MISP peer (pull and push by URL and key). MISP JSON round-trips through
pymisp's MISPEvent without loss of what we map. Outbound URLs must be allowlisted."""

from __future__ import annotations

import json
import shutil
import uuid

import pytest
from pymisp import MISPEvent
from sqlalchemy import func, select

from commonwatch.app import create_app
from commonwatch.config import Settings
from commonwatch.db import make_engine, session_scope
from commonwatch.errors import Invalid
from commonwatch.intel import exchange, services
from commonwatch.intel.models import Indicator, IntelCollection, IntelObject, MispPeer, Subscription
from tests.conftest import build_world
from tests.intel.conftest import indicator_obj
from tests.intel.peers import MispPeer as MispServer
from tests.intel.peers import serve_app, serve_medallion


def _allow(app, *prefixes):
    app.state.settings.outbound_allowlist = list(prefixes)


def _subscription(app, world, url, **kw) -> int:
    with session_scope(app.state.sessionmaker, actor="test") as s:
        sub = Subscription(name=kw.pop("name", "partner feed"), org_id=world.partner, collection_url=url, **kw)
        s.add(sub)
        s.flush()
        return sub.id


@pytest.fixture
def partner_centre(sqlite_template, tmp_path, clock):
    """A second commonwatch (the partner CERT's), with its own database and users."""
    path = tmp_path / "partner.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    settings = Settings(data_dir=tmp_path / "partner-data", database_url=f"sqlite:///{path}", log_format="text")
    app = create_app(settings, clock=clock, engine=engine)
    with session_scope(app.state.sessionmaker, actor="test") as s:
        world = build_world(s, clock)
        c = services.create_collection(s, "Partner outbound", alias="out", max_tlp="AMBER")
        services.grant(s, c, world.partner, read=True, write=True)
        app.state.collection = c.uuid
    app.state.world = world
    yield app
    engine.dispose()


def _partner_add(app, clock, values, label="GREEN"):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        c = s.scalar(select(IntelCollection).where(IntelCollection.uuid == app.state.collection))
        objs = [indicator_obj(v, label) for v in values]
        services.store_objects(s, objs, services.Origin("test", None, None, may_update_any=True), clock.now(), c)
        return [o["id"] for o in objs]


def test_subscription_to_a_partner_commonwatch(app, world, clock, partner_centre):
    first = _partner_add(partner_centre, clock, [f"192.0.2.{i}" for i in range(1, 26)])
    with serve_app(partner_centre) as base:
        url = f"{base}/taxii2/api/collections/{partner_centre.state.collection}/"
        sub_id = _subscription(app, world, url, secret=partner_centre.state.world.tokens["partner"])
        with pytest.raises(Invalid, match="not on the outbound allowlist"):
            exchange.poll_subscription(app.state.sessionmaker, app.state.settings, clock, sub_id, page_size=10)
        _allow(app, base + "/taxii2/")
        got = exchange.poll_subscription(app.state.sessionmaker, app.state.settings, clock, sub_id, page_size=10)
        assert got == {"added": 25, "unchanged": 0, "failed": 0, "pages": 3}
        again = exchange.poll_subscription(app.state.sessionmaker, app.state.settings, clock, sub_id, page_size=10)
        assert again["added"] == again["unchanged"] == 0  # nothing fetched twice
        later = _partner_add(partner_centre, clock, ["198.51.100.1", "198.51.100.2", "198.51.100.3"])
        third = exchange.poll_subscription(app.state.sessionmaker, app.state.settings, clock, sub_id, page_size=10)
        assert third["added"] == 3 and third["unchanged"] == 0  # nothing missed
        with session_scope(app.state.sessionmaker) as s:
            rows = s.scalars(select(Indicator).where(Indicator.stix_id.in_(first + later))).all()
            assert len(rows) == 28 and {r.owner_org_id for r in rows} == {world.partner}
            assert {r.source for r in rows} == {"subscription:partner feed"}
        # push: TLP decides; the partner's collection receives only what the partner may have
        mine = [indicator_obj("203.0.113.50", "GREEN"), indicator_obj("203.0.113.51", "AMBER+STRICT")]
        with session_scope(app.state.sessionmaker, actor="test") as s:
            services.store_objects(s, mine, services.Origin("test", None, None, may_update_any=True), clock.now())
            result = exchange.push_to_subscription(s, app.state.settings, s.get(Subscription, sub_id),
                                                   [o["id"] for o in mine])
        assert result["sent"] == 1 and result["refused"] == [mine[1]["id"]]
        assert result["status"]["success_count"] == 1
    with session_scope(partner_centre.state.sessionmaker) as s:
        assert s.scalar(select(func.count()).select_from(IntelObject).where(IntelObject.stix_id == mine[0]["id"])) == 1
        assert s.scalar(select(func.count()).select_from(IntelObject).where(IntelObject.stix_id == mine[1]["id"])) == 0


def _medallion_data(objects):
    return {
        "/discovery": {"title": "medallion", "default": "http://localhost/api1/", "api_roots": []},
        "api1": {"information": {"title": "api1", "versions": ["application/taxii+json;version=2.1"],
                                 "max_content_length": 9765625},
                 "status": [],
                 "collections": [{
                     "id": "91a7b528-80eb-42ed-a74d-c6fbd5a26116", "title": "partner indicators",
                     "can_read": True, "can_write": True, "media_types": ["application/stix+json;version=2.1"],
                     "objects": objects,
                     "manifest": [{"id": o["id"], "date_added": f"2026-11-0{1 + i // 10}T00:00:{i % 10:02d}.000000Z",
                                   "version": o["modified"], "media_type": "application/stix+json;version=2.1"}
                                  for i, o in enumerate(objects)]}]},
    }


def test_subscription_to_medallion(app, world, clock):
    objects = [indicator_obj(f"198.18.0.{i}", "GREEN") for i in range(1, 16)]
    with serve_medallion(_medallion_data(objects), {"cw": "secret"}) as (base, backend):
        url = f"{base}/api1/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/"
        _allow(app, base + "/")
        sub_id = _subscription(app, world, url, name="medallion", username="cw", secret="secret")
        got = exchange.poll_subscription(app.state.sessionmaker, app.state.settings, clock, sub_id, page_size=10)
        assert got["added"] == 15 and got["failed"] == 0
        with session_scope(app.state.sessionmaker) as s:
            assert s.get(Subscription, sub_id).added_after == "2026-11-02T00:00:04.000000Z"
        again = exchange.poll_subscription(app.state.sessionmaker, app.state.settings, clock, sub_id, page_size=10)
        assert again["added"] == again["unchanged"] == 0
        mine = indicator_obj("203.0.113.60", "CLEAR")
        with session_scope(app.state.sessionmaker, actor="test") as s:
            services.store_objects(s, [mine], services.Origin("test", None, None, may_update_any=True), clock.now())
            result = exchange.push_to_subscription(s, app.state.settings, s.get(Subscription, sub_id), [mine["id"]])
        assert result["sent"] == 1 and result["status"]["status"] == "complete"
        held = backend.data["api1"]["collections"][0]["objects"]
        assert mine["id"] in {o["id"] for o in held}


def _misp_source_event() -> MISPEvent:
    event = MISPEvent()
    event.uuid = str(uuid.uuid4())
    event.info = "Partner campaign"
    event.add_tag("tlp:amber")
    a = event.add_attribute("ip-dst", "192.0.2.77", to_ids=True, comment="C2 server", category="Network activity")
    a.add_tag("misp-galaxy:malpedia=\"Emotet\"")
    a.add_tag("kill-chain:command-and-control")
    a.add_tag('commonwatch:confidence="80"')
    b = event.add_attribute("domain", "bad.example", to_ids=False, comment="", category="Network activity")
    b.add_tag("tlp:green")
    b.add_tag("campaign:demo")
    event.add_attribute("sha256", "c" * 64, to_ids=True, category="Payload delivery")
    event.add_attribute("text", "free text we do not map")
    return event


MAPPED = ("type", "value", "to_ids", "comment", "uuid", "category")


def _mapped(event: MISPEvent) -> dict:
    out = {}
    for a in event.attributes:
        # pymisp leaves an empty comment out of the JSON: empty and absent are the same here
        # the TLP that applies is the attribute's own tag, else the event's (we write it on each attribute)
        tlp = [t.name for t in a.tags if t.name.startswith("tlp:")] or [t.name for t in event.tags
                                                                        if t.name.startswith("tlp:")]
        out[a.uuid] = {k: getattr(a, k, None) or ("" if k == "comment" else None) for k in MAPPED} | {
            "tags": sorted(t.name for t in a.tags if not t.name.startswith("tlp:")), "tlp": tlp}
    return out


def test_misp_json_round_trip(app, world, clock):
    source = _misp_source_event()
    with session_scope(app.state.sessionmaker, actor="test") as s:
        origin = services.Origin("misp-file", world.partner, None, default_tlp="AMBER")
        report, unmapped = exchange.import_misp_json(s, source.to_json(), origin, clock.now())
        assert report.count("added") == 5 and not report.failures  # 3 indicators, a malware family, its link
        assert [u["type"] for u in unmapped] == ["text"]
        inds = s.scalars(select(Indicator).order_by(Indicator.id)).all()
        by_value = {i.value: i for i in inds}
        assert by_value["192.0.2.77"].tlp == "AMBER" and by_value["bad.example"].tlp == "GREEN"
        assert by_value["192.0.2.77"].confidence == 80 and by_value["192.0.2.77"].related
        out = exchange.misp_event(s, inds, info="round trip", now=clock.now())
    back = MISPEvent()
    back.load(out.to_json())
    want = {k: v for k, v in _mapped(source).items() if v["type"] != "text"}
    got = _mapped(back)
    for key, value in want.items():
        assert got[key] == value, (got[key], value)
    assert set(got) == set(want)
    # and our export read back through pymisp re-imports to the same indicators
    with session_scope(app.state.sessionmaker, actor="test") as s:
        again, _ = exchange.import_misp_json(s, back.to_json(), origin, clock.now())
        assert again.count("added") == 0


def test_misp_pull_and_push_over_http(app, world, clock):
    peer_server = MispServer("key-123")
    source = _misp_source_event()
    payload = json.loads(source.to_json())
    payload["timestamp"] = "1764000000"
    payload["published"] = True
    peer_server.events[source.uuid] = payload
    with peer_server.serve() as base:
        with session_scope(app.state.sessionmaker, actor="test") as s:
            peer = MispPeer(name="partner misp", org_id=world.partner, url=base, api_key="key-123")
            s.add(peer)
            s.flush()
            with pytest.raises(Invalid, match="not on the outbound allowlist"):
                exchange.misp_pull(s, app.state.settings, peer, clock.now())
            _allow(app, base)
            got = exchange.misp_pull(s, app.state.settings, peer, clock.now())
            assert got["events"] == 1 and got["added"] == 5 and got["unmapped"] == 1
            assert peer.last_timestamp == 1764000000
            again = exchange.misp_pull(s, app.state.settings, peer, clock.now())
            assert again["events"] == 0
            mine = [indicator_obj("203.0.113.70", "GREEN", name="to partner"), indicator_obj("203.0.113.71", "RED")]
            services.store_objects(s, mine, services.Origin("t", None, None, may_update_any=True), clock.now())
            first = exchange.misp_push(s, app.state.settings, peer, [o["id"] for o in mine], info="weekly",
                                       now=clock.now())
            second = exchange.misp_push(s, app.state.settings, peer, [o["id"] for o in mine], info="weekly",
                                        now=clock.now())
        assert first["sent"] == 1 and first["refused"] == [mine[1]["id"]]
        assert ("POST", f"/events/edit/{second['event_uuid']}") in peer_server.requests  # updated, not duplicated
        pushed = peer_server.events[first["event_uuid"]]
        assert [a["value"] for a in pushed["Attribute"]] == ["203.0.113.70"]
        assert {t["name"] for t in pushed["Attribute"][0]["Tag"]} >= {"tlp:green"}
    bad = MispServer("other")
    with bad.serve() as base2:
        _allow(app, base2)
        with session_scope(app.state.sessionmaker, actor="test") as s:
            peer = MispPeer(name="wrong key", org_id=world.partner, url=base2, api_key="key-123")
            s.add(peer)
            s.flush()
            with pytest.raises(exchange.PeerFailed, match="answered HTTP 403 Authentication failed"):
                exchange.misp_pull(s, app.state.settings, peer, clock.now())
