"""Short messages to people of the centre (a deadline at risk, a case assigned): the same
transport, signature and outbox as the digests, without a delivery ledger of their own — the
capability that raises the message keeps its delivered state."""

from __future__ import annotations

import secrets

from commonwatch.notify.mail import (
    Envelope,
    OutboxTransport,
    Outcome,
    content_entity,
    outer_headers,
    plain_message,
    signed_message,
)
from commonwatch.notify.runner import Notifier


def send_to_person(notifier: Notifier, *, address: str, subject: str, text: str, name: str,
                   language: str = "en", attachments: list[tuple[str, str, bytes]] | None = None) -> Outcome:
    """Sign (with the centre's key, when it has one) and hand over one plain-text message.

    ``name`` identifies the message in the outbox folder (``<name>.eml``) and its Message-ID;
    ``attachments`` are ``(filename, media type, bytes)`` (a situation report's PDF).
    """
    settings = notifier.settings
    now = notifier.clock.now()
    domain = settings.mail_from.rpartition("@")[2] or "commonwatch.invalid"
    headers = outer_headers(
        sender=settings.mail_from, sender_name=settings.centre_name_zh if language == "zh-CN" else settings.centre_name,
        recipient=address, subject=subject, message_id=f"<{name}.{secrets.token_hex(6)}@{domain}>", date=now,
        delivery_id=0, tlp="AMBER")
    entity = content_entity(text, attachments or [])
    keyring = notifier.keyring
    centre = keyring.centre_key() if keyring is not None else None
    data = signed_message(headers, entity, keyring, centre.fingerprint) if centre else plain_message(headers, entity)
    envelope = Envelope(settings.mail_from, address, data, bool(centre), False)
    transport = notifier.mail_transport()
    if isinstance(transport, OutboxTransport):
        return transport.send(envelope, lambda: None, name=name)
    return transport.send(envelope, lambda: None)
