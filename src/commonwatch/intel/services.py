"""Intelligence services: store STIX objects (from any door: upload, API, TAXII, MISP, the event
jobs), keep indicators in typed columns, create/edit/expire indicators, share, publish to
collections, search, and export bundles. Plain values and a session in, results out.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from commonwatch.access import audit
from commonwatch.access.models import Membership, User
from commonwatch.access.principal import Principal
from commonwatch.constituency.models import Organisation
from commonwatch.db import get_scoped, scope
from commonwatch.errors import FieldError, Forbidden, Invalid, NotFound
from commonwatch.i18n import _
from commonwatch.intel import stix
from commonwatch.intel import tlp as tlpmod
from commonwatch.intel.models import (
    CollectionAccess,
    CollectionEntry,
    Indicator,
    IntelCollection,
    IntelObject,
    IntelShare,
    IntelState,
    Sighting,
)
from commonwatch.textio import control_char, control_char_reason, decode_bytes

MS = timedelta(milliseconds=1)
KILL_CHAIN = "lockheed-martin-cyber-kill-chain"
INDICATOR_TYPES = ("malicious-activity", "anomalous-activity", "attribution", "benign", "compromised",
                   "unknown")


# --- the centre's identity ----------------------------------------------------------------------------

CENTRE_KEY = "centre.identity"


def centre_uuid(session: Session) -> str:
    """The installation's own UUIDv4 for the centre's STIX identity: made once (by the migration, or
    here on first use) and kept, so every object the centre produces names the same author."""
    import uuid

    row = session.get(IntelState, CENTRE_KEY)
    if row is None:
        row = IntelState(key=CENTRE_KEY, value=str(uuid.uuid4()))
        session.add(row)
        session.flush()
    return row.value


def centre(session: Session, settings) -> dict[str, Any]:
    """The centre as a STIX identity (name and URL from the settings, the id from :func:`centre_uuid`)."""
    return stix.centre_identity(settings.centre_name, settings.base_url, centre_uuid(session))


# --- storing STIX objects ---------------------------------------------------------------------------

@dataclass
class ObjectResult:
    index: int
    stix_id: str | None
    version: str | None
    status: str  # added | unchanged | failed
    reason: str = ""
    unmapped: list[str] = field(default_factory=list)


@dataclass
class StoreReport:
    results: list[ObjectResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def failures(self) -> list[ObjectResult]:
        return [r for r in self.results if r.status == "failed"]

    def as_dict(self) -> dict[str, Any]:
        return {"added": self.count("added"), "unchanged": self.count("unchanged"), "failed": self.count("failed"),
                "objects": [r.__dict__ for r in self.results]}


@dataclass(frozen=True)
class Origin:
    """Who brings objects in, and what new objects belong to."""

    source: str  # upload | api | taxii:<collection> | subscription:<name> | misp:<peer> | events
    owner_org_id: int | None  # None: the centre
    author_user_id: int | None
    default_tlp: str = "AMBER"
    #: Centre staff with intel.write may add versions of anyone's objects; others only of their own.
    may_update_any: bool = False
    #: TLP:RED goes to named people only; shared channels (TAXII, feeds, MISP) refuse it.
    accept_red: bool = True
    #: The strictest label accepted (a collection's sharing ceiling).
    ceiling: str = "RED"


def _version_text(checked: stix.Checked) -> str | None:
    obj = checked.obj
    return obj.get("modified") or obj.get("created")


def store_objects(session: Session, objects: Sequence[Any], origin: Origin, now: datetime,
                  collection: IntelCollection | None = None) -> StoreReport:
    """Store each valid object (idempotently, by id and version); report each bad one with the reason.

    Nothing half-stored: an object is either stored with its indicator row and collection entry, or
    reported as failed. Callers commit.
    """
    return store_checked(session, check_objects(objects, origin), origin, now, collection)


@dataclass
class CheckedObjects:
    """Objects validated and converted, before any database work (see :func:`check_objects`)."""

    checked: list[tuple[int, stix.Checked]]
    report: StoreReport


def check_objects(objects: Sequence[Any], origin: Origin) -> CheckedObjects:
    """Validate and convert ``objects`` for ``origin`` without touching the database, so that a
    writer can do it before it takes the write lock; each bad one is reported with the reason."""
    report = StoreReport()
    checked: list[tuple[int, stix.Checked]] = []
    for index, obj in enumerate(objects):
        try:
            c = stix.check_object(obj)
            label = c.tlp or origin.default_tlp
            if label == "RED" and not origin.accept_red:
                raise Invalid("object_marking_refs", _("TLP:RED is for named people only and is not "
                                                       "accepted through a shared channel"))
            if tlpmod.RANK[label] > tlpmod.RANK[origin.ceiling]:
                raise Invalid("object_marking_refs", _("TLP:{label} is stricter than this collection allows "
                                                       "(TLP:{ceiling})").format(label=label, ceiling=origin.ceiling))
            checked.append((index, c))
        except Invalid as exc:
            ident = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None
            report.results.append(ObjectResult(index, ident, None, "failed", str(exc)))
    return CheckedObjects(checked, report)


def store_checked(session: Session, objects: CheckedObjects, origin: Origin, now: datetime,
                  collection: IntelCollection | None = None) -> StoreReport:
    """Store what :func:`check_objects` accepted (see :func:`store_objects`). Callers commit."""
    checked = objects.checked
    report = StoreReport(list(objects.report.results))
    ids = sorted({c.stix_id for _i, c in checked})
    existing: dict[str, list[IntelObject]] = {}
    for start in range(0, len(ids), 500):
        for row in session.scalars(select(IntelObject).where(IntelObject.stix_id.in_(ids[start:start + 500]))):
            existing.setdefault(row.stix_id, []).append(row)
    added: list[tuple[stix.Checked, NewVersion]] = []
    fresh: list[NewVersion] = []
    in_collection: list[IntelObject | NewVersion] = []
    seen: set[tuple[str, datetime | None]] = set()
    for index, c in checked:
        versions = existing.get(c.stix_id, [])
        version = c.version
        key = (c.stix_id, version)
        same = [v for v in versions if version is None or v.version == version]
        if key in seen or same:
            report.results.append(ObjectResult(index, c.stix_id, _version_text(c), "unchanged",
                                               unmapped=c.unmapped))
            in_collection.extend(same[:1])
            continue
        first = versions[0] if versions else None
        if first is not None and not (origin.may_update_any or (
                origin.owner_org_id is not None and first.owner_org_id == origin.owner_org_id)):
            report.results.append(ObjectResult(index, c.stix_id, _version_text(c), "failed",
                                               _("this object belongs to another organisation")))
            continue
        newest = max((v.version for v in versions), default=None)
        if newest is not None and version is not None and version < newest:
            report.results.append(ObjectResult(index, c.stix_id, _version_text(c), "failed", _(
                "modified: a newer version ({newest}) is held; this one is older").format(
                newest=stix.timestamp(newest))))
            continue
        seen.add(key)
        label = c.tlp or (first.tlp if first is not None else origin.default_tlp)
        row = NewVersion(
            stix_id=c.stix_id, type=c.type, spec_version=c.obj.get("spec_version", stix.SPEC),
            version=version or now, date_added=now, latest=True, revoked=bool(c.obj.get("revoked", False)),
            tlp=label, owner_org_id=first.owner_org_id if first is not None else origin.owner_org_id,
            author_user_id=first.author_user_id if first is not None else origin.author_user_id,
            source=origin.source[:200], body=stix.dumps(c.obj))
        for old in versions:
            old.latest = False
        fresh.append(row)
        existing.setdefault(c.stix_id, []).append(row)
        added.append((c, row))
        in_collection.append(row)
        report.results.append(ObjectResult(index, c.stix_id, _version_text(c), "added", reason=_expired_note(c, now),
                                           unmapped=c.unmapped))
    session.flush()
    # The envelope's new versions go in as one bulk insert of plain rows (ids returned), not as ORM
    # objects through the unit of work; the whole act is audited once below.
    if fresh:
        # Matched back by (stix_id, version), unique: asking SQLAlchemy for the ids in parameter
        # order makes it insert row by row on SQLite, this way it is one multi-row statement.
        table = IntelObject.__table__  # Core, not the ORM's bulk insert: no per-row ORM bookkeeping
        ids = {(stix_id, version): ident for ident, stix_id, version in session.execute(
            insert(table).returning(table.c.id, table.c.stix_id, table.c.version), [row.columns() for row in fresh])}
        for row in fresh:
            row.id = ids[(row.stix_id, row.version)]
    _project(session, added, origin)
    _follow_collections(session, [row for _c, row in added], now, skip=collection)
    if collection is not None and in_collection:
        add_to_collection(session, collection, in_collection, now)
    if report.results:
        audit.record(session, "intel.store", "intel_objects", origin.source, after={
            "added": report.count("added"), "unchanged": report.count("unchanged"),
            "failed": report.count("failed"), "ids": [c.stix_id for c, _r in added][:200]})
    return report


def store_checked_together(session: Session, parts: Sequence[CheckedObjects], origin: Origin, now: datetime,
                           collection: IntelCollection | None = None) -> list[StoreReport]:
    """Store several envelopes of one origin as one (one set of statements, one audit entry, in
    order: a later part sees an earlier one's objects); one report per part, as if stored alone."""
    if len(parts) == 1:
        return [store_checked(session, parts[0], origin, now, collection)]
    merged = CheckedObjects([], StoreReport())
    bounds: list[int] = []
    offset = 0
    for part in parts:
        merged.checked.extend((offset + i, c) for i, c in part.checked)
        merged.report.results.extend(replace(r, index=offset + r.index) for r in part.report.results)
        offset += len(part.checked) + len(part.report.results)
        bounds.append(offset)
    report = store_checked(session, merged, origin, now, collection)
    reports = [StoreReport() for _part in parts]
    for r in report.results:
        k = bisect_right(bounds, r.index)
        reports[k].results.append(replace(r, index=r.index - (bounds[k - 1] if k else 0)))
    return reports


@dataclass(slots=True)
class NewVersion:
    """A new object version (an ``intel_objects`` row) before and after its bulk insert: plain
    attributes, so building a large envelope's rows costs no ORM instrumentation."""

    stix_id: str
    type: str
    spec_version: str
    version: datetime
    date_added: datetime
    latest: bool
    revoked: bool
    tlp: str
    owner_org_id: int | None
    author_user_id: int | None
    source: str
    body: str
    id: int | None = None

    def columns(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if k != "id"}


def _expired_note(c: stix.Checked, now: datetime) -> str:
    """Said of an indicator whose valid_until has passed: kept as expired, never matched or shared."""
    until = (c.indicator or {}).get("valid_until")
    if c.type != "indicator" or until is None or until > now:
        return ""
    return _("expired: valid_until {when} is in the past; kept, but not matched or shared").format(
        when=stix.timestamp(until))


def _project(session: Session, added: list[tuple[stix.Checked, NewVersion]], origin: Origin) -> None:
    """Keep the typed ``indicators`` rows (and their related objects) in step with new versions."""
    indicator_ids = [c.stix_id for c, _r in added if c.indicator is not None]
    current = {i.stix_id: i for i in session.scalars(select(Indicator).where(Indicator.stix_id.in_(indicator_ids)))} \
        if indicator_ids else {}
    new: list[SimpleNamespace] = []  # new rows as plain attributes, inserted in bulk below
    for c, row in added:
        if c.indicator is None or not row.latest:
            continue
        ind = current.get(c.stix_id)
        if ind is None:
            ind = SimpleNamespace(stix_id=c.stix_id, related=[], sighting_count=0)
            new.append(ind)
            current[c.stix_id] = ind
        for key, value in c.indicator.items():
            setattr(ind, key, value)
        ind.tlp, ind.owner_org_id, ind.author_user_id = row.tlp, row.owner_org_id, row.author_user_id
        ind.source = row.source
        ind.created = c.created or row.version
        ind.modified = row.version
    for c, _row in added:
        obj = c.obj
        if c.type == "relationship" and obj.get("relationship_type") == "indicates":
            ind = current.get(obj.get("source_ref")) or session.scalar(
                select(Indicator).where(Indicator.stix_id == obj.get("source_ref")))
            if ind is not None and obj.get("target_ref") not in (ind.related or []):
                ind.related = [*(ind.related or []), obj["target_ref"]]
    session.flush()
    if new:
        session.execute(insert(Indicator.__table__), [vars(ind) for ind in new])  # one bulk insert of the new rows


def _follow_collections(session: Session, rows: list[NewVersion], now: datetime,
                        skip: IntelCollection | None) -> None:
    """A new version joins every collection that holds an earlier version of the object."""
    if not rows:
        return
    by_id = {r.stix_id: r for r in rows}
    held = session.execute(
        select(CollectionEntry.collection_id, IntelObject.stix_id).join(IntelObject,
                                                                        IntelObject.id == CollectionEntry.object_id)
        .where(IntelObject.stix_id.in_(list(by_id)), IntelObject.id.notin_([r.id for r in rows])).distinct()).all()
    targets: dict[int, list[IntelObject]] = {}
    for collection_id, stix_id in held:
        if skip is None or collection_id != skip.id:
            targets.setdefault(collection_id, []).append(by_id[stix_id])
    for collection_id, objs in targets.items():
        add_to_collection(session, session.get(IntelCollection, collection_id), objs, now)


def add_to_collection(session: Session, collection: IntelCollection, rows: Iterable[IntelObject | NewVersion],
                      now: datetime) -> int:
    """Add object versions to a collection, each with a strictly later ``date_added``."""
    rows = list({r.id: r for r in rows}.values())
    if not rows:
        return 0
    rows = list({r.id: r for r in _definitions_for(session, rows, now) + rows}.values())
    # Lock the collection so concurrent writers hand out date_added in commit order.
    session.execute(select(IntelCollection.id).where(IntelCollection.id == collection.id).with_for_update())
    present = set(session.scalars(select(CollectionEntry.object_id).where(
        CollectionEntry.collection_id == collection.id, CollectionEntry.object_id.in_([r.id for r in rows]))))
    fresh = [r for r in rows if r.id not in present]
    if not fresh:
        return 0
    last = session.scalar(select(func.max(CollectionEntry.date_added)).where(
        CollectionEntry.collection_id == collection.id))
    start = now if last is None or now > last else last + timedelta(microseconds=1)
    session.execute(insert(CollectionEntry.__table__), [{"collection_id": collection.id, "object_id": r.id,
                                               "date_added": start + timedelta(microseconds=i)}
                                              for i, r in enumerate(fresh)])
    return len(fresh)


def _definitions_for(session: Session, rows: list[IntelObject], now: datetime) -> list[IntelObject]:
    """The extension definition (and its author) that objects carrying commonwatch's extension need,
    stored once per version (TLP:CLEAR, the centre's) so a collection publishes them with the objects."""
    if not any(stix.EXTENSION in r.body for r in rows if r.type != "extension-definition"):
        return []
    out = []
    for obj in (stix.PROJECT_IDENTITY, stix.EXTENSION_OBJECT):
        row = _latest_row_or_none(session, obj["id"])
        if row is not None and json.loads(row.body).get("modified", "") < obj["modified"]:
            row.latest = False   # this release ships a newer definition (a property added): publish that one
            row = None
        if row is None:
            row = IntelObject(stix_id=obj["id"], type=obj["type"], spec_version=stix.SPEC,
                              version=stix.parse_timestamp(obj["modified"], "modified"), date_added=now, latest=True,
                              revoked=False, tlp="CLEAR", owner_org_id=None, author_user_id=None, source="commonwatch",
                              body=stix.dumps(obj))
            session.add(row)
            session.flush()
        out.append(row)
    return out


# --- reading files ---------------------------------------------------------------------------------

def parse_json_document(raw: bytes, field_name: str = "file") -> Any:
    """JSON from bytes in any encoding we read; a syntax error names the line and column."""
    text = decode_bytes(raw)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Invalid(field_name, _("is not valid JSON: {reason} at line {line}, column {col}").format(
            reason=exc.msg, line=exc.lineno, col=exc.colno)) from None
    except RecursionError:
        raise Invalid(field_name, _("is JSON nested too deeply to read")) from None


def bundle_objects(document: Any) -> list[Any]:
    """The objects of a STIX bundle (a bare object or a list of objects is taken too)."""
    if isinstance(document, dict) and document.get("type") == "bundle":
        objects = document.get("objects", [])
        if not isinstance(objects, list):
            raise Invalid("objects", _("must be a list"))
        return objects
    if isinstance(document, dict) and "objects" in document and isinstance(document["objects"], list):
        return document["objects"]  # a TAXII envelope
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        return [document]
    raise Invalid("file", _("is not a STIX bundle"))


def quarantine(data_dir: Path, raw: bytes, reason: str, kind: str = "intel") -> Path:
    """Keep input we could not use, under its content hash, with the reason beside it."""
    digest = hashlib.sha256(raw).hexdigest()
    folder = data_dir / "quarantine" / kind
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}.raw"
    path.write_bytes(raw)
    (folder / f"{digest}.reason.txt").write_text(reason, encoding="utf-8")
    return path


