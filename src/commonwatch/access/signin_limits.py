"""Sign-in limits: failures counted per account from one client address, per client address and
per account, so that behind a reverse proxy one attacker's failures do not lock everyone out.

The client address is the TCP peer, unless the peer is one of the configured ``trusted_proxies``:
then it is read from ``Forwarded`` (RFC 7239) or ``X-Forwarded-For``, right to left, skipping the
trusted proxies. An admin clears a lock (API, page or ``commonwatch signin unlock``); that is
recorded in the audit log.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from commonwatch.access import audit
from commonwatch.access.models import LoginAttempt
from commonwatch.errors import Invalid
from commonwatch.i18n import N_, _

# --- the client address ---------------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(trusted: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(t, strict=False) for t in trusted]


def _address(text: str) -> str | None:
    """An address from a forwarding header element (``"[2001:db8::1]:4711"``, ``192.0.2.1:80``)."""
    value = text.strip().strip('"')
    if value.startswith("["):
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None  # "unknown", an obfuscated identifier or garbage


_FOR = re.compile(r'(?i)(?:^|;)\s*for\s*=\s*("[^"]*"|[^;,\s]*)')


def forwarded_chain(headers: Any) -> list[str | None]:
    """The client-to-proxy chain of addresses the headers claim (``Forwarded`` over
    ``X-Forwarded-For``); None for an element that is not an address."""
    getlist = getattr(headers, "getlist", None)
    forwarded = getlist("forwarded") if getlist else [headers.get("forwarded", "")]
    forwarded = [v for v in forwarded if v]
    if forwarded:
        chain: list[str | None] = []
        for element in ",".join(forwarded).split(","):
            m = _FOR.search(element.strip())
            chain.append(_address(m.group(1)) if m else None)
        return chain
    xff = getlist("x-forwarded-for") if getlist else [headers.get("x-forwarded-for", "")]
    return [_address(part) for part in ",".join(v for v in xff if v).split(",") if part.strip()]


def client_address(peer: str, headers: Mapping[str, str] | Any, trusted: Iterable[str]) -> str:
    """The client's address: ``peer`` unless it is a trusted proxy, then the right-most address in
    the forwarding headers that is not a trusted proxy."""
    nets = _networks(trusted)

    def is_trusted(addr: str | None) -> bool:
        if addr is None:
            return False
        ip = ipaddress.ip_address(addr)
        return any(ip in n for n in nets if n.version == ip.version)

    peer_addr = _address(peer)
    if not nets or not is_trusted(peer_addr):
        return peer
    client = peer_addr
    for addr in reversed(forwarded_chain(headers)):
        if addr is None:
            break  # a malformed hop: trust nothing to its left
        client = addr
        if not is_trusted(addr):
            break
    return client or peer


# --- the limits -----------------------------------------------------------------------------------

ACCOUNT_FROM_ADDRESS = "account_from_address"
ADDRESS = "address"
ACCOUNT = "account"
KIND_LABELS = {
    ACCOUNT_FROM_ADDRESS: N_("this account from this address"),
    ADDRESS: N_("any account from this address"),
    ACCOUNT: N_("this account from any address"),
}


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(f"too many failed sign-ins; try again in {retry_after} s")


def _limits(settings: Any) -> list[tuple[str, int]]:
    return [(ACCOUNT_FROM_ADDRESS, settings.login_max_failures), (ADDRESS, settings.login_max_failures_per_ip),
            (ACCOUNT, settings.login_max_failures_per_account)]


def _filters(kind: str, email: str, ip: str) -> list[Any]:
    return {ACCOUNT_FROM_ADDRESS: [LoginAttempt.email == email, LoginAttempt.ip == ip],
            ADDRESS: [LoginAttempt.ip == ip], ACCOUNT: [LoginAttempt.email == email]}[kind]


def check(session: Session, settings: Any, email: str, ip: str, now: datetime) -> None:
    """Raise :class:`RateLimited` (seconds until the lock lifts) if a limit is reached."""
    window = timedelta(minutes=settings.login_window_minutes)
    wait = 0.0
    for kind, most in _limits(settings):
        if most <= 0:
            continue
        try:
            wait = max(wait, (_lock_until(session, kind, most, email, ip, now, window) - now).total_seconds())
        except ValueError:
            continue
    if wait > 0:
        raise RateLimited(max(1, math.ceil(wait)))


@dataclass
class Lock:
    kind: str
    email: str
    ip: str
    failures: int
    until: datetime

    @property
    def label(self) -> str:
        return _(KIND_LABELS[self.kind])


def locks(session: Session, settings: Any, now: datetime) -> list[Lock]:
    """The locks in force now, longest first."""
    window = timedelta(minutes=settings.login_window_minutes)
    recent = [LoginAttempt.success.is_(False), LoginAttempt.at >= now - window]
    out: list[Lock] = []
    for kind, most in _limits(settings):
        if most <= 0:
            continue
        cols = {ACCOUNT_FROM_ADDRESS: (LoginAttempt.email, LoginAttempt.ip), ADDRESS: (LoginAttempt.ip,),
                ACCOUNT: (LoginAttempt.email,)}[kind]
        rows = session.execute(select(*cols, func.count()).where(*recent).group_by(*cols)
                               .having(func.count() >= most)).all()
        for row in rows:
            email = row.email if kind != ADDRESS else ""
            ip = row.ip if kind != ACCOUNT else ""
            try:
                until = _lock_until(session, kind, most, email, ip, now, window)
            except ValueError:
                continue
            out.append(Lock(kind, email, ip, row[-1], until))
    return sorted(out, key=lambda lock: lock.until, reverse=True)


def _lock_until(session: Session, kind: str, most: int, email: str, ip: str, now: datetime,
                window: timedelta) -> datetime:
    """When the lock lifts: the most-th most recent failure leaves the window, fewer then remain."""
    nth = session.scalar(select(LoginAttempt.at).where(
        *_filters(kind, email, ip), LoginAttempt.success.is_(False), LoginAttempt.at >= now - window,
    ).order_by(LoginAttempt.at.desc()).offset(most - 1).limit(1))
    if nth is None:
        raise ValueError("not locked")
    return nth + window


def clear(session: Session, settings: Any, now: datetime, *, email: str = "", ip: str = "") -> int:
    """Forget the recent failures of ``email`` and/or from ``ip`` (at least one); returns how many.
    Recorded in the audit log with the acting admin."""
    email, ip = email.strip().lower(), ip.strip()
    if not email and not ip:
        raise Invalid("email", _("give an account, an address, or both"))
    window = timedelta(minutes=settings.login_window_minutes)
    where = [LoginAttempt.success.is_(False), LoginAttempt.at >= now - window]
    if email:
        where.append(LoginAttempt.email == email)
    if ip:
        where.append(LoginAttempt.ip == ip)
    cleared = session.execute(delete(LoginAttempt).where(*where)).rowcount or 0
    audit.record(session, "signin.unlock", "login_attempts", email or ip,
                 after={"email": email, "ip": ip, "failures_cleared": cleared})
    return cleared
