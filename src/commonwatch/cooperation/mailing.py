"""Mail to partner CERTs: the acknowledgement of each report a partner sent (once per report), and the
outbound IODEF/X-ARF documents of an incident, attached to a mail in the partner's PGP e-mail channel.

Both go through notify's mail path: the MIME entity and PGP/MIME structures of ``notify.mail``, the
centre's GnuPG home (``notify.pgp.Keyring``) and its SMTP transport (or the outbox folder when no SMTP
server is configured). A mail is a ``PartnerMail`` row first (queued in the transaction that records
what it is about), then delivered: a temporary failure is retried later with back-off, a permanent
one is marked dead with the server's reply, and a mail handed to the server whose reply was lost is
held as in doubt rather than sent twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from commonwatch.access import audit
from commonwatch.clock import Clock
from commonwatch.config import Settings
from commonwatch.constituency.models import Contact, Organisation
from commonwatch.cooperation.models import InboundReport, PartnerMail, PartnerProfile
from commonwatch.i18n import LANGUAGES, _, use_language

#: Seconds to wait before the 1st, 2nd, ... retry of a temporary failure; then the mail is dead.
RETRY_SECONDS = (60, 300, 900, 3600, 6 * 3600)
_FORMAT_NAMES = {"iodef": "IODEF v2 JSON", "xarf": "X-ARF", "arf": "ARF", "text": "plain text"}


def report_ref(report: InboundReport) -> str:
    """The centre's reference number for a partner's report (quoted in the acknowledgement)."""
    return f"PR-{report.received_at:%Y}-{report.id:06d}"


def their_ref(message_id: str, report_ids: Iterable[str]) -> str:
    """The partner's own references: the IODEF IncidentID / X-ARF report_id values, else its Message-ID."""
    ids = sorted({str(i) for i in report_ids if i})
    return (", ".join(ids[:5]) + (f" (+{len(ids) - 5})" if len(ids) > 5 else "")) if ids else message_id


def _contacts(session: Session, org_id: int) -> list[Contact]:
    return list(session.scalars(select(Contact).where(Contact.org_id == org_id, Contact.active.is_(True))
                                .order_by(Contact.id)))


def _keyed_contact(contacts: list[Contact], address: str) -> Contact | None:
    """The contact whose key to use for ``address``: that contact if it has a key, else any keyed one."""
    keyed = [c for c in contacts if c.pgp_fingerprint and c.pgp_key]
    exact = [c for c in keyed if c.email.lower() == address.lower()]
    return (exact or keyed or [None])[0]


def partner_language(org: Organisation, profile: PartnerProfile | None, rules: dict[str, Any]) -> str:
    """The language the centre writes to a partner in: the one set on its directory entry, else by the
    rule on its country (``partner_language`` in the rules file: zh-CN in China, else English). A
    contact's own language is not used: it defaults to zh-CN for the constituency's contacts, which
    would write Chinese to partners abroad."""
    chosen = profile.language if profile is not None else ""
    if chosen in LANGUAGES:
        return chosen
    rule = rules.get("partner_language") or {}
    chinese = {str(c).upper() for c in rule.get("chinese", ["CN"])}
    if (org.country or "").upper() in chinese:
        return str(rule.get("chinese_language", "zh-CN"))
    return str(rule.get("otherwise", "en"))


def _languages(session: Session, orgs: Iterable[Organisation], data_dir: Path | None) -> dict[int, str]:
    from commonwatch.cooperation.services import request_rules

    orgs = list(orgs)
    rules = request_rules(data_dir)
    profiles = {p.org_id: p for p in session.scalars(select(PartnerProfile).where(
        PartnerProfile.org_id.in_([o.id for o in orgs])))} if orgs else {}
    return {o.id: partner_language(o, profiles.get(o.id), rules) for o in orgs}


