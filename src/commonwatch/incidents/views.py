"""What pages and the API show of a case: its clocks with states, the grading basis, and the
timeline in the reader's language."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Response
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.clock import ensure_utc
from commonwatch.errors import NotFound
from commonwatch.i18n import _, ngettext
from commonwatch.incidents import services as svc
from commonwatch.incidents.alerts import clock_title
from commonwatch.incidents.attachments import blob_path
from commonwatch.incidents.clocks import at_risk_window, clock_state
from commonwatch.incidents.models import Incident, TimelineEntry
from commonwatch.incidents.rules import IncidentRules
from commonwatch.incidents.services import clocks_for, status_label, task_status_label
from commonwatch.incidents.timing import humanize_delta
from commonwatch.labels import label
from commonwatch.web.templating import format_datetime


def state_label(state: str) -> str:
    return label(state, "clock_state")


def clock_rows(incident: Incident, rules: IncidentRules, now: datetime) -> list[dict[str, Any]]:
    """Each clock of the case with its state, remaining time and citation."""
    rows = []
    for clock in clocks_for(incident, rules).clocks:
        state = clock_state(clock, now, rules.reporting)
        rows.append({
            "key": clock.key, "title": clock_title(clock.key, rules), "recipients": [str(r) for r in clock.recipients],
            "due_at": clock.due_at, "done_at": clock.done_at, "state": state, "state_label": state_label(state),
            "remaining": humanize_delta(clock.due_at - ensure_utc(now)) if clock.due_at else "",
            "at_risk_seconds": int(at_risk_window(clock, rules.reporting).total_seconds()),
            "live": clock.due_at is not None and clock.done_at is None,
            "citation": str(clock.citation), "provisional": clock.status == "provisional",
            "note": str(clock.note) if clock.note else "",
        })
    return rows


def next_action(incident: Incident, clock_list: list[dict[str, Any]], *, staff: bool,
                can_edit: bool) -> tuple[str, str] | None:
    """What the case needs next, as ``(text, tab)``: the most urgent open clock first (missed,
    then at risk, then the earliest due), then an owner for a new case; ``None`` when nothing is
    waiting. The reporter sees only what it can act on."""
    from commonwatch.incidents.models import OPEN_STATUSES

    urgency = {"missed": 0, "at_risk": 1, "running": 2}
    live = sorted((c for c in clock_list if c["live"] and c["state"] in urgency),
                  key=lambda c: (urgency[c["state"]], c["due_at"]))
    if live and (staff or can_edit):
        c = live[0]
        text = (_("{duty}: missed — do it now") if c["state"] == "missed"
                else _("{duty}: due in {left}")).format(duty=c["title"], left=c["remaining"])
        return text, "clocks"
    if staff and incident.owner_id is None and incident.status in OPEN_STATUSES:
        return _("Assign an owner"), "handling"
    return None


def clocks_json(incident: Incident, rules: IncidentRules, now: datetime) -> list[dict[str, Any]]:
    return [{"clock": r["key"], "title": r["title"], "recipients": r["recipients"],
             "due_at": r["due_at"].isoformat() if r["due_at"] else None,
             "done_at": ensure_utc(r["done_at"]).isoformat() if r["done_at"] else None,
             "state": r["state"], "remaining_seconds": int((r["due_at"] - ensure_utc(now)).total_seconds())
             if r["due_at"] else None, "citation": r["citation"],
             "status": "provisional" if r["provisional"] else "verified"} for r in clock_rows(incident, rules, now)]


def grading_rows(incident: Incident, rules: IncidentRules) -> list[dict[str, Any]]:
    """The indicators that fired, highest level first, with citations and provisional marks."""
    by_id = {i.id: i for i in rules.grading.indicators}
    out = []
    for fired in (incident.grading or {}).get("fired", []):
        ind = by_id.get(fired["id"])
        if ind is None:
            continue
        out.append({"id": ind.id, "level": rules.grading.level(ind.level).label, "text": str(ind.text),
                    "value": fired.get("value"), "citation": str(ind.citation), "provisional": ind.provisional,
                    "deciding": ind.level == incident.computed_level})
    return out


def level_label(key: str, rules: IncidentRules) -> str:
    try:
        return rules.grading.level(key).label
    except KeyError:
        return key


def describe(entry: TimelineEntry, rules: IncidentRules, tz: str) -> str:
    """One timeline entry as a sentence in the current language."""
    d = entry.data or {}
    kind = entry.kind
    if kind == "created":
        return _("Incident filed for {org} (via {via}).").format(org=d.get("org", ""), via=d.get("via", ""))
    if kind == "graded":
        return _("Graded {level} by the rules ({indicators}).").format(
            level=level_label(d.get("level", ""), rules), indicators=", ".join(d.get("indicators") or []) or "—")
    if kind == "regraded":
        before, after = d.get("before") or {}, d.get("after") or {}
        return _("Re-graded: level {old} → {new}; first-report deadline {old_due} → {new_due}. Why: {reason}").format(
            old=level_label(before.get("level", ""), rules), new=level_label(after.get("level", ""), rules),
            old_due=_fmt_iso(before.get("first_report_due"), tz), new_due=_fmt_iso(after.get("first_report_due"), tz),
            reason=d.get("reason", ""))
    if kind == "level_override":
        if d.get("cleared"):
            return _("Level override removed; the computed level {level} applies. Reason: {reason}").format(
                level=level_label(d.get("level", ""), rules), reason=d.get("reason", ""))
        return _("Level set by hand to {level} (computed: {computed}). Reason: {reason}").format(
            level=level_label(d.get("level", ""), rules), computed=level_label(d.get("computed", ""), rules),
            reason=d.get("reason", ""))
    if kind == "status":
        text = _("Status {old} → {new}.").format(old=status_label(d.get("old", "")), new=status_label(d.get("new", "")))
        return f"{text} {d['note']}" if d.get("note") else text
    if kind == "assigned":
        return _("Assigned to {owner}.").format(owner=d.get("owner") or _("nobody"))
    if kind == "report_submitted":
        return _("Recorded: {report} sent at {at} {channel}").format(
            report=clock_title(d.get("report", ""), rules), at=_fmt_iso(d.get("at"), tz),
            channel=f"({d['channel']})" if d.get("channel") else "")
    if kind == "updated":
        return _("Report updated: {fields}.").format(fields=", ".join(d.get("fields") or []))
    if kind == "comment":
        return (_("Comment by {author} (shared with the reporter).") if d.get("shared")
                else _("Internal comment by {author}.")).format(author=d.get("author", ""))
    if kind == "attachment":
        return _("Attachment {name} ({size} bytes, SHA-256 {sha}).").format(
            name=d.get("filename", ""), size=d.get("size", 0), sha=str(d.get("sha256", ""))[:16] + "…")
    if kind == "attachment_refused":
        return _("Attachment {name} refused: {reason}").format(name=d.get("filename", ""), reason=d.get("reason", ""))
    if kind == "events_linked":
        n = int(d.get("count", 0) or 0)
        return ngettext("{n} event linked.", "{n} events linked.", n).format(n=n)
    if kind == "incident_linked":
        return (_("Marked as duplicate of / with {other}.") if d.get("kind") == "duplicate"
                else _("Linked to {other}.")).format(other=d.get("other", ""))
    if kind == "merged_into":
        return _("Merged into {other} as a duplicate.").format(other=d.get("other", ""))
    if kind == "merged_from":
        return _("Duplicate {other} merged into this case ({n} events moved).").format(
            other=d.get("other", ""), n=d.get("events", 0))
    if kind == "task_created":
        return _("Coordination task to {org}: {title}").format(org=d.get("org", ""), title=d.get("title", ""))
    if kind == "task_answered":
        return _("{org} answered a task ({status}): {response}").format(
            org=d.get("org", ""), status=task_status_label(d.get("status", "")), response=d.get("response", ""))
    if kind == "shared":
        return _("Shared with {partner} at {tlp}.").format(partner=d.get("partner", ""), tlp=d.get("tlp", ""))
    if kind == "share_revoked":
        return _("Sharing with {partner} revoked.").format(partner=d.get("partner", ""))
    if kind == "partner_update":
        return _("Update from {partner}: {body}").format(partner=d.get("partner", ""), body=d.get("body", ""))
    if kind == "partner_exchange":
        fmt = {"iodef": "IODEF v2 JSON", "xarf": "X-ARF"}.get(d.get("format", ""), d.get("format", ""))
        text = _("{n} events sent to {partner} as {format}.").format(
            n=d.get("events", 0), partner=d.get("partner", ""), format=fmt)
        delivery = d.get("delivery")
        if delivery == "sent":
            return f"{text} " + _("Delivered by e-mail to {to}.").format(to=d.get("to", ""))
        if delivery == "retrying":
            return f"{text} " + _("Delivery failed for now; it will be retried: {reason}").format(
                reason=d.get("reason", ""))
        if delivery == "failed":
            return f"{text} " + _("Delivery failed: {reason}").format(reason=d.get("reason", ""))
        return text
    if kind == "clock_alert":
        text = _("Deadline missed: {clock} (due {due}).") if d.get("state") == "missed" else \
            _("Deadline at risk: {clock} (due {due}).")
        return text.format(clock=clock_title(d.get("clock", ""), rules), due=_fmt_iso(d.get("due_at"), tz))
    return kind


def _fmt_iso(value: str | None, tz: str) -> str:
    if not value:
        return "—"
    return format_datetime(datetime.fromisoformat(value), tz)


def attachment_download(db: Session, principal: Principal, incident_id: int, attachment_id: int,
                        data_dir: Path) -> Response:
    """One attachment of an incident the principal may read, as a download (API and pages alike)."""
    svc.get_incident(db, principal, incident_id)
    row = svc.get_attachment(db, principal, attachment_id)
    if row.incident_id != incident_id:
        raise NotFound("attachment")
    path = blob_path(svc.attachment_root(data_dir), row.sha256)
    return Response(path.read_bytes(), media_type=row.content_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row.filename, safe='')}",
        "X-Content-SHA256": row.sha256})
