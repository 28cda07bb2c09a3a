"""LDAP sign-in (ldap3): bind as the person, either at a DN made from a template or at the DN a
search with a service account finds; then read their email, name and groups. What the groups
mean comes from the same mapping file as OpenID Connect (access.sso)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, safe_dn

from commonwatch.access.authsettings import AuthSettings


class Unavailable(Exception):
    """The directory cannot be reached or is misconfigured (not the person's fault)."""


@dataclass(frozen=True)
class DirectoryIdentity:
    dn: str
    email: str
    name: str
    groups: frozenset[str]


def _server(auth: AuthSettings) -> ldap3.Server:
    parts = urlsplit(auth.ldap_url)
    if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
        raise Unavailable(f"ldap_url: {auth.ldap_url!r} is not an ldap:// or ldaps:// URL")
    return ldap3.Server(parts.hostname, port=parts.port, use_ssl=parts.scheme == "ldaps",
                        get_info=ldap3.NONE, connect_timeout=auth.ldap_timeout_seconds)


def _connection(auth: AuthSettings, server: ldap3.Server, user: str | None, password: str | None):
    return ldap3.Connection(server, user=user, password=password, auto_bind=ldap3.AUTO_BIND_NONE,
                            raise_exceptions=False, receive_timeout=max(1, int(auth.ldap_timeout_seconds)),
                            read_only=True)


def _first(entry_attrs: dict, name: str) -> str:
    value = entry_attrs.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "")


def _cn_of(dn: str) -> str:
    first = dn.split(",", 1)[0]
    return first.split("=", 1)[1] if "=" in first else first


def authenticate(auth: AuthSettings, username: str, password: str) -> DirectoryIdentity | None:
    """The person behind ``username``/``password``, or None if the directory says no."""
    username = username.strip()
    if not username or not password:
        return None  # an empty password would be an anonymous bind, which "succeeds"
    server = _server(auth)
    try:
        if auth.ldap_user_dn_template:
            dn = auth.ldap_user_dn_template.format(username=escape_rdn(username))
        else:
            dn = _search_dn(auth, server, username)
            if dn is None:
                return None
        conn = _connection(auth, server, dn, password)
        if not conn.bind():
            if conn.result and conn.result.get("result") == 49:  # invalidCredentials
                return None
            if conn.closed or not conn.result:
                raise Unavailable(f"{auth.ldap_url}: no answer to the bind")
            return None
        try:
            attrs = [auth.ldap_email_attribute, auth.ldap_name_attribute, "memberOf"]
            conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=attrs)
            entry = conn.response[0].get("attributes", {}) if conn.response else {}
            groups = {_cn_of(str(g)) for g in entry.get("memberOf") or []}
            if auth.ldap_group_base_dn:
                conn.search(auth.ldap_group_base_dn, auth.ldap_group_filter.format(dn=escape_filter_chars(dn)),
                            search_scope=ldap3.SUBTREE, attributes=["cn"])
                for item in conn.response or []:
                    if item.get("type") == "searchResEntry":
                        groups.add(_first(item.get("attributes", {}), "cn") or _cn_of(item["dn"]))
        finally:
            conn.unbind()
    except LDAPException as exc:
        raise Unavailable(f"{auth.ldap_url}: {exc}") from None
    return DirectoryIdentity(dn=safe_dn(dn), email=_first(entry, auth.ldap_email_attribute).strip().lower(),
                             name=_first(entry, auth.ldap_name_attribute), groups=frozenset(g for g in groups if g))


def _search_dn(auth: AuthSettings, server: ldap3.Server, username: str) -> str | None:
    conn = _connection(auth, server, auth.ldap_bind_dn or None, auth.ldap_bind_password or None)
    if not conn.bind():
        raise Unavailable(f"{auth.ldap_url}: the service account cannot bind ({conn.result.get('description')})"
                          if conn.result else f"{auth.ldap_url}: no answer")
    try:
        conn.search(auth.ldap_base_dn, auth.ldap_user_filter.format(username=escape_filter_chars(username)),
                    search_scope=ldap3.SUBTREE, attributes=[], size_limit=2)
        found = [r["dn"] for r in conn.response or [] if r.get("type") == "searchResEntry"]
    finally:
        conn.unbind()
    return found[0] if len(found) == 1 else None
