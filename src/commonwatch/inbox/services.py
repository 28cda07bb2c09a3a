"""Notifications: raised by what happens to a case, shown in the app and mailed as each person
chose, and only to people entitled to know.

The incidents capability calls :func:`on_case` at four points (a case assigned, a comment, a task
sent to an organisation, a deadline at risk or missed). Everything else — who follows a case, who
may be told, what each person wants, the sentence in the reader's language — is decided here.

Who is told:

- ``assigned``: the new owner (not when they assigned it to themselves); the owner now follows the case.
- ``comment``: every follower but the author; the author now follows the case. A follower outside
  the centre is told only of a comment shared with the reporter, on a case of its own organisation.
- ``task``: every active member of the organisation the task is addressed to.
- ``clock``: the people the deadline alert went to (the owner and the coordinators).

A constituent is never told of anything outside its own organisations: :func:`_entitled` checks
each recipient against the case's (or the task's) organisation before a row is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from commonwatch.access.models import Membership, User
from commonwatch.access.principal import STAFF_ROLES, Principal, Role
from commonwatch.clock import ensure_utc
from commonwatch.db import scope
from commonwatch.errors import Invalid
from commonwatch.i18n import N_, _
from commonwatch.inbox.models import CHANNELS, DEFAULTS, KINDS, Follow, Notification, Preference

KIND_LABELS = {
    "assigned": N_("A case is assigned to me"),
    "task": N_("A task is sent to my organisation"),
    "comment": N_("A new comment on a case I follow"),
    "clock": N_("A reporting deadline is at risk or missed"),
}
CHANNEL_LABELS = {"both": N_("In the app and by mail"), "app": N_("In the app only"), "mail": N_("By mail only"),
                  "none": N_("Not at all")}
IN_APP = ("app", "both")
BY_MAIL = ("mail", "both")
#: The clock job's own delivery (incidents.jobs.deliver_alerts) mails deadline alerts; the inbox
#: keeps them in the app and tells that delivery whether the person wants the mail.
MAILED_ELSEWHERE = frozenset({"clock"})


# --- preferences ------------------------------------------------------------------------------------

def channels_of(session: Session, user_ids: Iterable[int], kind: str) -> dict[int, str]:
    """Each person's channel for ``kind`` (their choice, else the default), in one query."""
    ids = sorted(set(user_ids))
    chosen = dict(session.execute(select(Preference.user_id, Preference.channel).where(
        Preference.kind == kind, Preference.user_id.in_(ids))).all()) if ids else {}
    return {uid: chosen.get(uid, DEFAULTS[kind]) for uid in ids}


def channel_for(session: Session, user_id: int, kind: str) -> str:
    return channels_of(session, [user_id], kind)[user_id]


def wants_mail(session: Session, user_id: int, kind: str) -> bool:
    return channel_for(session, user_id, kind) in BY_MAIL


def preferences(session: Session, principal: Principal) -> dict[str, str]:
    return {kind: channels_of(session, [principal.user_id], kind)[principal.user_id] for kind in KINDS}


def set_preferences(session: Session, principal: Principal, data: dict[str, Any]) -> dict[str, str]:
    """Keep the person's channel for each kind given; a value outside :data:`CHANNELS` is refused."""
    if not principal.user_id:
        raise Invalid("user", _("only a signed-in person has notification settings"))
    wanted: dict[str, str] = {}
    for kind in KINDS:
        value = str(data.get(kind) or "").strip()
        if not value:
            continue
        if value not in CHANNELS:
            raise Invalid(kind, _("“{value}” is not one of: {choices}").format(value=value,
                                                                                choices=", ".join(CHANNELS)))
        wanted[kind] = value
    rows = {p.kind: p for p in session.scalars(scope(select(Preference), principal, Preference))}
    for kind, value in wanted.items():
        if kind in rows:
            rows[kind].channel = value
        else:
            session.add(Preference(user_id=principal.user_id, kind=kind, channel=value))
    session.flush()
    return preferences(session, principal)


# --- following --------------------------------------------------------------------------------------

def follow(session: Session, user_id: int, incident_id: int, *, reason: str, now: datetime) -> bool:
    """``user_id`` follows the case (once); True when the follow is new."""
    exists = session.scalar(select(Follow.id).where(Follow.user_id == user_id, Follow.incident_id == incident_id))
    if exists is not None:
        return False
    session.add(Follow(user_id=user_id, incident_id=incident_id, reason=reason, created_at=ensure_utc(now)))
    session.flush()
    return True


def unfollow(session: Session, principal: Principal, incident_id: int) -> bool:
    row = session.scalar(scope(select(Follow), principal, Follow).where(Follow.incident_id == incident_id))
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def is_following(session: Session, principal: Principal, incident_id: int) -> bool:
    return session.scalar(scope(select(Follow.id), principal, Follow).where(Follow.incident_id == incident_id)) \
        is not None


# --- raising ----------------------------------------------------------------------------------------

def _entitled(users: dict[int, User], org_id: int | None, *, staff_only: bool) -> list[int]:
    """The people among ``users`` who may know of a thing of ``org_id``: centre staff (not the
    auditor, who reads the log), and members of ``org_id`` unless the thing is for staff only."""
    out = []
    staff = {r.value for r in STAFF_ROLES if r != Role.AUDITOR}
    for uid, user in users.items():
        if not user.active:
            continue
        member = user.role == Role.CONSTITUENT and org_id is not None and org_id in user.org_ids
        if user.role in staff or (member and not staff_only):
            out.append(uid)
    return sorted(out)


def _users(session: Session, ids: Iterable[int]) -> dict[int, User]:
    ids = sorted(set(ids))
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}


