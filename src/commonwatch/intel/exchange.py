"""Exchange with partners' systems: TAXII 2.1 collections (taxii2-client) and MISP instances.

Every request obeys the outbound policy (:mod:`commonwatch.outbound`: allowlist, redirects, the
address checked is the one connected to, time and size limits); a peer that fails is reported as
:class:`PeerFailed` with what it said. What goes out passes the TLP rule for the partner
organisation (RED never leaves; AMBER+STRICT only to a partner that is a named recipient).
"""

from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import requests
from pymisp import MISPAttribute, MISPEvent
from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch import outbound
from commonwatch.access import audit
from commonwatch.config import Settings
from commonwatch.db import session_scope
from commonwatch.errors import CommonwatchError, Invalid
from commonwatch.i18n import _
from commonwatch.intel import services, stix
from commonwatch.intel import tlp as tlpmod
from commonwatch.intel.models import Indicator, IntelObject, IntelShare, MispPeer, Subscription

log = logging.getLogger("commonwatch.intel.exchange")


# --- outbound requests ---------------------------------------------------------------------------------

class PeerFailed(CommonwatchError):
    """A partner's system could not be reached or answered with an error (the peer failed, not our
    client's input: HTTP 502 with what the peer said)."""

    status_code = 502


def _peer_error(exc: Exception) -> CommonwatchError:
    """What a failed exchange is reported as: our own refusals as they are, the rest as PeerFailed."""
    if isinstance(exc, CommonwatchError):
        return exc
    return PeerFailed(_("the partner's system failed: {error}").format(error=str(exc)[:500]))


class OutboundAdapter(requests.adapters.BaseAdapter):
    """taxii2-client speaks requests: this transport sends its requests through the outbound policy
    (:mod:`commonwatch.outbound`) and keeps the last response's headers (TAXII paging needs them)."""

    def __init__(self, policy: outbound.Policy, field: str):
        super().__init__()
        self.policy, self.field = policy, field
        self.last_headers: dict[str, str] = {}

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        body = request.body.encode() if isinstance(request.body, str) else request.body
        try:
            reply = outbound.send(self.policy, request.method, request.url, field=self.field,
                                  headers=dict(request.headers), content=body)
        except httpx.HTTPError as exc:
            raise PeerFailed(_("{url} could not be reached: {error}").format(url=request.url, error=exc)) from None
        resp = requests.Response()
        resp.status_code, resp.reason, resp.url, resp.request = reply.status, reply.reason, reply.url, request
        resp.headers = requests.structures.CaseInsensitiveDict(reply.headers.items())
        resp.encoding = requests.utils.get_encoding_from_headers(resp.headers)
        resp._content, resp._content_consumed = reply.body, True
        self.last_headers = dict(reply.headers.items())
        return resp

    def close(self) -> None:
        pass


class BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str):
        self.token = token

    def __call__(self, r):
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r


def _taxii_collection(settings: Settings, sub: Subscription):
    from taxii2client.common import _HTTPConnection
    from taxii2client.v21 import Collection

    conn = _HTTPConnection(version="2.1", user_agent="commonwatch")
    session = requests.Session()
    session.trust_env = False  # no proxies or .netrc credentials from the environment
    adapter = OutboundAdapter(outbound.Policy.of(settings), "collection_url")
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if sub.username and sub.secret:
        session.auth = requests.auth.HTTPBasicAuth(sub.username, sub.secret)
    elif sub.secret:
        session.auth = BearerAuth(sub.secret)
    conn.session = session
    url = sub.collection_url if sub.collection_url.endswith("/") else sub.collection_url + "/"
    outbound.check(url, settings.outbound_allowlist, "collection_url")
    return Collection(url, conn=conn), adapter


# --- TAXII subscriptions ---------------------------------------------------------------------------------

