"""The hash-chained audit log.

Every ORM change (create, update, delete) of an audited table, in any session, is appended
automatically in the same transaction, with the actor from ``session.info["actor"]``. Other notable acts (sign-in,
token issued, a batch ingested) are appended with :func:`record`. Each link stores the hash of
the previous one; :func:`verify` walks the chain and reports the first broken or missing link.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import event, insert, inspect, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from commonwatch.access.models import AuditEntry, AuditHead
from commonwatch.clock import ensure_utc, utcnow

GENESIS = "0" * 64
REDACTED = "[redacted]"


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
              before: str | None, after: str | None, prev_hash: str) -> str:
    """The hash of one link; it covers every field and the previous link's hash."""
    payload = json.dumps(
        [seq, ensure_utc(at).isoformat(), actor, action, entity, entity_id, before, after, prev_hash],
        ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def append(conn: Connection, entries: Iterable[dict[str, Any]], at: datetime | None = None) -> int:
    """Append entries (actor, action, entity, entity_id, before, after) to the chain; returns how many."""
    entries = list(entries)
    if not entries:
        return 0
    at = ensure_utc(at or utcnow())
    # The head row is locked until commit (FOR UPDATE on PostgreSQL; SQLite writers are serial).
    head = conn.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1).with_for_update()
    ).first()
    if head is None:
        conn.execute(insert(AuditHead).values(id=1, seq=0, hash=GENESIS))
        seq, prev = 0, GENESIS
    else:
        seq, prev = head.seq, head.hash
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
        row["hash"] = prev = link_hash(**row)
        rows.append(row)
    conn.execute(insert(AuditEntry), rows)
    conn.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=prev))
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


def verify(conn: Connection | Session, batch: int = 5000) -> VerifyResult:
    """Walk the chain in order; report the first link that was edited, removed or moved."""
    prev_hash, expected_seq, last_id, checked = GENESIS, 1, None, 0
    for row in _iter_entries(conn, batch):
        if row.seq != expected_seq:
            return VerifyResult(False, checked, f"link {expected_seq} is missing (found {row.seq} next)",
                                expected_seq)
        if last_id is not None and row.id < last_id:
            return VerifyResult(False, checked, f"link {row.seq} is out of order", row.seq)
        if row.prev_hash != prev_hash:
            return VerifyResult(False, checked,
                                f"link {row.seq} does not follow link {row.seq - 1} (previous hash differs)",
                                row.seq)
        fields = {k: getattr(row, k) for k in
                  ("seq", "at", "actor", "action", "entity", "entity_id", "before", "after", "prev_hash")}
        if link_hash(**fields) != row.hash:
            return VerifyResult(False, checked, f"link {row.seq} was altered (its hash does not match)", row.seq)
        prev_hash, expected_seq, last_id, checked = row.hash, expected_seq + 1, row.id, checked + 1
    head = conn.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).first()
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if head_seq != checked or head_hash != prev_hash:
        return VerifyResult(False, checked,
                            f"links {checked + 1} to {head_seq} are missing from the end of the log"
                            if head_seq > checked else "the chain head does not match the last link",
                            checked + 1)
    return VerifyResult(True, checked)


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
