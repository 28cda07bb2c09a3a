"""The hash-chained audit log.

Every ORM change (create, update, delete) of an audited table, in any session, is appended
automatically in the same transaction, with the actor from ``session.info["actor"]``. Other notable acts (sign-in,
token issued, a batch ingested) are appended with :func:`record`. Each link stores the hash of
the previous one; :func:`verify` walks the chain and reports the first broken or missing link.

The link hash is an HMAC keyed with a secret kept outside the database (:func:`load_key`: the
``audit_key`` setting, or a file in the data dir created 0600 at first start), so a person who can
write to the database cannot recompute the hashes after editing a link. A chain begun before the
key existed stays plain SHA-256 up to ``audit_head.keyed_from`` and is keyed from there on; the
first keyed link covers the hash of the last plain one, so the older part is protected too. The
head itself is anchored outside the database by :mod:`commonwatch.access.anchor`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import event, insert, inspect, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from commonwatch.access.models import AuditEntry, AuditHead
from commonwatch.clock import ensure_utc, utcnow

GENESIS = "0" * 64
REDACTED = "[redacted]"
KEY_FILE = "audit.key"

# The key of each database, by its connection pool (shared by the engine and its read-only form).
_KEYS: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()


class AuditKeyMissing(RuntimeError):
    """The chain is keyed but this process has no key: it must not append unverifiable links."""


def load_key(settings: Any, create: bool = True) -> bytes | None:
    """The audit key: the ``audit_key`` setting, else the key file (``audit_key_file``, by default
    ``<data dir>/audit.key``), created with mode 0600 when ``create`` and absent."""
    if settings.audit_key:
        return settings.audit_key.encode("utf-8")
    path = settings.audit_key_file or settings.data_dir / KEY_FILE
    try:
        return _read_key(path)
    except FileNotFoundError:
        if not create:
            return None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return _read_key(path)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return _read_key(path)


def _read_key(path: Any) -> bytes:
    key = open(path, "rb").read().strip()  # noqa: SIM115 - a few bytes
    if len(key) < 32:
        raise ValueError(f"audit key file {path} holds fewer than 32 characters")
    return key


def use_key(engine: Engine, key: bytes | None) -> None:
    """Key the chain of ``engine``'s database with ``key`` in this process."""
    if key:
        _KEYS[engine.pool] = key
    else:
        _KEYS.pop(engine.pool, None)


def key_for(conn: Connection | Session | Engine) -> bytes | None:
    if isinstance(conn, Session):
        conn = conn.connection()
    engine = conn if isinstance(conn, Engine) else conn.engine
    return _KEYS.get(engine.pool)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return ensure_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value)
    return value


def _dump(state: dict[str, Any] | None) -> str | None:
    if state is None:
        return None
    return json.dumps(state, ensure_ascii=False, sort_keys=True, default=_jsonable)


def link_hash(seq: int, at: datetime, actor: str, action: str, entity: str, entity_id: str,
              before: str | None, after: str | None, prev_hash: str, key: bytes | None = None) -> str:
    """The hash of one link; it covers every field and the previous link's hash. With ``key`` it is
    HMAC-SHA-256 (keyed links), without it plain SHA-256 (links made before the chain was keyed)."""
    payload = json.dumps(
        [seq, ensure_utc(at).isoformat(), actor, action, entity, entity_id, before, after, prev_hash],
        ensure_ascii=False, separators=(",", ":"),
    ).encode("utf-8")
    if key is not None:
        return hmac.new(key, payload, hashlib.sha256).hexdigest()
    return hashlib.sha256(payload).hexdigest()