def poll_subscription(sessionmaker, settings: Settings, clock, sub_id: int, page_size: int = 100) -> dict[str, Any]:
    """Take in what a partner's collection added since the last poll, one committed page at a time.

    The ``X-TAXII-Date-Added-Last`` of each stored page becomes the next ``added_after``, so a
    crash loses at most the page in hand and a re-run neither skips nor stores anything twice.
    """
    from taxii2client.v21 import as_pages

    with session_scope(sessionmaker, actor="system intel-taxii") as session:
        sub = session.get(Subscription, sub_id)
        try:
            collection, http = _taxii_collection(settings, sub)
        except Invalid as exc:
            sub.last_error = str(exc)[:2000]
            sub.last_polled_at = clock.now()
            session.commit()
            raise
        added_after = sub.added_after
        name, org_id, default_tlp = sub.name, sub.org_id, sub.default_tlp
    totals = {"added": 0, "unchanged": 0, "failed": 0, "pages": 0}
    kwargs = {"added_after": added_after} if added_after else {}
    try:
        for envelope in as_pages(collection.get_objects, per_request=page_size, **kwargs):
            last = http.last_headers.get("X-TAXII-Date-Added-Last") or http.last_headers.get(
                "x-taxii-date-added-last")
            with session_scope(sessionmaker, actor=f"system subscription:{name}") as session:
                session.info["clock"] = clock
                origin = services.Origin(source=f"subscription:{name}", owner_org_id=org_id, author_user_id=None,
                                         default_tlp=default_tlp, accept_red=False)
                report = services.store_objects(session, envelope.get("objects", []), origin, clock.now())
                for key in ("added", "unchanged", "failed"):
                    totals[key] += report.count(key)
                totals["pages"] += 1
                sub = session.get(Subscription, sub_id)
                if last:
                    sub.added_after = last
                sub.last_polled_at = clock.now()
                sub.last_error = "; ".join(f"{r.stix_id}: {r.reason}" for r in report.failures)[:2000]
    except Exception as exc:
        with session_scope(sessionmaker, actor=f"system subscription:{name}") as session:
            sub = session.get(Subscription, sub_id)
            sub.last_error = str(exc)[:2000]
            sub.last_polled_at = clock.now()
        raise _peer_error(exc) from None
    return totals


def outbound_objects(session: Session, org_id: int, stix_ids: Iterable[str], *, now: datetime | None = None,
                     data_dir: Path | None = None) -> tuple[list[dict], list[str]]:
    """The latest versions of the objects that TLP lets go to a partner organisation, and the refused ids.
    With ``now``, indicators expired by decay (``rules/indicator_decay.yaml``) are refused too."""
    from commonwatch.intel import decay

    reader = tlpmod.partner_reader([org_id])
    out, refused = [], []
    wanted = list(dict.fromkeys(stix_ids))
    expired = decay.expired_stix_ids(session, wanted, now, data_dir) if now is not None else set()
    for sid in wanted:
        if sid in expired:
            refused.append(sid)
            continue
        row = session.scalar(select(IntelObject).where(IntelObject.stix_id == sid, IntelObject.latest.is_(True)))
        if row is None:
            refused.append(sid)
            continue
        shares = session.scalars(select(IntelShare).where(IntelShare.stix_id == sid)).all()
        aud = tlpmod.Audience(row.tlp, row.owner_org_id, row.author_user_id,
                              frozenset(s.org_id for s in shares if s.org_id),
                              frozenset(s.user_id for s in shares if s.user_id))
        if tlpmod.allows(reader, aud):
            out.append(json.loads(row.body))
        else:
            refused.append(sid)
    return out, refused


def push_to_subscription(session: Session, settings: Settings, sub: Subscription, stix_ids: list[str],
                         now: datetime | None = None) -> dict:
    """Post selected objects to a partner's collection; TLP decides what may go."""
    objects, refused = outbound_objects(session, sub.org_id, stix_ids, now=now, data_dir=settings.data_dir)
    result: dict[str, Any] = {"sent": 0, "refused": refused, "status": None}
    if objects:
        collection, _http = _taxii_collection(settings, sub)
        try:
            status = collection.add_objects({"objects": objects}, wait_for_completion=True, poll_interval=1,
                                            timeout=60)
        except Exception as exc:
            raise _peer_error(exc) from None
        result.update(sent=len(objects), status={"id": status.id, "status": status.status,
                                                 "success_count": status.success_count,
                                                 "failure_count": status.failure_count,
                                                 "failures": status.failures or []})
    audit.record(session, "intel.push", "intel_subscriptions", sub.id, after={
        "sent": [o["id"] for o in objects], "refused": refused})
    return result


