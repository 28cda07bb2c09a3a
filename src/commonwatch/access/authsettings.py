"""Settings of sign-in beyond the password: the second-factor policy and the security-key relying
party. Read like every other setting (``COMMONWATCH_*`` environment variables, then the TOML file),
kept apart from ``commonwatch.config`` so the access capability owns them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from commonwatch.config import Settings, _TomlSource


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COMMONWATCH_", extra="ignore")

    #: Roles that must sign in with a second factor; a user of such a role without one is sent to
    #: enrolment after the password and can do nothing else until a factor is set up.
    mfa_required_roles: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["admin", "coordinator"])
    #: The key (Fernet) that encrypts TOTP secrets; ``<data dir>/mfa.key`` when empty, created on
    #: first use with mode 0600. Keep it out of database backups.
    mfa_key_file: Path | None = None
    #: TOTP codes of this many 30-second steps before and after now are accepted.
    mfa_totp_window: int = Field(default=1, ge=0, le=4)
    #: A half-signed-in session (password checked, second factor not yet) lasts this long, and
    #: this many wrong codes end it.
    mfa_pending_minutes: float = 10.0
    mfa_max_failures: int = 5
    #: The WebAuthn relying party: its id (a domain) and the origin pages are served from; both
    #: default to the host and origin of ``base_url``.
    webauthn_rp_id: str = ""
    webauthn_origin: str = ""
    webauthn_rp_name: str = "commonwatch"
    #: Single sign-on: the rules file that maps groups to roles and organisations; the shipped
    #: ``rules/sso_mapping.yaml`` when empty.
    sso_mapping_file: Path | None = None
    #: OpenID Connect (authorization code flow with PKCE). Empty issuer: no OIDC sign-in. The
    #: issuer's discovery document, token endpoint and keys are fetched through the outbound
    #: allowlist, so the issuer must be on it.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_scopes: str = "openid email profile"
    #: Where the provider sends the browser back; ``<base_url>/login/oidc/callback`` when empty.
    oidc_redirect_uri: str = ""
    #: The text of the sign-in button ("Sign in with …"); "single sign-on" (translated) when empty.
    oidc_label: str = ""
    #: Hold an OIDC sign-in for commonwatch's own second factor too (off: the identity provider
    #: is trusted to enforce it).
    oidc_local_mfa: bool = False
    #: LDAP. Empty URL: no LDAP sign-in. Either a DN template (``uid={username},ou=people,dc=…``)
    #: to bind as the user, or a base DN and filter to search with a service account first.
    ldap_url: str = ""
    ldap_user_dn_template: str = ""
    ldap_base_dn: str = ""
    ldap_user_filter: str = "(uid={username})"
    ldap_bind_dn: str = ""
    ldap_bind_password: str = ""
    #: Where group membership is found: groups under this base whose ``member`` is the user's DN.
    ldap_group_base_dn: str = ""
    ldap_group_filter: str = "(|(member={dn})(uniqueMember={dn}))"
    ldap_email_attribute: str = "mail"
    ldap_name_attribute: str = "cn"
    ldap_timeout_seconds: float = 10.0
    #: "directory account" (translated) when empty.
    ldap_label: str = ""
    #: An LDAP sign-in is a password: the second-factor policy applies to it as to a local one.
    ldap_local_mfa: bool = True

    @field_validator("mfa_required_roles", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            from commonwatch.access.principal import Role

            known = {r.value for r in Role}
            for role in value:
                if role not in known:
                    raise ValueError(f"mfa_required_roles: unknown role {role!r}; one of {', '.join(sorted(known))}")
        return value

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        return (init_settings, env_settings, _TomlSource(settings_cls), file_secret_settings)

    def key_file(self, settings: Settings) -> Path:
        return self.mfa_key_file or settings.data_dir / "mfa.key"

    def rp_id(self, settings: Settings) -> str:
        return self.webauthn_rp_id or (urlsplit(settings.base_url).hostname or "localhost")

    def origin(self, settings: Settings) -> str:
        if self.webauthn_origin:
            return self.webauthn_origin.rstrip("/")
        parts = urlsplit(settings.base_url)
        return f"{parts.scheme}://{parts.netloc}"


def auth_settings(state: Any) -> AuthSettings:
    """The app's (``app.state.auth_settings``), read from the environment on first use."""
    current = getattr(state, "auth_settings", None)
    if current is None:
        current = AuthSettings()
        state.auth_settings = current
    return current
