"""Managing the exchange with partners from the exchange page: add a partner's TAXII collection
or MISP instance, test the connection, pause, resume and remove it; how many objects each of our
own collections holds.

Every address is checked by the outbound policy (:mod:`commonwatch.outbound`, the allowlist) when it
is added and again on every request; a connection test goes through the same seam as a poll
(``exchange.OutboundAdapter`` for TAXII, ``outbound.send`` for MISP). Adding, pausing, resuming and
removing are row changes and so in the audit log (secrets redacted); a test is one audit record
with its outcome.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from commonwatch import outbound
from commonwatch.access import audit
from commonwatch.config import Settings
from commonwatch.constituency.models import Organisation
from commonwatch.errors import CommonwatchError, FieldError, Invalid
from commonwatch.i18n import _
from commonwatch.intel import tlp as tlpmod
from commonwatch.intel.exchange import PeerFailed, _taxii_collection
from commonwatch.intel.models import CollectionEntry, IntelObject, MispPeer, Subscription

NAME_MAX = 200
EVERY_MINUTES = (5, 7 * 24 * 60)


def _text(data: dict[str, Any], key: str, errors: list[FieldError], *, required: bool = True,
          limit: int = 2000) -> str:
    value = str(data.get(key) or "").strip()
    if required and not value:
        errors.append(FieldError(key, _("is required")))
    elif len(value) > limit:
        errors.append(FieldError(key, _("is longer than {n} characters").format(n=limit)))
    return value


def _common(session: Session, settings: Settings, data: dict[str, Any], model: type, url_field: str,
            errors: list[FieldError]) -> dict[str, Any]:
    name = _text(data, "name", errors, limit=NAME_MAX)
    if name and session.scalar(select(model.id).where(model.name == name)) is not None:
        errors.append(FieldError("name", _("is already used by another one")))
    org = None
    raw_org = str(data.get("org_id") or "").strip()
    if raw_org.isdigit() and len(raw_org) < 18:
        org = session.get(Organisation, int(raw_org))
    if org is None:
        errors.append(FieldError("org_id", _("is not a registered organisation")))
    url = _text(data, url_field, errors)
    if url:
        try:
            outbound.check(url, settings.outbound_allowlist, url_field)
        except Invalid as exc:
            errors.extend(exc.errors)
    tlp = str(data.get("default_tlp") or "AMBER").strip().upper().removeprefix("TLP:")
    if tlp not in tlpmod.LEVELS or tlp == "RED":
        errors.append(FieldError("default_tlp", _("“{value}” is not one of: {choices}").format(
            value=tlp, choices=", ".join(t for t in tlpmod.LEVELS if t != "RED"))))
    return {"name": name, "org_id": org.id if org else None, url_field: url, "default_tlp": tlp}


def add_subscription(session: Session, settings: Settings, data: dict[str, Any]) -> Subscription:
    """A partner's TAXII 2.1 collection to poll (the collection's own URL, ending in its id)."""
    errors: list[FieldError] = []
    values = _common(session, settings, data, Subscription, "collection_url", errors)
    every = str(data.get("every_minutes") or "60").strip()
    if not every.isdigit() or not EVERY_MINUTES[0] <= int(every) <= EVERY_MINUTES[1]:
        errors.append(FieldError("every_minutes", _("must be a whole number of minutes from {low} to {high}").format(
            low=EVERY_MINUTES[0], high=EVERY_MINUTES[1])))
    username = _text(data, "username", errors, required=False, limit=200)
    secret = _text(data, "secret", errors, required=False)
    if errors:
        raise Invalid(errors)
    sub = Subscription(**values, username=username, secret=secret, every_minutes=int(every), active=True)
    session.add(sub)
    session.flush()
    return sub


def add_misp_peer(session: Session, settings: Settings, data: dict[str, Any]) -> MispPeer:
    """A partner's MISP instance to pull published events from (and push to)."""
    errors: list[FieldError] = []
    values = _common(session, settings, data, MispPeer, "url", errors)
    api_key = _text(data, "api_key", errors, limit=200)
    if errors:
        raise Invalid(errors)
    peer = MispPeer(**values, api_key=api_key, active=True)
    session.add(peer)
    session.flush()
    return peer


def set_active(session: Session, row: Subscription | MispPeer, active: bool) -> None:
    row.active = active
    session.flush()


def remove(session: Session, row: Subscription | MispPeer) -> None:
    """Remove a subscription or MISP instance; what it brought in stays (with its source)."""
    session.delete(row)
    session.flush()


@dataclass
class Tested:
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail}


def test_subscription(session: Session, settings: Settings, sub: Subscription) -> Tested:
    """Ask the partner's server for the collection's description (TAXII ``GET {collection}/``)."""
    try:
        collection, _http = _taxii_collection(settings, sub)
        collection.refresh()
        result = Tested(True, _("reached “{title}”: read {read}, write {write}").format(
            title=collection.title or collection.id, read=_("yes") if collection.can_read else _("no"),
            write=_("yes") if collection.can_write else _("no")))
    except Exception as exc:  # the partner's answer, said to the person and kept on the row
        result = Tested(False, _reason(exc))
    audit.record(session, "intel.subscription_test", "intel_subscriptions", sub.id, after=result.as_dict())
    return result


def test_misp_peer(session: Session, settings: Settings, peer: MispPeer) -> Tested:
    """Ask the MISP instance for its version (``GET /servers/getVersion``) with the API key."""
    url = peer.url.rstrip("/") + "/servers/getVersion"
    headers = {"Authorization": peer.api_key, "Accept": "application/json", "User-Agent": "commonwatch"}
    try:
        try:
            reply = outbound.send(outbound.Policy.of(settings), "GET", url, field="url", headers=headers)
        except httpx.HTTPError as exc:
            raise PeerFailed(_("{url} could not be reached: {error}").format(url=url, error=exc)) from None
        data: Any = None
        try:
            data = json.loads(reply.body) if reply.body else None
        except ValueError:
            data = None
        if not 200 <= reply.status < 300:
            said = data.get("message", "") if isinstance(data, dict) else ""
            raise PeerFailed(_("{url} answered HTTP {status} {message}").format(url=peer.url, status=reply.status,
                                                                                 message=str(said)[:300]))
        if not isinstance(data, dict) or "version" not in data:
            raise PeerFailed(_("{url} did not answer with MISP JSON").format(url=peer.url))
        result = Tested(True, _("reached MISP {version}").format(version=str(data["version"])[:40]))
    except Exception as exc:
        result = Tested(False, _reason(exc))
    audit.record(session, "intel.misp_peer_test", "intel_misp_peers", peer.id, after=result.as_dict())
    return result


def _reason(exc: Exception) -> str:
    if isinstance(exc, Invalid):
        return "; ".join(f"{e.field}: {e.reason}" for e in exc.errors)[:500]
    if isinstance(exc, CommonwatchError):
        return str(exc)[:500]
    return _("the partner's system failed: {error}").format(error=str(exc)[:400])


def collection_counts(session: Session, collection_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Per collection: (objects, versions) it holds — distinct STIX ids, and every version stored."""
    if not collection_ids:
        return {}
    rows = session.execute(
        select(CollectionEntry.collection_id, func.count(distinct(IntelObject.stix_id)), func.count())
        .join(IntelObject, IntelObject.id == CollectionEntry.object_id)
        .where(CollectionEntry.collection_id.in_(collection_ids))
        .group_by(CollectionEntry.collection_id))
    return {cid: (int(objects), int(versions)) for cid, objects, versions in rows}