def poll_due(sessionmaker, settings: Settings, clock) -> dict[str, Any]:
    """Poll every active subscription and MISP peer whose interval has passed."""
    now = clock.now()
    done: dict[str, Any] = {}
    with session_scope(sessionmaker, actor="system intel-feeds") as session:
        subs = [(s.id, s.name) for s in session.scalars(select(Subscription).where(Subscription.active.is_(True)))
                if s.last_polled_at is None or now - s.last_polled_at >= timedelta(minutes=s.every_minutes)]
        peers = [(p.id, p.name) for p in session.scalars(select(MispPeer).where(MispPeer.active.is_(True)))
                 if p.last_polled_at is None or now - p.last_polled_at >= timedelta(hours=1)]
    for sub_id, name in subs:
        try:
            done[f"taxii:{name}"] = poll_subscription(sessionmaker, settings, clock, sub_id)
        except Exception as exc:
            log.warning("subscription poll failed", extra={"subscription": name, "error": str(exc)})
            done[f"taxii:{name}"] = {"error": str(exc)}
    for peer_id, name in peers:
        try:
            with session_scope(sessionmaker, actor=f"system misp:{name}") as session:
                session.info["clock"] = clock
                done[f"misp:{name}"] = misp_pull(session, settings, session.get(MispPeer, peer_id), clock.now())
        except Exception as exc:
            log.warning("MISP pull failed", extra={"peer": name, "error": str(exc)})
            done[f"misp:{name}"] = {"error": str(exc)}
    return done


# --- MISP --------------------------------------------------------------------------------------------------

#: Our kinds -> MISP attribute types (export), and MISP types -> our kinds (import).
MISP_TYPE = {"ipv4": "ip-dst", "ipv6": "ip-dst", "cidr": "ip-dst", "domain": "domain", "url": "url",
             "email": "email-src", "md5": "md5", "sha1": "sha1", "sha256": "sha256"}
FROM_MISP = {"ip-dst": None, "ip-src": None, "domain": "domain", "hostname": "domain", "url": "url", "link": "url",
             "email-src": "email", "email-dst": "email", "email": "email", "whois-registrant-email": "email",
             "md5": "md5", "sha1": "sha1", "sha256": "sha256"}
DISTRIBUTION = {"CLEAR": 3, "GREEN": 1, "AMBER": 0, "AMBER+STRICT": 0}
CONFIDENCE_TAG = 'commonwatch:confidence="{n}"'


def _tlp_tag(label: str) -> str:
    return f"tlp:{label.lower()}"


def _tlp_from_tags(tags: Iterable[str]) -> str | None:
    found = []
    for t in tags:
        if t.lower().startswith("tlp:"):
            try:
                found.append(tlpmod.normalise(t[4:]))
            except ValueError:
                continue
    return max(found, key=lambda label: tlpmod.RANK[label]) if found else None


def _ms(value: datetime) -> str:
    return stix.timestamp(value)


def misp_event(session: Session, indicators: list[Indicator], *, info: str, event_uuid: str | None = None,
               now: datetime) -> MISPEvent:
    """A MISP event with one attribute per indicator (to_ids, TLP tag, galaxies and kill chain as tags)."""
    event = MISPEvent()
    event.uuid = event_uuid or str(uuid.uuid4())
    event.info = info
    event.date = now.date()
    event.threat_level_id = 2
    event.analysis = 2
    strictest = max((i.tlp for i in indicators), key=lambda label: tlpmod.RANK[label], default="CLEAR")
    event.distribution = DISTRIBUTION.get(strictest, 0)
    event.add_tag(_tlp_tag(strictest))
    names = _related_names(session, [r for i in indicators for r in (i.related or [])])
    for ind in indicators:
        if ind.kind not in MISP_TYPE:
            continue
        misp = stix.extension_of(ind.extra or {}).get("misp") or {}
        kind_type = misp.get("attribute_type") or MISP_TYPE[ind.kind]
        if "|" in kind_type:  # one part of a composite attribute: the part's own type is not known
            kind_type = MISP_TYPE[ind.kind]
        attr = MISPAttribute()
        attr.from_dict(type=kind_type, value=ind.value,
                       category=misp.get("category") or ("Network activity" if ind.kind in
                                                         ("ipv4", "ipv6", "cidr", "domain", "url")
                                                         else "Payload delivery"),
                       to_ids=bool(misp.get("to_ids", "malicious-activity" in (ind.indicator_types or []))),
                       comment=misp.get("comment", ind.name) if misp else (ind.name or ""),
                       uuid=ind.stix_id.split("--", 1)[1],
                       distribution=DISTRIBUTION.get(ind.tlp, 0))
        attr.first_seen = ind.valid_from
        if ind.valid_until:
            attr.last_seen = ind.valid_until
        attr.add_tag(_tlp_tag(ind.tlp))
        # Malware families and actors go out in one form, the galaxy tag: MISP links it to the
        # galaxy's cluster (synonyms, references) and our import turns it back into the STIX object
        # and its relationship. A plain ``malware:<name>`` label becomes the same galaxy tag.
        galaxy: dict[tuple[str, str], str] = {}
        for ref in ind.related or []:
            kind, name = names.get(ref, (None, None))
            if kind == "malware" and name:
                galaxy.setdefault(("malware", name.lower()), f'misp-galaxy:malpedia="{name}"')
            elif kind in ("threat-actor", "intrusion-set") and name:
                galaxy.setdefault(("threat-actor", name.lower()), f'misp-galaxy:threat-actor="{name}"')
        plain = []
        for label in ind.labels or []:
            found = _galaxy_of(label) if label.lower().startswith("malware:") else None
            if found is not None:
                galaxy.setdefault((found[0], found[1].lower()), f'misp-galaxy:malpedia="{found[1]}"')
            else:
                plain.append(label)
        for tag in galaxy.values():
            attr.add_tag(tag)
        for phase in ind.kill_chain_phases or []:
            attr.add_tag(f"kill-chain:{phase['phase_name']}")
        if ind.confidence is not None:
            attr.add_tag(CONFIDENCE_TAG.format(n=ind.confidence))
        for label in plain:
            attr.add_tag(label)
        event.add_attribute(**attr.to_dict())
    return event


