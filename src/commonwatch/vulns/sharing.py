"""Sharing a vulnerability as STIX 2.1: a ``vulnerability`` (CVE and CNVD/CNNVD references), the
affected products as ``software`` objects tied to it by ``relationship``s, marked with a TLP 2.0
label; who may receive it is intel's TLP rule (``intel.tlp.allows``), so a partner gets exactly
what it would get of an intel object with the same label and recipients."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.errors import Forbidden, NotFound
from commonwatch.intel import stix
from commonwatch.intel import tlp as tlpmod
from commonwatch.intel.services import centre_uuid
from commonwatch.vulns.models import VulnRecord

_NS = uuid.UUID("6f3b0d6e-5d0e-4f5f-9d1c-3c6a4e0b7a11")


def _sid(kind: str, *parts: str) -> str:
    return f"{kind}--{uuid.uuid5(_NS, '|'.join(parts))}"


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
    vuln = stix.with_tlp({"type": "vulnerability", "spec_version": stix.SPEC, "id": _sid("vulnerability", vuln_id),
                          "created": ts, "modified": ts, "created_by_ref": centre["id"], "name": vuln_id,
                          "description": desc[:10000], "external_references": refs or [
                              {"source_name": "commonwatch", "external_id": vuln_id}]}, label)
    objects: list[dict[str, Any]] = [centre, stix.marking_object(label), vuln]
    seen: set[str] = set()
    for r in records:
        for c in r.criteria or []:
            if c.get("effect", "affected") != "affected" or not c.get("vulnerable", True):
                continue
            ident = c["criteria"]
            if ident in seen:
                continue
            seen.add(ident)
            sw: dict[str, Any] = {"type": "software", "spec_version": stix.SPEC, "id": _sid("software", ident)}
            if c["kind"] == "cpe":
                parts = ident.split(":")
                sw.update(name=parts[4] if len(parts) > 4 else ident, cpe=ident, vendor=parts[3] if len(parts) > 3
                          else "")
            else:
                sw.update(name=ident.split("/")[-1], x_purl=ident)
            objects.append(stix.with_tlp(sw, label))
            objects.append(stix.with_tlp({
                "type": "relationship", "spec_version": stix.SPEC, "id": _sid("relationship", vuln_id, ident),
                "created": ts, "modified": ts, "relationship_type": "related-to", "source_ref": vuln["id"],
                "target_ref": sw["id"], "description": f"affected: {ident}"
                + (f" ({c.get('lo') or ''}..{c.get('hi') or ''})" if c.get("lo") or c.get("hi") else "")}, label))
    for obj in objects:
        stix.check_object(obj)
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}