def append(conn: Connection, entries: Iterable[dict[str, Any]], at: datetime | None = None) -> int:
    """Append entries (actor, action, entity, entity_id, before, after) to the chain; returns how many."""
    entries = list(entries)
    if not entries:
        return 0
    at = ensure_utc(at or utcnow())
    # The head row is locked until commit (FOR UPDATE on PostgreSQL; SQLite writers are serial).
    head = conn.execute(
        select(AuditHead.seq, AuditHead.hash, AuditHead.keyed_from).where(AuditHead.id == 1).with_for_update()
    ).first()
    key = key_for(conn)
    if head is None:
        conn.execute(insert(AuditHead).values(id=1, seq=0, hash=GENESIS))
        seq, prev, keyed_from = 0, GENESIS, None
    else:
        seq, prev, keyed_from = head.seq, head.hash, head.keyed_from
    if keyed_from is None and key is not None:
        keyed_from = seq + 1  # the upgrade of an unkeyed chain: keyed from the next link on
    elif keyed_from is not None and key is None:
        raise AuditKeyMissing(f"the audit log is keyed from link {keyed_from} but no audit key is configured "
                              "(setting audit_key or the key file audit.key in the data dir)")
    rows = []
    for e in entries:
        seq += 1
        row = {
            "seq": seq, "at": at, "actor": e.get("actor") or "system", "action": e["action"],
            "entity": e["entity"], "entity_id": str(e.get("entity_id") or ""),
            "before": e["before"] if isinstance(e.get("before"), str | None) else _dump(e["before"]),
            "after": e["after"] if isinstance(e.get("after"), str | None) else _dump(e["after"]),
            "prev_hash": prev,
        }
        row["hash"] = prev = link_hash(**row, key=key)
        rows.append(row)
    conn.execute(insert(AuditEntry), rows)
    conn.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=prev, keyed_from=keyed_from))
    return len(rows)


def record(session: Session, action: str, entity: str, entity_id: Any = "", *,
           before: dict | None = None, after: dict | None = None, actor: str | None = None) -> None:
    """Append one act that is not a row change (a sign-in, a token issued, a batch ingested)."""
    append(
        session.connection(),
        [{"actor": actor or session.info.get("actor", "system"), "action": action, "entity": entity,
          "entity_id": entity_id, "before": _dump(before), "after": _dump(after)}],
        at=_session_now(session),
    )


def _session_now(session: Session) -> datetime:
    clock = session.info.get("clock")
    return clock.now() if clock is not None else utcnow()


def _audited(obj: Any) -> bool:
    return getattr(type(obj), "__audit__", True) and hasattr(type(obj), "__tablename__")


def _column_attrs(obj: Any):
    for attr in inspect(type(obj)).column_attrs:
        col = attr.columns[0]
        yield attr.key, col.info.get("audit")


def row_state(obj: Any) -> dict[str, Any]:
    """The audited columns of a row, with secrets redacted."""
    state = inspect(obj)
    out: dict[str, Any] = {}
    for key, mode in _column_attrs(obj):
        if mode == "skip":
            continue
        value = state.attrs[key].loaded_value
        out[key] = REDACTED if mode == "secret" and value is not None else _jsonable(value)
    return out