def _related_names(session: Session, refs: list[str]) -> dict[str, tuple[str, str]]:
    out = {}
    if refs:
        for row in session.scalars(select(IntelObject).where(IntelObject.stix_id.in_(set(refs)),
                                                             IntelObject.latest.is_(True))):
            out[row.stix_id] = (row.type, json.loads(row.body).get("name", ""))
    return out


#: Tag prefixes that carry meaning of their own (not labels).
_SPECIAL_TAGS = ("tlp:", "misp-galaxy:", "kill-chain:", "commonwatch:confidence=", "malware:")
#: Galaxy families whose clusters are threat actors (the rest are taken as malware families).
_ACTOR_GALAXIES = ("threat-actor", "mitre-intrusion-set", "360net-threat-actor", "microsoft-activity-group")


def _galaxy_of(tag: str) -> tuple[str, str] | None:
    """(STIX type, name) of a malware or actor tag, in either form: ``misp-galaxy:…="Name"`` or ``malware:Name``."""
    low = tag.lower()
    if low.startswith("malware:"):
        name = tag.split(":", 1)[1].strip().strip('"')
        return ("malware", name) if name else None
    if low.startswith("misp-galaxy:"):
        family, _eq, name = tag.partition("=")
        name = name.strip().strip('"')
        if not name:
            return None
        galaxy = family.split(":", 1)[1].lower()
        return ("threat-actor" if any(galaxy.startswith(g) for g in _ACTOR_GALAXIES) else "malware", name)
    return None


@dataclass
class _MispValue:
    """One value to import: an attribute, or one part of a composite one (``domain|ip``)."""

    attr: Any
    type: str
    value: str
    object_name: str = ""
    relation: str = ""


def _values_of(attr: Any, object_name: str = "") -> list[_MispValue]:
    relation = getattr(attr, "object_relation", "") or ""
    types, values = str(attr.type).split("|"), str(attr.value).split("|")
    if len(types) > 1 and len(types) == len(values):
        return [_MispValue(attr, t, v, object_name, relation) for t, v in zip(types, values, strict=True)]
    return [_MispValue(attr, str(attr.type), str(attr.value), object_name, relation)]


def _where(v: _MispValue) -> str:
    return f"MISP object “{v.object_name}”, {v.relation}: " if v.object_name else ""


