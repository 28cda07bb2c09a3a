"""Demo intelligence: indicators at every TLP, a related malware family, and a TAXII collection
shared with the demo partner CERT (CERT Demo Germany), so its token reads the collection and sees
only what TLP allows. Idempotent: objects have fixed ids and versions."""

from __future__ import annotations

from sqlalchemy import select

from commonwatch.intel import services, stix
from commonwatch.intel.models import IntelCollection

CREATED = "2026-11-20T08:00:00.000Z"
COLLECTION = "6f0c5e1a-6a8e-4c52-9d6f-2f1f0c0de001"
#: Fixed UUIDv4 ids (STIX 2.1 wants UUIDv4 for these objects), so a second load adds nothing.
IDS = {
    "malware:emotet": "13decf09-9cda-408a-9f92-b5ef8c4dcbdb",
    "indicator:https://login-demobank.example/verify": "e1a1720d-39c1-4e1b-93d0-0991542fbc21",
    "indicator:192.0.2.45": "88e06411-97d8-4dc3-af70-c0ba27cc429e",
    "indicator:198.51.100.200": "917eb076-ea9d-4510-abe9-debf715fde9b",
    "indicator:198.51.100.23": "e7df0ada-38aa-4252-8cc7-00e03a3280fc",
    "indicator:hr-notice@grid-payroll.example": "5906c5b4-d2dd-4b21-a32c-c0e79c027382",
    "indicator:" + "a" * 64: "fce89917-5e0f-4e86-ae6a-f9fe0a193aab",
    "relationship:192.0.2.45": "942aecdb-2f86-47b2-903b-3947200850c2",
    "relationship:198.51.100.200": "3f5a2fc5-844b-4cdd-bba5-f298a5d83584",
}


def _id(kind: str, name: str) -> str:
    return f"{kind}--{IDS[f'{kind}:{name}']}"


def load(ctx) -> None:
    session, settings = ctx.session, ctx.settings
    centre = services.centre(session, settings)
    collection = session.scalar(select(IntelCollection).where(IntelCollection.uuid == COLLECTION))
    if collection is None:
        collection = services.create_collection(
            session, "Shared with CERT Demo Germany", description="Indicators the centre shares with CERT-DE",
            alias="cert-de", max_tlp="AMBER+STRICT", default_tlp="AMBER", uuid_=COLLECTION)
    services.grant(session, collection, ctx.orgs["partner_de"].id, read=True, write=True)
    partner, telecom, grid = ctx.orgs["partner_de"].id, ctx.orgs["telecom"].id, ctx.orgs["grid"].id
    coordinator = ctx.users["coordinator"].id
    malware = stix.with_tlp({"type": "malware", "spec_version": "2.1", "id": _id("malware", "emotet"),
                             "created": CREATED, "modified": CREATED, "name": "Emotet", "is_family": True,
                             "created_by_ref": centre["id"]}, "GREEN")
    specs = [
        # name, value, tlp, shared orgs, named users, related malware, kill chain phase
        ("Phishing page imitating a bank login", "https://login-demobank.example/verify", "CLEAR", [], [], False,
         "delivery"),
        ("Emotet command-and-control server", "192.0.2.45", "GREEN", [], [], True, "command-and-control"),
        ("C2 server hosted in Germany (reported to CERT-DE)", "198.51.100.200", "AMBER", [partner], [], True,
         "command-and-control"),
        ("Compromised host in Northern Demo Telecom", "198.51.100.23", "AMBER", [telecom], [], False,
         "actions-on-objectives"),
        ("Spear-phishing sender targeting the grid", "hr-notice@grid-payroll.example", "AMBER+STRICT", [grid], [],
         False, "delivery"),
        ("Implant hash from an ongoing investigation", "a" * 64, "RED", [], [coordinator], False, "installation"),
    ]
    objects, shares = [malware], {}
    for name, value, label, orgs, users, related, phase in specs:
        v = stix.normalise_value(stix.detect_kind(value), value)
        obj = stix.with_tlp({
            "type": "indicator", "spec_version": "2.1", "id": _id("indicator", value), "created": CREATED,
            "modified": CREATED, "created_by_ref": centre["id"], "name": name,
            "description": f"Demo indicator: {name}.", "pattern": stix.pattern_for(v),
            "pattern_type": "stix", "valid_from": CREATED, "indicator_types": ["malicious-activity"],
            "confidence": 80, "kill_chain_phases": [{"kill_chain_name": services.KILL_CHAIN, "phase_name": phase}]},
            label)
        objects.append(obj)
        shares[obj["id"]] = (orgs, users)
        if related:
            objects.append(stix.with_tlp({
                "type": "relationship", "spec_version": "2.1", "id": _id("relationship", value), "created": CREATED,
                "modified": CREATED, "relationship_type": "indicates", "source_ref": obj["id"],
                "target_ref": malware["id"], "created_by_ref": centre["id"]}, "GREEN"))
    origin = services.Origin("demo", None, coordinator, may_update_any=True)
    now = ctx.clock.now()
    services.store_objects(session, objects, origin, now)
    for sid, (orgs, users) in shares.items():
        services.set_shares(session, sid, orgs, users)
    services.publish(session, collection, [o["id"] for o in objects if o["type"] == "indicator"], now)
    session.flush()