def acknowledgement_text(report: InboundReport, partner: str, ours: str, theirs: str) -> tuple[str, str]:
    """(subject, body) of the acknowledgement, in the current language."""
    subject = _("Acknowledgement {ours} (your reference {theirs})").format(ours=ours, theirs=theirs or "—")
    lines = [_("Dear {partner},").format(partner=partner), ""]
    if report.status == "ingested":
        lines.append(_("We received your report ({format}, {n} records) and have taken it for handling.").format(
            format=_FORMAT_NAMES.get(report.format, report.format or "—"), n=report.rows))
    else:
        lines.append(_("We received your report but could not read it: {reason}").format(reason=report.reason))
        lines.append(_("It is kept, and a coordinator will look at it."))
    lines += ["", _("Our reference: {ours}").format(ours=ours), _("Your reference: {theirs}").format(
        theirs=theirs or "—"), _("Received: {at}").format(at=report.received_at.isoformat())]
    if report.respond_by is not None and report.status == "ingested":
        lines.append(_("We will respond by: {at}").format(at=report.respond_by.isoformat()))
    return subject, "\n".join(lines) + "\n"


def queue_acknowledgements(session: Session, reports: list[InboundReport], refs: dict[str, str], *,
                           again: bool = False, data_dir: Path | None = None) -> list[PartnerMail]:
    """One acknowledgement per report that came from a known partner (never to an unknown sender: that
    would be backscatter); a report acknowledged already gets none (``ack:<report id>`` is unique).
    ``again``: a held report released by a coordinator, whose first acknowledgement said it could not
    be read, gets a second one (``ack:<report id>:released``), once."""
    known = [r for r in reports if r.partner_org_id is not None]
    if not known:
        return []

    def key(r: InboundReport) -> str:
        return f"ack:{r.id}:released" if again and f"ack:{r.id}" in first else f"ack:{r.id}"

    first = set(session.scalars(select(PartnerMail.dedup_key).where(
        PartnerMail.dedup_key.in_([f"ack:{r.id}" for r in known])))) if again else set()
    done = set(session.scalars(select(PartnerMail.dedup_key).where(
        PartnerMail.dedup_key.in_([key(r) for r in known]))))
    out = []
    # Reports come in chunks from a few partners: each partner's organisation and contacts are read once.
    orgs = {o.id: o for o in session.scalars(select(Organisation).where(
        Organisation.id.in_({r.partner_org_id for r in known})))}
    contacts_of: dict[int, list[Contact]] = {}
    for c in session.scalars(select(Contact).where(Contact.org_id.in_(list(orgs)), Contact.active.is_(True))
                             .order_by(Contact.id)):
        contacts_of.setdefault(c.org_id, []).append(c)
    languages = _languages(session, orgs.values(), data_dir)
    for report in known:
        if key(report) in done or report.partner_org_id not in orgs:
            continue
        org = orgs[report.partner_org_id]
        contacts = contacts_of.get(org.id, [])
        to = report.sender or (contacts[0].email if contacts else "")
        if not to:
            continue
        ours, theirs = report_ref(report), refs.get(report.digest, "") or report.message_id
        with use_language(languages[org.id]):
            subject, body = acknowledgement_text(report, org.name, ours, theirs)
        row = PartnerMail(dedup_key=key(report), kind="ack", partner_org_id=org.id,
                          inbound_report_id=report.id, recipient=to, subject=subject, our_ref=ours,
                          their_ref=theirs[:500], body=body, format=report.format or "", status="pending",
                          signed=_keyed_contact(contacts, to) is not None, created_at=report.received_at)
        session.add(row)
        out.append(row)
    session.flush()
    # One append to the audit chain for the whole chunk, not one per acknowledgement.
    clock = session.info.get("clock")
    audit.append(session.connection(), [
        {"actor": session.info.get("actor", "system"), "action": "cooperation.ack_queued",
         "entity": "coop_inbound_reports", "entity_id": row.inbound_report_id, "before": None,
         "after": {"partner_mail": row.id, "to": row.recipient, "our_ref": row.our_ref, "their_ref": row.their_ref}}
        for row in out], at=clock.now() if clock is not None else None)
    return out


