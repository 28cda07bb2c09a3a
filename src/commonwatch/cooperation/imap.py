"""Polling a partner-reports mailbox over IMAP (imaplib, the standard library's client).

The mailbox is read by UID from the cursor on (``coop_imap_cursors``: UIDVALIDITY and the last UID
taken). Messages are fetched with ``BODY.PEEK[]`` (nothing is marked on the server), read in chunks,
and the cursor moves in the same transaction that records the chunk's reports, so a poller killed
mid-mailbox and run again takes every report once. A new UIDVALIDITY starts the mailbox over; the
reports' digests keep what was already taken from being taken twice. A message larger than the limit
is held with its size without being downloaded.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from commonwatch.clock import Clock
from commonwatch.cooperation.models import ImapCursor, InboundReport
from commonwatch.cooperation.reports import Mail, ingest_mails


@dataclass
class PollResult:
    fetched: int = 0
    ingested: int = 0
    held: int = 0
    restarted: bool = False


class ImapFailure(Exception):
    pass


def _uidvalidity(conn: imaplib.IMAP4) -> int:
    _typ, data = conn.response("UIDVALIDITY")
    if not data or data[0] is None:
        _typ, data = conn.status("INBOX", "(UIDVALIDITY)")
        match = re.search(rb"UIDVALIDITY (\d+)", data[0] or b"")
        if not match:
            raise ImapFailure("the server gave no UIDVALIDITY")
        return int(match.group(1))
    return int(data[0])


def poll(engine: Engine, sessionmaker, *, host: str, port: int, user: str, password: str, clock: Clock,
         data_dir: Path | None, mailbox: str = "INBOX", chunk: int = 50, ssl: bool = False,
         timeout: float = 30.0, centre_home: Path | None = None) -> PollResult:
    from commonwatch.cooperation.services import request_rules

    max_bytes = int(request_rules(data_dir)["inbound"]["max_bytes"])
    key = f"{user}@{host}:{port}/{mailbox}"
    result = PollResult()
    try:
        conn = (imaplib.IMAP4_SSL if ssl else imaplib.IMAP4)(host, port, timeout=timeout)
    except OSError as exc:
        raise ImapFailure(f"cannot connect to {host}:{port}: {exc}") from None
    try:
        conn.login(user, password)
        typ, _ = conn.select(mailbox, readonly=True)
        if typ != "OK":
            raise ImapFailure(f"cannot open mailbox {mailbox}")
        validity = _uidvalidity(conn)
        with sessionmaker() as s:
            cursor = s.scalar(select(ImapCursor).where(ImapCursor.mailbox == key))
            last = cursor.last_uid if cursor and cursor.uidvalidity == validity else 0
            result.restarted = bool(cursor and cursor.uidvalidity != validity)
        typ, data = conn.uid("SEARCH", None, f"UID {last + 1}:*")
        uids = [int(u) for u in (data[0] or b"").split() if int(u) > last]
        for start in range(0, len(uids), chunk):
            part = uids[start:start + chunk]
            mails: list[Mail] = []
            sizes: dict[int, int] = {}
            typ, data = conn.uid("FETCH", ",".join(map(str, part)), "(RFC822.SIZE)")
            for item in data:
                line = item[0] if isinstance(item, tuple) else item
                m = re.search(rb"UID (\d+).*RFC822\.SIZE (\d+)|RFC822\.SIZE (\d+).*UID (\d+)", line or b"")
                if m:
                    uid = int(m.group(1) or m.group(4))
                    sizes[uid] = int(m.group(2) or m.group(3))
            small = [uid for uid in part if sizes.get(uid, 0) <= max_bytes]
            bodies: dict[int, bytes] = {}
            if small:
                typ, data = conn.uid("FETCH", ",".join(map(str, small)), "(BODY.PEEK[])")
                for item in data:
                    if isinstance(item, tuple):
                        m = re.search(rb"UID (\d+)", item[0])
                        if m:
                            bodies[int(m.group(1))] = item[1]
            for uid in part:
                ref = f"{key} uidvalidity={validity} uid={uid}"
                if sizes.get(uid, 0) > max_bytes:
                    mails.append(Mail(f"X-Commonwatch-Too-Large: {sizes[uid]}\r\n\r\n{ref}".encode(), "imap", ref))
                    continue
                if uid not in bodies:
                    raise ImapFailure(f"the server did not return UID {uid}")
                mails.append(Mail(bodies[uid], "imap", ref))
            top = part[-1]

            def move_cursor(session, rows, top=top):
                for row in rows:
                    if row.raw and row.raw.startswith(b"X-Commonwatch-Too-Large:"):
                        size = int(row.raw.split(b"\r\n", 1)[0].split(b":")[1])
                        row.status, row.raw, row.size = "held", None, size
                        row.reason = f"the mail is {size:,} bytes; at most {max_bytes:,} are read"
                cur = session.scalar(select(ImapCursor).where(ImapCursor.mailbox == key))
                if cur is None:
                    cur = ImapCursor(mailbox=key, uidvalidity=validity, last_uid=0)
                    session.add(cur)
                cur.uidvalidity, cur.last_uid = validity, top

            rows = ingest_mails(engine, sessionmaker, mails, clock, data_dir, after_ingest=move_cursor,
                                centre_home=centre_home)
            result.fetched += len(part)
            result.ingested += sum(1 for r in rows if r.status == "ingested")
            result.held += sum(1 for r in rows if r.status == "held")
    except (imaplib.IMAP4.error, OSError) as exc:
        raise ImapFailure(f"IMAP {host}:{port}: {exc}") from None
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            conn.logout()
    return result


def count_reports(sessionmaker) -> int:
    with sessionmaker() as s:
        return len(s.scalars(select(InboundReport.id)).all())
