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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from commonwatch import outbound
from commonwatch.clock import Clock
from commonwatch.config import Settings
from commonwatch.constituency.models import Contact, Organisation, OrgKind
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
        report = report or RunReport()
        now = self.clock.now()
        with self._session() as session:
            ids = session.scalars(select(Delivery.id).where(
                Delivery.status.in_(("pending", "retry")), Delivery.next_attempt_at <= now)
                .order_by(Delivery.id).limit(self.nset.send_batch)).all()
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
            for name in ("sent", "retry", "dead", "held"):
                setattr(report, name, getattr(report, name) + getattr(part, name))
        return report

    def _send_ids(self, ids: list[int], report: RunReport) -> None:
        try:
            for delivery_id in ids:
                status = self.send_one(delivery_id)
                if status in ("sent", "retry", "dead", "held"):
                    setattr(report, status, getattr(report, status) + 1)
        finally:
            if self.transport is not None:
                self.transport.close()

    def _claim(self, session: Session, delivery_id: int, now: datetime) -> bool:
        result = session.execute(
            update(Delivery).where(Delivery.id == delivery_id, Delivery.status.in_(("pending", "retry")))
            .values(status="sending", lease_until=now + timedelta(seconds=self.nset.lease_seconds),
                    handoff_at=None, attempts=Delivery.attempts + 1)
            .execution_options(synchronize_session=False))
        return (result.rowcount or 0) == 1

    def send_one(self, delivery_id: int) -> str:
        """Send one delivery if it is still due; returns its new status ('' if another run has it).

        No database transaction stays open while talking to a mail server or a webhook (SQLite
        writers would wait on it): claim, prepare, hand over and record are separate commits.
        """
        now = self.clock.now()
        with self._session() as session:
            with session.begin():
                if not self._claim(session, delivery_id, now):
                    return ""
            try:
                with session.begin():
                    delivery = session.get(Delivery, delivery_id)
                    assert delivery is not None
                    send = self._prepare(session, delivery)
            except Held as exc:
                outcome = Outcome("held", str(exc), "", exc.reason)
            except (PgpError, Invalid, OSError, ValueError) as exc:
                log.warning("delivery failed", extra={"delivery": delivery_id, "error": str(exc)})
                outcome = Outcome.because("retry", "failed", kind=type(exc).__name__, detail=str(exc))
            else:
                def handoff() -> None:
                    with session.begin():
                        session.execute(update(Delivery).where(Delivery.id == delivery_id)
                                        .values(handoff_at=self.clock.now()))

                outcome = send(handoff)
            with session.begin():
                delivery = session.get(Delivery, delivery_id, populate_existing=True)
                assert delivery is not None
                self._finish(delivery, outcome, self.clock.now())
                return delivery.status

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

    def _prepare(self, session: Session, d: Delivery) -> Callable[[Callable[[], None]], Outcome]:
        """Render and protect the message; returns the step that hands it over."""
        if d.channel == "webhook":
            return self._prepare_webhook(session, d)
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
        d.tlp, d.signed, d.encrypted, d.event_count = digest.tlp, bool(signer), bool(recipient_key), digest.count
        d.address = address
        session.flush()
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

    def _prepare_webhook(self, session: Session, d: Delivery) -> Callable[[Callable[[], None]], Outcome]:
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
        d.address, d.tlp, d.event_count = url, tlp, events.height
        session.flush()
        delivery_id = d.id
        http_policy = replace(outbound.Policy.of(self.settings), timeout=self.nset.webhook_timeout_seconds)

        def send(handoff: Callable[[], None]) -> Outcome:
            handoff()
            result = webhook.post(url, body, secret, delivery_id, int(now.timestamp()), policy=http_policy)
            # A refused or failed call was not accepted, so it is safe to repeat; receivers also
            # recognise a repeat by X-Commonwatch-Delivery.
            return Outcome(result.status, result.error, result.remote_id, result.reason)

        return send
