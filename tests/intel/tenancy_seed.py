"""B's intelligence for the global tenancy walk: an AMBER+STRICT indicator owned by B, B's private
TAXII collection, a status resource of B's post, a subscription and a MISP peer of the centre."""

from __future__ import annotations

import uuid

from commonwatch.intel import services
from commonwatch.intel.models import MispPeer, Subscription, TaxiiStatus
from tests.intel.conftest import indicator_obj


def seed(session, world, clock) -> dict:
    now = clock.now()
    obj = indicator_obj("203.0.113.77", "AMBER+STRICT", name="SECRET-B indicator")
    origin = services.Origin("test", world.org_b, world.ids["user_b"])
    services.store_objects(session, [obj], origin, now)
    collection = services.create_collection(session, "SECRET-B collection", alias="secret-b", max_tlp="AMBER+STRICT")
    services.grant(session, collection, world.org_b, read=True, write=True)
    services.publish(session, collection, [obj["id"]], now)
    status = TaxiiStatus(uuid=str(uuid.uuid4()), collection_id=collection.id, user_id=world.ids["user_b"],
                         request_timestamp=now, total_count=1, success_count=1,
                         successes=[{"id": obj["id"], "message": "SECRET-B"}], failures=[])
    session.add(status)
    sub = Subscription(name="SECRET-B feed", org_id=world.org_b, collection_url="http://127.0.0.1:9/SECRET-B/",
                       secret="SECRET-B")
    peer = MispPeer(name="SECRET-B misp", org_id=world.org_b, url="http://127.0.0.1:9/", api_key="SECRET-B")
    session.add_all([sub, peer])
    session.flush()
    from sqlalchemy import select

    from commonwatch.intel.models import Indicator

    return {"indicator_id": session.scalar(select(Indicator.id).where(Indicator.stix_id == obj["id"])),
            "collection_id": collection.uuid, "object_id": obj["id"], "status_id": status.uuid,
            "subscription_id": sub.id, "peer_id": peer.id}