def stix_from_misp(event: MISPEvent, *, default_tlp: str, now: datetime,
                   known: dict[Any, str] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """STIX objects for a MISP event's attributes and its objects' attributes, and a report of every
    value that was not mapped, with the reason (nothing is dropped silently).

    ``known`` gives the ids already held: ``(type, lower-case name)`` of malware and threat actors,
    ``(source_ref, target_ref)`` of relationships, so a re-import makes no new objects. New objects get
    UUIDv4 ids (STIX 2.1 section 2.9); an indicator keeps the MISP attribute's UUID when it is a UUIDv4.
    """
    known = dict(known or {})
    objects: list[dict[str, Any]] = []
    unmapped: list[dict[str, str]] = []
    event_tags = [t.name for t in event.tags]
    event_tlp = _tlp_from_tags(event_tags)
    event_labels = [t for t in event_tags if not t.lower().startswith(_SPECIAL_TAGS)]
    related: dict[tuple[str, str], dict[str, Any]] = {}
    values: list[_MispValue] = [v for attr in event.attributes for v in _values_of(attr)]
    observables: list[dict[str, Any]] = []
    for obj in getattr(event, "objects", []) or []:
        taken: set[str] = set()
        if str(obj.name) == "file":
            observable, taken = _file_observable(obj, event_tlp or default_tlp)
            if observable is not None:
                observables.append(observable)
        for attr in obj.attributes:
            if attr.object_relation not in taken:
                values += _values_of(attr, str(obj.name))
    used_ids: set[str] = set()
    for mv in values:
        attr = mv.attr
        report = {"uuid": str(attr.uuid), "type": mv.type} | ({"object": mv.object_name, "relation": mv.relation}
                                                               if mv.object_name else {})
        kind = FROM_MISP.get(mv.type, "missing")
        if kind == "missing":
            unmapped.append(report | {"reason": _where(mv) + "the MISP type " + mv.type
                                      + " has no STIX indicator pattern in commonwatch"})
            continue
        value = mv.value
        if kind is None:
            kind = stix.detect_kind(value)
        try:
            v = stix.normalise_value(kind, value)
        except Invalid as exc:
            unmapped.append(report | {"reason": _where(mv) + str(exc)})
            continue
        tags = [t.name for t in attr.tags]
        label = _tlp_from_tags(tags) or event_tlp or default_tlp
        created = _ms(attr.timestamp) if getattr(attr, "timestamp", None) else _ms(now)
        try:
            own = uuid.UUID(str(attr.uuid))
        except ValueError:
            own = None
        ident = f"indicator--{own}" if own is not None and own.version == 4 else None
        if ident is None or ident in used_ids:  # a composite's second part, or not a UUIDv4
            ident = known.get(("indicator", str(attr.uuid), mv.type)) or stix.new_id("indicator")
        used_ids.add(ident)
        to_ids = bool(getattr(attr, "to_ids", False))
        category = getattr(attr, "category", "") or ""
        where = f" (MISP object {mv.object_name}, {mv.relation})" if mv.object_name else ""
        obj: dict[str, Any] = {
            "type": "indicator", "spec_version": stix.SPEC, "id": ident, "created": created,
            "modified": created, "name": getattr(attr, "comment", "") or f"{mv.type}: {v.value}",
            "description": f"MISP attribute {mv.type} ({category or 'no category'}){where} in event "
                           f"“{getattr(event, 'info', '') or event.uuid}”.",
            "pattern": stix.pattern_for(v), "pattern_type": "stix",
            "valid_from": _ms(attr.first_seen) if getattr(attr, "first_seen", None) else created}
        if getattr(attr, "last_seen", None):
            obj["valid_until"] = _ms(attr.last_seen)
        obj["indicator_types"] = ["malicious-activity"] if to_ids else ["anomalous-activity"]
        labels, phases = [], []
        for tag in tags:
            low = tag.lower()
            if low.startswith("tlp:"):
                continue
            found = _galaxy_of(tag)
            if found is not None:
                kind_sdo, name = found
                key = (kind_sdo, name.lower())
                if key not in related:
                    sdo = {"type": kind_sdo, "spec_version": stix.SPEC,
                           "id": known.get(key) or stix.new_id(kind_sdo),
                           "created": created, "modified": created, "name": name}
                    if kind_sdo == "malware":
                        sdo["is_family"] = True
                    related[key] = stix.with_tlp(sdo, label)
                    known[key] = sdo["id"]
                target = related[key]["id"]
                objects.append(stix.with_tlp({
                    "type": "relationship", "spec_version": stix.SPEC,
                    "id": known.get((obj["id"], target)) or stix.new_id("relationship"),
                    "created": created, "modified": created, "relationship_type": "indicates",
                    "source_ref": obj["id"], "target_ref": target}, label))
            elif low.startswith("kill-chain:"):
                phases.append({"kill_chain_name": services.KILL_CHAIN, "phase_name": tag.split(":", 1)[1]})
            elif low.startswith("commonwatch:confidence="):
                try:
                    obj["confidence"] = int(tag.split("=", 1)[1].strip('"'))
                except ValueError:
                    labels.append(tag)
            else:
                labels.append(tag)
        labels = list(dict.fromkeys([*event_labels, *labels]))
        if labels:
            obj["labels"] = labels
        if phases:
            obj["kill_chain_phases"] = phases
        misp = {"attribute_type": mv.type, "category": category, "to_ids": to_ids, "event_uuid": str(event.uuid),
                "attribute_uuid": str(attr.uuid), "comment": getattr(attr, "comment", "") or ""}
        if mv.object_name:
            misp |= {"object_name": mv.object_name, "object_relation": mv.relation}
        objects.insert(0, stix.with_tlp(stix.with_extension(obj, misp=misp), label))
    return list(related.values()) + observables + objects, unmapped


#: A MISP file object's relations that a STIX file observable holds besides its hashes.
_FILE_PROPERTIES = {"filename": "name", "size-in-bytes": "size", "mimetype": "mime_type"}
_FILE_HASHES = {"md5": "MD5", "sha1": "SHA-1", "sha256": "SHA-256", "sha512": "SHA-512"}


def _file_observable(obj: Any, label: str) -> tuple[dict[str, Any] | None, set[str]]:
    """A MISP ``file`` object as a STIX file observable (a cyber-observable: its UUIDv5 id comes from
    its ID contributing properties, as STIX 2.1 section 2.9 says; the stix2 library makes it), and
    the relations it took that no indicator needs (its name, size, MIME type). Hashes also become
    indicators."""
    import stix2

    props: dict[str, Any] = {}
    hashes: dict[str, str] = {}
    taken: set[str] = set()
    for attr in obj.attributes:
        rel, value = attr.object_relation, str(attr.value).strip()
        if rel in _FILE_HASHES and value:
            hashes[_FILE_HASHES[rel]] = value.lower()
        elif rel in _FILE_PROPERTIES and value and rel not in taken:
            if rel == "size-in-bytes":
                try:
                    props["size"] = int(value)
                except ValueError:
                    continue
            else:
                props[_FILE_PROPERTIES[rel]] = value
            taken.add(rel)
    if not (props.get("name") or hashes):
        return None, set()
    try:
        sco = stix2.File(**props, **({"hashes": hashes} if hashes else {}),
                         object_marking_refs=[stix.TLP2_MARKINGS[label]])
    except Exception:  # stix2 refuses a bad value: leave every relation to the per-attribute path
        return None, set()
    return json.loads(sco.serialize()), taken


def _known_ids(session: Session, event: MISPEvent) -> dict[Any, str]:
    """The ids already held for what a MISP event names: its malware and actors by name, and the
    relationships of its indicators, so a re-import adds nothing."""
    names = {_galaxy_of(t.name) for attr in [*event.attributes, *(a for o in getattr(event, "objects", []) or []
                                                                  for a in o.attributes)] for t in attr.tags}
    names.discard(None)
    known: dict[Any, str] = {}
    kinds = {k for k, _n in names}
    if kinds:
        wanted = {(k, n.lower()) for k, n in names}
        for row in session.scalars(select(IntelObject).where(IntelObject.type.in_(kinds),
                                                             IntelObject.latest.is_(True))):
            key = (row.type, str(json.loads(row.body).get("name", "")).lower())
            if key in wanted:
                known.setdefault(key, row.stix_id)
        for row in session.scalars(select(IntelObject).where(IntelObject.type == "relationship",
                                                             IntelObject.latest.is_(True))):
            body = json.loads(row.body)
            known.setdefault((body.get("source_ref"), body.get("target_ref")), row.stix_id)
    return known


def import_misp_json(session: Session, raw: bytes | str | dict, origin: services.Origin, now: datetime
                     ) -> tuple[services.StoreReport, list[dict[str, str]]]:
    """Import MISP event JSON (``{"Event": ...}`` or a list/``response`` of them)."""
    data = raw if isinstance(raw, dict) else services.parse_json_document(
        raw.encode() if isinstance(raw, str) else raw)
    events = data.get("response", [data]) if isinstance(data, dict) else data
    report = services.StoreReport()
    unmapped: list[dict[str, str]] = []
    for item in events:
        event = MISPEvent()
        try:
            # pymisp consumes the dict it is given: hand it a copy
            event.from_dict(**copy.deepcopy(item if "Event" in item else {"Event": item}))
        except Exception as exc:  # pymisp raises bare exceptions for malformed events
            raise Invalid("Event", _("is not a MISP event: {reason}").format(reason=exc)) from None
        objects, missing = stix_from_misp(event, default_tlp=origin.default_tlp, now=now,
                                          known=_known_ids(session, event))
        part = services.store_objects(session, objects, origin, now)
        report.results += part.results
        unmapped += missing
    return report, unmapped


def _misp_call(settings: Settings, peer: MispPeer, path: str, payload: dict[str, Any]) -> tuple[int, Any]:
    """POST JSON to a MISP peer under the outbound policy; (status, decoded JSON or None)."""
    url = peer.url.rstrip("/") + path
    headers = {"Authorization": peer.api_key, "Accept": "application/json", "Content-Type": "application/json",
               "User-Agent": "commonwatch"}
    try:
        reply = outbound.send(outbound.Policy.of(settings), "POST", url, field="url", headers=headers,
                              content=json.dumps(payload).encode())
    except httpx.HTTPError as exc:
        raise PeerFailed(_("{url} could not be reached: {error}").format(url=url, error=exc)) from None
    try:
        return reply.status, json.loads(reply.body) if reply.body else None
    except ValueError:
        return reply.status, None


def _misp_ok(url: str, status: int, data: Any) -> Any:
    if not 200 <= status < 300:
        said = data.get("message", "") if isinstance(data, dict) else ""
        raise PeerFailed(_("{url} answered HTTP {status} {message}").format(url=url, status=status,
                                                                             message=str(said)[:300]))
    return data


def misp_pull(session: Session, settings: Settings, peer: MispPeer, now: datetime) -> dict[str, Any]:
    """Take in the events a MISP instance published since the last pull (``/events/restSearch``)."""
    status, data = _misp_call(settings, peer, "/events/restSearch", {
        "returnFormat": "json", "published": True, "timestamp": peer.last_timestamp + 1})
    data = _misp_ok(peer.url, status, data)
    if not isinstance(data, dict | list):
        raise PeerFailed(_("{url} did not answer with MISP JSON").format(url=peer.url))
    events = data.get("response", []) if isinstance(data, dict) else data
    origin = services.Origin(source=f"misp:{peer.name}", owner_org_id=peer.org_id, author_user_id=None,
                             default_tlp=peer.default_tlp, accept_red=False)
    report, unmapped = import_misp_json(session, {"response": events}, origin, now)
    stamps = [int(e.get("Event", e).get("timestamp", 0) or 0) for e in events]
    if stamps:
        peer.last_timestamp = max(peer.last_timestamp, *stamps)
    peer.last_polled_at = now
    return {"events": len(events), "added": report.count("added"), "unchanged": report.count("unchanged"),
            "failed": report.count("failed"), "unmapped": len(unmapped)}


def misp_push(session: Session, settings: Settings, peer: MispPeer, stix_ids: list[str], *, info: str,
              now: datetime) -> dict[str, Any]:
    """Send selected indicators to a MISP instance as one event (TLP decides what may go)."""
    objects, refused = outbound_objects(session, peer.org_id, stix_ids, now=now, data_dir=settings.data_dir)
    ids = [o["id"] for o in objects if o["type"] == "indicator"]
    indicators = list(session.scalars(select(Indicator).where(Indicator.stix_id.in_(ids)))) if ids else []
    result: dict[str, Any] = {"sent": 0, "refused": refused}
    if indicators:
        event_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"commonwatch:{peer.id}:{info}"))
        event = misp_event(session, indicators, info=info, event_uuid=event_uuid, now=now)
        payload = json.loads(event.to_json())
        status, data = _misp_call(settings, peer, "/events/add", {"Event": payload})
        if status in (403, 409):  # it exists: update it
            status, data = _misp_call(settings, peer, f"/events/edit/{event_uuid}", {"Event": payload})
        _misp_ok(peer.url, status, data)
        result.update(sent=len(indicators), event_uuid=event_uuid)
    audit.record(session, "intel.misp_push", "intel_misp_peers", peer.id, after={
        "sent": [i.stix_id for i in indicators], "refused": refused})
    return result
