"""Notification policies: the centre-wide default and each organisation's own, validated."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.errors import FieldError, Invalid
from commonwatch.events.schema import SEVERITIES
from commonwatch.i18n import N_, _
from commonwatch.notify.models import CADENCES, CHANNELS, Policy
from commonwatch.textio import control_char_errors
from commonwatch.validation import parse_language

_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
POLICY_FIELDS = ("enabled", "types", "min_severity", "cadence", "immediate_severity", "cii_immediate", "channel",
                 "encryption_required", "language", "attach_intelmq", "repeat_window_hours", "webhook_url")
CADENCE_LABELS = {"immediate": N_("immediately"), "hourly": N_("hourly digest"), "daily": N_("daily digest")}
CHANNEL_LABELS = {"email": N_("email"), "webhook": N_("webhook"), "both": N_("email and webhook")}
CADENCE_SECONDS = {"immediate": 0, "hourly": 3600, "daily": 86400}


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


@dataclass(frozen=True)
class Effective:
    """The policy that applies to one organisation (its own, else the default), as plain values."""

    org_id: int
    own: bool
    enabled: bool
    types: tuple[str, ...]
    min_severity: str
    cadence: str
    immediate_severity: str
    cii_immediate: bool
    channel: str
    encryption_required: bool
    language: str
    attach_intelmq: bool
    repeat_window_hours: int
    webhook_url: str
    webhook_secret: str

    @property
    def wants_email(self) -> bool:
        return self.channel in ("email", "both")

    @property
    def wants_webhook(self) -> bool:
        return self.channel in ("webhook", "both")


def default_policy(session: Session) -> Policy:
    """The centre-wide default: the stored one, or (not stored: reading never writes) the built-in
    values until someone saves it."""
    policy = session.scalar(select(Policy).where(Policy.org_id.is_(None)).order_by(Policy.id).limit(1))
    if policy is None:
        policy = Policy(org_id=None, enabled=True, types=[], min_severity="low", cadence="daily",
                        immediate_severity="high", cii_immediate=True, channel="email", encryption_required=False,
                        language="", attach_intelmq=False, repeat_window_hours=168, webhook_url="",
                        webhook_secret="")
    return policy


def own_policy(session: Session, org_id: int) -> Policy | None:
    return session.scalar(select(Policy).where(Policy.org_id == org_id))


def _effective(policy: Policy, org_id: int, own: bool) -> Effective:
    return Effective(org_id=org_id, own=own, enabled=policy.enabled, types=tuple(policy.types or ()),
                     min_severity=policy.min_severity, cadence=policy.cadence,
                     immediate_severity=policy.immediate_severity, cii_immediate=policy.cii_immediate,
                     channel=policy.channel, encryption_required=policy.encryption_required,
                     language=policy.language, attach_intelmq=policy.attach_intelmq,
                     repeat_window_hours=policy.repeat_window_hours, webhook_url=policy.webhook_url,
                     webhook_secret=policy.webhook_secret)


def effective_policies(session: Session, org_ids: list[int] | set[int]) -> dict[int, Effective]:
    """The policy in force for each organisation: one query for the overrides, one for the default."""
    default = default_policy(session)
    ids = sorted(set(org_ids))
    own: dict[int, Policy] = {}
    for start in range(0, len(ids), 5000):
        for p in session.scalars(select(Policy).where(Policy.org_id.in_(ids[start:start + 5000]))):
            own[p.org_id] = p  # type: ignore[index]
    return {o: _effective(own[o], o, True) if o in own else _effective(default, o, False) for o in ids}


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "on", "yes")
    return bool(value)


def validate_policy(data: dict[str, Any], allowlist: list[str]) -> dict[str, Any]:
    """Check and normalise policy fields; :class:`Invalid` lists every bad field with its reason."""
    from commonwatch import outbound

    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    for key in ("enabled", "cii_immediate", "encryption_required", "attach_intelmq"):
        if key in data:
            out[key] = _bool(data[key])
    if "types" in data:
        raw = data["types"]
        items = [t for t in re.split(r"[\s,]+", raw) if t] if isinstance(raw, str) else list(raw or [])
        bad = [t for t in items if not isinstance(t, str) or not _TYPE_RE.match(t)]
        if bad:
            errors.append(FieldError("types", _("“{value}” is not a classification type (e.g. infected-system)")
                                     .format(value=", ".join(map(str, bad)))))
        out["types"] = sorted({t for t in items if isinstance(t, str)})
    for key in ("min_severity", "immediate_severity"):
        if key in data:
            value = str(data[key] or "").strip()
            if value not in SEVERITIES:
                errors.append(FieldError(key, _("must be one of {values}").format(values=", ".join(SEVERITIES))))
            out[key] = value
    if "cadence" in data:
        value = str(data["cadence"] or "").strip()
        if value not in CADENCES:
            errors.append(FieldError("cadence", _("must be one of {values}").format(values=", ".join(CADENCES))))
        out["cadence"] = value
    if "channel" in data:
        value = str(data["channel"] or "").strip()
        if value not in CHANNELS:
            errors.append(FieldError("channel", _("must be one of {values}").format(values=", ".join(CHANNELS))))
        out["channel"] = value
    if "language" in data:
        value = str(data["language"] or "").strip()
        if value:
            try:
                value = parse_language(value)
            except Invalid as exc:
                errors.extend(exc.errors)
        out["language"] = value
    if "repeat_window_hours" in data:
        try:
            hours = int(str(data["repeat_window_hours"]).strip())
        except ValueError:
            hours = -1
        if not 0 <= hours <= 8760:
            errors.append(FieldError("repeat_window_hours", _("must be a whole number of hours from 0 to 8760")))
        out["repeat_window_hours"] = hours
    if "webhook_url" in data:
        url = str(data["webhook_url"] or "").strip()
        if url:
            try:
                outbound.check(url, allowlist, "webhook_url")
            except Invalid as exc:
                errors.extend(exc.errors)
        out["webhook_url"] = url
    errors += control_char_errors(data)  # a form or a body: refused naming the field (textio)
    if errors:
        raise Invalid(errors)
    return out


def save_policy(session: Session, org_id: int | None, data: dict[str, Any], *, allowlist: list[str],
                keyring=None) -> tuple[Policy, str]:
    """Create or update the policy of ``org_id`` (None: the default). Returns the policy and, when a
    webhook secret was created or rotated, the new secret (shown once, stored only encrypted)."""
    fields = validate_policy({k: v for k, v in data.items() if k in POLICY_FIELDS}, allowlist)
    if org_id is None:
        policy = default_policy(session)
        session.add(policy)  # the built-in values are stored the first time they are saved
    else:
        policy = own_policy(session, org_id)
        if policy is None:
            base = default_policy(session)
            policy = Policy(org_id=org_id, **{k: getattr(base, k) for k in POLICY_FIELDS}, webhook_secret="")
            session.add(policy)
    for key, value in fields.items():
        setattr(policy, key, value)
    channel = policy.channel
    if channel in ("webhook", "both") and not policy.webhook_url:
        raise Invalid("webhook_url", _("is required when warnings go to a webhook"))
    new_secret = ""
    if channel in ("webhook", "both") and (not policy.webhook_secret or _bool(data.get("rotate_secret"))):
        from commonwatch.notify.webhook import protect_secret

        new_secret = secrets.token_urlsafe(32)
        policy.webhook_secret = protect_secret(keyring, new_secret)
    session.flush()
    return policy, new_secret


def delete_policy(session: Session, org_id: int) -> bool:
    """Drop an organisation's own policy so the default applies again."""
    policy = own_policy(session, org_id)
    if policy is None:
        return False
    session.delete(policy)
    session.flush()
    return True