def queue_document(session: Session, *, entry_id: int, incident_id: int, incident_ref: str, org: Organisation,
                   fmt: str, document: bytes, events: int, data_dir: Path | None = None) -> PartnerMail | None:
    """The outbound document of one timeline entry as a mail to the partner's first contact (the keyed one
    if any); None when the partner has no e-mail contact."""
    contacts = _contacts(session, org.id)
    keyed = _keyed_contact(contacts, "")
    to = keyed.email if keyed else (contacts[0].email if contacts else "")
    if not to:
        return None
    with use_language(_languages(session, [org], data_dir)[org.id]):
        subject = _("Incident {ref}: {n} events about hosts in your constituency").format(ref=incident_ref, n=events)
        body = _("Please find attached {n} events ({format}) about hosts in your constituency, for handling. "
                 "Our reference: {ref}.").format(n=events, format=_FORMAT_NAMES.get(fmt, fmt), ref=incident_ref) + "\n"
    row = PartnerMail(dedup_key=f"document:{entry_id}", kind="document", partner_org_id=org.id,
                      incident_id=incident_id, recipient=to, subject=subject, our_ref=incident_ref, their_ref="",
                      body=body, format=fmt, attachment_name=f"{incident_ref}-{fmt}.json", attachment=document,
                      signed=True, encrypted=keyed is not None, status="pending")
    session.add(row)
    session.flush()
    return row


# --- delivery -----------------------------------------------------------------------------------------------

def _transport(settings: Settings):
    from commonwatch.notify.mail import OutboxTransport, SmtpTransport

    if settings.smtp_host:
        return SmtpTransport(settings)
    return OutboxTransport(Path(settings.data_dir) / "cooperation" / "outbox")


def compose(session: Session, row: PartnerMail, keyring, settings: Settings, now: datetime) -> tuple[bytes, bool, bool]:
    """The mail's bytes, and whether it is signed and encrypted. An acknowledgement is signed by the centre
    where the partner has a key; a document is encrypted to the partner's key when it has one, and signed."""
    from commonwatch.notify import mail as m

    contacts = _contacts(session, row.partner_org_id) if row.partner_org_id else []
    keyed = _keyed_contact(contacts, row.recipient)
    report = session.get(InboundReport, row.inbound_report_id) if row.inbound_report_id else None
    headers = [("From", formataddr((settings.centre_name, settings.mail_from), charset="utf-8")),
               ("To", row.recipient), ("Subject", row.subject), ("Date", format_datetime(now)),
               ("Message-ID", row.message_id), ("MIME-Version", "1.0"),
               ("Auto-Submitted", "auto-replied" if row.kind == "ack" else "auto-generated"),
               ("X-Commonwatch-Reference", row.our_ref)]
    if report is not None and report.message_id:
        headers += [("In-Reply-To", report.message_id), ("References", report.message_id)]
    attachments = [(row.attachment_name, "application/json", row.attachment)] if row.attachment else []
    entity = m.content_entity(row.body, attachments)
    centre = keyring.centre_key() if keyring is not None else None
    signer = centre.fingerprint if centre is not None else None
    if row.kind == "document" and keyed is not None and keyring is not None:
        info = keyring.ensure_public_key(keyed.pgp_fingerprint, keyed.pgp_key)
        if info is not None and info.can_encrypt and not (info.revoked or info.expired):
            return m.encrypted_message(headers, entity, keyring, info.fingerprint, signer), signer is not None, True
    if signer is not None and (row.kind == "document" or keyed is not None):
        return m.signed_message(headers, entity, keyring, signer), True, False
    return m.plain_message(headers, entity), False, False


def _record_outcome(session: Session, row: PartnerMail, now: datetime) -> None:
    audit.record(session, f"cooperation.{row.kind}_mail_{row.status}", "coop_partner_mails", row.id,
                 after={"to": row.recipient, "our_ref": row.our_ref, "their_ref": row.their_ref,
                        "attempts": row.attempts, "error": row.last_error, "message_id": row.message_id,
                        "signed": row.signed, "encrypted": row.encrypted})
    if row.kind == "document" and row.incident_id is not None:
        from commonwatch.incidents import services as incidents
        from commonwatch.incidents.models import Incident

        incident = session.get(Incident, row.incident_id)
        org = session.get(Organisation, row.partner_org_id) if row.partner_org_id else None
        delivery = {"sent": "sent", "retry": "retrying"}.get(row.status, "failed")
        if incident is not None:
            incidents.timeline(session, incident, "partner_exchange", "cooperation:delivery", now,
                               partner=org.name if org else "", partner_org_id=row.partner_org_id,
                               format=row.format, events=_events_in(row), delivery=delivery, to=row.recipient,
                               reason=row.last_error, partner_mail=row.id)


