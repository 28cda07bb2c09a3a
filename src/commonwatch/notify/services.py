"""Early-warning workflows for pages and the API: the notification log, resend and mark sent,
a recipient's warnings and its feedback (acknowledge, resolved, false positive), statistics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from commonwatch import capabilities
from commonwatch.access import audit
from commonwatch.access.principal import SYSTEM, Principal
from commonwatch.db import get_scoped, scope
from commonwatch.errors import Conflict, FieldError, Invalid, NotFound
from commonwatch.events.store import event_store, records
from commonwatch.i18n import _
from commonwatch.notify.models import (
    DELIVERY_STATUSES,
    FEEDBACK_ACTIONS,
    WARNING_STATUSES,
    Delivery,
    EventWarning,
    Feedback,
    LedgerEntry,
    Suppression,
)
from commonwatch.notify.planner import _recipients
from commonwatch.notify.policies import effective_policies
from commonwatch.notify.reasons import Reason, describe
from commonwatch.textio import control_char_errors


def reason_text(d: Delivery) -> str:
    """Why the delivery is where it is, in the viewer's language."""
    return describe(d.reason, d.last_error) if d.last_error else ""


def status_label(status: str) -> str:
    """A delivery's or a warning's status in the current language."""
    from commonwatch.labels import label

    kind = "warning_status" if status in ("open", "acknowledged", "resolved", "false-positive") else "delivery_status"
    return label(status, kind)


# --- the notification log ------------------------------------------------------------------------

@dataclass
class DeliveryFilter:
    status: str = ""
    channel: str = ""
    org_id: int | None = None
    q: str = ""


def list_deliveries(session: Session, principal: Principal, f: DeliveryFilter, *, page: int = 1,
                    per_page: int = 50) -> tuple[list[Delivery], int]:
    stmt = deliveries_query(principal, f)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    page = max(page, 1)
    rows = session.scalars(stmt.order_by(Delivery.id.desc()).offset((page - 1) * per_page).limit(per_page)).all()
    return list(rows), total


def status_counts(session: Session, principal: Principal) -> dict[str, int]:
    rows = session.execute(scope(select(Delivery.status, func.count()), principal, Delivery)
                           .group_by(Delivery.status)).all()
    counts = {s: 0 for s in DELIVERY_STATUSES}
    counts.update({s: n for s, n in rows})
    return counts


def get_delivery(session: Session, principal: Principal, delivery_id: int) -> Delivery:
    row = get_scoped(session, principal, Delivery, delivery_id)
    if row is None:
        raise NotFound("delivery")
    return row


#: The event columns the warning pages and API show beside a warning.
WARNING_EVENT_COLUMNS = ("event_key", "time_source", "feed_name", "classification_type", "classification_identifier",
                         "severity", "tlp", "source_ip", "source_port", "source_asn", "source_as_name", "source_fqdn",
                         "source_url", "protocol_transport", "protocol_application", "malware_name")


def delivery_events(session: Session, delivery_id: int, limit: int = 500) -> list[Any]:
    """The first ``limit`` events of a delivery, oldest first. Its ledger names them; they are read
    as the system because the caller already checked the delivery's scope."""
    ids = session.scalars(select(LedgerEntry.event_id).where(LedgerEntry.delivery_id == delivery_id)).all()
    frame = event_store(session).fetch(SYSTEM, ids, ("time_source", "classification_type", "severity", "source_ip",
                                                      "source_port", "source_fqdn", "feed_name", "tlp"))
    return records(frame.sort(["time_source", "id"]).head(limit))


def warning_events(session: Session, warnings: list[EventWarning]) -> dict[int, Any]:
    """The event of each warning, by event id. Read as the system: the warnings were already
    scoped to the reader, and each event is what was sent to that warning's recipient."""
    frame = event_store(session).fetch(SYSTEM, [w.event_id for w in warnings], WARNING_EVENT_COLUMNS)
    return {e.id: e for e in records(frame)}


def warning_event(session: Session, warning: EventWarning) -> Any:
    """The event of one warning (see :func:`warning_events`), or None if it is no longer stored."""
    return warning_events(session, [warning]).get(warning.event_id)


