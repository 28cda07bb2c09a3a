"""IP addresses as 16-byte big-endian keys (IPv4 mapped into ::ffff:0:0/96).

One representation for both families lets a single byte-range comparison answer "is this address
in that network" in SQL (SQLite BLOB and PostgreSQL bytea compare bytewise) and in NumPy.
"""

from __future__ import annotations

import ipaddress

IPV4_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"


def ip_key(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bytes:
    """The 16-byte key of an address."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if ip.version == 4:
        return IPV4_MAPPED_PREFIX + ip.packed
    return ip.packed


def network_bounds(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[bytes, bytes]:
    """The keys of the first and last address of a network."""
    return ip_key(net.network_address), ip_key(net.broadcast_address)


def key_to_ip(key: bytes) -> str:
    if key[:12] == IPV4_MAPPED_PREFIX:
        return str(ipaddress.IPv4Address(key[12:]))
    return str(ipaddress.IPv6Address(key))