def import_bundle(session: Session, raw: bytes, origin: Origin, now: datetime, data_dir: Path,
                  collection: IntelCollection | None = None) -> StoreReport:
    """Import a bundle file: good objects are kept, each bad one reported (and quarantined raw)."""
    try:
        objects = bundle_objects(parse_json_document(raw))
    except Invalid as exc:
        quarantine(data_dir, raw, str(exc))
        raise
    report = store_objects(session, objects, origin, now, collection)
    if report.failures:
        bad = [objects[r.index] for r in report.failures]
        quarantine(data_dir, json.dumps(bad, ensure_ascii=False).encode(),
                   "\n".join(f"object {r.index} {r.stix_id or ''}: {r.reason}" for r in report.failures))
    return report


# --- indicators: create, edit, expire -----------------------------------------------------------------

@dataclass
class IndicatorForm:
    """What a person gives to create or edit an indicator (pages and API)."""

    value: str = ""
    kind: str = ""
    name: str = ""
    description: str = ""
    tlp: str = "AMBER"
    confidence: int | str | None = None
    valid_from: datetime | str | None = None
    valid_until: datetime | str | None = None
    indicator_types: list[str] = field(default_factory=lambda: ["malicious-activity"])
    labels: list[str] = field(default_factory=list)
    kill_chain_phases: list[str] = field(default_factory=list)
    malware: list[str] = field(default_factory=list)
    threat_actors: list[str] = field(default_factory=list)
    source: str = ""
    share_orgs: list[int] = field(default_factory=list)
    share_users: list[str] = field(default_factory=list)
    owner_org_id: int | None = None