def raise_for(session: Session, kind: str, user_ids: Iterable[int], *, incident_id: int | None, org_id: int | None,
              link: str, params: dict[str, Any], now: datetime) -> list[Notification]:
    """One notification per person who wants ``kind`` at all (``none`` writes nothing)."""
    ids = sorted(set(user_ids))
    out = []
    for uid, channel in channels_of(session, ids, kind).items():
        if channel == "none":
            continue
        row = Notification(user_id=uid, kind=kind, incident_id=incident_id, org_id=org_id, link=link[:300],
                           params=params, channel=channel, created_at=ensure_utc(now))
        session.add(row)
        out.append(row)
    session.flush()
    return out


def on_case(session: Session, what: str, incident: Any, *, now: datetime, actor_id: int | None = None,
            comment: Any = None, task: Any = None, user_ids: Iterable[int] = (), clock: str = "",
            state: str = "", due_at: datetime | None = None) -> list[Notification]:
    """The one call the incidents capability makes: ``what`` happened to ``incident``."""
    base = {"ref": incident.ref, "title": (incident.title or "")[:200]}
    link = f"/incidents/{incident.id}"
    if what == "assigned":
        if not incident.owner_id:
            return []
        follow(session, incident.owner_id, incident.id, reason="owner", now=now)
        if incident.owner_id == actor_id:
            return []
        actor = session.get(User, actor_id) if actor_id else None
        targets = _entitled(_users(session, [incident.owner_id]), incident.org_id, staff_only=True)
        return raise_for(session, "assigned", targets, incident_id=incident.id, org_id=incident.org_id, link=link,
                         params={**base, "by": (actor.name or actor.email) if actor else ""}, now=now)
    if what == "comment":
        if actor_id:
            follow(session, actor_id, incident.id, reason="commenter", now=now)
        followers = set(session.scalars(select(Follow.user_id).where(Follow.incident_id == incident.id)))
        followers.discard(actor_id)
        staff_only = comment.visibility != "shared"
        targets = _entitled(_users(session, followers), incident.org_id, staff_only=staff_only)
        body = " ".join((comment.body or "").split())
        return raise_for(session, "comment", targets, incident_id=incident.id, org_id=incident.org_id,
                         link=f"{link}#comments", params={**base, "by": comment.author_name,
                                                           "excerpt": body[:160] + ("…" if len(body) > 160 else "")},
                         now=now)
    if what == "task":
        members = session.scalars(select(Membership.user_id).where(Membership.org_id == task.org_id))
        targets = [u for u in _entitled(_users(session, members), task.org_id, staff_only=False)
                   if u != actor_id]
        users = _users(session, targets)
        targets = [u for u in targets if users[u].role == Role.CONSTITUENT]  # the organisation's own people
        return raise_for(session, "task", targets, incident_id=None, org_id=task.org_id, link=f"/tasks/{task.id}",
                         params={"ref": incident.ref, "title": task.title[:200], "task_id": task.id}, now=now)
    if what == "clock":
        targets = _entitled(_users(session, user_ids), incident.org_id, staff_only=False)
        return raise_for(session, "clock", targets, incident_id=incident.id, org_id=incident.org_id,
                         link=f"{link}#clocks", params={**base, "clock": clock, "state": state,
                                                        "due_at": ensure_utc(due_at).isoformat() if due_at else ""},
                         now=now)
    raise ValueError(f"unknown case notification {what!r}")


# --- reading ----------------------------------------------------------------------------------------

def in_app(principal: Principal):
    """The notifications the person sees in the app, as a scoped select."""
    return scope(select(Notification), principal, Notification).where(Notification.channel.in_(IN_APP))


def unread_count(session: Session, principal: Principal) -> int:
    if not principal.user_id:
        return 0
    stmt = in_app(principal).where(Notification.read_at.is_(None))
    return int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


def mark_read(session: Session, principal: Principal, ids: list[int] | None, now: datetime) -> int:
    """Mark the person's notifications read: those of ``ids``, or all when ``ids`` is None. Ids of
    other people's notifications are not theirs to mark and are passed over."""
    cond = [Notification.visible_to(principal), Notification.read_at.is_(None)]
    if ids is not None:
        cond.append(Notification.id.in_(ids))
    result = session.execute(update(Notification).where(*cond).values(read_at=ensure_utc(now))
                             .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


def text(row: Notification, tz: str) -> str:
    """The notification as one sentence in the current language."""
    from commonwatch.web.templating import format_datetime

    p = row.params or {}
    if row.kind == "assigned":
        if p.get("by"):
            return _("{by} assigned {ref} “{title}” to you.").format(**_fill(p, "by", "ref", "title"))
        return _("{ref} “{title}” is assigned to you.").format(**_fill(p, "ref", "title"))
    if row.kind == "comment":
        return _("{by} commented on {ref}: “{excerpt}”").format(**_fill(p, "by", "ref", "excerpt"))
    if row.kind == "task":
        return _("{ref}: a task for your organisation: “{title}”.").format(**_fill(p, "ref", "title"))
    if row.kind == "clock":
        from commonwatch.incidents.alerts import clock_title
        from commonwatch.incidents.rules import load_incident_rules

        due = p.get("due_at") or ""
        when = format_datetime(datetime.fromisoformat(due), tz) if due else ""
        title = clock_title(str(p.get("clock", "")), load_incident_rules(None))
        if p.get("state") == "missed":
            return _("{ref}: the deadline for “{clock}” passed at {due}.").format(ref=p.get("ref", ""), clock=title,
                                                                                 due=when)
        return _("{ref}: the deadline for “{clock}” is at risk (due {due}).").format(ref=p.get("ref", ""),
                                                                                    clock=title, due=when)
    return row.kind


def _fill(p: dict[str, Any], *keys: str) -> dict[str, str]:
    return {k: str(p.get(k) or "") for k in keys}