def in_doubt(d: Delivery) -> bool:
    """Held because an earlier attempt may have reached the recipient (a run killed mid-send)."""
    return d.status == "held" and (d.reason or {}).get("code") in ("in_doubt", "in_doubt_connection")


def resend(session: Session, principal: Principal, delivery_id: int, now: datetime) -> str:
    """Send a held, dead or cancelled delivery again.

    To its own recipient when that recipient still exists (same Message-ID: it is the same
    message); otherwise its warnings are queued for the organisation's current recipients.
    """
    d = get_delivery(session, principal, delivery_id)
    before = {"status": d.status, "attempts": d.attempts}
    result = _send_again(session, principal, d, now)
    audit.record(session, "notify.resend", "notify_deliveries", d.id, before=before,
                 after={"status": d.status})
    session.flush()
    return result


def _send_again(session: Session, principal: Principal, d: Delivery, now: datetime) -> str:
    """The change :func:`resend` makes, without its audit record (a bulk retry records one for all)."""
    if d.status in ("pending", "sending", "retry"):
        raise Conflict(_("this delivery is already waiting to be sent"))
    if d.channel in ("email", "webhook") and d.status != "cancelled":
        doubt = in_doubt(d)
        d.status, d.attempts, d.next_attempt_at, d.handoff_at, d.lease_until = "pending", 0, now, None, None
        entry = {"at": now.isoformat(), "outcome": "resend", "reason": principal.actor}
        if doubt:  # the message will tell its recipient that it may repeat an earlier one
            entry["doubt"] = True
        d.history = [*(d.history or []), entry]
        result = f"delivery {d.id} will be sent again"
    else:
        queued = requeue(session, d, now)
        d.status = "cancelled"
        why = Reason("rerouted", {"n": queued})
        d.last_error, d.reason = why.english(), why.as_json()
        result = f"{queued} warnings queued for the organisation's current recipients"
    return result


#: The columns the notification log may be sorted by (each never NULL).
DELIVERY_SORTS = {"created": Delivery.created_at, "status": Delivery.status, "attempts": Delivery.attempts,
                  "events": Delivery.event_count, "channel": Delivery.channel}


def deliveries_query(principal: Principal, f: DeliveryFilter) -> Any:
    """The deliveries the principal may read that ``f`` selects, as a scoped select."""
    stmt = scope(select(Delivery), principal, Delivery)
    if f.status:
        stmt = stmt.where(Delivery.status == f.status)
    if f.channel:
        stmt = stmt.where(Delivery.channel == f.channel)
    if f.org_id:
        stmt = stmt.where(Delivery.org_id == f.org_id)
    if f.q.strip():
        like = f"%{f.q.strip()}%"
        stmt = stmt.where(Delivery.address.ilike(like) | Delivery.last_error.ilike(like)
                          | Delivery.message_id.ilike(like))
    return stmt


def resend_many(session: Session, principal: Principal, ids: list[int], now: datetime, *,
                dry_run: bool = False) -> tuple[list[int], dict[int, str]]:
    """Retry many deliveries in one act: each as :func:`resend` would, one audit record for all.

    Returns the ids retried and, for the others, why not (not visible to the principal, already
    waiting to be sent, no one left to send to). ``dry_run`` only says what would happen."""
    visible = {d.id: d for d in session.scalars(scope(select(Delivery), principal, Delivery)
                                                .where(Delivery.id.in_(ids)))}
    done: list[int] = []
    refused: dict[int, str] = {}
    for ident in ids:
        d = visible.get(ident)
        if d is None:
            refused[ident] = _("not found")
        elif d.status in ("pending", "sending", "retry"):
            refused[ident] = _("this delivery is already waiting to be sent")
        elif dry_run:
            done.append(ident)
        else:
            try:
                with session.begin_nested():
                    _send_again(session, principal, d, now)
            except Conflict as exc:
                refused[ident] = str(exc)
            else:
                done.append(ident)
    if done and not dry_run:
        audit.record(session, "notify.bulk_resend", "notify_deliveries", f"bulk:{len(done)}",
                     after={"ids": done, "refused": sorted(refused)}, actor=principal.actor)
        session.flush()
    return done, refused


