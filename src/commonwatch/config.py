"""Settings: environment variables ``COMMONWATCH_*`` over an optional TOML file over defaults.

The TOML file is ``$COMMONWATCH_CONFIG`` if set, else ``commonwatch.toml`` in the data dir.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path(os.environ.get("COMMONWATCH_DATA_DIR") or Path.cwd() / "var").resolve()


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the optional TOML file; keys are the setting names without the prefix."""

    def __init__(self, settings_cls: type[BaseSettings]):
        super().__init__(settings_cls)
        path = os.environ.get("COMMONWATCH_CONFIG")
        candidate = Path(path) if path else _default_data_dir() / "commonwatch.toml"
        self._values: dict[str, Any] = {}
        if candidate.is_file():
            with candidate.open("rb") as fh:
                self._values = tomllib.load(fh)

    def get_field_value(self, field, field_name):  # pragma: no cover - not used by __call__
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._values.items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COMMONWATCH_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str = ""
    broker_url: str = "inprocess://"
    #: Display time zone for people whose profile does not set one; storage is always UTC.
    timezone: str = "Asia/Shanghai"
    default_language: str = "en"
    centre_name: str = "commonwatch coordination centre"
    centre_name_zh: str = "commonwatch 协调中心"
    #: The public URL people and partners reach this centre at; https turns on Secure cookies and HSTS.
    base_url: str = "http://127.0.0.1:8000"
    session_hours: float = 12.0
    session_idle_minutes: float = 120.0
    #: How often an open page asks for the person's unread notifications (the header's bell).
    inbox_poll_seconds: float = 15.0
    cookie_secure: bool = False
    login_max_failures: int = 5
    login_window_minutes: int = 15
    login_max_failures_per_ip: int = 30
    #: Failures of one account from every address together (a guess spread over many addresses).
    login_max_failures_per_account: int = 100
    #: Reverse proxies (addresses or CIDRs) whose X-Forwarded-For / Forwarded headers name the
    #: client; from any other peer those headers are ignored.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Bearer token /metrics asks for; empty: /metrics answers only to loopback peers.
    metrics_token: str = ""
    #: The audit chain's HMAC key; empty: read (or at first start create, 0600) ``audit_key_file``.
    audit_key: str = ""
    #: The key file; ``<data dir>/audit.key`` when empty. Keep it (and a copy) outside the database.
    audit_key_file: Path | None = None
    #: Append-only file of anchors (the chain head); ``<data dir>/audit-anchors.jsonl`` when empty.
    audit_anchor_file: Path | None = None
    #: Minutes between anchors written by the audit-anchor job; 0 turns the job off.
    audit_anchor_every_minutes: float = 60.0
    #: An outside witness each anchor is POSTed to as JSON (through the outbound allowlist).
    audit_anchor_webhook: str = ""
    #: An address each anchor is mailed to (through the SMTP settings below).
    audit_anchor_mail_to: str = ""
    #: Requests one server process handles at a time; more wait their turn, in order. Each holds a
    #: database connection and a thread while it runs: kept below both pools (15 connections, 40
    #: threads), so a request never waits for one while holding the other (a deadlock under load),
    #: and a few requests at a time share the cores better than forty.
    max_concurrent_requests: int = Field(8, ge=1, le=14)
    #: The niceness ``commonwatch ingest`` and ``commonwatch worker`` give themselves at start
    #: (0: unchanged): a bulk ingest yields the cores to the interactive server's requests.
    ingest_nice: int = Field(10, ge=0, le=19)
    max_upload_bytes: int = 25 * 1024 * 1024
    max_import_bytes: int = 50 * 1024 * 1024
    #: Which event store holds the events: ``parquet`` (immutable columnar segments in
    #: ``event_store_dir``), ``sql`` (the database above) or ``clickhouse`` (a ClickHouse server or
    #: cluster at ``clickhouse_url``, else chDB in ``<event_store_dir>/chdb``). See ``events.store``.
    event_store: str = "parquet"
    #: The Parquet store's folder (and chDB's parent folder); ``<data dir>/events`` when empty.
    event_store_dir: Path | None = None
    #: The ClickHouse server for ``event_store = "clickhouse"``, as clickhouse-connect takes it
    #: (``http[s]://user:password@host:8123/database``); empty: chDB in process.
    clickhouse_url: str = ""
    #: The cluster (``remote_servers``) whose shards hold the events; empty: one server, no
    #: Distributed table.
    clickhouse_cluster: str = ""
    #: Either store's dedup check: a batch's keys against the stored keys of the days this many
    #: either side of its events' times (a writer holds only those days' keys): at least the
    #: longest ``--window-hours`` any ingest uses.
    event_dedup_days: int = Field(default=7, ge=1)
    #: The earlier name of ``event_dedup_days``, when only the ClickHouse store had the setting:
    #: still read, so an existing configuration keeps its window (``event_dedup_days`` wins).
    clickhouse_dedup_days: int | None = Field(default=None, ge=1)
    #: Events whose ``time.source`` is older than this many days are dropped a whole UTC day at a
    #: time (``events retention``, daily job); events linked to an incident are kept.
    event_retention_days: int = Field(default=400, ge=1)
    #: Most events one export (API, page link or `events export`) may hold; narrower filters beyond.
    events_export_max_rows: int = 1_000_000
    #: Outbound URLs (feeds, webhooks, TAXII and MISP peers) must lie under one of these URLs
    #: (same scheme, host and port; path prefix on a "/" boundary): see commonwatch.outbound.
    outbound_allowlist: Annotated[list[str], NoDecode] = Field(default_factory=list)
    outbound_timeout_seconds: float = 30.0
    outbound_max_bytes: int = 512 * 1024 * 1024
    #: Redirect hops one outbound request may follow (each target is checked like the first URL).
    outbound_max_redirects: int = 5
    #: CA certificates (PEM) trusted for outbound https instead of the system's; empty: the system's.
    outbound_ca_file: Path | None = None
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_security: str = "starttls"  # none | starttls | tls
    smtp_username: str = ""
    smtp_password: str = ""
    mail_from: str = "cert@commonwatch.invalid"
    gnupg_home: Path | None = None
    log_format: str = "json"  # json | text
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _dedup_days_of_the_earlier_name(self) -> Settings:
        if self.clickhouse_dedup_days is not None and "event_dedup_days" not in self.model_fields_set:
            self.event_dedup_days = self.clickhouse_dedup_days
        return self

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        import ipaddress

        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        for entry in value or []:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: {entry!r} is not an address or CIDR") from None
        return value

    @property
    def https(self) -> bool:
        """Whether the public URL (``base_url``) is https: cookies are then Secure and HSTS is sent."""
        return self.base_url.lower().startswith("https://")

    @property
    def secure_cookies(self) -> bool:
        return self.cookie_secure or self.https

    @field_validator("outbound_allowlist", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            from commonwatch.outbound import parse_entry

            for entry in value:
                parse_entry(entry)  # a malformed entry stops the start with its reason
        return value

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        return (init_settings, env_settings, _TomlSource(settings_cls), file_secret_settings)

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'commonwatch.db'}"

    def path(self, *parts: str) -> Path:
        """A path under the data dir, its parent created."""
        p = self.data_dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