def _events_in(row: PartnerMail) -> int:
    import json

    try:
        doc = json.loads(row.attachment or b"null")
    except ValueError:
        return 0
    if isinstance(doc, list):
        return len(doc)
    incidents = (doc or {}).get("IODEF-Document", {}).get("Incident", []) if isinstance(doc, dict) else []
    return sum(len(i.get("EventData", [])) for i in incidents)


def deliver_pending(sessionmaker, settings: Settings, clock: Clock,
                    ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """Send every queued mail (or those of ``ids``) whose time has come; returns what happened to each."""
    from commonwatch.notify.mail import Envelope, OutboxTransport
    from commonwatch.notify.pgp import Keyring, PgpError, default_home, gpg_binary

    now = clock.now()
    with sessionmaker() as session:
        stmt = select(PartnerMail.id).where(PartnerMail.status.in_(("pending", "retry")), or_(
            PartnerMail.next_attempt_at.is_(None), PartnerMail.next_attempt_at <= now))
        if ids is not None:
            stmt = stmt.where(PartnerMail.id.in_(list(ids)))
        todo = list(session.scalars(stmt.order_by(PartnerMail.id)))
    if not todo:
        return []
    keyring = Keyring(default_home(settings), clock) if gpg_binary() else None
    transport = _transport(settings)
    results = []
    try:
        for mail_id in todo:
            with sessionmaker() as session:
                session.info["actor"] = "cooperation:mail"
                session.info["clock"] = clock
                row = session.get(PartnerMail, mail_id)
                if row is None or row.status not in ("pending", "retry"):
                    continue
                if not row.message_id:
                    domain = settings.mail_from.rpartition("@")[2] or "commonwatch.invalid"
                    row.message_id = make_msgid(idstring=row.our_ref, domain=domain)
                try:
                    data, row.signed, row.encrypted = compose(session, row, keyring, settings, now)
                except PgpError as exc:
                    row.status, row.last_error = "dead", f"PGP: {exc}"
                    _record_outcome(session, row, now)
                    session.commit()
                    results.append({"id": row.id, "status": row.status, "error": row.last_error})
                    continue
                session.commit()
                envelope = Envelope(settings.mail_from, row.recipient, data, row.signed, row.encrypted)

                def handed(row=row, session=session) -> None:
                    # Past this point the server may have the message: never send it again on our own.
                    row.status = "sending"
                    session.commit()

                if isinstance(transport, OutboxTransport):
                    outcome = transport.send(envelope, handed, name=f"partner-mail-{row.id}")
                else:
                    outcome = transport.send(envelope, handed)
                row.attempts += 1
                row.last_error = outcome.error
                if outcome.status == "sent":
                    row.status, row.sent_at = "sent", now
                elif outcome.status == "retry" and row.attempts <= len(RETRY_SECONDS):
                    row.status = "retry"
                    row.next_attempt_at = now + timedelta(seconds=RETRY_SECONDS[row.attempts - 1])
                elif outcome.status == "held":
                    row.status = "held"
                else:
                    row.status = "dead"
                _record_outcome(session, row, now)
                session.commit()
                results.append({"id": row.id, "status": row.status, "error": row.last_error})
    finally:
        transport.close()
    return results


def mails_for_report(session: Session, report_id: int) -> list[PartnerMail]:
    return list(session.scalars(select(PartnerMail).where(PartnerMail.inbound_report_id == report_id)
                                .order_by(PartnerMail.id)))


def mail_out(row: PartnerMail) -> dict[str, Any]:
    """A partner mail as the API shows it."""
    return {"id": row.id, "kind": row.kind, "to": row.recipient, "subject": row.subject, "our_ref": row.our_ref,
            "their_ref": row.their_ref or None, "status": row.status, "attempts": row.attempts,
            "signed": row.signed, "encrypted": row.encrypted, "error": row.last_error or None,
            "message_id": row.message_id or None, "sent_at": row.sent_at.isoformat() if row.sent_at else None,
            "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else None}