def _parse_when(value: datetime | str | None, field_name: str, errors: list[FieldError]) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.now().astimezone().tzinfo)
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        errors.append(FieldError(field_name, _("is not a date and time (YYYY-MM-DD HH:MM)")))
        return None
    if parsed.tzinfo is None:
        from zoneinfo import ZoneInfo

        parsed = parsed.replace(tzinfo=ZoneInfo("UTC"))
    return parsed


def _clean_list(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        for part in str(v).split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def _validate_form(session: Session, form: IndicatorForm, now: datetime, *, current: Indicator | None,
                   tz: str) -> tuple[dict[str, Any], list[FieldError]]:
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    if current is None:
        kind = form.kind.strip() or stix.detect_kind(form.value or "")
        try:
            out["value"] = stix.normalise_value(kind, form.value)
        except Invalid as exc:
            errors.extend(exc.errors)
    try:
        out["tlp"] = tlpmod.normalise(form.tlp)
    except ValueError:
        errors.append(FieldError("tlp", _("must be one of {labels}").format(labels=", ".join(tlpmod.LEVELS))))
    confidence = form.confidence
    if confidence in (None, ""):
        out["confidence"] = None
    else:
        try:
            out["confidence"] = int(str(confidence))
            if not 0 <= out["confidence"] <= 100:
                raise ValueError
        except ValueError:
            errors.append(FieldError("confidence", _("must be a whole number from 0 to 100")))
    from zoneinfo import ZoneInfo

    local = ZoneInfo(tz)

    def when(value, name):
        if isinstance(value, str) and value.strip() and "T" not in value and "+" not in value:
            try:
                return datetime.fromisoformat(value.strip()).replace(tzinfo=local)
            except ValueError:
                errors.append(FieldError(name, _("is not a date and time (YYYY-MM-DD HH:MM)")))
                return None
        return _parse_when(value, name, errors)

    out["valid_from"] = when(form.valid_from, "valid_from") or (current.valid_from if current else now)
    out["valid_until"] = when(form.valid_until, "valid_until")
    if out["valid_until"] is not None and out["valid_until"] <= out["valid_from"]:
        errors.append(FieldError("valid_until", _("must be later than valid from")))
    types = _clean_list(form.indicator_types)
    bad = [t for t in types if t not in INDICATOR_TYPES]
    if bad:
        errors.append(FieldError("indicator_types", _("unknown type(s): {types}").format(types=", ".join(bad))))
    out["indicator_types"] = types
    out["labels"] = _clean_list(form.labels)
    phases = []
    for phase in _clean_list(form.kill_chain_phases):
        chain, sep, name = phase.partition(":")
        phases.append({"kill_chain_name": chain if sep else KILL_CHAIN, "phase_name": name if sep else phase})
    out["kill_chain_phases"] = phases
    if len(form.name) > 300:
        errors.append(FieldError("name", _("is longer than {n} characters").format(n=300)))
    out["name"], out["description"], out["source"] = form.name.strip(), form.description.strip(), form.source.strip()
    for key in ("value", "name", "description", "source"):  # a form post or an API body (textio)
        text = getattr(form, key) or ""
        if isinstance(text, str) and (code := control_char(text)):
            errors.append(FieldError(key, control_char_reason(code)))
    out["malware"], out["threat_actors"] = _clean_list(form.malware), _clean_list(form.threat_actors)
    orgs = sorted({int(o) for o in form.share_orgs if str(o).strip()})
    known = set(session.scalars(select(Organisation.id).where(Organisation.id.in_(orgs)))) if orgs else set()
    if set(orgs) - known:
        errors.append(FieldError("share_orgs", _("no organisation with id {id}").format(
            id=", ".join(map(str, sorted(set(orgs) - known))))))
    out["share_orgs"] = orgs
    users = []
    for email in _clean_list(form.share_users):
        uid = session.scalar(select(User.id).where(User.email == email.lower()))
        if uid is None:
            errors.append(FieldError("share_users", _("no user {email}").format(email=email)))
        else:
            users.append(uid)
    out["share_users"] = users
    if form.owner_org_id not in (None, "") and session.get(Organisation, int(form.owner_org_id)) is None:
        errors.append(FieldError("owner_org_id", _("no organisation with id {id}").format(id=form.owner_org_id)))
    out["owner_org_id"] = int(form.owner_org_id) if form.owner_org_id not in (None, "") else None
    return out, errors


def _bump(now: datetime, previous: datetime | None) -> datetime:
    """A ``modified`` later than the previous version's, at STIX's millisecond precision."""
    stamp = stix.parse_timestamp(stix.timestamp(now), "modified")
    if previous is not None and stamp <= previous:
        stamp = stix.parse_timestamp(stix.timestamp(previous + MS), "modified")
    return stamp


def _related_objects(session: Session, names: list[str], kind: str, label: str, centre_id: str, now: datetime,
                     origin: Origin) -> list[dict[str, Any]]:
    """Malware or threat-actor objects by name: the ones we hold are reused, new ones created."""
    out = []
    for name in names:
        found = None
        for row in session.scalars(select(IntelObject).where(IntelObject.type == kind, IntelObject.latest.is_(True))):
            if json.loads(row.body).get("name", "").lower() == name.lower():
                found = json.loads(row.body)
                break
        if found is None:
            stamp = stix.timestamp(now)
            found = {"type": kind, "spec_version": stix.SPEC, "id": stix.new_id(kind), "created": stamp,
                     "modified": stamp, "name": name, "created_by_ref": centre_id}
            if kind == "malware":
                found["is_family"] = True
            found = stix.with_tlp(found, label)
            store_objects(session, [found], origin, now)
        out.append(found)
    return out


def save_indicator(session: Session, principal: Principal, form: IndicatorForm, now: datetime, *,
                   centre_id: str, current: Indicator | None = None, tz: str = "UTC") -> Indicator:
    """Create an indicator, or a new version of ``current``; raises :class:`Invalid` with every bad field."""
    if not principal.has("intel.write"):
        raise Forbidden()
    data, errors = _validate_form(session, form, now, current=current, tz=tz)
    if errors:
        raise Invalid(errors)
    label = data["tlp"]
    if current is None:
        value: stix.Value = data["value"]
        body: dict[str, Any] = {"type": "indicator", "spec_version": stix.SPEC, "id": stix.new_id("indicator"),
                                "created": stix.timestamp(now), "created_by_ref": centre_id,
                                "pattern": stix.pattern_for(value), "pattern_type": "stix"}
        previous = None
    else:
        body = json.loads(_latest_row(session, current.stix_id).body)
        previous = current.modified
    modified = _bump(now, previous)
    body["modified"] = stix.timestamp(modified)
    body["valid_from"] = stix.timestamp(data["valid_from"])
    # STIX validators expect both (stix2-validator's indicator-properties check): an indicator
    # entered without them is named after its value and described by its kind.
    shown = (data["value"].value if current is None else current.value) or body["pattern"]
    kind = data["value"].kind if current is None else current.kind
    body["name"] = data["name"] or shown
    body["description"] = data["description"] or f"{kind} indicator entered at the coordination centre: {shown}"
    for key in ("indicator_types", "labels", "kill_chain_phases"):
        if data[key]:
            body[key] = data[key]
        else:
            body.pop(key, None)
    if data["confidence"] is not None:
        body["confidence"] = data["confidence"]
    else:
        body.pop("confidence", None)
    if data["valid_until"] is not None:
        body["valid_until"] = stix.timestamp(data["valid_until"])
    else:
        body.pop("valid_until", None)
    body = stix.with_tlp(body, label)
    owner = data["owner_org_id"] if principal.is_staff else None
    origin = Origin(source=data["source"] or (current.source if current else "local"), owner_org_id=owner,
                    author_user_id=principal.user_id, default_tlp=label, may_update_any=True)
    related = _related_objects(session, data["malware"], "malware", label, centre_id, now, origin) + \
        _related_objects(session, data["threat_actors"], "threat-actor", label, centre_id, now, origin)
    report = store_objects(session, [body], origin, now)
    if report.failures:
        raise Invalid("value", report.failures[0].reason)
    for target in related:
        if current is None or target["id"] not in (current.related or []):
            stamp = stix.timestamp(now)
            rel = stix.with_tlp({"type": "relationship", "spec_version": stix.SPEC, "id": stix.new_id("relationship"),
                                 "created": stamp, "modified": stamp, "relationship_type": "indicates",
                                 "source_ref": body["id"], "target_ref": target["id"], "created_by_ref": centre_id},
                                label)
            store_objects(session, [rel], origin, now)
    indicator = session.scalar(select(Indicator).where(Indicator.stix_id == body["id"]))
    if owner is not None and current is None:
        indicator.owner_org_id = owner
    set_shares(session, body["id"], data["share_orgs"], data["share_users"])
    session.flush()
    return indicator


def expire_indicator(session: Session, principal: Principal, indicator: Indicator, now: datetime, *,
                     centre_id: str) -> Indicator:
    """End an indicator's validity now (a new version with ``valid_until``)."""
    if not principal.has("intel.write"):
        raise Forbidden()
    body = json.loads(_latest_row(session, indicator.stix_id).body)
    until = stix.parse_timestamp(stix.timestamp(now), "valid_until")
    if indicator.valid_from >= until:  # it starts now or later: it ends before it starts being valid
        body["valid_from"] = stix.timestamp(until - MS)
    body["valid_until"] = stix.timestamp(until)
    body["modified"] = stix.timestamp(_bump(now, indicator.modified))
    origin = Origin(source=indicator.source, owner_org_id=indicator.owner_org_id,
                    author_user_id=principal.user_id, default_tlp=indicator.tlp, may_update_any=True)
    report = store_objects(session, [body], origin, now)
    if report.failures:
        raise Invalid("valid_until", report.failures[0].reason)
    session.refresh(indicator)
    return indicator


def _latest_row(session: Session, stix_id: str) -> IntelObject:
    row = session.scalar(select(IntelObject).where(IntelObject.stix_id == stix_id, IntelObject.latest.is_(True)))
    if row is None:
        raise NotFound("intel object")
    return row


def set_shares(session: Session, stix_id: str, org_ids: Iterable[int], user_ids: Iterable[int]) -> None:
    """Name the organisations and people an object is shared with (replacing the previous list)."""
    want = {(o, None) for o in org_ids} | {(None, u) for u in user_ids}
    have = {(s.org_id, s.user_id): s for s in session.scalars(select(IntelShare).where(IntelShare.stix_id == stix_id))}
    for key, share in have.items():
        if key not in want:
            session.delete(share)
    for org_id, user_id in want - set(have):
        session.add(IntelShare(stix_id=stix_id, org_id=org_id, user_id=user_id))


def shares_of(session: Session, stix_id: str) -> tuple[list[int], list[int]]:
    rows = session.scalars(select(IntelShare).where(IntelShare.stix_id == stix_id)).all()
    return sorted(r.org_id for r in rows if r.org_id), sorted(r.user_id for r in rows if r.user_id)


# --- reading -----------------------------------------------------------------------------------------

@dataclass
class IndicatorFilter:
    q: str = ""
    kind: str = ""
    tlp: str = ""
    status: str = ""  # live | expired | revoked
    source: str = ""


def search_indicators(session: Session, principal: Principal, f: IndicatorFilter, now: datetime, *,
                      page: int = 1, per_page: int = 50) -> tuple[list[Indicator], int]:
    """Indicators the principal may read, newest first, filtered."""
    stmt = indicators_query(principal, f, now)
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    page = max(page, 1)
    rows = session.scalars(stmt.order_by(Indicator.modified.desc(), Indicator.id.desc())
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return list(rows), total or 0


#: The columns the indicator list may be sorted by (each never NULL); TLP by how restricted it is.
INDICATOR_SORTS = {
    "modified": Indicator.modified, "value": Indicator.value, "kind": Indicator.kind,
    "tlp": case({label: i for i, label in enumerate(tlpmod.LEVELS)}, value=Indicator.tlp, else_=-1),
    "confidence": func.coalesce(Indicator.confidence, -1), "sightings": Indicator.sighting_count,
    "valid_from": Indicator.valid_from,
}
BULK_ACTIONS = ("revoke", "tlp")


def indicators_query(principal: Principal, f: IndicatorFilter, now: datetime) -> Any:
    """The indicators the principal may read that ``f`` selects, as a scoped select."""
    stmt = scope(select(Indicator), principal, Indicator)
    if f.q.strip():
        q = f.q.strip()
        like = f"%{q.lower()}%"
        conds = [func.lower(Indicator.value).like(like), func.lower(Indicator.name).like(like),
                 Indicator.stix_id == q]
        try:
            v = stix.normalise_value(stix.detect_kind(q), q)
            if v.first is not None:
                conds.append(and_(Indicator.first <= v.first, Indicator.last >= v.last))
        except Invalid:
            pass
        stmt = stmt.where(or_(*conds))
    if f.kind:
        stmt = stmt.where(Indicator.kind == f.kind)
    if f.tlp:
        stmt = stmt.where(Indicator.tlp == f.tlp)
    if f.source:
        stmt = stmt.where(Indicator.source == f.source)
    if f.status == "live":
        stmt = stmt.where(Indicator.revoked.is_(False), Indicator.valid_from <= now,
                          or_(Indicator.valid_until.is_(None), Indicator.valid_until > now))
    elif f.status == "expired":
        stmt = stmt.where(Indicator.valid_until <= now)
    elif f.status == "revoked":
        stmt = stmt.where(Indicator.revoked.is_(True))
    return stmt


def revise_many(session: Session, principal: Principal, ids: list[int], action: str, label: str, now: datetime, *,
                centre_id: str, dry_run: bool = False) -> tuple[list[int], dict[int, str]]:
    """Revoke, or mark with TLP ``label``, many indicators in one act: each gets a new STIX version
    (as an edit would make), and the act is one audit record naming them all.

    Returns the ids changed and, for the others, why not (not visible, already so)."""
    if not principal.has("intel.write"):
        raise Forbidden()
    if action not in BULK_ACTIONS:
        raise Invalid("action", _("“{value}” is not one of: {choices}").format(value=action,
                                                                             choices=", ".join(BULK_ACTIONS)))
    if action == "tlp" and label not in tlpmod.LEVELS:
        raise Invalid("tlp", _("“{value}” is not one of: {choices}").format(value=label,
                                                                          choices=", ".join(tlpmod.LEVELS)))
    visible = {i.id: i for i in session.scalars(scope(select(Indicator), principal, Indicator)
                                                .where(Indicator.id.in_(ids)))}
    done: list[int] = []
    refused: dict[int, str] = {}
    for ident in ids:
        ind = visible.get(ident)
        if ind is None:
            refused[ident] = _("not found")
        elif action == "revoke" and ind.revoked:
            refused[ident] = _("already revoked")
        elif action == "tlp" and ind.tlp == label:
            refused[ident] = _("already marked TLP:{label}").format(label=label)
        else:
            done.append(ident)
    if dry_run or not done:
        return done, refused
    for ident in done:
        ind = visible[ident]
        body = json.loads(_latest_row(session, ind.stix_id).body)
        if action == "revoke":
            body["revoked"] = True
        else:
            body = stix.with_tlp(body, label)
        body["modified"] = stix.timestamp(_bump(now, ind.modified))
        origin = Origin(source=ind.source, owner_org_id=ind.owner_org_id, author_user_id=principal.user_id,
                        default_tlp=label if action == "tlp" else ind.tlp, may_update_any=True)
        report = store_objects(session, [body], origin, now)
        if report.failures:
            raise Invalid("ids", f"{ident}: {report.failures[0].reason}")
    audit.record(session, f"intel.bulk_{action}", "intel_indicators", f"bulk:{len(done)}",
                 after={"ids": done, "tlp": label if action == "tlp" else None, "refused": sorted(refused)},
                 actor=principal.actor)
    session.flush()
    return done, refused


def get_indicator(session: Session, principal: Principal, indicator_id: int) -> Indicator:
    row = get_scoped(session, principal, Indicator, indicator_id)
    if row is None:
        raise NotFound("indicator")
    return row


def sightings_of(session: Session, principal: Principal, indicator: Indicator) -> list[Sighting]:
    return list(session.scalars(scope(select(Sighting).where(Sighting.indicator_id == indicator.id),
                                      principal, Sighting).order_by(Sighting.last_seen.desc())))


def versions_of(session: Session, principal: Principal, stix_id: str) -> list[IntelObject]:
    return list(session.scalars(scope(select(IntelObject).where(IntelObject.stix_id == stix_id), principal,
                                      IntelObject).order_by(IntelObject.version)))


# --- export ----------------------------------------------------------------------------------------

def export_bundle(session: Session, principal: Principal, stix_ids: Iterable[str], *, centre: dict[str, Any],
                  bundle_id: str | None = None) -> dict[str, Any]:
    """A STIX 2.1 bundle of the selected objects the principal may read, with the sightings and
    related objects of the indicators among them, the centre's identity and the TLP markings used."""
    wanted = list(dict.fromkeys(stix_ids))
    rows = _latest_visible(session, principal, wanted)
    indicator_ids = [r.stix_id for r in rows if r.type == "indicator"]
    if indicator_ids:
        related: set[str] = set()
        for ind in session.scalars(select(Indicator).where(Indicator.stix_id.in_(indicator_ids))):
            related.update(ind.related or [])
        rel_rows = session.scalars(select(IntelObject.stix_id).where(
            IntelObject.type == "relationship", IntelObject.latest.is_(True))).all()
        rels = [r for r in _latest_visible(session, principal, rel_rows)
                if json.loads(r.body).get("source_ref") in set(indicator_ids)]
        sightings = session.scalars(scope(select(Sighting.stix_id).join(
            Indicator, Indicator.id == Sighting.indicator_id).where(Indicator.stix_id.in_(indicator_ids)),
            principal, Sighting)).all()
        rows += _latest_visible(session, principal, [*related, *[r.stix_id for r in rels], *sightings])
    seen: set[str] = set()
    objects: list[dict[str, Any]] = []
    for row in rows:
        if row.stix_id not in seen:
            seen.add(row.stix_id)
            objects.append(json.loads(row.body))
    return bundle_of(objects, centre, bundle_id)


def bundle_of(objects: list[dict[str, Any]], centre: dict[str, Any], bundle_id: str | None = None) -> dict[str, Any]:
    """Wrap objects in a bundle with the centre's identity and every TLP marking they reference."""
    present = {o["id"] for o in objects}
    extra: list[dict[str, Any]] = []
    if centre["id"] not in present:
        extra.append(centre)
    used = {ref for o in objects for ref in o.get("object_marking_refs", [])}
    labels = [label for label, ref in stix.TLP2_MARKINGS.items() if ref in used and ref not in present]
    if labels:
        extra += [stix.marking_object(label) for label in labels]
        if stix.TLP2_EXTENSION not in present:
            extra.append(stix.TLP2_EXTENSION_OBJECT)
    if any(stix.EXTENSION in (o.get("extensions") or {}) for o in objects) and stix.EXTENSION not in present:
        extra += [o for o in (stix.PROJECT_IDENTITY, stix.EXTENSION_OBJECT) if o["id"] not in present]
    return {"type": "bundle", "id": bundle_id or stix.new_id("bundle"), "objects": extra + objects}


def _latest_visible(session: Session, principal: Principal, stix_ids: Sequence[str]) -> list[IntelObject]:
    out: list[IntelObject] = []
    ids = list(dict.fromkeys(stix_ids))
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        found = {r.stix_id: r for r in session.scalars(scope(select(IntelObject).where(
            IntelObject.stix_id.in_(chunk), IntelObject.latest.is_(True)), principal, IntelObject))}
        out += [found[i] for i in chunk if i in found]
    return out


def indicator_rows_for_export(session: Session, principal: Principal, f: IndicatorFilter, now: datetime,
                              limit: int = 100_000) -> list[Indicator]:
    rows, _total = search_indicators(session, principal, f, now, page=1, per_page=limit)
    return rows


def unexpired(session: Session, rows: list[Indicator], now: datetime, data_dir: Path | None) -> list[Indicator]:
    """``rows`` without the indicators decay (or their own valid_until) has expired: what may be
    shared (STIX and MISP exports, pushes). ``rules/indicator_decay.yaml`` decides."""
    from commonwatch.intel import decay

    expired = decay.expired_stix_ids(session, [r.stix_id for r in rows], now, data_dir)
    return [r for r in rows if r.stix_id not in expired]


CSV_HEADER = ("stix_id", "kind", "value", "pattern", "name", "tlp", "confidence", "valid_from", "valid_until",
              "source", "indicator_types", "kill_chain_phases", "sightings", "last_seen")


def csv_rows(rows: Iterable[Indicator]) -> Iterable[list[Any]]:
    for r in rows:
        yield [r.stix_id, r.kind, r.value, r.pattern, r.name, r.tlp, r.confidence,
               r.valid_from.isoformat(), r.valid_until.isoformat() if r.valid_until else "", r.source,
               ";".join(r.indicator_types or []),
               ";".join(f"{p['kill_chain_name']}:{p['phase_name']}" for p in r.kill_chain_phases or []),
               r.sighting_count, r.last_seen.isoformat() if r.last_seen else ""]


# --- collections -------------------------------------------------------------------------------------

def create_collection(session: Session, title: str, *, description: str = "", alias: str | None = None,
                      max_tlp: str = "AMBER", default_tlp: str = "AMBER", uuid_: str | None = None) -> IntelCollection:
    import uuid

    errors = []
    if not title.strip():
        errors.append(FieldError("title", _("is empty")))
    for name, value in (("max_tlp", max_tlp), ("default_tlp", default_tlp)):
        try:
            tlpmod.normalise(value)
        except ValueError:
            errors.append(FieldError(name, _("must be one of {labels}").format(labels=", ".join(tlpmod.LEVELS))))
    if errors:
        raise Invalid(errors)
    row = IntelCollection(uuid=uuid_ or str(uuid.uuid4()), title=title.strip(), description=description,
                          alias=alias, max_tlp=tlpmod.normalise(max_tlp), default_tlp=tlpmod.normalise(default_tlp))
    session.add(row)
    session.flush()
    return row


def grant(session: Session, collection: IntelCollection, org_id: int, *, read: bool = True,
          write: bool = False) -> CollectionAccess:
    """Give an organisation (a partner CERT or a constituent) read and/or write rights on a collection."""
    if session.get(Organisation, org_id) is None:
        raise Invalid("org_id", _("no organisation with id {id}").format(id=org_id))
    row = session.scalar(select(CollectionAccess).where(CollectionAccess.collection_id == collection.id,
                                                        CollectionAccess.org_id == org_id))
    if row is None:
        row = CollectionAccess(collection_id=collection.id, org_id=org_id)
        session.add(row)
    row.can_read, row.can_write = read, write
    session.flush()
    return row


def rights(session: Session, principal: Principal, collection: IntelCollection) -> tuple[bool, bool]:
    """(can read, can write) for a principal on a collection."""
    if principal.is_staff:
        return principal.has("intel.read"), principal.has("intel.write")
    if not principal.org_ids:
        return False, False
    rows = session.scalars(select(CollectionAccess).where(
        CollectionAccess.collection_id == collection.id,
        CollectionAccess.org_id.in_(sorted(principal.org_ids)))).all()
    return any(r.can_read for r in rows), any(r.can_write for r in rows)


def publish(session: Session, collection: IntelCollection, stix_ids: Iterable[str], now: datetime) -> int:
    """Put the latest versions of objects (and an indicator's relationships) into a collection."""
    ids = list(dict.fromkeys(stix_ids))
    rows = list(session.scalars(select(IntelObject).where(IntelObject.stix_id.in_(ids), IntelObject.latest.is_(True))))
    if any(r.type == "indicator" for r in rows):
        ind_ids = {r.stix_id for r in rows if r.type == "indicator"}
        for rel in session.scalars(select(IntelObject).where(IntelObject.type == "relationship",
                                                             IntelObject.latest.is_(True))):
            body = json.loads(rel.body)
            if body.get("source_ref") in ind_ids:
                rows.append(rel)
                target = _latest_row_or_none(session, body.get("target_ref"))
                if target is not None:
                    rows.append(target)
    order = {sid: i for i, sid in enumerate(ids)}
    rows.sort(key=lambda r: (r.type == "indicator", order.get(r.stix_id, -1)))
    return add_to_collection(session, collection, rows, now)


def _latest_row_or_none(session: Session, stix_id: str | None) -> IntelObject | None:
    if not stix_id:
        return None
    return session.scalar(select(IntelObject).where(IntelObject.stix_id == stix_id, IntelObject.latest.is_(True)))


def user_direct_orgs(session: Session, user_id: int) -> list[int]:
    return list(session.scalars(select(Membership.org_id).where(Membership.user_id == user_id)))


def mark_latest(session: Session, stix_id: str) -> None:
    """Recompute the ``latest`` flag of an object's versions (after a delete of a version)."""
    newest = session.scalar(select(func.max(IntelObject.version)).where(IntelObject.stix_id == stix_id))
    session.execute(update(IntelObject).where(IntelObject.stix_id == stix_id)
                    .values(latest=IntelObject.version == newest))
