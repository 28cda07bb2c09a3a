"""Why a delivery is waiting, held or dead — stored as a code with its values, so the log shows
the reason in the viewer's language; ``last_error`` keeps the English text for logs and search.
What a mail server or webhook receiver said is quoted as it said it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from commonwatch.i18n import N_, _

REASONS: dict[str, str] = {
    "refused": N_("{stage}: {reply}"),
    "auth_failed": N_("authentication failed: {detail}"),
    "unreachable": N_("cannot reach {server}: {detail}"),
    "connection_failed": N_("connection failed: {detail}"),
    "in_doubt_connection": N_("in doubt: the connection failed after the message was handed over ({detail}); "
                              "the server may have accepted it"),
    "in_doubt": N_("in doubt: a run stopped after handing this message to the server at {at}; it may have been "
                   "delivered ({message_id}). Check the mail server's log, then resend or mark it sent."),
    "stopped_before": N_("a run stopped before sending this message"),
    "gave_up": N_("{detail} (gave up after {n} attempts)"),
    "no_key": N_("encryption is required but {email} has no OpenPGP key"),
    "key_expired": N_("the OpenPGP key {fp} of {email} expired on {date}"),
    "key_revoked": N_("the OpenPGP key {fp} of {email} is revoked"),
    "key_unusable": N_("the OpenPGP key {fp} of {email} cannot be used: {detail}"),
    "no_gpg": N_("encryption is required but GnuPG is not installed on the server"),
    "malformed_address": N_("malformed address {address}: {detail}"),
    "contact_gone": N_("the contact was removed or no longer takes early warnings"),
    "nobody": N_("no active contact of this organisation takes early warnings, and it has no webhook"),
    "no_webhook": N_("the organisation's policy no longer sends warnings to a webhook"),
    "not_allowlisted": N_("{url} is not in the outbound allowlist"),
    "secret_unreadable": N_("the webhook secret cannot be read: {detail}"),
    "timeout": N_("no answer within {seconds} s"),
    "http_status": N_("HTTP {status}: {body}"),
    "failed": N_("{kind}: {detail}"),
    "rerouted": N_("re-routed to the organisation's current recipients ({n} ledger rows)"),
}


@dataclass(frozen=True)
class Reason:
    code: str
    args: dict[str, Any] = field(default_factory=dict)

    def english(self) -> str:
        return REASONS[self.code].format(**self.args)

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "args": {k: str(v) for k, v in self.args.items()}}


def reason(code: str, **args: Any) -> Reason:
    return Reason(code, args)


def describe(stored: dict | None, fallback: str) -> str:
    """The stored reason in the current language; the English text if it is not one we know."""
    if not stored or stored.get("code") not in REASONS:
        return fallback
    template = REASONS[stored["code"]]
    try:
        return _(template).format(**(stored.get("args") or {}))
    except (KeyError, IndexError):
        return fallback