def requeue(session: Session, d: Delivery, now: datetime) -> int:
    """Queue a delivery's warnings for the organisation's current recipients (skipping any a
    recipient already had: the ledger stays exactly-once)."""
    policies = effective_policies(session, [d.org_id])
    recipients = [r for r in _recipients(session, policies).iter_rows(named=True) if r["channel"] != "none"]
    if not recipients:
        raise Conflict(_("the organisation still has no contact taking early warnings and no webhook"))
    items = session.execute(select(LedgerEntry.warning_id, LedgerEntry.event_id)
                            .where(LedgerEntry.delivery_id == d.id)).all()
    count = 0
    for r in recipients:
        have = set(session.scalars(select(LedgerEntry.event_id).where(
            LedgerEntry.recipient_key == r["recipient_key"], LedgerEntry.event_id.in_([e for _w, e in items]))))
        rows = [{"recipient_key": r["recipient_key"], "org_id": d.org_id, "contact_id": r["contact_id"],
                 "channel": r["channel"], "warning_id": w, "event_id": e, "delivery_id": None, "due_at": now,
                 "created_at": now} for w, e in items if e not in have]
        if rows:
            session.execute(insert(LedgerEntry), rows)
            count += len(rows)
    return count


def mark_sent(session: Session, principal: Principal, delivery_id: int, now: datetime, note: str = "") -> None:
    """The centre confirmed (e.g. from the mail server's log) that a held message was delivered."""
    d = get_delivery(session, principal, delivery_id)
    if d.status not in ("held", "dead"):
        raise Conflict(_("only a held or dead delivery can be marked as sent"))
    before = {"status": d.status}
    d.status, d.sent_at, d.next_attempt_at = "sent", now, None
    d.history = [*(d.history or []), {"at": now.isoformat(), "outcome": "marked sent",
                                      "reason": f"{principal.actor} {note}".strip()}]
    audit.record(session, "notify.mark_sent", "notify_deliveries", d.id, before=before, after={"status": "sent"})
    session.flush()


# --- warnings and feedback -----------------------------------------------------------------------

@dataclass
class WarningFilter:
    status: str = ""
    kind: str = ""
    org_id: int | None = None


def warnings_query(principal: Principal, f: WarningFilter, q: str = "") -> Any:
    """The warnings sent to the principal's organisations (staff: all) that ``f`` and the free
    text ``q`` (type, feed or answer) select, as a scoped select."""
    stmt = scope(select(EventWarning), principal, EventWarning).where(EventWarning.disposition == "warn")
    if f.status:
        stmt = stmt.where(EventWarning.status == f.status)
    if f.kind:
        stmt = stmt.where(EventWarning.classification_type == f.kind)
    if f.org_id:
        stmt = stmt.where(EventWarning.org_id == f.org_id)
    if q.strip():
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(EventWarning.classification_type.ilike(like), EventWarning.feed_name.ilike(like),
                              EventWarning.comment.ilike(like)))
    return stmt


