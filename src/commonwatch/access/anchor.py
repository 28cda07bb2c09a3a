"""Anchors: the audit chain's head written outside the database.

``commonwatch audit anchor`` (and the ``audit-anchor`` job) appends the head — sequence, hash,
time, and the first keyed link — as one JSON line to an append-only file
(``audit_anchor_file``, by default ``<data dir>/audit-anchors.jsonl``) and, when configured, posts
it to an outside witness (``audit_anchor_webhook``, through ``commonwatch.outbound``) or mails it
(``audit_anchor_mail_to``, through notify's SMTP settings). ``audit verify`` then checks the chain
against those lines: a link an anchor recorded that is gone, or whose hash differs, is reported.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from commonwatch.access.audit import GENESIS
from commonwatch.access.models import AuditEntry, AuditHead
from commonwatch.clock import ensure_utc

ANCHOR_FILE = "audit-anchors.jsonl"


class AnchorError(RuntimeError):
    """An anchor could not be written or read; the message names the file/line and the reason."""


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    at: datetime
    keyed_from: int | None = None

    def as_json(self) -> str:
        return json.dumps({"seq": self.seq, "hash": self.hash, "at": ensure_utc(self.at).isoformat(),
                           "keyed_from": self.keyed_from}, separators=(",", ":"))


def anchor_path(settings: Any) -> Path:
    return Path(settings.audit_anchor_file or settings.data_dir / ANCHOR_FILE)


def read_anchors(path: Path) -> list[Anchor]:
    """Every anchor in the file (none if it does not exist); a malformed line is an error naming it."""
    if not path.exists():
        return []
    out = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                seq, hash_, keyed = d["seq"], d["hash"], d.get("keyed_from")
                if not isinstance(seq, int) or seq < 0 or not isinstance(hash_, str) or len(hash_) != 64:
                    raise ValueError("seq must be a whole number and hash 64 hex digits")
                if keyed is not None and not isinstance(keyed, int):
                    raise ValueError("keyed_from must be a whole number")
                out.append(Anchor(seq, hash_, ensure_utc(datetime.fromisoformat(d["at"])), keyed))
            except (ValueError, KeyError, TypeError) as exc:
                raise AnchorError(f"{path} line {n}: not an anchor ({exc})") from None
    return out


def current_head(conn: Connection, now: datetime) -> Anchor:
    head = conn.execute(select(AuditHead.seq, AuditHead.hash, AuditHead.keyed_from).where(AuditHead.id == 1)).first()
    if head is None:
        return Anchor(0, GENESIS, now, None)
    return Anchor(head.seq, head.hash, now, head.keyed_from)


def _check_follows(conn: Connection, head: Anchor, last: Anchor | None) -> None:
    """Refuse to anchor a head that contradicts the last anchor (that would bless a rewrite)."""
    if last is None or last.seq == 0:
        return
    if head.seq < last.seq:
        raise AnchorError(f"the log ends at link {head.seq} but the last anchor recorded link {last.seq}; "
                          "run `commonwatch audit verify`")
    stored = conn.execute(select(AuditEntry.hash).where(AuditEntry.seq == last.seq)).scalar()
    if stored != last.hash:
        raise AnchorError(f"link {last.seq} differs from the last anchor; run `commonwatch audit verify`")


def append_anchor(path: Path, anchor: Anchor) -> None:
    """One line appended (O_APPEND) and flushed to disk; the file is created 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (anchor.as_json() + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def post_to_witness(settings: Any, anchor: Anchor) -> None:
    from commonwatch import outbound

    body = json.dumps({"type": "commonwatch-audit-anchor", "centre": settings.centre_name,
                       **json.loads(anchor.as_json())}).encode("utf-8")
    reply = outbound.send(outbound.Policy.of(settings), "POST", settings.audit_anchor_webhook,
                          field="audit_anchor_webhook", headers={"Content-Type": "application/json"}, content=body)
    if not 200 <= reply.status < 300:
        raise AnchorError(f"the witness {settings.audit_anchor_webhook} answered {reply.status} {reply.reason}")


def mail_to_witness(settings: Any, anchor: Anchor) -> None:
    from commonwatch.notify.mail import Envelope, SmtpTransport

    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = settings.audit_anchor_mail_to
    msg["Subject"] = f"commonwatch audit anchor: link {anchor.seq}"
    msg["Date"] = format_datetime(ensure_utc(anchor.at))
    msg["Message-ID"] = make_msgid(domain="commonwatch.invalid")
    # 8bit, not quoted-printable: the anchor line stays whole, easy to copy into `audit verify --anchors`.
    msg.set_content(f"{settings.centre_name}\naudit log head (keep this message)\n\n{anchor.as_json()}\n",
                    cte="8bit")
    transport = SmtpTransport(settings)
    try:
        outcome = transport.send(Envelope(settings.mail_from, settings.audit_anchor_mail_to,
                                          msg.as_bytes().replace(b"\n", b"\r\n"), False, False), lambda: None)
    finally:
        transport.close()
    if outcome.status != "sent":
        raise AnchorError(f"the anchor mail to {settings.audit_anchor_mail_to} was not sent: {outcome.error}")


def anchor(settings: Any, engine: Any, now: datetime) -> Anchor:
    """Write the head to the anchor file, then to the configured witnesses; returns it."""
    path = anchor_path(settings)
    previous = read_anchors(path)
    with engine.connect() as conn:
        head = current_head(conn, ensure_utc(now))
        _check_follows(conn, head, previous[-1] if previous else None)
    append_anchor(path, head)
    if settings.audit_anchor_webhook:
        post_to_witness(settings, head)
    if settings.audit_anchor_mail_to:
        mail_to_witness(settings, head)
    return head


def anchor_due(settings: Any, now: datetime) -> bool:
    """Whether the schedule asks for an anchor now (the last one is older than the interval)."""
    if settings.audit_anchor_every_minutes <= 0:
        return False
    anchors = read_anchors(anchor_path(settings))
    return not anchors or ensure_utc(now) - anchors[-1].at >= timedelta(minutes=settings.audit_anchor_every_minutes)


def verify(conn: Any, settings: Any) -> Any:
    """``audit.verify`` against the configured anchor file (an unreadable file is a failure)."""
    from commonwatch.access import audit

    try:
        recorded = read_anchors(anchor_path(settings))
    except AnchorError as exc:
        return audit.VerifyResult(False, 0, str(exc))
    return audit.verify(conn, anchors=recorded)
