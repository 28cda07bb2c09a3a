"""Sharing a vulnerability as STIX 2.1: a ``vulnerability`` (CVE and CNVD/CNNVD references), the
affected products as ``software`` observables tied to it by ``related-to`` relationships, and the
intel indicators that name the vulnerability with ``indicates`` relationships, all marked with a
TLP 2.0 label. Who may receive it is intel's TLP rule (``intel.tlp.allows``); publishing goes
through intel's store into a TAXII collection, so the collection's ceiling and the refusal of
TLP:RED on shared channels apply exactly as to intel's own objects.

Ids as STIX 2.1 wants them (and stix2-validator's strict mode checks): UUIDv4 for the vulnerability
and the relationships, made once and reused from intel's store on the next publication so partners
see new versions of the same objects; the software observables' ids are the deterministic UUIDv5
of their id-contributing properties, computed by the ``stix2`` library. A software object's purl,
which STIX 2.1 has no property for, is carried under commonwatch's own property extension.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import stix2
from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.errors import Forbidden, NotFound
from commonwatch.intel import stix
from commonwatch.intel import tlp as tlpmod
from commonwatch.intel.models import IntelObject
from commonwatch.intel.services import bundle_of, centre_uuid
from commonwatch.vulns.models import VulnRecord


def _held(session: Session, kind: str) -> list[dict[str, Any]]:
    return [json.loads(b) for b in session.scalars(select(IntelObject.body).where(
        IntelObject.type == kind, IntelObject.latest.is_(True)))]


def _software(kind: str, ident: str) -> dict[str, Any]:
    if kind == "cpe":
        parts = ident.split(":")
        props = {"name": parts[4] if len(parts) > 4 else ident, "cpe": ident}
        if len(parts) > 3:
            props["vendor"] = parts[3]
    else:
        base = ident.split("@")[0].removeprefix("pkg:")
        props = {"name": base.split("/")[-1] or ident}
        if "/" in base.split("/", 1)[-1]:
            props["vendor"] = base.split("/")[1]
    sw = stix2.v21.Software(**props)   # the id: UUIDv5 of name, cpe, vendor (STIX 2.1 §6.14)
    out = {"type": "software", "spec_version": stix.SPEC, "id": sw.id, **props}
    # STIX 2.1 software has no purl property: it goes under commonwatch's extension, whose definition
    # and schema travel with the bundle (intel.services.bundle_of) and with a collection
    return out if kind == "cpe" else stix.with_extension(out, purl=ident)


def _names_vuln(obj: dict[str, Any], vuln_id: str) -> bool:
    refs = [r.get("external_id") for r in obj.get("external_references") or [] if isinstance(r, dict)]
    text = f"{obj.get('name', '')} {obj.get('description', '')}"
    return vuln_id in refs or vuln_id in text.split() or vuln_id in " ".join(map(str, obj.get("labels") or []))


def vulnerability_bundle(session: Session, vuln_id: str, label: str, reader: tlpmod.Reader, *, now: datetime,
                         centre_name: str, base_url: str, share_orgs: Iterable[int] = ()) -> dict[str, Any]:
    """The bundle for ``vuln_id`` at TLP ``label``, if ``reader`` may have it (else :class:`Forbidden`)."""
    label = tlpmod.normalise(label)
    audience = tlpmod.Audience(tlp=label, owner_org_id=None, author_user_id=None, share_orgs=frozenset(share_orgs))
    if not tlpmod.allows(reader, audience):
        raise Forbidden(f"TLP:{label} does not admit this recipient")
    records = list(session.scalars(select(VulnRecord).where(VulnRecord.vuln_id == vuln_id,
                                                            VulnRecord.state == "PUBLISHED")))
    if not records:
        raise NotFound("vulnerability")
    ts = stix.timestamp(now)
    centre = stix.centre_identity(centre_name, base_url, centre_uuid(session))  # the installation's own id
    refs = [{"source_name": "cve", "external_id": vuln_id}] if vuln_id.startswith("CVE-") else []
    aliases = sorted({a for r in records for a in (r.aliases or [])})
    refs += [{"source_name": a.split("-")[0].lower(), "external_id": a} for a in aliases
             if a.startswith(("CNVD-", "CNNVD-"))]
    desc = next((r.summary for r in records if r.summary), "") or next((r.title for r in records if r.title), "")
    held_vuln = next((o for o in _held(session, "vulnerability") if o.get("name") == vuln_id
                      and o.get("created_by_ref") == centre["id"]), None)
    vuln = stix.with_tlp({"type": "vulnerability", "spec_version": stix.SPEC,
                          "id": held_vuln["id"] if held_vuln else stix.new_id("vulnerability"),
                          "created": held_vuln["created"] if held_vuln else ts, "modified": ts,
                          "created_by_ref": centre["id"], "name": vuln_id, "description": desc[:10000],
                          "external_references": refs or [{"source_name": "commonwatch", "external_id": vuln_id}]},
                         label)
    held_rels = {(o.get("source_ref"), o.get("target_ref")): o for o in _held(session, "relationship")}

    def relationship(kind: str, source: str, target: str, description: str) -> dict[str, Any]:
        old = held_rels.get((source, target))
        return stix.with_tlp({
            "type": "relationship", "spec_version": stix.SPEC, "id": old["id"] if old else stix.new_id("relationship"),
            "created": old["created"] if old else ts, "modified": ts, "created_by_ref": centre["id"],
            "relationship_type": kind, "source_ref": source, "target_ref": target, "description": description}, label)

    objects: list[dict[str, Any]] = [vuln]
    seen: set[str] = set()
    for r in records:
        for c in r.criteria or []:
            if c.get("effect", "affected") != "affected" or not c.get("vulnerable", True):
                continue
            ident = c["criteria"]
            if ident in seen:
                continue
            seen.add(ident)
            sw = stix.with_tlp(_software(c["kind"], ident), label)
            rng = f" ({c.get('lo') or ''}..{c.get('hi') or ''})" if c.get("lo") or c.get("hi") else ""
            objects += [sw, relationship("related-to", vuln["id"], sw["id"], f"affected: {ident}{rng}")]
    # intel's indicators that name the vulnerability, when their own label admits this audience
    for ind in _held(session, "indicator"):
        if ind.get("revoked") or not _names_vuln(ind, vuln_id):
            continue
        if tlpmod.RANK[stix.tlp_of(ind) or "AMBER"] > tlpmod.RANK[label]:
            continue
        # "indicates" is not a suggested target for a vulnerability (STIX 2.1 §4.7): related-to, said why
        objects += [ind, relationship("related-to", ind["id"], vuln["id"], f"indicates exploitation of {vuln_id}")]
    for obj in objects:
        stix.check_object(obj)
    return bundle_of(objects, centre)


def publish(session: Session, vuln_id: str, collection_id: str, label: str, *, now: datetime, centre_name: str,
            base_url: str, author_user_id: int | None) -> dict[str, Any]:
    """Publish the bundle to a TAXII collection through intel's store: its readers are the audience
    (TLP:AMBER reaches exactly them), the collection's ceiling and the refusal of TLP:RED on a
    shared channel apply as to intel's own objects. Returns the store's counts and the bundle id."""
    from commonwatch.access import audit
    from commonwatch.intel import services as intel
    from commonwatch.intel.models import CollectionAccess, IntelCollection

    c = session.scalar(select(IntelCollection).where((IntelCollection.uuid == collection_id)
                                                     | (IntelCollection.alias == collection_id)))
    if c is None:
        raise NotFound("collection")
    readers = session.scalars(select(CollectionAccess.org_id).where(CollectionAccess.collection_id == c.id,
                                                                    CollectionAccess.can_read.is_(True))).all()
    bundle = vulnerability_bundle(session, vuln_id, label, tlpmod.partner_reader(readers), now=now,
                                  centre_name=centre_name, base_url=base_url, share_orgs=readers)
    origin = intel.Origin(source=f"vulns:{vuln_id}"[:200], owner_org_id=None, author_user_id=author_user_id,
                          default_tlp=tlpmod.normalise(label), may_update_any=True, accept_red=False,
                          ceiling=c.max_tlp)
    # the definitions (and the project identity that wrote commonwatch's) are intel's to store, once
    objects = [o for o in bundle["objects"] if o["type"] not in ("marking-definition", "extension-definition")
               and o["id"] != stix.PROJECT_IDENTITY["id"]]
    checked = intel.check_objects(objects, origin)   # nothing stored when any object is refused
    failed = [r.reason for r in checked.report.results if r.status == "failed"]
    if failed:
        from commonwatch.errors import Invalid

        raise Invalid("tlp", failed[0])
    report = intel.store_checked(session, checked, origin, now, collection=c)
    audit.record(session, "vulns.publish", "intel_collections", c.uuid,
                 after={"vuln_id": vuln_id, "tlp": label, "objects": len(objects)})
    return {"collection": c.uuid, "added": report.count("added"), "unchanged": report.count("unchanged"),
            "bundle": bundle["id"]}
