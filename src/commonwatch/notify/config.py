"""Tunables of early warning, from ``COMMONWATCH_NOTIFY_*`` environment variables.

The SMTP server, the sender address, the GnuPG home and the outbound allowlist are the
platform's settings (``commonwatch.config``); these are the knobs of delivery itself.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class NotifySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COMMONWATCH_NOTIFY_", extra="ignore")

    #: Wait before each retry; after the last one the delivery becomes a dead letter.
    retry_seconds: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [60, 300, 900, 3600, 14400])
    #: How long a run may hold a delivery it is sending before another run treats it as stopped.
    lease_seconds: int = 600
    #: Planning re-reads events created this long before its last run (slow ingest transactions).
    overlap_seconds: int = 300
    webhook_timeout_seconds: float = 10.0
    smtp_timeout_seconds: float = 60.0
    #: A digest larger than this is split over several messages (mail servers limit sizes).
    max_events_per_message: int = 20_000
    #: Events shown inline per type in the text body (all of them are in the attachment).
    inline_events_per_type: int = Field(default=10, ge=0)
    #: Events read per planning step.
    plan_chunk: int = 200_000
    #: Deliveries sent per run (the rest wait for the next run).
    send_batch: int = 20_000
    #: Threads sending at once, each with its own SMTP connection; signing and encrypting run in
    #: gpg processes, so two threads keep two cores busy.
    send_workers: int = 2
    #: Processes assembling and sending at once when a run has at least ``send_process_min``
    #: deliveries (rendering, CSV and MIME are Python, held by the GIL in threads); 0 means one per
    #: core, 1 sends in the run's own process (with ``send_workers`` threads).
    send_processes: int = Field(default=0, ge=0)
    send_process_min: int = Field(default=200, ge=1)
    #: Deliveries claimed, handed over and recorded per commit (one commit per step per batch,
    #: not per message). A run killed while sending a batch leaves at most this many in doubt.
    send_commit_batch: int = Field(default=20, ge=1)

    @field_validator("retry_seconds", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [int(v) for v in value.replace(",", " ").split()]
        return value


@lru_cache(maxsize=1)
def get_notify_settings() -> NotifySettings:
    return NotifySettings()
