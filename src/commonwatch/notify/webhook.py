"""Webhooks: a JSON body signed with HMAC-SHA256 under a per-destination secret, sent under the
outbound policy (:mod:`commonwatch.outbound`: allowlisted URLs only, redirects only through 307/308
to allowlisted URLs) with the webhook timeout.

The secret must be readable to sign, so it cannot be stored hashed like a password. It is stored
OpenPGP-encrypted to the centre's own key: a copy of the database alone does not reveal it; the
centre's GnuPG home (0700, in the data dir) is needed too. It is redacted from the audit log and
shown once, when it is created or rotated.

Receivers check ``X-Commonwatch-Signature: t=<unix time>,v1=<hex>`` where ``v1`` is
HMAC-SHA256(secret, "<t>.<raw body>"), reject old timestamps, and use ``X-Commonwatch-Delivery``
to recognise a retransmission.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

import httpx

from commonwatch import outbound
from commonwatch.errors import Invalid
from commonwatch.i18n import _
from commonwatch.notify.reasons import Reason

SIGNATURE_HEADER = "X-Commonwatch-Signature"
DELIVERY_HEADER = "X-Commonwatch-Delivery"
_SECRET_PREFIX = "pgp:"  # noqa: S105 - a format marker, not a secret


def protect_secret(keyring, secret: str) -> str:
    """The secret encrypted to the centre's key, as stored in the policy."""
    if keyring is None:
        raise Invalid("webhook_url", _("webhooks need the centre's key to protect their secret; "
                                       "run: commonwatch notify key init"))
    centre = keyring.centre_key()
    if centre is None:
        raise Invalid("webhook_url", _("webhooks need the centre's key to protect their secret; "
                                       "run: commonwatch notify key init"))
    return _SECRET_PREFIX + keyring.encrypt(secret.encode(), centre.fingerprint, None).decode("ascii")


def reveal_secret(keyring, stored: str) -> str:
    if not stored.startswith(_SECRET_PREFIX):
        raise ValueError("the stored webhook secret is not in the expected form")
    return keyring.decrypt(stored[len(_SECRET_PREFIX):]).decode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes) -> bool:
    """What a receiver does (used by the tests' receiver and offered to integrators)."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (ValueError, KeyError):
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)


@dataclass
class HttpOutcome:
    status: str  # sent | retry | dead | held
    reason: Reason | None = None
    remote_id: str = ""

    @property
    def error(self) -> str:
        return self.reason.english() if self.reason else ""


def post(url: str, body: bytes, secret: str, delivery_id: int, timestamp: int, *,
         policy: outbound.Policy) -> HttpOutcome:
    """POST one signed body; server errors and time-outs are retried, other refusals are final, a
    destination or redirect the policy refuses is held for the centre."""
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(secret, timestamp, body),
               DELIVERY_HEADER: str(delivery_id), "Idempotency-Key": f"commonwatch-{delivery_id}",
               "User-Agent": "commonwatch-notify"}
    try:
        outbound.check(url, policy.allowlist, "webhook_url")
    except Invalid:
        return HttpOutcome("held", Reason("not_allowlisted", {"url": url}))
    try:
        resp = outbound.send(policy, "POST", url, field="webhook_url", headers=headers, content=body)
    except httpx.TimeoutException:
        return HttpOutcome("retry", Reason("timeout", {"seconds": f"{policy.timeout:g}"}))
    except httpx.HTTPError as exc:
        return HttpOutcome("retry", Reason("failed", {"kind": type(exc).__name__, "detail": str(exc)}))
    except Invalid as exc:  # a refused redirect, or an answer past the limits
        return HttpOutcome("held", Reason("failed", {"kind": "refused", "detail": str(exc)}))
    if 200 <= resp.status < 300:
        return HttpOutcome("sent", None, resp.headers.get("x-request-id", ""))
    reason = Reason("http_status", {"status": resp.status, "body": resp.text[:200]})
    if resp.status >= 500 or resp.status in (408, 425, 429):
        return HttpOutcome("retry", reason)
    return HttpOutcome("dead", reason)


def body_json(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