#: The severities by rank, so a list sorted by severity puts critical next to high, not to info.
SEVERITY_RANK = case({"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}, value=EventWarning.severity,
                     else_=-1)
#: The columns the warnings list may be sorted by (each never NULL).
WARNING_SORTS = {"time": EventWarning.time_source, "type": EventWarning.classification_type,
                 "severity": SEVERITY_RANK, "status": EventWarning.status, "feed": EventWarning.feed_name}


def list_warnings(session: Session, principal: Principal, f: WarningFilter, *, page: int = 1,
                  per_page: int = 50) -> tuple[list[Any], int]:
    """Warnings sent to the principal's organisations (staff: all), newest first, with the event."""
    stmt = warnings_query(principal, f)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    page = max(page, 1)
    warnings = list(session.scalars(stmt.order_by(EventWarning.time_source.desc(), EventWarning.id.desc())
                                    .offset((page - 1) * per_page).limit(per_page)))
    events = warning_events(session, warnings)
    return [(w, events.get(w.event_id)) for w in warnings], total


def get_warning(session: Session, principal: Principal, warning_id: int) -> EventWarning:
    row = get_scoped(session, principal, EventWarning, warning_id)
    if row is None or row.disposition != "warn":
        raise NotFound("warning")
    return row


def repeat_count(session: Session, warning_id: int) -> int:
    return session.scalar(select(func.count()).where(EventWarning.repeat_of_id == warning_id)) or 0


def _answering(session: Session, ids: list[int], now: datetime) -> None:
    """Before the answer of warnings ``ids`` moves to ``now``: the capabilities that keep figures of
    the answers (reports' time to acknowledge) take the old one out and add the new one."""
    for _cap, module in capabilities.parts("warning_answers"):
        module.answered(session, ids, now)


def respond(session: Session, principal: Principal, warning_id: int, action: str, comment: str, *,
            suppress: bool, now: datetime) -> Feedback:
    """Record a recipient's answer; a false positive may suppress the same observation from now on."""
    from commonwatch.web.deps import authorize

    w = get_warning(session, principal, warning_id)
    authorize(principal, "warnings.respond", w.org_id)
    errors: list[FieldError] = []
    if action not in FEEDBACK_ACTIONS:
        errors.append(FieldError("action", _("must be one of {values}").format(values=", ".join(FEEDBACK_ACTIONS))))
    comment = (comment or "").strip()
    if len(comment) > 4000:
        errors.append(FieldError("comment", _("is longer than {n} characters").format(n=4000)))
    if action == "false-positive" and not comment:
        errors.append(FieldError("comment", _("say why this is a false positive")))
    if suppress and action != "false-positive":
        errors.append(FieldError("suppress", _("only a false positive can suppress future warnings")))
    errors += control_char_errors({"comment": comment})
    if errors:
        raise Invalid(errors)
    feedback = Feedback(org_id=w.org_id, warning_id=w.id, user_id=principal.user_id or None, action=action,
                        comment=comment, suppress=suppress, classification_type=w.classification_type,
                        feed_name=w.feed_name, created_at=now)
    session.add(feedback)
    _answering(session, [w.id], now)
    session.execute(update(EventWarning).where(EventWarning.id == w.id).values(
        status=action, comment=comment, responded_by=principal.user_id or None, responded_at=now)
        .execution_options(synchronize_session="fetch"))
    if suppress:
        existing = session.scalar(select(Suppression).where(Suppression.org_id == w.org_id,
                                                            Suppression.obs_key == w.obs_key))
        if existing is None:
            session.add(Suppression(org_id=w.org_id, obs_key=w.obs_key, warning_id=w.id, comment=comment,
                                    created_by=principal.user_id or None, active=True, created_at=now))
        else:
            existing.active = True
            existing.comment = comment
    session.flush()
    return feedback


#: What a recipient may answer for many warnings at once (suppression stays one by one).
BULK_ACTIONS = ("acknowledged", "resolved", "false-positive")


def respondable_warnings(session: Session, principal: Principal, ids: list[int]) -> tuple[list[int], list[int]]:
    """Of the selected warning ids, those the principal may answer, and the rest (another
    organisation's, not a warning, or no such row): a forged id is refused, never acted on."""
    rows = session.execute(scope(select(EventWarning.id, EventWarning.org_id), principal, EventWarning)
                           .where(EventWarning.id.in_(ids), EventWarning.disposition == "warn")).all()
    may = {r.id for r in rows if principal.can("warnings.respond", r.org_id)}
    return [i for i in ids if i in may], [i for i in ids if i not in may]


def respond_many(session: Session, principal: Principal, ids: list[int], action: str, comment: str, *,
                 now: datetime, audit_extra: dict[str, Any] | None = None) -> tuple[list[int], list[int]]:
    """One answer (and one reason) for many warnings: each answerable one gets its feedback row
    and its new status; the act is one audit record naming every id, not one per warning
    (``audit_extra`` adds to it what the act was asked on, e.g. the events selected).

    Returns the ids answered and the ids refused (see :func:`respondable_warnings`)."""
    errors: list[FieldError] = []
    if action not in BULK_ACTIONS:
        errors.append(FieldError("action", _("must be one of {values}").format(values=", ".join(BULK_ACTIONS))))
    comment = (comment or "").strip()
    if len(comment) > 4000:
        errors.append(FieldError("comment", _("is longer than {n} characters").format(n=4000)))
    if action == "false-positive" and not comment:
        errors.append(FieldError("comment", _("say why this is a false positive")))
    if errors:
        raise Invalid(errors)
    done, refused = respondable_warnings(session, principal, ids)
    if not done:
        return done, refused
    rows = session.execute(select(EventWarning.id, EventWarning.org_id, EventWarning.classification_type,
                                  EventWarning.feed_name).where(EventWarning.id.in_(done))).all()
    user_id = principal.user_id or None
    # Core statements, not ORM objects: the act is audited once below instead of once per row.
    session.execute(insert(Feedback), [
        {"org_id": r.org_id, "warning_id": r.id, "user_id": user_id, "action": action, "comment": comment,
         "suppress": False, "classification_type": r.classification_type, "feed_name": r.feed_name,
         "created_at": now} for r in rows])
    _answering(session, done, now)
    session.execute(update(EventWarning).where(EventWarning.id.in_(done)).values(
        status=action, comment=comment, responded_by=user_id, responded_at=now)
        .execution_options(synchronize_session="fetch"))
    audit.record(session, "warnings.bulk_respond", "notify_warnings", f"bulk:{len(done)}",
                 after={"action": action, "comment": comment, "ids": done, "refused": refused,
                        **(audit_extra or {})}, actor=principal.actor)
    session.flush()
    return done, refused


def lift_suppression(session: Session, principal: Principal, warning_id: int) -> bool:
    w = get_warning(session, principal, warning_id)
    from commonwatch.web.deps import authorize

    authorize(principal, "warnings.respond", w.org_id)
    row = session.scalar(select(Suppression).where(Suppression.org_id == w.org_id, Suppression.obs_key == w.obs_key,
                                                   Suppression.active.is_(True)))
    if row is None:
        return False
    row.active = False
    session.flush()
    return True


def is_suppressed(session: Session, w: EventWarning) -> bool:
    return session.scalar(select(func.count()).where(Suppression.org_id == w.org_id, Suppression.obs_key == w.obs_key,
                                                     Suppression.active.is_(True))) > 0


def feedback_stats(session: Session, principal: Principal, since: datetime | None = None) -> dict[str, Any]:
    """Warnings by status, feedback by action, and false positives per feed and type — the figures
    a centre uses to judge its feeds (a feed with many false positives needs a look)."""
    warn = scope(select(EventWarning.status, func.count()), principal, EventWarning).where(
        EventWarning.disposition == "warn")
    fb = scope(select(Feedback.action, func.count()), principal, Feedback)
    fp = scope(select(Feedback.feed_name, Feedback.classification_type, func.count()), principal, Feedback).where(
        Feedback.action == "false-positive")
    rep = scope(select(func.count()), principal, EventWarning).where(EventWarning.disposition == "repeat")
    sup = scope(select(func.count()), principal, EventWarning).where(EventWarning.disposition == "suppressed")
    if since is not None:
        warn = warn.where(EventWarning.created_at >= since)
        fb, fp = fb.where(Feedback.created_at >= since), fp.where(Feedback.created_at >= since)
        rep, sup = rep.where(EventWarning.created_at >= since), sup.where(EventWarning.created_at >= since)
    statuses = {s: 0 for s in WARNING_STATUSES}
    statuses.update(dict(session.execute(warn.group_by(EventWarning.status)).all()))
    actions = {a: 0 for a in FEEDBACK_ACTIONS}
    actions.update(dict(session.execute(fb.group_by(Feedback.action)).all()))
    per_feed = [{"feed": f, "type": t, "false_positives": n} for f, t, n in session.execute(
        fp.group_by(Feedback.feed_name, Feedback.classification_type).order_by(func.count().desc()).limit(20))]
    total = sum(statuses.values())
    answered = total - statuses["open"]
    return {"warnings": total, "by_status": statuses, "feedback": actions, "answered": answered,
            "answer_rate": round(answered / total, 3) if total else 0.0,
            "repeats_counted": session.scalar(rep) or 0, "suppressed": session.scalar(sup) or 0,
            "false_positives_by_feed": per_feed}