def _row_changes(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    state = inspect(obj)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for key, mode in _column_attrs(obj):
        if mode == "skip":
            continue
        hist = state.attrs[key].history
        if not hist.has_changes():
            continue
        old = hist.deleted[0] if hist.deleted else None
        new = hist.added[0] if hist.added else None
        if old == new:
            continue
        before[key] = REDACTED if mode == "secret" else _jsonable(old)
        after[key] = REDACTED if mode == "secret" else _jsonable(new)
    return before, after


def _entity_id(obj: Any) -> str:
    ident = inspect(type(obj)).primary_key_from_instance(obj)
    return ",".join(str(i) for i in ident if i is not None)


def _after_flush(session: Session, _flush_context) -> None:
    actor = session.info.get("actor", "system")
    entries = []
    for obj in session.new:
        if _audited(obj):
            entries.append({"actor": actor, "action": "create", "entity": obj.__tablename__,
                            "entity_id": _entity_id(obj), "before": None, "after": _dump(row_state(obj))})
    for obj in session.dirty:
        if _audited(obj) and session.is_modified(obj, include_collections=False):
            before, after = _row_changes(obj)
            if after:
                entries.append({"actor": actor, "action": "update", "entity": obj.__tablename__,
                                "entity_id": _entity_id(obj), "before": _dump(before), "after": _dump(after)})
    for obj in session.deleted:
        if _audited(obj):
            entries.append({"actor": actor, "action": "delete", "entity": obj.__tablename__,
                            "entity_id": _entity_id(obj), "before": _dump(row_state(obj)), "after": None})
    if entries:
        append(session.connection(), entries, at=_session_now(session))


# On the Session class itself, so every session — however it was made — is audited.
event.listen(Session, "after_flush", _after_flush)


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    problem: str = ""
    seq: int | None = None
    #: The first keyed link (None: the chain is not keyed yet).
    keyed_from: int | None = None
    #: How many anchors (heads recorded outside the database) the chain was checked against.
    anchors_checked: int = 0


def entries_query(*, entity: str = "", actor: str = "", action: str = "", since: datetime | None = None) -> Any:
    """The audit log's links matching the filters the audit page and ``audit list`` offer, newest
    first: an entity exactly, a part of the actor, an action exactly, from a time on."""
    stmt = select(AuditEntry)
    if entity:
        stmt = stmt.where(AuditEntry.entity == entity)
    if actor:
        stmt = stmt.where(AuditEntry.actor.contains(actor))
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    return stmt.order_by(AuditEntry.seq.desc())


def verify(conn: Connection | Session, batch: int = 5000, *, anchors: Sequence[Any] = ()) -> VerifyResult:
    """Walk the chain in order; report the first link that was edited, removed or moved, then check
    it against ``anchors`` (heads recorded outside the database, see ``access.anchor``): a link an
    anchor recorded that is gone (truncation) or whose hash differs (a rewrite)."""
    key = key_for(conn)
    head = conn.execute(select(AuditHead.seq, AuditHead.hash, AuditHead.keyed_from)
                        .where(AuditHead.id == 1)).first()
    head_seq, head_hash, keyed_from = (head.seq, head.hash, head.keyed_from) if head else (0, GENESIS, None)
    anchors = sorted(anchors, key=lambda a: (a.seq, a.at))
    by_seq: dict[int, Any] = {}
    for a in anchors:
        by_seq.setdefault(a.seq, a)
    anchored_from = next((a.keyed_from for a in reversed(anchors) if a.keyed_from is not None), None)
    result = VerifyResult(True, 0, keyed_from=keyed_from, anchors_checked=len(anchors))

    def broken(problem: str, seq: int | None) -> VerifyResult:
        result.ok, result.problem, result.seq = False, problem, seq
        return result

    if keyed_from is not None and key is None:
        return broken(f"the log is keyed from link {keyed_from} but no audit key is configured", keyed_from)
    if anchored_from is not None and head_seq >= anchored_from and keyed_from != anchored_from:
        return broken(f"the log says it is keyed from link {keyed_from if keyed_from else 'nowhere'} but the "
                      f"anchors recorded link {anchored_from} (the chain was re-hashed without the key)",
                      min(anchored_from, keyed_from or anchored_from))
    prev_hash, expected_seq, last_id, agreed = GENESIS, 1, None, 0
    for row in _iter_entries(conn, batch):
        if row.seq != expected_seq:
            return broken(f"link {expected_seq} is missing (found {row.seq} next)", expected_seq)
        if last_id is not None and row.id < last_id:
            return broken(f"link {row.seq} is out of order", row.seq)
        if row.prev_hash != prev_hash:
            return broken(f"link {row.seq} does not follow link {row.seq - 1} (previous hash differs)", row.seq)
        fields = {k: getattr(row, k) for k in
                  ("seq", "at", "actor", "action", "entity", "entity_id", "before", "after", "prev_hash")}
        keyed = keyed_from is not None and row.seq >= keyed_from
        if link_hash(**fields, key=key if keyed else None) != row.hash:
            return broken(f"link {row.seq} was altered (its hash does not match)", row.seq)
        anchor = by_seq.get(row.seq)
        if anchor is not None:
            if anchor.hash != row.hash:
                return broken(f"link {row.seq} differs from the anchor of {anchor.at.isoformat()}: the log was "
                              f"rewritten after link {agreed} (the last anchored link that agrees)", row.seq)
            agreed = row.seq
        prev_hash, expected_seq, last_id = row.hash, expected_seq + 1, row.id
        result.checked += 1
    checked = result.checked
    if head_seq != checked or head_hash != prev_hash:
        return broken(f"links {checked + 1} to {head_seq} are missing from the end of the log"
                      if head_seq > checked else "the chain head does not match the last link", checked + 1)
    if anchors and anchors[-1].seq > checked:
        last = anchors[-1]
        return broken(f"links {checked + 1} to {last.seq} are missing: the anchor of {last.at.isoformat()} "
                      f"recorded link {last.seq}, the log ends at link {checked} (truncated)", checked + 1)
    return result


def _iter_entries(conn: Connection | Session, batch: int) -> Iterator[Any]:
    last = 0
    while True:
        rows = conn.execute(
            select(AuditEntry.id, AuditEntry.seq, AuditEntry.at, AuditEntry.actor, AuditEntry.action,
                   AuditEntry.entity, AuditEntry.entity_id, AuditEntry.before, AuditEntry.after,
                   AuditEntry.prev_hash, AuditEntry.hash)
            .where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
