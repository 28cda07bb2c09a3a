"""One notification run: plan new events, assemble due digests, send what is due.

Every delivery goes through a small state machine committed at each step, so any run may stop at
any point and the next run carries on:

``pending``/``retry`` -> ``sending`` (claimed, with a lease) -> ``sent``
                                                              -> ``retry`` (temporary failure, backoff)
                                                              -> ``dead`` (permanent, or retries used up)
                                                              -> ``held`` (needs the centre: no usable
                                                                 key, bad address, not allowlisted,
                                                                 or in doubt after a stop)

A claimed delivery whose lease ran out was left by a run that stopped: if it had not reached the
point of no return it is retried; if it had, it is held "in doubt" for the centre to check, so a
warning is never lost and never silently sent twice.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from multiprocessing import util as mp_util
from pathlib import Path
from typing import Any

from jinja2 import Environment
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from commonwatch import outbound
from commonwatch.clock import Clock
from commonwatch.config import Settings
from commonwatch.constituency.models import Contact, Organisation, OrgKind
from commonwatch.db import read_only_engine
from commonwatch.errors import Invalid
from commonwatch.i18n import _, use_language
from commonwatch.notify import planner, render, webhook
from commonwatch.notify.config import NotifySettings
from commonwatch.notify.mail import (
    Envelope,
    OutboxTransport,
    Outcome,
    SmtpTransport,
    content_entity,
    encrypted_message,
    outer_headers,
    plain_message,
    signed_message,
)
from commonwatch.notify.models import Delivery
from commonwatch.notify.pgp import Keyring, PgpError, default_home, gpg_binary
from commonwatch.notify.policies import effective_policies
from commonwatch.notify.reasons import Reason
from commonwatch.validation import normalise_email

log = logging.getLogger("commonwatch.notify")


class Held(Exception):
    """The delivery cannot go out until the centre acts; the reason says why."""

    def __init__(self, code: str, **args):
        self.reason = Reason(code, args)
        super().__init__(self.reason.english())


@dataclass
class RunReport:
    plan: planner.PlanReport = field(default_factory=planner.PlanReport)
    assembled: int = 0
    recovered: int = 0
    sent: int = 0
    retry: int = 0
    dead: int = 0
    held: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"events": self.plan.events, "routed": self.plan.routed, "warned": self.plan.warned,
                "repeats": self.plan.repeats, "suppressed": self.plan.suppressed, "queued": self.plan.queued,
                "deliveries": self.assembled, "recovered": self.recovered, "sent": self.sent,
                "retry": self.retry, "dead": self.dead, "held": self.held, "seconds": self.seconds}


def may_repeat(d: Delivery) -> bool:
    """Whether a delivery is being sent again after an attempt that may have reached its recipient
    (held in doubt, then resent): the message then says so."""
    return any(h.get("outcome") == "resend" and h.get("doubt") for h in d.history or [])


@dataclass
class Notifier:
    """Everything a run needs; the CLI, the server's job and the tests build one."""

    settings: Settings
    sessions: sessionmaker[Session]
    clock: Clock
    env: Environment
    nset: NotifySettings = field(default_factory=NotifySettings)
    transport: Any = None  # an SmtpTransport or OutboxTransport; chosen from the settings when None
    _keyring: Keyring | None = None
    _keyring_checked: bool = False

    # --- parts -----------------------------------------------------------------------------------

    @property
    def keyring(self) -> Keyring | None:
        if not self._keyring_checked:
            self._keyring_checked = True
            if gpg_binary() is not None:
                self._keyring = Keyring(default_home(self.settings), self.clock)
        return self._keyring

    def mail_transport(self):
        if self.transport is None:
            if self.settings.smtp_host:
                self.transport = SmtpTransport(self.settings, self.nset.smtp_timeout_seconds)
            else:
                self.transport = OutboxTransport(self.settings.data_dir / "notify" / "outbox")
        return self.transport

    def _read_session(self) -> Session:
        """A session for reads only (on SQLite it takes no write lock)."""
        bind = self.sessions.kw.get("bind")
        session = self.sessions(bind=read_only_engine(bind)) if bind is not None else self.sessions()
        session.info["actor"] = "system notify"
        session.info["clock"] = self.clock
        return session

    def _session(self) -> Session:
        session = self.sessions()
        session.info["actor"] = "system notify"
        session.info["clock"] = self.clock
        return session

    # --- the run ---------------------------------------------------------------------------------

    def run(self, *, send: bool = True) -> RunReport:
        """Plan, assemble and (unless ``send`` is false) send everything due now."""
        report = RunReport()
        started = time.perf_counter()
        with self._session() as session, session.begin():
            report.plan = planner.plan(session, self.clock.now(), self.nset, self.settings.data_dir)
        report.seconds["plan"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        with self._session() as session, session.begin():
            report.assembled, _held = planner.assemble(session, self.clock.now(), self.nset,
                                                       mail_from=self.settings.mail_from,
                                                       default_language=self.settings.default_language)
        report.seconds["assemble"] = round(time.perf_counter() - started, 3)
        if send:
            started = time.perf_counter()
            report.recovered = self.recover()
            self.send_due(report)
            report.seconds["send"] = round(time.perf_counter() - started, 3)
        return report

    def recover(self) -> int:
        """Deliveries left ``sending`` by a run that stopped: retry, or hold when in doubt."""
        now = self.clock.now()
        count = 0
        with self._session() as session, session.begin():
            stale = session.scalars(select(Delivery).where(Delivery.status == "sending",
                                                           Delivery.lease_until < now)).all()
            for d in stale:
                written = self._outbox_record(d) if d.handoff_at is not None else None
                if written is not None:  # the outbox is the record: the file is there or it is not
                    if written.exists():
                        self._finish(d, Outcome("sent", "", f"found in the outbox: {written}"), now)
                    else:
                        self._finish(d, Outcome.because("retry", "stopped_before"), now)
                        if d.status == "retry":
                            d.next_attempt_at = now
                elif d.handoff_at is not None:
                    self._finish(d, Outcome.because("held", "in_doubt", at=d.handoff_at.isoformat(),
                                                    message_id=d.message_id or d.id), now)
                else:
                    self._finish(d, Outcome.because("retry", "stopped_before"), now)
                    if d.status == "retry":
                        d.next_attempt_at = now  # nothing left the building: try again at once
                count += 1
        return count

    def _outbox_record(self, d: Delivery) -> Path | None:
        """Where the outbox would hold this e-mail (no SMTP server configured), else None: the SMTP
        server keeps no record commonwatch can ask for, so a message handed to it stays in doubt."""
        if d.channel != "email" or self.settings.smtp_host:
            return None
        return self.settings.data_dir / "notify" / "outbox" / f"{d.id:08d}.eml"

    def send_due(self, report: RunReport | None = None) -> RunReport:
        """Send every delivery due now: in a pool of processes when there are many (see
        :class:`NotifySettings`), else in this process with ``send_workers`` threads."""
        report = report or RunReport()
        now = self.clock.now()
        with self._session() as session:
            ids = session.scalars(select(Delivery.id).where(
                Delivery.status.in_(("pending", "retry")), Delivery.next_attempt_at <= now)
                .order_by(Delivery.id).limit(self.nset.send_batch)).all()
        processes = self._process_count(len(ids))
        if processes > 1:
            self._send_in_processes(list(ids), processes, report)
            return report
        workers = max(1, min(self.nset.send_workers, len(ids)))
        if workers == 1:
            self._send_ids(ids, report)
            return report
        parts: list[RunReport] = [RunReport() for _ in range(workers)]
        # Each worker gets its own transport (one SMTP connection each) and its own keyring handle.
        helpers = [replace(self, transport=None if self.transport is None or i else self.transport,
                           _keyring=None, _keyring_checked=False) for i in range(workers)]
        threads = [threading.Thread(target=helpers[i]._send_ids, args=(ids[i::workers], parts[i]),
                                    name=f"notify-send-{i}") for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for part in parts:
            _add_counts(report, part)
        return report

    def _process_count(self, due: int) -> int:
        """How many sending processes this many due deliveries are worth (1: none of their own).
        A transport handed in by the caller lives in this process, so it keeps the work here."""
        if self.transport is not None or due < self.nset.send_process_min:
            return 1
        wanted = self.nset.send_processes or os.cpu_count() or 1
        return max(1, min(wanted, -(-due // self.nset.send_commit_batch)))

    def _send_in_processes(self, ids: list[int], processes: int, report: RunReport) -> None:
        """Hand batches of ``ids`` to a pool of fresh processes, each with its own database
        connection, SMTP connection and keyring handle; the ledger's steps are the same."""
        bind = self.sessions.kw.get("bind")
        url = bind.url.render_as_string(hide_password=False) if bind is not None else self.settings.database_url
        spec = WorkerSpec(settings=self.settings, database_url=url, clock=self.clock, nset=self.nset,
                          imported=self._import_contact_keys(ids))
        step = self.nset.send_commit_batch
        batches = [ids[i:i + step] for i in range(0, len(ids), step)]
        # spawn, not fork: the parent holds database connections and threads a fork would copy.
        with ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_start_worker, initargs=(spec,)) as pool:
            futures = [pool.submit(_send_in_worker, batch) for batch in batches]
            for future in as_completed(futures):
                try:
                    counts = future.result()
                except Exception as exc:
                    # Its deliveries stay claimed; the next run recovers them when the lease ends.
                    log.warning("sending batch failed", extra={"error": str(exc)})
                    continue
                for name, n in counts.items():
                    setattr(report, name, getattr(report, name) + n)

    def _import_contact_keys(self, ids: list[int]) -> dict[str, str]:
        """Import the keys of these deliveries' contacts once, here, before the pool starts (two
        processes importing one key into the shared GnuPG home at the same moment make gpg fail);
        what was imported, for the processes to skip."""
        keyring = self.keyring
        if keyring is None:
            return {}
        keys: dict[str, str] = {}
        with self._read_session() as session:
            for start in range(0, len(ids), 5000):
                keys.update(session.execute(
                    select(Contact.pgp_fingerprint, Contact.pgp_key).join(Delivery, Delivery.contact_id == Contact.id)
                    .where(Delivery.id.in_(ids[start:start + 5000]), Contact.pgp_fingerprint.is_not(None))
                    .distinct()).all())
        for fingerprint, armored in keys.items():
            if fingerprint and armored and armored.strip():
                keyring.ensure_public_key(fingerprint, armored)
        return keyring.imported()

    def _send_ids(self, ids: Sequence[int], report: RunReport) -> None:
        try:
            step = self.nset.send_commit_batch
            for start in range(0, len(ids), step):
                for status in self.send_batch(ids[start:start + step]).values():
                    if status in ("sent", "retry", "dead", "held"):
                        setattr(report, status, getattr(report, status) + 1)
        finally:
            if self.transport is not None:
                self.transport.close()

    def _claim(self, session: Session, ids: Sequence[int], now: datetime) -> list[int]:
        """Claim those of ``ids`` still due (another run may have taken some); the claimed ids."""
        result = session.execute(
            update(Delivery).where(Delivery.id.in_(list(ids)), Delivery.status.in_(("pending", "retry")))
            .values(status="sending", lease_until=now + timedelta(seconds=self.nset.lease_seconds),
                    handoff_at=None, attempts=Delivery.attempts + 1)
            .returning(Delivery.id).execution_options(synchronize_session=False))
        return sorted(result.scalars().all())

    def send_one(self, delivery_id: int) -> str:
        """Send one delivery if it is still due; returns its new status ('' if another run has it)."""
        return self.send_batch([delivery_id]).get(delivery_id, "")

    def send_batch(self, ids: Sequence[int]) -> dict[int, str]:
        """Send those of ``ids`` still due; the new status of each one this run claimed.

        Three commits for the whole batch: claim, hand-over, record. No database transaction
        stays open while talking to a mail server or a webhook, or while gpg runs (SQLite writers
        would wait on it). The hand-over is committed for the batch just before its first message
        leaves, so a run killed while sending leaves the batch's messages "handed over": held in
        doubt, never sent twice on their own; one killed before leaves them to be retried.
        """
        now = self.clock.now()
        with self._session() as session:
            with session.begin():
                claimed = self._claim(session, ids, now)
            if not claimed:
                return {}
            prepared: dict[int, _Prepared] = {}
            # Rendering and gpg only read: on a read-only session (on SQLite no write lock is held
            # while gpg runs); what they find out waits for the record.
            with self._read_session() as reader, reader.begin(), reader.no_autoflush:
                for delivery_id in claimed:
                    prepared[delivery_id] = self._prepare_one(reader, delivery_id)
            ready = [i for i, p in prepared.items() if p.outcome is None]
            if ready:
                with session.begin():
                    session.execute(update(Delivery).where(Delivery.id.in_(ready))
                                    .values(handoff_at=self.clock.now()).execution_options(synchronize_session=False))
                for delivery_id in ready:
                    p = prepared[delivery_id]
                    assert p.send is not None
                    p.outcome = p.send(_handed_over)
            statuses: dict[int, str] = {}
            with session.begin():
                rows = {d.id: d for d in session.scalars(
                    select(Delivery).where(Delivery.id.in_(claimed)).execution_options(populate_existing=True))}
                finished = self.clock.now()
                for delivery_id, p in prepared.items():
                    d = rows[delivery_id]
                    for name, value in p.facts.items():
                        setattr(d, name, value)
                    assert p.outcome is not None
                    self._finish(d, p.outcome, finished)
                    statuses[delivery_id] = d.status
            return statuses

    def _prepare_one(self, session: Session, delivery_id: int) -> _Prepared:
        """Render and protect one claimed delivery; a failure is its outcome, not the batch's."""
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        facts: dict[str, Any] = {}
        try:
            send = self._prepare(session, delivery, facts)
        except Held as exc:
            return _Prepared(None, facts, Outcome("held", str(exc), "", exc.reason))
        except (PgpError, Invalid, OSError, ValueError) as exc:
            log.warning("delivery failed", extra={"delivery": delivery_id, "error": str(exc)})
            return _Prepared(None, facts, Outcome.because("retry", "failed", kind=type(exc).__name__,
                                                          detail=str(exc)))
        return _Prepared(send, facts, None)

    def _finish(self, d: Delivery, outcome: Outcome, now: datetime) -> None:
        status, error, why = outcome.status, outcome.error, outcome.reason
        schedule = self.nset.retry_seconds
        if status == "retry" and d.attempts > len(schedule):
            why = Reason("gave_up", {"detail": error, "n": d.attempts})
            status, error = "dead", why.english()
        d.status = status
        d.last_error = error
        d.reason = why.as_json() if why is not None else None
        d.lease_until = None
        d.history = [*(d.history or []), {"at": now.isoformat(), "attempt": d.attempts, "outcome": status,
                                          "reason": error[:500]}][-50:]
        if status == "sent":
            d.sent_at = now
            d.next_attempt_at = None
            if outcome.remote_id:
                d.history[-1]["server"] = outcome.remote_id[:200]
        elif status == "retry":
            d.next_attempt_at = now + timedelta(seconds=schedule[min(max(d.attempts, 1), len(schedule)) - 1])
        else:
            d.next_attempt_at = None

    # --- building and sending one message ----------------------------------------------------------

    def _prepare(self, session: Session, d: Delivery, facts: dict[str, Any]) -> Sender:
        """Render and protect the message; returns the step that hands it over. What the message
        turned out to be (address, TLP, signed, ...) goes into ``facts``, recorded with its outcome."""
        if d.channel == "webhook":
            return self._prepare_webhook(session, d, facts)
        if d.channel != "email":
            raise Held("nobody")
        policy = effective_policies(session, [d.org_id])[d.org_id]
        contact = session.get(Contact, d.contact_id) if d.contact_id else None
        if contact is None:
            raise Held("contact_gone")
        try:
            address = normalise_email(contact.email)
        except Invalid as exc:
            raise Held("malformed_address", address=repr(contact.email), detail=exc.errors[0].reason) from None
        now = self.clock.now()
        recipient_key = self._recipient_key(contact, policy.encryption_required, now)
        events = render.load_events(session, d.id)
        names = planner.org_names(session, {d.org_id})
        name, local = names.get(d.org_id, (str(d.org_id), ""))
        digest = render.build_digest(
            self.env, delivery_id=d.id, language=d.language, events=events, centre=self.settings.centre_name,
            centre_zh=self.settings.centre_name_zh, org_name=name, org_name_local=local,
            timezone=self.settings.timezone, base_url=self.settings.base_url,
            attach_intelmq=policy.attach_intelmq, inline_per_type=self.nset.inline_events_per_type,
            partner=session.get(Organisation, d.org_id).kind == OrgKind.PARTNER_CERT)
        if may_repeat(d):
            with use_language(d.language):
                digest = replace(
                    digest, subject=_("[may repeat an earlier message]") + " " + digest.subject,
                    text=_("This may repeat an earlier message: an earlier attempt to send it may have been "
                           "delivered, but we could not confirm that. If you received it already, you can "
                           "ignore this copy.") + "\n\n" + digest.text)
        attachments = [(f"commonwatch-{d.id}.csv", "text/csv", digest.csv)]
        if digest.jsonl is not None:
            attachments.append((f"commonwatch-{d.id}.intelmq.jsonl", "application/x-ndjson", digest.jsonl))
        entity = content_entity(digest.text, attachments)
        headers = outer_headers(sender=self.settings.mail_from, sender_name=(
            self.settings.centre_name_zh if d.language == "zh-CN" else self.settings.centre_name),
            recipient=address, subject=digest.subject, message_id=d.message_id, date=now, delivery_id=d.id,
            tlp=digest.tlp)
        keyring = self.keyring
        centre = keyring.centre_key() if keyring is not None else None
        signer = centre.fingerprint if centre is not None else None
        if recipient_key:
            data = encrypted_message(headers, entity, keyring, recipient_key, signer)  # type: ignore[arg-type]
        elif signer:
            data = signed_message(headers, entity, keyring, signer)  # type: ignore[arg-type]
        else:
            data = plain_message(headers, entity)
        facts.update(tlp=digest.tlp, signed=bool(signer), encrypted=bool(recipient_key), event_count=digest.count,
                     address=address)
        envelope = Envelope(self.settings.mail_from, address, data, bool(signer), bool(recipient_key))
        transport = self.mail_transport()
        if isinstance(transport, OutboxTransport):
            return lambda handoff: transport.send(envelope, handoff, name=f"{d.id:08d}")
        return lambda handoff: transport.send(envelope, handoff)

    def _recipient_key(self, contact: Contact, required: bool, now: datetime) -> str | None:
        """The fingerprint to encrypt to, None to send signed only; Held if encryption is required
        and impossible (no key, expired, revoked, unusable)."""
        if not contact.pgp_key.strip() or not contact.pgp_fingerprint:
            if required:
                raise Held("no_key", email=contact.email)
            return None
        if contact.pgp_expires_at is not None and contact.pgp_expires_at <= now:
            if required:
                raise Held("key_expired", fp=contact.pgp_fingerprint, email=contact.email,
                           date=contact.pgp_expires_at.date().isoformat())
            log.warning("sending unencrypted: key expired", extra={"contact": contact.id})
            return None
        keyring = self.keyring
        if keyring is None:
            if required:
                raise Held("no_gpg")
            return None
        info = keyring.ensure_public_key(contact.pgp_fingerprint, contact.pgp_key)
        fp, email = contact.pgp_fingerprint, contact.email
        problem: Held | None = None
        if info is None:
            problem = Held("key_unusable", fp=fp, email=email, detail="GnuPG could not import it")
        elif info.revoked:
            problem = Held("key_revoked", fp=fp, email=email)
        elif info.expired or (info.expires_at is not None and info.expires_at <= now):
            problem = Held("key_expired", fp=fp, email=email,
                           date=info.expires_at.date().isoformat() if info.expires_at else "?")
        elif not info.can_encrypt:
            problem = Held("key_unusable", fp=fp, email=email, detail="it has no encryption subkey")
        if problem is not None:
            if required:
                raise problem
            log.warning("sending unencrypted", extra={"contact": contact.id, "reason": str(problem)})
            return None
        return contact.pgp_fingerprint

    def _prepare_webhook(self, session: Session, d: Delivery, facts: dict[str, Any]) -> Sender:
        policy = effective_policies(session, [d.org_id])[d.org_id]
        url = policy.webhook_url or d.address
        if not url:
            raise Held("no_webhook")
        try:
            outbound.check(url, self.settings.outbound_allowlist, "webhook_url")
        except Invalid:
            raise Held("not_allowlisted", url=url) from None
        keyring = self.keyring
        if keyring is None or not policy.webhook_secret:
            raise Held("secret_unreadable", detail="no GnuPG, or no secret stored")
        try:
            secret = webhook.reveal_secret(keyring, policy.webhook_secret)
        except (PgpError, ValueError) as exc:
            raise Held("secret_unreadable", detail=str(exc)) from None
        events = render.load_events(session, d.id)
        name, _local = planner.org_names(session, {d.org_id}).get(d.org_id, (str(d.org_id), ""))
        tlp = render.highest_tlp(events["tlp"].drop_nulls().unique().to_list()) if events.height else "AMBER"
        summary = render.summarise(events, 0)
        now = self.clock.now()
        payload = render.webhook_payload(delivery_id=d.id, org_id=d.org_id, org_name=name,
                                         centre=self.settings.centre_name, tlp=tlp, events=events,
                                         summary=summary, now=now)
        if may_repeat(d):  # an earlier POST may have arrived: the receiver can de-duplicate on delivery_id
            payload = {**payload, "may_repeat": True}
        body = webhook.body_json(payload)
        facts.update(address=url, tlp=tlp, event_count=events.height)
        delivery_id = d.id
        http_policy = replace(outbound.Policy.of(self.settings), timeout=self.nset.webhook_timeout_seconds)

        def send(handoff: Callable[[], None]) -> Outcome:
            handoff()
            result = webhook.post(url, body, secret, delivery_id, int(now.timestamp()), policy=http_policy)
            # A refused or failed call was not accepted, so it is safe to repeat; receivers also
            # recognise a repeat by X-Commonwatch-Delivery.
            return Outcome(result.status, result.error, result.remote_id, result.reason)

        return send


Sender = Callable[[Callable[[], None]], Outcome]


@dataclass
class _Prepared:
    """One claimed delivery, ready: the step that hands it over, or already its outcome."""

    send: Sender | None
    facts: dict[str, Any]
    outcome: Outcome | None


def _handed_over() -> None:
    """The transport's hand-over hook: :meth:`Notifier.send_batch` committed it for the batch."""


def _add_counts(report: RunReport, part: RunReport) -> None:
    for name in ("sent", "retry", "dead", "held"):
        setattr(report, name, getattr(report, name) + getattr(part, name))


@dataclass
class WorkerSpec:
    """What a sending process needs to build its own :class:`Notifier` (all of it picklable)."""

    settings: Settings
    database_url: str
    clock: Clock
    nset: NotifySettings
    #: Contact keys the parent imported (fingerprint -> digest of the armoured key).
    imported: dict[str, str] = field(default_factory=dict)


_worker: Notifier | None = None


def _start_worker(spec: WorkerSpec) -> None:
    """A sending process's start: its own engine, templates, keyring and (lazily) SMTP connection."""
    global _worker
    from commonwatch import capabilities
    from commonwatch.db import make_engine, make_sessionmaker
    from commonwatch.web.templating import make_environment

    capabilities.import_models()
    engine = make_engine(spec.database_url)
    _worker = Notifier(settings=spec.settings, sessions=make_sessionmaker(engine), clock=spec.clock,
                       env=make_environment(spec.settings.data_dir, spec.settings.timezone), nset=spec.nset)
    worker = _worker
    if worker.keyring is not None:
        worker.keyring.already_imported(spec.imported)
    # Say goodbye to the mail server when the pool closes (multiprocessing runs these, not atexit).
    mp_util.Finalize(worker, lambda: worker.transport.close() if worker.transport is not None else None,
                     exitpriority=10)


def _send_in_worker(ids: list[int]) -> dict[str, int]:
    """One batch, in a sending process: how many ended in each status."""
    assert _worker is not None, "the pool's initializer builds the worker"
    counts = {"sent": 0, "retry": 0, "dead": 0, "held": 0}
    for status in _worker.send_batch(ids).values():
        if status in counts:
            counts[status] += 1
    return counts
