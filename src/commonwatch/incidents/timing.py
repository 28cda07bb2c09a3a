"""Reading times from people and programs: ISO 8601 with an offset from the API, a wall-clock time
in the viewer's zone from forms. Stored in UTC either way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from commonwatch.errors import Invalid
from commonwatch.i18n import _
from commonwatch.web.templating import zone


def parse_time(value: object, field: str, viewer_zone: str | None = None) -> datetime | None:
    """An aware UTC datetime, or None for an empty value.

    Without an offset the time is read in ``viewer_zone`` (a form); with no zone given (the API) a
    time without an offset is refused, since guessing the zone would move every clock.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip().replace(" ", "T", 1)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise Invalid(field, _("is not a date and time (use e.g. 2026-11-25T14:30+08:00)")) from None
    if parsed.tzinfo is None:
        if viewer_zone is None:
            raise Invalid(field, _("needs a time zone offset, e.g. +08:00"))
        return local_to_utc(parsed, zone(viewer_zone), field)
    return parsed.astimezone(UTC)


def local_to_utc(local: datetime, tz: ZoneInfo, field: str) -> datetime:
    """A wall-clock time in ``tz`` as UTC; a time the clocks skipped (a DST gap) is refused."""
    aware = local.replace(tzinfo=tz)
    back = aware.astimezone(UTC).astimezone(tz)
    if back.replace(tzinfo=None) != local:
        raise Invalid(field, _("does not exist in the time zone {zone} (the clocks were changed)").format(
            zone=tz.key))
    return aware.astimezone(UTC)


def to_local_input(value: datetime | None, viewer_zone: str | None) -> str:
    """A stored time as the value of an ``<input type="datetime-local">`` in the viewer's zone."""
    if value is None:
        return ""
    return value.astimezone(zone(viewer_zone)).strftime("%Y-%m-%dT%H:%M")


def humanize_delta(delta: timedelta) -> str:
    """A remaining or overdue span as ``[-][Nd ]HH:MM:SS`` (what the live countdown shows)."""
    seconds = int(round(delta.total_seconds()))
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{f'{days}d ' if days else ''}{hours:02d}:{minutes:02d}:{secs:02d}"
